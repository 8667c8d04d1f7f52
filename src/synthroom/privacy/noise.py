"""Where the noise comes from: OpenDP's vetted samplers on OS entropy, or a seeded generator.

Every mechanism draws its randomness from a :class:`Noise` source, in one of two kinds:

* :class:`SecureNoise` (every run without a seed, every release): OpenDP's samplers, which draw
  from the operating system's cryptographically secure generator and sample exactly (no
  floating-point shortcuts): the discrete Gaussian for counts (``make_gaussian`` on an integer
  vector; Canonne, Kamath and Steinke 2020) and Gumbel report-noisy-max for the exponential
  mechanism (``make_noisy_max``). Nobody can reproduce or predict the noise, and integer noise
  on integer counts leaves no floating-point trace (Mironov 2012).
* :class:`SeededNoise` (an explicit seed, for reproducible experiments): the same two
  distributions drawn from numpy's PCG64 generator. Whoever knows the seed can rerun the fit on
  candidate tables and recognise the release, so such a run is marked "reproducible: not for
  release" in its ledger, and the room refuses it.

Both give *integer* noisy counts with the same distribution, so the rest of the code, the
thresholds (:func:`discrete_gaussian_sf`) and the accounting do not depend on the kind.

Sampling synthetic rows from the fitted model is post-processing: it is private whatever its
randomness, as long as that randomness is independent of the mechanisms' noise (it need not be
secret). :meth:`Noise.sampling_generator` gives a generator for it seeded from fresh OS entropy
(secure kind) or from the run's seed (seeded kind), never from the mechanisms' noise.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import ndtr, ndtri

# Above this noise scale the discrete Gaussian's tail is bounded, not summed (see discrete_gaussian_sf).
_EXACT_TAIL_SIGMA = 10_000.0


class Noise:
    """A source of DP noise; see the module docstring for the two kinds."""

    reproducible: bool = False
    label: str = ""

    def discrete_gaussian(self, counts: np.ndarray, sigma: float) -> np.ndarray:
        """``counts`` (integers) plus independent discrete Gaussian noise N_Z(0, sigma^2), as int64."""
        raise NotImplementedError

    def noisy_max(self, scores: np.ndarray, scale: float) -> int:
        """Index of the largest ``scores + Gumbel(scale)``: the exponential mechanism with
        probabilities proportional to ``exp(score / scale)``."""
        raise NotImplementedError

    def sampling_generator(self) -> np.random.Generator:
        """A generator for post-processing draws (synthetic rows), independent of the noise."""
        raise NotImplementedError


class SecureNoise(Noise):
    """OpenDP's samplers (OS entropy, exact sampling). Cannot be seeded, by design."""

    reproducible = False
    label = "secure: OpenDP samplers (discrete Gaussian, Gumbel noisy max) on OS entropy"

    def discrete_gaussian(self, counts: np.ndarray, sigma: float) -> np.ndarray:
        counts = _as_integers(counts)
        if counts.size == 0:
            return counts.copy()
        noisy = _opendp_gaussian(float(sigma))(counts.ravel().tolist())
        return np.asarray(noisy, dtype=np.int64).reshape(counts.shape)

    def noisy_max(self, scores: np.ndarray, scale: float) -> int:
        return int(_opendp_noisy_max(float(scale))(_finite(scores).tolist()))

    def sampling_generator(self) -> np.random.Generator:
        return np.random.default_rng()  # a fresh 128-bit seed from the OS (secrets.randbits)


class SeededNoise(Noise):
    """The same distributions from numpy's PCG64: reproducible, hence not for release."""

    reproducible = True
    label = "seeded: numpy PCG64 (reproducible: not for release)"

    def __init__(self, seed: "int | np.random.Generator"):
        if isinstance(seed, np.random.Generator):  # a caller's generator (tests): it serves both
            self.rng = seed
            self._sampling_seed = None
        else:
            seq = np.random.SeedSequence(seed)
            noise_seq, sampling_seq = seq.spawn(2)
            self.rng = np.random.default_rng(noise_seq)
            self._sampling_seed = int(sampling_seq.generate_state(1, np.uint64)[0])

    def discrete_gaussian(self, counts: np.ndarray, sigma: float) -> np.ndarray:
        counts = _as_integers(counts)
        return counts + sample_discrete_gaussian(self.rng, float(sigma), counts.shape)

    def noisy_max(self, scores: np.ndarray, scale: float) -> int:
        scores = _finite(scores)
        return int(np.argmax(scores + self.rng.gumbel(scale=scale, size=scores.shape)))

    def sampling_generator(self) -> np.random.Generator:
        return self.rng if self._sampling_seed is None else np.random.default_rng(self._sampling_seed)

    @property
    def sampling_seed(self) -> int | None:
        """The seed of the post-processing draws (derived from the run's seed, not from the noise)."""
        return self._sampling_seed


def as_noise(source: "Noise | np.random.Generator") -> Noise:
    """A :class:`Noise` as is; a numpy ``Generator`` as seeded noise (tests, experiments)."""
    if isinstance(source, Noise):
        return source
    if isinstance(source, np.random.Generator):
        return SeededNoise(source)
    raise TypeError(f"expected a Noise source or a numpy Generator, not {type(source).__name__}")


