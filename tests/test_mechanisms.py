"""The noise actually drawn has the scale the accountant was charged for.

Each statistical test fails by accident with probability below one in a million.
"""

import math

import numpy as np
import pytest
from scipy import stats

from synthroom.privacy import ZCDPAccountant
from synthroom.privacy.mechanisms import (
    exponential_choice, gaussian_counts, sample_exponential, sigma_for, threshold_for, thresholded_counts,
)

ALPHA = 1e-6


def _assert_std(noise: np.ndarray, sigma: float) -> None:
    """Two-sided chi-square test of the sample variance against sigma^2 (false failure < ALPHA)."""
    n = noise.size
    stat = float(np.sum(noise**2)) / sigma**2  # mean is known to be 0: chi2 with n dof
    lo, hi = stats.chi2.ppf(ALPHA / 2, n), stats.chi2.isf(ALPHA / 2, n)
    assert lo < stat < hi, f"noise variance {stat / n * sigma**2:.4g} vs charged {sigma**2:.4g}"
    assert abs(float(noise.mean())) < stats.norm.isf(ALPHA / 2) * sigma / math.sqrt(n)


def test_gaussian_noise_has_the_charged_std():
    acc = ZCDPAccountant(1.0, 1e-9)
    rho = acc.rho_budget / 3
    counts = np.arange(200_000) % 7
    noisy, sigma = gaussian_counts(acc, np.random.default_rng(1), counts, rho, "test")
    assert sigma == pytest.approx(sigma_for(rho))
    assert acc.charges[0].rho == pytest.approx(rho, rel=1e-12)
    assert acc.charges[0].noise == sigma and acc.charges[0].sensitivity == 1.0
    _assert_std(noisy - counts, sigma)


def test_the_std_test_catches_a_five_percent_error():
    noise = np.random.default_rng(2).normal(0, 1.05, 200_000)
    with pytest.raises(AssertionError):
        _assert_std(noise, 1.0)


def test_threshold_noise_and_delta():
    acc = ZCDPAccountant(1.0, 1e-9, delta_threshold=5e-10)
    rho = acc.rho_budget / 2
    counts = np.full(200_000, 1000)
    noisy, keep, tau = thresholded_counts(acc, np.random.default_rng(3), counts, rho, 5e-10, "test")
    sigma = sigma_for(rho)
    _assert_std(noisy - counts, sigma)
    assert stats.norm.sf((tau - 1) / sigma) == pytest.approx(5e-10, rel=1e-6)
    assert acc.charges[0].delta == 5e-10 and acc.charges[0].mechanism == "gaussian-threshold"


def test_threshold_releases_a_single_row_value_with_probability_delta():
    # With delta = 0.05 (testable), a value held by one row passes 5% of the time.
    sigma, delta, trials = 10.0, 0.05, 200_000
    tau = threshold_for(sigma, delta)
    passed = int(np.sum(1 + np.random.default_rng(4).normal(0, sigma, trials) > tau))
    lo, hi = stats.binom.ppf(ALPHA / 2, trials, delta), stats.binom.isf(ALPHA / 2, trials, delta)
    assert lo <= passed <= hi


def test_exponential_mechanism_draws_follow_its_distribution():
    scores, eps, sens, trials = np.array([0.0, 1.0, 3.0, 3.5]), 2.0, 1.0, 100_000
    rng = np.random.default_rng(5)
    draws = np.bincount([sample_exponential(scores, eps, sens, rng) for _ in range(trials)], minlength=4)
    p = np.exp(eps * scores / (2 * sens))
    p /= p.sum()
    chi = float(np.sum((draws - trials * p) ** 2 / (trials * p)))
    assert chi < stats.chi2.isf(ALPHA, df=3)


def test_exponential_mechanism_charges_epsilon_squared_over_eight():
    acc = ZCDPAccountant(1.0, 1e-9)
    exponential_choice(acc, np.random.default_rng(0), np.array([1.0, 2.0]), 0.05, 1.0, "pick")
    assert acc.charges[0].rho == pytest.approx(0.05**2 / 8, rel=1e-12)
