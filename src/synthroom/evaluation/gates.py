"""Release gates (an attack's score must not exceed a threshold) and, when one fails, advice on
what to change, naming the gate, its threshold and the schema's columns by kind (never a value,
a count or a share of the real rows)."""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError
from ..schema import Schema, check_max_mia_score
from .result import Attack, GateResult
from .sidecar import ATTACK_VERSIONS as ANONYMETER_VERSIONS

DEFAULT_GATE = "DCR-v1"
MEMBERSHIP_VERSIONS = ("DCR-v1", "DENSITY-RATIO-v1")
KNOWN_VERSIONS = MEMBERSHIP_VERSIONS + ANONYMETER_VERSIONS

MEANING = {
    "DCR-v1": "training rows lie closer to the synthetic rows than unseen real rows do",
    "DENSITY-RATIO-v1": "the synthetic rows crowd the training rows more than real data does",
}


def resolve_gates(gates: dict[str, float] | None, max_mia_score: float | None) -> dict[str, float]:
    """attack_version -> threshold, checked; ``max_mia_score`` gates DCR-v1 (the stricter of the
    two wins when both name it)."""
    out: dict[str, float] = {}
    for name, threshold in (gates or {}).items():
        if name not in KNOWN_VERSIONS:
            raise InputError(f"gate on {name!r}: no attack has that version (known: {', '.join(KNOWN_VERSIONS)})")
        out[name] = _check_threshold(name, threshold)
    if max_mia_score is not None:
        value = check_max_mia_score(max_mia_score)
        out[DEFAULT_GATE] = min(out.get(DEFAULT_GATE, value), value)
    return out


def _check_threshold(name: str, threshold: Any) -> float:
    if name in MEMBERSHIP_VERSIONS:
        return check_max_mia_score(threshold)
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"gate on {name!r}: threshold {threshold!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise InputError(f"gate on {name!r}: threshold {threshold!r} is outside the allowed range [0, 1]")
    return value


def require_computable(requested: dict[str, float], anonymeter_missing: str | None) -> None:
    """Refuse before any work a gate on an anonymeter risk that cannot be computed."""
    if anonymeter_missing is None:
        return
    for name in requested:
        if name in ANONYMETER_VERSIONS:
            raise InputError(f"gate on {name!r}: that attack cannot be computed ({anonymeter_missing})")


def apply_gates(requested: dict[str, float], attacks: list[Attack], notes: list[str]) -> list[GateResult]:
    scores = {a.attack_version: a.score for a in attacks}
    results = []
    for name, threshold in requested.items():
        if name not in scores:
            reasons = [n for n in notes if name in n or "anonymeter" in n]
            why = f" ({reasons[0]})" if reasons else ""
            raise InputError(f"gate on {name!r}: that attack was not computed{why}")
        value = scores[name]
        results.append(GateResult(name=name, threshold=threshold, value=value, passed=bool(value <= threshold)))
    return results


def advise(failed: list[GateResult], schema: Schema, privacy: dict | None) -> list[str]:
    """Concrete things to try, most effective first; empty when no gate failed.

    The advice reads nothing but the failed gates (names and thresholds), the schema and the
    ledger's epsilon: it names columns and kinds of problem, never a value, a count or a share of
    the real rows, so it tells a reader nothing beyond the refusal itself (it goes into the
    clean room's job summary, which every member reads)."""
    if not failed:
        return []
    advice = [f"{g.name} is over its threshold of {g.threshold:g}: {_meaning(g.name)}." for g in failed]
    advice.append(_epsilon_advice(privacy))
    advice += _column_advice(schema)
    return advice


def _meaning(name: str) -> str:
    return MEANING.get(name, "anonymeter's attack succeeds on training rows more often than on unseen rows")


def _epsilon_advice(privacy: dict | None) -> str:
    epsilon = _ledger_epsilon(privacy)
    if epsilon is None:
        return (
            "Lower epsilon: synthesize with a smaller privacy budget (e.g. half the current one); "
            "if this table was not made with differential privacy, make it with `synthroom synthesize --epsilon`."
        )
    return (
        f"Lower epsilon: this data was synthesized with epsilon {epsilon:g}; try {epsilon / 2:g}, which "
        "bounds every row's influence on the output twice as tightly."
    )


def _ledger_epsilon(privacy: dict | None) -> float | None:
    if not privacy:
        return None
    try:
        value = float(privacy["epsilon"])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _column_advice(schema: Schema) -> list[str]:
    """What to change in the schema's feature columns, by kind (the schema alone decides)."""
    features = [c for c in schema.columns if c.name != schema.target]
    numeric = [c.name for c in features if c.kind != "categorical"]
    categorical = [c.name for c in features if c.kind == "categorical"]
    out = []
    if numeric:
        out.append(
            "Coarsen fine-grained numerical columns before synthesis (round them or cut them into fewer bins): "
            f"{', '.join(numeric)}."
        )
    if categorical:
        out.append(
            "Drop or generalise rare values of categorical columns, merging them into broader groups: "
            f"{', '.join(categorical)}."
        )
    out.append(
        f"Use fewer columns: drop those the task does not need; a row that is unique on all {len(features)} "
        "feature columns is the kind attacks expose."
    )
    return out
