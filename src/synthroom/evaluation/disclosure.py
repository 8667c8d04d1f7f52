"""What a clean-room member may be shown of an evaluation, and how precisely.

Every figure of an evaluation (fidelity, attack scores, the pass/refuse decision) is computed
from the raw training and holdout rows without noise: none of it is differentially private.
What members are shown of it is therefore cut to the minimum: the scores rounded to
:data:`SCORE_DIGITS` decimals (so a figure moves only when the data moves it by a visible
amount, and full-precision scores cannot be compared across neighbouring runs), the gates with
their public thresholds, and the advice (which names the schema's columns, never data; see
:func:`.gates.advise`). No notes, no row counts, no histograms, no copy rates. Who is shown even
this is the clean room's decision (the table owners' rules); docs/evaluation.md says what is
and is not DP.
"""

from __future__ import annotations

import math
from typing import Any

from .result import EvaluationReport, GateResult

SCORE_DIGITS = 2  # decimals of a non-DP score shown to members
NON_DP = (
    f"the scores, the gates and the release decision are computed from the real rows without noise: they are "
    f"not differentially private; scores are rounded to {SCORE_DIGITS} decimals"
)


def rounded(value: float | None) -> float | None:
    """A non-DP score as members see it: rounded to :data:`SCORE_DIGITS` decimals; ``None``
    for a missing or undefined (NaN) score."""
    if value is None or not math.isfinite(float(value)):
        return None
    return round(float(value), SCORE_DIGITS)


def gate_line(gate: GateResult, digits: int = SCORE_DIGITS) -> str:
    """One failed gate in words: ``"DCR-v1 scored 0.97, over the threshold 0.60"`` (or that it
    was not evaluated)."""
    if not math.isfinite(gate.value):
        return f"{gate.name} was not evaluated (threshold {gate.threshold:.{digits}f})"
    return f"{gate.name} scored {gate.value:.{digits}f}, over the threshold {gate.threshold:.{digits}f}"


def member_refusal(report: EvaluationReport) -> list[str]:
    """One line per failed gate, scores rounded as members see them."""
    return [gate_line(g) for g in report.gates if not g.passed]


def member_summary(report: EvaluationReport) -> dict[str, Any]:
    """The evaluation as a member may see it (JSON-ready): the reference product's two scores,
    rounded; released or not; each gate with its threshold and rounded value; the advice."""
    fidelity = report.fidelity.score if report.fidelity is not None else None
    return {
        "fidelityScore": rounded(fidelity),
        "membershipInferenceAttackScores": [
            {"attackVersion": a.attack_version, "score": rounded(a.score)} for a in report.attacks
        ],
        "released": report.passed,
        "gates": [
            {"name": g.name, "threshold": g.threshold, "value": rounded(g.value), "passed": g.passed}
            for g in report.gates
        ],
        "advice": list(report.advice),
        "non_dp": NON_DP,
    }
