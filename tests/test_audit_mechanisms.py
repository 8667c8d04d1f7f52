"""Noise drawn through the charging entry points has exactly the scale the ledger records.

Complements tests/test_mechanisms.py: a Gaussian measurement with sensitivity above 1, and the
exponential mechanism's draws taken through :func:`exponential_choice` (the function that
charges the accountant), compared with the epsilon and sensitivity written in the ledger.
Each statistical test fails by accident with probability below one in a million.
"""

import math

import numpy as np
import pytest
from benchkit import load_bench
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


# -- bench/audit_mechanisms.py: the white-box audit, per mechanism ------------------------------
am = load_bench("audit_mechanisms", as_name="bench_audit_mechanisms")
Z_TEST = stats.norm.isf(ALPHA / 2)  # tests use a one-in-a-million margin, not the audit's 99%


def _run(mechanism, k, fault, runs):
    (config,) = am.run_audit(runs, log=lambda _line: None, configs=[am.Config(mechanism, k, fault, runs)])
    est, lo, hi = config.estimate()
    se = (hi - est) / am.Z  # the estimate's standard error (normal intervals)
    return config, est, se


def test_mu_estimate_recovers_a_known_shift_with_a_covering_interval():
    rng = np.random.default_rng(21)
    t0, t1 = rng.normal(10, 2.0, 50_000), rng.normal(12.6, 2.0, 50_000)  # mu = 1.3
    mu, lo, hi = am.mu_estimate(t0, t1)
    assert lo < 1.3 < hi and hi - lo < 0.06
    se = (hi - mu) / am.Z
    assert abs(mu - 1.3) < Z_TEST * se


def test_epsilon_estimate_and_clopper_pearson():
    rng = np.random.default_rng(22)
    n, eps = 100_000, 2.0
    p0, p1 = 1 / (1 + math.exp(eps / 2)), 1 / (1 + math.exp(-eps / 2))
    est, lo, hi = am.epsilon_estimate(int(rng.binomial(n, p0)), int(rng.binomial(n, p1)), n)
    assert lo < eps < hi and hi - lo < 0.1
    ci = stats.binomtest(37, 500).proportion_ci(confidence_level=0.99, method="exact")
    assert am.clopper_pearson(37, 500) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_a_shipped_marginal_is_at_its_charged_mu_for_one_row_and_for_k_rows():
    for k in (1, am.GROUP_K):
        config, est, se = _run("marginal", k, None, 600)
        assert config.claim == pytest.approx(1.0, rel=1e-9)  # sqrt(2 * rho) of the ledger's charge
        assert abs(est - config.claim) < Z_TEST * se, (k, est)


def test_the_audit_catches_a_sensitivity_under_declared_by_sqrt_two():
    config, est, se = _run("marginal", 1, "sensitivity_under_declared", 1500)
    assert abs(est - math.sqrt(2)) < Z_TEST * se and est - Z_TEST * se > config.claim
    assert config.passed()  # caught at the audit's own confidence too


def test_the_audit_catches_group_scaling_by_k_instead_of_k_squared():
    config, est, se = _run("partition selection (counts)", am.GROUP_K, "group_scaling_linear", 300)
    assert abs(est - math.sqrt(am.GROUP_K)) < Z_TEST * se and est - Z_TEST * se > config.claim
    assert config.passed()


def test_the_threshold_holds_k_rows_to_delta_and_the_one_row_threshold_does_not():
    shipped = am.run_audit(
        1000,
        log=lambda _l: None,
        configs=[
            am.Config("threshold, k rows on one own value", am.GROUP_K, None, 1000),
            am.Config("threshold, k rows on one own value", am.GROUP_K, "threshold_for_one_row", 1000),
        ],
    )
    ok, broken = shipped
    # The first selection stage is charged half of the column's delta (the other half is the
    # reserve of the second stage, for columns that fold), and the claim is read from the ledger.
    assert ok.claim == broken.claim == am.DELTA_MEASURED / 2
    lo_ok, _ = am.clopper_pearson(int(ok.outputs[1].sum()), 1000, 1 - ALPHA)
    lo_broken, _ = am.clopper_pearson(int(broken.outputs[1].sum()), 1000, 1 - ALPHA)
    assert lo_ok <= ok.claim < lo_broken


def test_the_summary_fails_on_an_uncaught_variant_or_an_exceeded_claim():
    def config(fault, t1_shift):
        c = am.Config("marginal", 1, fault, 1000, claim=1.0)
        rng = np.random.default_rng(23)
        c.outputs = {0: rng.normal(0, 1, 1000), 1: rng.normal(t1_shift, 1, 1000)}
        return c

    line, ok = am.summary([config(None, 1.0), config("sensitivity_under_declared", 2.0)])
    assert ok and line.startswith("mechanism audit: 1 of 1 shipped configurations within their claims")
    assert line.endswith("1 of 1 broken variants caught")
    assert not am.summary([config(None, 1.0), config("sensitivity_under_declared", 1.0)])[1]  # not caught
    assert not am.summary([config(None, 2.0), config("sensitivity_under_declared", 2.0)])[1]  # over its claim
