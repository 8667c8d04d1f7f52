"""The noise actually drawn has the scale the accountant was charged for.

Each statistical test fails by accident with probability below one in a million.
"""

import math

import numpy as np
import pytest
from scipy import stats

from synthroom.privacy import ZCDPAccountant
from synthroom.privacy.mechanisms import (
    combined_threshold,
    combined_thresholded_counts,
    exponential_choice,
    gaussian_counts,
    sample_exponential,
    sigma_for,
    threshold_for,
    thresholded_counts,
)
from synthroom.privacy.noise import (
    SecureNoise,
    SeededNoise,
    discrete_gaussian_isf,
    discrete_gaussian_sf,
    noise_for,
    sample_discrete_gaussian,
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
    # One row on a value of its own is released iff 1 + Z > tau, i.e. Z >= tau: the smallest such tau.
    assert tau == int(tau)
    assert discrete_gaussian_sf(int(tau), sigma) <= 5e-10 < discrete_gaussian_sf(int(tau) - 1, sigma)
    assert acc.charges[0].delta == 5e-10 and acc.charges[0].mechanism == "gaussian-threshold"


def test_threshold_releases_a_single_row_value_with_probability_at_most_delta():
    # With delta = 0.05 (testable), a value held by one row passes at most 5% of the time, and
    # the integer threshold is tight: one less would pass more than 5% of the time.
    sigma, delta, trials = 10.0, 0.05, 200_000
    tau = threshold_for(sigma, delta)
    draws = 1 + sample_discrete_gaussian(np.random.default_rng(4), sigma, trials)
    exact = discrete_gaussian_sf(int(tau), sigma)
    assert exact <= delta < discrete_gaussian_sf(int(tau) - 1, sigma)
    passed = int(np.sum(draws > tau))
    assert stats.binom.ppf(ALPHA / 2, trials, exact) <= passed <= stats.binom.isf(ALPHA / 2, trials, exact)


def _partitions(k: int, most: int | None = None):
    """Every way to put at most k rows on values of their own (non-increasing counts >= 1)."""
    most = k if most is None else most
    yield []
    for first in range(min(k, most), 0, -1):
        for rest in _partitions(k - first, first):
            yield [first] + rest


@pytest.mark.parametrize(
    "k,sigma,delta", [(1, 3.0, 1e-3), (2, 4.0, 1e-6), (5, 3.0, 1e-3), (8, 1.5, 0.05), (12, 20.0, 1e-9)]
)
def test_threshold_covers_every_way_to_spread_k_rows_over_own_values(k, sigma, delta):
    tau = threshold_for(sigma, delta, unit_cap=k)

    def release(split, t):  # P(some value of this split is released), union bound (the claim)
        return sum(discrete_gaussian_sf(int(t) - c + 1, sigma) for c in split)

    worst = max(release(split, tau) for split in _partitions(k))
    assert worst <= delta * (1 + 1e-9)
    assert max(release(split, tau - 1) for split in _partitions(k)) > delta  # tight: one less breaks it
    if k > 1:  # the one-row threshold does not cover k rows
        assert max(release(split, threshold_for(sigma, delta)) for split in _partitions(k)) > delta


def test_k_rows_on_their_own_values_pass_a_k_threshold_at_most_delta_of_the_time():
    # Simulated through thresholded_counts itself: a person with k = 4 rows, all on one new value
    # or one on each of 4 new values, at a testable delta of 0.05.
    k, delta, trials = 4, 0.05, 20_000
    for split in ([4], [1, 1, 1, 1]):
        acc = ZCDPAccountant(10.0, 0.1, delta_threshold=delta, unit_cap=k)
        counts = np.tile(np.array(split), trials)
        noisy, keep, tau = thresholded_counts(acc, np.random.default_rng(sum(split)), counts, 0.5, delta, "own")
        leaked = keep.reshape(trials, len(split)).any(axis=1).sum()
        assert leaked <= stats.binom.isf(ALPHA, trials, delta), (split, leaked)
        assert acc.charges[0].sensitivity == k and acc.charges[0].noise == pytest.approx(k / math.sqrt(2 * 0.5))


def test_a_second_round_combined_with_the_first_keeps_a_persons_own_values_at_most_delta_of_the_time():
    # The second category selection reuses stage 1's unreleased counts: a person with k = 4 rows
    # on values nobody else holds (all on one, or one on each of 4), both rounds' noise drawn, at
    # a testable delta of 0.05; the combination's threshold holds the release rate to delta.
    k, delta, trials, sigma1, rho = 4, 0.05, 20_000, 3.0, 0.5
    for split in ([4], [1, 1, 1, 1]):
        acc = ZCDPAccountant(10.0, 0.1, delta_threshold=delta, unit_cap=k)
        rng = np.random.default_rng(7 + sum(split))
        counts = np.tile(np.array(split), trials)
        earlier = counts + sample_discrete_gaussian(rng, sigma1, counts.shape)
        noisy, keep, tau, sigma_c = combined_thresholded_counts(acc, rng, counts, earlier, sigma1, rho, delta, "own")
        sigma2 = k / math.sqrt(2 * rho)  # 4: the fresh round's std at rho 0.5 for a person of 4 rows
        assert sigma_c == pytest.approx(1 / math.sqrt(1 / sigma1**2 + 1 / sigma2**2), rel=1e-12)
        assert tau == pytest.approx(combined_threshold(sigma_c, delta, k)) and tau < threshold_for(sigma2, delta, k)
        leaked = keep.reshape(trials, len(split)).any(axis=1).sum()
        assert leaked <= stats.binom.isf(ALPHA, trials, delta), (split, leaked)
        (charge,) = acc.charges  # only the fresh round is charged: rho and delta, its own std
        assert (charge.rho, charge.delta, charge.noise) == (pytest.approx(rho), delta, pytest.approx(sigma2))


def test_the_combination_is_the_inverse_variance_mean_and_a_precise_fresh_round_decides_alone():
    counts, earlier = np.array([500, 300, 40]), np.array([480.0, 330.0, 10.0])
    acc = ZCDPAccountant(1.0, 1e-9, 5e-10)
    noisy, keep, tau, sigma_c = combined_thresholded_counts(
        acc, SeededNoise(3), counts, earlier, 50.0, 2e-4, 1e-11, "s"
    )
    (charge,) = acc.charges
    fresh = SeededNoise(3).discrete_gaussian(counts, charge.noise).astype(float)  # the same draw
    w1, w2 = 1 / 50.0**2, 1 / charge.noise**2
    assert charge.noise == pytest.approx(50.0) and sigma_c == pytest.approx(50.0 / math.sqrt(2))
    assert np.allclose(noisy, (w1 * earlier + w2 * fresh) / (w1 + w2)) and list(keep) == list(noisy > tau)
    # sqrt(2 ln(1/delta)) noise stds above one row: 7.0 here (the exact tail would need 6.7 at this std).
    assert tau == pytest.approx(1 + sigma_c * math.sqrt(2 * math.log(1 / 1e-11)))
    # An earlier round 10 times noisier adds little: the fresh round's exact threshold is lower, so it decides.
    acc = ZCDPAccountant(1.0, 1e-9, 5e-10)
    noisy, keep, tau, sigma = combined_thresholded_counts(acc, SeededNoise(3), counts, earlier, 500.0, 2e-4, 1e-11, "s")
    assert sigma == acc.charges[0].noise and tau == threshold_for(sigma, 1e-11) and np.array_equal(noisy, fresh)


def test_discrete_gaussian_tail_exact_and_bounded():
    for sigma in (0.7, 3.0, 41.5):
        x = np.arange(-int(60 * sigma) - 60, int(60 * sigma) + 61)
        w = np.exp(-(x.astype(float) ** 2) / (2 * sigma**2))
        for m in (1, 2, int(3 * sigma) + 1, int(6 * sigma) + 1):
            assert discrete_gaussian_sf(m, sigma) == pytest.approx(w[x >= m].sum() / w.sum(), rel=1e-9)
    for m in (10, 50_000, 80_000):  # above the exact range: an upper bound, within 0.1%
        sigma = 20_000.0
        exact = stats.norm.sf(m / sigma)  # the continuous tail is within 1e-6 relative at this scale
        assert exact <= discrete_gaussian_sf(m, sigma) <= exact * 1.001 + 1e-12
    assert discrete_gaussian_isf(0.05, 10.0) == 17 and discrete_gaussian_sf(17, 10.0) <= 0.05


@pytest.mark.parametrize("source", ["seeded", "secure"])
def test_discrete_gaussian_samplers_draw_the_discrete_gaussian(source):
    sigma, n = 2.5, (200_000 if source == "seeded" else 60_000)
    noise = SeededNoise(8) if source == "seeded" else SecureNoise()
    draws = noise.discrete_gaussian(np.zeros(n, dtype=np.int64), sigma)
    assert draws.dtype == np.int64
    support = np.arange(-12, 13)
    w = np.exp(-(support.astype(float) ** 2) / (2 * sigma**2))
    p = w / w.sum()
    observed = np.array([np.sum(draws == v) for v in support])
    assert np.all(np.abs(draws) <= 40)
    chi = float(np.sum((observed - n * p) ** 2 / (n * p)))
    assert chi < stats.chi2.isf(ALPHA, df=support.size - 1)


def test_the_secure_source_cannot_be_replayed_and_the_seeded_one_can():
    counts = np.zeros(1000, dtype=np.int64)
    a, b = SecureNoise().discrete_gaussian(counts, 50.0), SecureNoise().discrete_gaussian(counts, 50.0)
    assert not np.array_equal(a, b)
    replay = [SeededNoise(3).discrete_gaussian(counts, 50.0) for _ in range(2)]
    assert np.array_equal(*replay)
    assert noise_for(None).reproducible is False and noise_for(0).reproducible is True
    with pytest.raises(ValueError, match="integer counts only"):
        SecureNoise().discrete_gaussian(np.array([0.5]), 1.0)


def test_unit_cap_multiplies_every_sensitivity_and_opendps_maps_agree():
    from opendp.domains import atom_domain, vector_domain
    from opendp.measurements import make_gaussian, make_noisy_max
    from opendp.measures import zero_concentrated_divergence
    from opendp.metrics import l2_distance, linf_distance

    k = 5
    acc = ZCDPAccountant(4.0, 1e-9, delta_threshold=5e-10, unit_cap=k)
    rho = acc.rho_budget / 10
    _, sigma = gaussian_counts(acc, SecureNoise(), np.arange(10), rho, "histogram")
    _, _, tau = thresholded_counts(acc, SecureNoise(), np.arange(10), rho, 5e-10, "categories")
    eps = math.sqrt(8 * rho)
    exponential_choice(acc, SecureNoise(), np.array([1.0, 2.0, 3.0]), eps, 1.0, "pick")
    gauss, thresh, expo = acc.charges
    assert gauss.sensitivity == thresh.sensitivity == expo.sensitivity == k
    assert sigma == pytest.approx(k / math.sqrt(2 * rho)) and gauss.rho == pytest.approx(rho, rel=1e-12)
    assert tau == threshold_for(sigma, 5e-10, unit_cap=k)
    assert acc.summary()["unit"] == "one person with up to 5 rows (add/remove)" and acc.summary()["unit_cap"] == k
    # The vetted maps of the very samplers used, at a person's sensitivity, give the same rho.
    g = make_gaussian(vector_domain(atom_domain(T="i64")), l2_distance(T="i64"), sigma)
    assert g.map(k) == pytest.approx(gauss.rho, rel=1e-9)
    nm = make_noisy_max(
        vector_domain(atom_domain(T=float, nan=False)),
        linf_distance(T=float),
        zero_concentrated_divergence(),
        2.0 * k / eps,
    )
    assert nm.map(float(k)) == pytest.approx(expo.rho, rel=1e-9)
    with pytest.raises(ValueError, match="unit_cap 0 must be a whole number of rows per person, at least 1"):
        ZCDPAccountant(1.0, 1e-9, unit_cap=0)


@pytest.mark.parametrize("source", ["seeded", "secure"])
def test_exponential_mechanism_draws_follow_its_distribution(source):
    scores, eps, sens, trials = np.array([0.0, 1.0, 3.0, 3.5]), 2.0, 1.0, 30_000
    noise = SeededNoise(5) if source == "seeded" else SecureNoise()
    draws = np.bincount([sample_exponential(scores, eps, sens, noise) for _ in range(trials)], minlength=4)
    p = np.exp(eps * scores / (2 * sens))
    p /= p.sum()
    chi = float(np.sum((draws - trials * p) ** 2 / (trials * p)))
    assert chi < stats.chi2.isf(ALPHA, df=3)


def test_exponential_mechanism_charges_epsilon_squared_over_eight():
    acc = ZCDPAccountant(1.0, 1e-9)
    exponential_choice(acc, np.random.default_rng(0), np.array([1.0, 2.0]), 0.05, 1.0, "pick")
    assert acc.charges[0].rho == pytest.approx(0.05**2 / 8, rel=1e-12)
