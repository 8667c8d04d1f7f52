"""The noise mechanisms. Each one states its sensitivity and charges the accountant itself.

Noise comes from a seeded ``numpy.random.Generator`` (PCG64), because the product promises that
the same seed and input give the same output. OpenDP's samplers are cryptographically secure but
cannot be seeded, so we do not use them for sampling; we do use OpenDP for the accounting
conversion (see ``accountant.py``). Floating-point Gaussian sampling is open to the
least-significant-bit attacks of Mironov (2012) only when raw noisy values are released at full
precision; every noisy count here is post-processed (thresholded, projected by estimation,
rounded) before anything leaves the process.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri

from . import _faults
from .accountant import ZCDPAccountant


def sigma_for(rho: float, sensitivity: float = 1.0) -> float:
    """The Gaussian standard deviation that costs exactly ``rho`` at L2 ``sensitivity``."""
    if rho <= 0:
        raise ValueError("rho must be positive")
    return sensitivity / math.sqrt(2.0 * rho)


def gaussian_counts(
    accountant: ZCDPAccountant,
    rng: np.random.Generator,
    counts: np.ndarray,
    rho: float,
    step: str,
    sensitivity: float = 1.0,
) -> tuple[np.ndarray, float]:
    """Add Gaussian noise to a vector of counts.

    ``counts`` must be a histogram over a *data-independent* set of cells, to which one row
    adds 1 in exactly one cell (L2 sensitivity 1), or ``sensitivity`` if a row can touch more.
    Returns the noisy counts and the noise std.
    """
    sigma = sigma_for(rho, sensitivity)
    accountant.charge_gaussian(step, sensitivity, sigma)
    noise = rng.normal(0.0, sigma, size=np.shape(counts))
    if _faults.active("no_measurement_noise", accountant):  # test-only switch, see _faults
        noise = np.zeros_like(noise)
    return np.asarray(counts, dtype=float) + noise, sigma


def threshold_for(sigma: float, delta: float) -> float:
    """Threshold tau with P(1 + N(0, sigma^2) > tau) = delta.

    A value held by a single row is released with probability at most ``delta``.
    """
    return 1.0 + sigma * float(-ndtri(delta))


def thresholded_counts(
    accountant: ZCDPAccountant,
    rng: np.random.Generator,
    counts: np.ndarray,
    rho: float,
    delta: float,
    step: str,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Gaussian partition selection: noisy counts of the values present, kept above a threshold.

    Each row holds one value, so the counts have L2 sensitivity 1. Values present in only one
    neighbour make the release (delta, rho)-approximate zCDP: the noise on shared values costs
    rho = 1/(2 sigma^2), and a value unique to one row passes the threshold with probability
    ``delta`` (Gopi et al. 2020; Google's partition selection). Returns noisy counts, the keep
    mask and the threshold.
    """
    sigma = sigma_for(rho)
    tau = threshold_for(sigma, delta)
    accountant.charge_gaussian(step, 1.0, sigma, delta=delta)
    noise = rng.normal(0.0, sigma, size=np.shape(counts))
    if _faults.active("noiseless_category_selection", accountant):  # test-only switch, see _faults
        noise = np.zeros_like(noise)
    noisy = np.asarray(counts, dtype=float) + noise
    return noisy, noisy > tau, tau


def exponential_choice(
    accountant: ZCDPAccountant,
    rng: np.random.Generator,
    scores: np.ndarray,
    epsilon: float,
    sensitivity: float,
    step: str,
) -> int:
    """Pick an index with probability proportional to exp(epsilon * score / (2 * sensitivity)).

    Implemented with the Gumbel-max trick. epsilon-DP, hence epsilon^2/8-zCDP.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0:
        raise ValueError("the exponential mechanism needs at least one candidate")
    accountant.charge_exponential(step, sensitivity, epsilon)
    return sample_exponential(scores, epsilon, sensitivity, rng)


def sample_exponential(scores: np.ndarray, epsilon: float, sensitivity: float, rng: np.random.Generator) -> int:
    """The exponential mechanism's draw itself (uncharged: call :func:`exponential_choice`)."""
    logits = epsilon * np.asarray(scores, dtype=float) / (2.0 * sensitivity)
    return int(np.argmax(logits + rng.gumbel(size=logits.shape)))
