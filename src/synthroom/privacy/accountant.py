"""One zero-concentrated-DP accountant for a whole synthesis run.

What is private: the unit is one person holding up to ``unit_cap`` rows (add/remove
neighbours; one input row when ``unit_cap`` is 1). Mechanisms read ``unit_cap`` and charge the
sensitivity per person (see ``mechanisms.person_sensitivity``), so group privacy is in every
charge, not a rescaling of the budget. The user gives a target
``(epsilon, delta)``. We split ``delta`` in two: ``delta_threshold`` pays for the thresholding
mechanisms that pick which categories exist (they are (delta, rho)-approximate zCDP), the rest
pays for the conversion of the total zCDP cost ``rho`` to ``(epsilon, delta)``. The budget
``rho`` is the largest value whose conversion stays within ``epsilon``.

The zCDP -> (epsilon, delta) conversion is the tight one of Canonne, Kamath and Steinke (2020),
computed by OpenDP's vetted privacy-profile code (``make_zCDP_to_approxDP``); we only invert it
by bisection. zCDP composes by addition, so the run's cost is the plain sum of its charges, and
each charge records the sensitivity and noise scale that produced it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

# The default total delta of a run (the library, the CLI, the room's templates, the API, the web
# console): fixed, so it reveals nothing about the data, and below 1/rows for any table under a
# billion rows.
DEFAULT_DELTA = 1e-9
# Relative slack for float sums: charges that add up to the budget within this are "equal".
_REL_TOL = 1e-9


class BudgetExceeded(RuntimeError):
    """A mechanism asked for more privacy budget than is left."""


@dataclass(frozen=True)
class Charge:
    """The cost of one mechanism run.

    ``sensitivity`` is the L2 sensitivity (Gaussian) or the score sensitivity (exponential
    mechanism) under add/remove of one privacy unit (one person's rows, up to the cap);
    ``noise`` is the Gaussian standard deviation or the exponential mechanism's epsilon; ``rho``
    the zCDP cost; ``delta`` the additive delta of a thresholding step (0 for pure zCDP ones).
    """

    step: str
    mechanism: str
    sensitivity: float
    noise: float
    rho: float
    delta: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=4096)
def epsilon_from_rho(rho: float, delta: float) -> float:
    """Smallest epsilon such that rho-zCDP implies (epsilon, delta)-DP (tight conversion)."""
    if rho <= 0:
        return 0.0
    # The submodules, not ``opendp.prelude``: the prelude also imports optional extras that
    # cost ~80 MiB of memory for nothing we use.
    from opendp.combinators import make_zCDP_to_approxDP
    from opendp.domains import atom_domain
    from opendp.measurements import make_gaussian
    from opendp.metrics import absolute_distance
    from opendp.mod import enable_features

    enable_features("contrib")
    # A Gaussian mechanism with scale sigma and sensitivity 1 is exactly 1/(2 sigma^2)-zCDP.
    sigma = 1.0 / math.sqrt(2.0 * rho)
    gauss = make_gaussian(atom_domain(T=float, nan=False), absolute_distance(T=float), sigma)
    profile = make_zCDP_to_approxDP(gauss).map(1.0)
    return float(profile.epsilon(delta))


def rho_from_epsilon(epsilon: float, delta: float) -> float:
    """Largest rho whose tight conversion gives at most ``epsilon`` at ``delta`` (bisection)."""
    if not (epsilon > 0 and 0 < delta < 1):
        raise ValueError("epsilon must be > 0 and delta in (0, 1)")
    lo, hi = 0.0, epsilon  # rho <= epsilon always suffices as an upper bracket (eps >= rho)
    for _ in range(100):
        mid = (lo + hi) / 2
        if epsilon_from_rho(mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return lo


def check_unit_cap(unit_cap: object) -> int:
    """``unit_cap`` as an int >= 1, or a ValueError saying what is wrong."""
    if isinstance(unit_cap, bool) or not isinstance(unit_cap, (int, np.integer)) or unit_cap < 1:
        raise ValueError(f"unit_cap {unit_cap!r} must be a whole number of rows per person, at least 1")
    return int(unit_cap)


class ZCDPAccountant:
    """Holds the budget of one run and the ledger of every charge against it."""

    def __init__(
        self,
        epsilon: float,
        delta: float,
        delta_threshold: float = 0.0,
        *,
        unit_cap: int = 1,
        randomness: str = "",
        reproducible: bool = False,
    ):
        if not 0 <= delta_threshold < delta:
            raise ValueError("delta_threshold must be in [0, delta)")
        self.unit_cap = check_unit_cap(unit_cap)
        self.randomness = randomness  # where the noise came from (Noise.label), for the ledger
        self.reproducible = reproducible  # seeded noise: the run is not for release
        self.epsilon = float(epsilon)
        self.delta = float(delta)
        self.delta_threshold = float(delta_threshold)
        self.rho_budget = rho_from_epsilon(self.epsilon, self.delta - self.delta_threshold)
        self.charges: list[Charge] = []

    # -- state -------------------------------------------------------------------------------
    @property
    def rho_spent(self) -> float:
        return math.fsum(c.rho for c in self.charges)

    @property
    def delta_threshold_spent(self) -> float:
        return math.fsum(c.delta for c in self.charges)

    @property
    def rho_remaining(self) -> float:
        return max(0.0, self.rho_budget - self.rho_spent)

    def epsilon_spent(self) -> float:
        """The (epsilon, delta)-DP guarantee of what has been charged so far, at ``delta``."""
        return epsilon_from_rho(self.rho_spent, self.delta - self.delta_threshold)

    def delta_spent(self) -> float:
        return self.delta - self.delta_threshold + self.delta_threshold_spent

    # -- charging ----------------------------------------------------------------------------
    def _charge(self, charge: Charge) -> Charge:
        if charge.rho < 0 or charge.delta < 0:
            raise ValueError("a charge cannot be negative")
        if self.rho_spent + charge.rho > self.rho_budget * (1 + _REL_TOL):
            raise BudgetExceeded(f"{charge.step}: needs rho={charge.rho:.6g} but only {self.rho_remaining:.6g} is left")
        if self.delta_threshold_spent + charge.delta > self.delta_threshold * (1 + _REL_TOL):
            raise BudgetExceeded(f"{charge.step}: needs delta={charge.delta:.3g} beyond the reserved share")
        self.charges.append(charge)
        return charge

    def charge_gaussian(self, step: str, sensitivity: float, sigma: float, delta: float = 0.0) -> Charge:
        """Gaussian noise of std ``sigma`` on a query of L2 sensitivity ``sensitivity``.

        Cost: rho = sensitivity^2 / (2 sigma^2) (Bun and Steinke 2016, Prop. 1.6).
        A nonzero ``delta`` marks a thresholded release (approximate zCDP).
        """
        rho = sensitivity**2 / (2.0 * sigma**2)
        mech = "gaussian-threshold" if delta else "gaussian"
        return self._charge(Charge(step, mech, float(sensitivity), float(sigma), rho, float(delta)))

    def charge_exponential(self, step: str, sensitivity: float, epsilon: float) -> Charge:
        """Exponential mechanism, scores of sensitivity ``sensitivity``, run at ``epsilon``.

        Cost: rho = epsilon^2 / 8, by its bounded-range property (Cesar and Rogers 2021).
        """
        return self._charge(Charge(step, "exponential", float(sensitivity), float(epsilon), epsilon**2 / 8.0))

    def ledger(self) -> list[dict]:
        return [c.to_dict() for c in self.charges]

    def summary(self) -> dict:
        k = self.unit_cap
        return {
            "unit": "one input row (add/remove)" if k == 1 else f"one person with up to {k} rows (add/remove)",
            "unit_cap": k,
            "randomness": self.randomness,
            "reproducible": self.reproducible,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "delta_for_thresholds": self.delta_threshold,
            "rho_budget": self.rho_budget,
            "rho_spent": self.rho_spent,
            "epsilon_spent": self.epsilon_spent(),
            "delta_spent": self.delta_spent(),
            "charges": self.ledger(),
        }