def noise_for(seed: int | None) -> Noise:
    """The noise of a run: secure without a seed, reproducible (not for release) with one."""
    return SecureNoise() if seed is None else SeededNoise(seed)


# -- the discrete Gaussian ----------------------------------------------------------------------
def sample_discrete_gaussian(rng: np.random.Generator, sigma: float, shape) -> np.ndarray:
    """Exact discrete Gaussian draws (Canonne, Kamath and Steinke 2020, Algorithm 3) from ``rng``.

    Rejection sampling from a discrete Laplace of scale ``t = floor(sigma) + 1`` (a difference of
    two geometric draws), accepting ``y`` with probability ``exp(-(|y| - sigma^2/t)^2 / (2 sigma^2))``.
    """
    size = int(np.prod(shape, dtype=np.int64))
    out = np.empty(size, dtype=np.int64)
    t = math.floor(sigma) + 1
    p = -math.expm1(-1.0 / t)  # success probability of the geometric draws
    todo = np.arange(size)
    while todo.size:
        y = rng.geometric(p, todo.size) - rng.geometric(p, todo.size)
        accept = rng.random(todo.size) < np.exp(-((np.abs(y) - sigma**2 / t) ** 2) / (2 * sigma**2))
        out[todo[accept]] = y[accept]
        todo = todo[~accept]
    return out.reshape(shape)


def discrete_gaussian_sf(m: int, sigma: float) -> float:
    """P(Z >= m) for Z ~ N_Z(0, sigma^2): exact up to sigma = 10,000, an upper bound above.

    The bound: for m > 0 the terms decrease, so sum_{x >= m} e^{-x^2/2s^2} <= e^{-m^2/2s^2} +
    integral_m^inf, and the normaliser is at least sigma sqrt(2 pi) (Poisson summation); so
    P(Z >= m) <= Phi-bar(m/sigma) + phi(m/sigma)/sigma (relatively loose by at most about 0.1%).
    """
    if m <= 0:  # by symmetry, P(Z >= m) = 1 - P(Z >= 1 - m)
        return 1.0 - discrete_gaussian_sf(1 - m, sigma)
    if sigma > _EXACT_TAIL_SIGMA:
        z = m / sigma
        return float(ndtr(-z) + math.exp(-z * z / 2) / math.sqrt(2 * math.pi) / sigma)
    tail = _tail_table(sigma)
    return float(tail[m]) if m < tail.size else 0.0


def discrete_gaussian_isf(p: float, sigma: float) -> int:
    """The smallest integer m >= 0 with P(Z >= m) <= p (``discrete_gaussian_sf``)."""
    if not 0 < p < 0.5:
        raise ValueError("p must be in (0, 0.5)")
    if sigma <= _EXACT_TAIL_SIGMA:
        tail = _tail_table(sigma)
        below = np.flatnonzero(tail <= p)
        return int(below[0]) if below.size else int(tail.size)
    lo, hi = 0, math.ceil(sigma * (float(-ndtri(p)) + 1.0)) + 1  # the bound is below p at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if discrete_gaussian_sf(mid, sigma) <= p else (mid, hi)
    return hi


@lru_cache(maxsize=16)
def _tail_table(sigma: float) -> np.ndarray:
    """P(Z >= m) for m = 0, 1, ... while it stays above 1e-300 (exact sums of the pmf)."""
    reach = int(math.ceil(40.0 * sigma)) + 40  # e^{-800}: nothing beyond matters in float64
    x = np.arange(reach + 1, dtype=float)
    w = np.exp(-(x**2) / (2.0 * sigma**2))
    total = w[0] + 2.0 * w[1:].sum()
    tail = np.cumsum(w[::-1])[::-1] / total
    return tail[tail > 1e-300]


# -- OpenDP ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1024)
def _opendp_gaussian(sigma: float):
    from opendp.domains import atom_domain, vector_domain
    from opendp.measurements import make_gaussian
    from opendp.metrics import l2_distance

    _enable_contrib()
    return make_gaussian(vector_domain(atom_domain(T="i64")), l2_distance(T="i64"), sigma)


@lru_cache(maxsize=1024)
def _opendp_noisy_max(scale: float):
    from opendp.domains import atom_domain, vector_domain
    from opendp.measurements import make_noisy_max
    from opendp.measures import zero_concentrated_divergence
    from opendp.metrics import linf_distance

    _enable_contrib()
    return make_noisy_max(
        vector_domain(atom_domain(T=float, nan=False)), linf_distance(T=float), zero_concentrated_divergence(), scale
    )


def _enable_contrib() -> None:
    from opendp.mod import enable_features

    enable_features("contrib")


def _as_integers(counts: np.ndarray) -> np.ndarray:
    arr = np.asarray(counts)
    ints = np.rint(arr).astype(np.int64)
    if arr.size and not np.array_equal(ints, arr):
        raise ValueError("the discrete Gaussian adds noise to integer counts only")
    return ints


def _finite(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        raise ValueError("noisy max needs at least one score, all finite")
    return scores
