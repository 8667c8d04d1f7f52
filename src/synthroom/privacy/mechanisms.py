"""The noise mechanisms. Each one states its sensitivity and charges the accountant itself.

The privacy unit is the accountant's: one person holding up to ``accountant.unit_cap`` rows
(``k``; one row when k = 1). Callers give each mechanism its sensitivity *per row*; the
mechanism turns it into the sensitivity *per person* with :func:`person_sensitivity` (k rows
move any count, histogram or score by at most k times what one row moves it: triangle
inequality), calibrates its noise to that, and charges that. So rho grows with k^2, and the
category-selection threshold (:func:`threshold_for`) covers a person whose k rows sit on up to
k values nobody else holds.

The noise comes from a :class:`~synthroom.privacy.noise.Noise` source: OpenDP's discrete
Gaussian and Gumbel noisy max on OS entropy for every release, a seeded numpy generator for
reproducible experiments (see ``noise.py``). Noisy counts are integers in both cases; the cost
of the discrete Gaussian with integer sensitivity Delta and scale sigma is Delta^2 / (2 sigma^2)
(Canonne, Kamath and Steinke 2020, Theorem 4), the same as the continuous one.
"""

from __future__ import annotations

import math

import numpy as np

from . import faults
from .accountant import ZCDPAccountant
from .noise import Noise, as_noise, discrete_gaussian_isf


def sigma_for(rho: float, sensitivity: float = 1.0) -> float:
    """The Gaussian standard deviation that costs exactly ``rho`` at L2 ``sensitivity``."""
    if rho <= 0:
        raise ValueError("rho must be positive")
    return sensitivity / math.sqrt(2.0 * rho)


def person_sensitivity(accountant: ZCDPAccountant, per_row: float = 1.0) -> float:
    """The sensitivity under adding or removing one person with up to ``unit_cap`` rows.

    ``per_row`` bounds how far one row moves the query (in the mechanism's norm); k rows move it
    at most k times as far (triangle inequality), and k rows in one cell reach that bound, so
    it is tight: ``k * per_row``. (Two test-only faults break this, see ``faults``.)
    """
    k = accountant.unit_cap
    person = k * per_row
    if faults.active("group_scaling_linear", accountant):  # test-only switch, see faults
        person = math.sqrt(k) * per_row  # rho would then grow with k, not k^2
    if faults.active("sensitivity_under_declared", accountant):  # test-only switch, see faults
        person /= math.sqrt(2.0)
    return person


def gaussian_counts(
    accountant: ZCDPAccountant,
    noise: "Noise | np.random.Generator",
    counts: np.ndarray,
    rho: float,
    step: str,
    sensitivity: float = 1.0,
) -> tuple[np.ndarray, float]:
    """Add discrete Gaussian noise to a vector of counts.

    ``counts`` must be a histogram over a *data-independent* set of cells, to which one row
    adds 1 in exactly one cell (L2 sensitivity 1 per row), or ``sensitivity`` if a row can touch
    more. Returns the noisy counts (integers, as floats) and the noise scale sigma.
    """
    per_person = person_sensitivity(accountant, sensitivity)
    sigma = sigma_for(rho, per_person)
    accountant.charge_gaussian(step, per_person, sigma)
    if faults.active("no_measurement_noise", accountant):  # test-only switch, see faults
        return np.asarray(counts, dtype=float).copy(), sigma
    return as_noise(noise).discrete_gaussian(counts, sigma).astype(float), sigma


def threshold_for(sigma: float, delta: float, unit_cap: int = 1) -> float:
    """The partition-selection threshold tau: values whose noisy count exceeds it are released.

    A person holds up to ``k = unit_cap`` rows, spread over values nobody else holds with counts
    c_1 + ... + c_m <= k. Each such value passes with g(c) = P(c + Z > tau) (Z discrete Gaussian
    of scale ``sigma``); g is convex in c below tau, so the sum of g(c_j) is largest at an
    extreme split: all k rows on one value, or one row on each of k values. tau is the smallest
    integer with g(k) <= delta and k g(1) <= delta, so the chance that any of that person's own
    values is released is at most ``delta``. With k = 1 this is the classic one-row threshold.
    """
    k = int(unit_cap)
    z_all = discrete_gaussian_isf(delta, sigma)  # P(Z >= z_all) <= delta
    z_each = discrete_gaussian_isf(delta / k, sigma) if k > 1 else z_all
    # c + Z > tau  <=>  Z >= tau - c + 1 for integers: tau = k + z_all - 1 covers c = k, tau = z_each c = 1.
    return float(max(k + z_all - 1, z_each))


