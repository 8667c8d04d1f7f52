"""Release gates (an attack's score must not exceed a threshold) and, when one fails, advice on
what to change, naming the score, the threshold and the columns that make rows identifiable."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..schema import check_max_mia_score
from .result import Attack, GateResult
from .sidecar import ATTACK_VERSIONS as ANONYMETER_VERSIONS
from .tables import Tables

DEFAULT_GATE = "DCR-v1"
MEMBERSHIP_VERSIONS = ("DCR-v1", "DENSITY-RATIO-v1")
KNOWN_VERSIONS = MEMBERSHIP_VERSIONS + ANONYMETER_VERSIONS
RARE_ROWS = 20  # a categorical value held by fewer training rows than this is "rare"

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


def advise(
    failed: list[GateResult], tables: Tables, copies: dict[str, float], privacy: dict | None
) -> list[str]:
    """Concrete things to try, most effective first; empty when no gate failed."""
    if not failed:
        return []
    advice = [
        f"{g.name} scored {g.value:.3f}, over the threshold {g.threshold:.3f}"
        + (f": {MEANING[g.name]}." if g.name in MEANING else ": anonymeter's attack succeeds on training rows more often than on unseen rows.")
        for g in failed
    ]
    advice.append(_epsilon_advice(privacy))
    advice += _column_advice(tables)
    rate, ceiling = copies.get("exact_copy_rate_train", 0.0), copies.get("exact_copy_rate_ceiling", 0.0)
    if rate > max(2 * ceiling, 0.001):
        advice.append(
            f"{rate:.1%} of the synthetic rows copy a training row exactly, against {ceiling:.1%} of unseen "
            "real rows: the generator reproduces individual records."
        )
    return advice


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
    value = privacy.get("epsilon")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _column_advice(tables: Tables) -> list[str]:
    train = tables.train
    features = [n for n in tables.kinds if n != tables.target]
    out = []
    numeric = sorted(
        ((int(pd.Series(train[n]).nunique()), n) for n in features if tables.kinds[n] != "categorical"), reverse=True
    )[:3]
    numeric = [(count, n) for count, n in numeric if count > 20]
    if numeric:
        listed = ", ".join(f"{n} ({count:,} distinct values)" for count, n in numeric)
        out.append(f"Coarsen fine-grained numerical columns before synthesis (round them or cut them into fewer bins): {listed}.")
    rare = []
    for n in features:
        if tables.kinds[n] != "categorical":
            continue
        counts = pd.Series(train[n]).value_counts()
        few = counts[counts < RARE_ROWS]
        if len(few):
            rare.append(f"{n} ({len(few)} value{'s' if len(few) > 1 else ''}, e.g. {str(few.index[-1])!r})")
    if rare:
        out.append(
            f"Drop or generalise rare values (held by fewer than {RARE_ROWS} training rows), merging them into "
            f"broader groups: {'; '.join(rare[:3])}."
        )
    hashes = pd.util.hash_pandas_object(train[features], index=False).to_numpy()
    _, counts = np.unique(hashes, return_counts=True)
    unique_share = float((counts == 1).sum() / max(len(hashes), 1))
    out.append(
        f"Use fewer columns: drop those the task does not need; with all {len(features)} feature columns, "
        f"{unique_share:.0%} of the training rows are unique, and unique rows are the ones attacks expose."
    )
    return out
