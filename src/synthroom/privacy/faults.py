"""Deliberately broken privacy mechanisms, for the privacy audit's own checks only.

``bench/audit.py`` proves that its distinguishing game has teeth by running it on variants of
the synthesizer with one privacy safeguard removed; it must then report an empirical epsilon
above the claimed one. ``bench/audit_mechanisms.py`` does the same per mechanism (a measured
mu or delta above the charged one). This module (for the audits only) is the only switch for
those variants:

    from synthroom.privacy import faults
    with faults.injected("no_measurement_noise"):
        Synthesizer(...).fit(table)   # NOT private

Nothing user-facing reaches it: no CLI option, no ``Synthesizer`` or ``Settings`` parameter,
no environment variable, no configuration file. It is off unless code in the same process
enters :func:`injected`. A run that hits a fault gets a zero-cost entry in its privacy ledger
(``privacy_report()``) saying it is broken, and :meth:`Synthesizer.save` refuses such a model.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from .accountant import Charge, ZCDPAccountant

FAULTS: dict[str, str] = {
    "no_measurement_noise": "Gaussian measurements (numeric histograms and marginals) released without their noise",
    "noiseless_category_selection": "category partition selection without its noise (the threshold is kept)",
    "numeric_bounds_from_data": "numeric columns modelled over every grid cell the data occupies, read exactly",
    "sensitivity_under_declared": "every sensitivity declared sqrt(2) below the truth (noise too small for its charge)",
    "group_scaling_linear": "group privacy scaled by k instead of k^2 (a person's sensitivity sqrt(k) rows, not k)",
    "threshold_for_one_row": "category-selection threshold set for one row whatever the cap of rows per person",
}
MECHANISM = "fault-injected"

_active: set[str] = set()


@contextlib.contextmanager
def injected(name: str) -> Iterator[None]:
    """Turn one fault on for the code run inside the ``with`` block (this process only)."""
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
    was_on = name in _active
    _active.add(name)
    try:
        yield
    finally:
        if not was_on:
            _active.discard(name)


def active(name: str, accountant: ZCDPAccountant) -> bool:
    """Whether fault ``name`` is on; if it is, mark ``accountant``'s ledger as broken."""
    if name not in _active:
        return False
    step = f"FAULT INJECTED: {name} ({FAULTS[name]}); test only, this run is NOT private"
    if all(c.step != step for c in accountant.charges):
        accountant.charges.append(Charge(step, MECHANISM, 0.0, 0.0, 0.0))
    return True


def broken_by(report: dict) -> list[str]:
    """The fault entries of a privacy report (empty for every normal run)."""
    return [c["step"] for c in report.get("charges", []) if c.get("mechanism") == MECHANISM]


def refuse_to_save(report: dict) -> None:
    """Raise if the run behind ``report`` had a fault injected: such a model must not leave."""
    faults = broken_by(report)
    if faults:
        raise RuntimeError(f"refusing to save a model fitted with a deliberately broken mechanism: {faults[0]}")