def thresholded_counts(
    accountant: ZCDPAccountant,
    noise: "Noise | np.random.Generator",
    counts: np.ndarray,
    rho: float,
    delta: float,
    step: str,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Gaussian partition selection: noisy counts of the values present, kept above a threshold.

    Each row holds one value, so a person's rows move the counts of shared values by at most k
    in L2 (all on one value) and the noise there costs rho = k^2 / (2 sigma^2); a value held
    only by that person passes the threshold with total probability at most ``delta`` (see
    :func:`threshold_for`). The release is (delta, rho)-approximate zCDP (Gopi et al. 2020;
    Google's partition selection). Returns noisy counts, the keep mask and the threshold.
    """
    sensitivity = person_sensitivity(accountant, 1.0)
    sigma = sigma_for(rho, sensitivity)
    k = 1 if faults.active("threshold_for_one_row", accountant) else accountant.unit_cap  # test-only, see faults
    tau = threshold_for(sigma, delta, k)
    accountant.charge_gaussian(step, sensitivity, sigma, delta=delta)
    if faults.active("noiseless_category_selection", accountant):  # test-only switch, see faults
        noisy = np.asarray(counts, dtype=float).copy()
    else:
        noisy = as_noise(noise).discrete_gaussian(counts, sigma).astype(float)
    return noisy, noisy > tau, tau


def combined_threshold(sigma: float, delta: float, unit_cap: int = 1) -> float:
    """The threshold for a release decided on a *combination* of independent discrete Gaussian
    counts (:func:`combined_thresholded_counts`), whose noise is no longer discrete Gaussian but
    is ``sigma``-subgaussian (each discrete Gaussian N_Z(0, s^2) is s-subgaussian, Canonne, Kamath
    and Steinke 2020; a weighted sum of independent ones has the weighted proxy), so
    ``P(X >= t) <= exp(-t^2 / (2 sigma^2))``. As in :func:`threshold_for`, a person's ``k`` rows
    on values nobody else holds are released with probability at most ``delta`` when both
    extreme splits are: all k rows on one value (``tau >= k + sigma sqrt(2 ln(1 / delta))``) and
    one row on each of k values (``tau >= 1 + sigma sqrt(2 ln(k / delta))``); the bound is convex
    in the count below ``tau - sigma``, which both terms exceed. About 6% above the exact tail's
    threshold at the deltas a fit uses."""
    k = int(unit_cap)
    return max(k + sigma * math.sqrt(2.0 * math.log(1.0 / delta)), 1.0 + sigma * math.sqrt(2.0 * math.log(k / delta)))


def combined_thresholded_counts(
    accountant: ZCDPAccountant,
    noise: "Noise | np.random.Generator",
    counts: np.ndarray,
    earlier: np.ndarray,
    earlier_sigma: float,
    rho: float,
    delta: float,
    step: str,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Partition selection that reuses an earlier, unreleased round of noisy counts.

    ``earlier``: the noisy counts of the same values (same data, same cells) that an earlier
    partition selection drew at std ``earlier_sigma`` and did *not* release (they stayed below
    its threshold). Fresh discrete Gaussian counts at the std that costs ``rho`` are drawn, and
    the two are combined by inverse variance: a value is kept when the combination exceeds
    :func:`combined_threshold` at the combination's std. The fresh round is charged (``rho``,
    ``delta``); the earlier one was charged when it was drawn. Why this is private: the two
    rounds together are Gaussian mechanisms on the same counts (zCDP composes: the earlier rho
    plus ``rho``), and a value held only by one person is released by the earlier round or by
    this one with probability at most the sum of the two deltas (conditioning on the earlier
    round not keeping it only lowers this round's chance). A value is thus kept at the rho of
    both rounds. When the fresh round alone has the lower threshold (it holds most of the
    precision: the combination's subgaussian bound is looser than the exact discrete Gaussian
    tail), it decides alone, as :func:`thresholded_counts` would; the choice reads only the
    noise scales and delta. Returns the counts that decided (combined or fresh), the keep mask,
    the threshold and those counts' std."""
    sensitivity = person_sensitivity(accountant, 1.0)
    sigma = sigma_for(rho, sensitivity)
    accountant.charge_gaussian(step, sensitivity, sigma, delta=delta)
    if faults.active("noiseless_category_selection", accountant):  # test-only switch, see faults
        fresh = np.asarray(counts, dtype=float).copy()
    else:
        fresh = as_noise(noise).discrete_gaussian(counts, sigma).astype(float)
    w_earlier, w_fresh = 1.0 / earlier_sigma**2, 1.0 / sigma**2
    sigma_c = 1.0 / math.sqrt(w_earlier + w_fresh)
    k = 1 if faults.active("threshold_for_one_row", accountant) else accountant.unit_cap  # test-only, see faults
    tau, alone = combined_threshold(sigma_c, delta, k), threshold_for(sigma, delta, k)
    if alone <= tau:  # the fresh round alone has the lower threshold (exact tail): it decides alone
        return fresh, fresh > alone, alone, sigma
    combined = (w_earlier * np.asarray(earlier, dtype=float) + w_fresh * fresh) / (w_earlier + w_fresh)
    return combined, combined > tau, tau, sigma_c


def exponential_choice(
    accountant: ZCDPAccountant,
    noise: "Noise | np.random.Generator",
    scores: np.ndarray,
    epsilon: float,
    sensitivity: float,
    step: str,
) -> int:
    """Pick an index with probability proportional to exp(epsilon * score / (2 * Delta)).

    ``sensitivity`` bounds how far one row moves any score; Delta is that per person (k times).
    Drawn as report-noisy-max with Gumbel noise of scale 2 Delta / epsilon (the same
    distribution). epsilon-DP with bounded range epsilon, hence epsilon^2/8-zCDP.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0:
        raise ValueError("the exponential mechanism needs at least one candidate")
    delta_person = person_sensitivity(accountant, sensitivity)
    accountant.charge_exponential(step, delta_person, epsilon)
    return sample_exponential(scores, epsilon, delta_person, noise)


def sample_exponential(
    scores: np.ndarray, epsilon: float, sensitivity: float, noise: "Noise | np.random.Generator"
) -> int:
    """The exponential mechanism's draw itself (uncharged: call :func:`exponential_choice`)."""
    return as_noise(noise).noisy_max(np.asarray(scores, dtype=float), 2.0 * sensitivity / epsilon)
