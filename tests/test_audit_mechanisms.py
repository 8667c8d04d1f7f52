"""Noise drawn through the charging entry points has exactly the scale the ledger records.

Complements tests/test_mechanisms.py: a Gaussian measurement with sensitivity above 1, and the
exponential mechanism's draws taken through :func:`exponential_choice` (the function that
charges the accountant), compared with the epsilon and sensitivity written in the ledger.
Each statistical test fails by accident with probability below one in a million.
"""

import math

import numpy as np
import pytest
from scipy import stats

from synthroom.privacy import ZCDPAccountant
from synthroom.privacy.mechanisms import exponential_choice, gaussian_counts

ALPHA = 1e-6


def test_gaussian_noise_with_sensitivity_two_has_the_ledgers_std():
    acc = ZCDPAccountant(1.0, 1e-9)
    rho = acc.rho_budget / 4
    counts = np.arange(200_000) % 11
    noisy, sigma = gaussian_counts(acc, np.random.default_rng(11), counts, rho, "two cells per row", sensitivity=2.0)
    charge = acc.charges[0]
    assert charge.sensitivity == 2.0 and charge.noise == sigma
    assert charge.rho == pytest.approx(2.0**2 / (2 * sigma**2), rel=1e-12) == pytest.approx(rho, rel=1e-12)
    noise = noisy - counts
    chi = float(np.sum(noise**2)) / charge.noise**2  # known mean 0: chi-square with n dof
    assert stats.chi2.ppf(ALPHA / 2, noise.size) < chi < stats.chi2.isf(ALPHA / 2, noise.size)
    assert abs(noise.mean()) < stats.norm.isf(ALPHA / 2) * charge.noise / math.sqrt(noise.size)


def _draw_through_the_accountant(scores, eps, sens, trials, seed):
    """``trials`` draws of :func:`exponential_choice`, each charged to a ledger (kept small)."""
    acc = ZCDPAccountant(10.0, 1e-9)
    rng = np.random.default_rng(seed)
    picks, charges = [], []
    for _ in range(trials):
        picks.append(exponential_choice(acc, rng, scores, eps, sens, "pick"))
        charges.append(acc.charges.pop())  # one charge per draw; the ledger stays short
    return np.bincount(picks, minlength=scores.size), charges


def test_exponential_choice_draws_follow_the_charged_epsilon():
    scores = np.array([0.0, 2.0, 5.0, 6.0, 6.0])
    eps, sens, trials = 1.0, 3.0, 60_000
    draws, charges = _draw_through_the_accountant(scores, eps, sens, trials, seed=12)
    assert len(charges) == trials
    assert all(c.noise == eps and c.sensitivity == sens for c in charges)
    assert charges[0].rho == pytest.approx(eps**2 / 8, rel=1e-12)
    p = np.exp(charges[0].noise * scores / (2 * charges[0].sensitivity))
    p /= p.sum()
    chi = float(np.sum((draws - trials * p) ** 2 / (trials * p)))
    assert chi < stats.chi2.isf(ALPHA, df=scores.size - 1)


def test_the_exponential_test_sees_a_doubled_epsilon():
    # The same test with the draws made at twice the charged epsilon must fail.
    scores, eps, sens, trials = np.array([0.0, 2.0, 5.0, 6.0, 6.0]), 1.0, 3.0, 60_000
    draws, _ = _draw_through_the_accountant(scores, 2 * eps, sens, trials, seed=13)
    p = np.exp(eps * scores / (2 * sens))
    p /= p.sum()
    chi = float(np.sum((draws - trials * p) ** 2 / (trials * p)))
    assert chi > stats.chi2.isf(ALPHA, df=scores.size - 1)
