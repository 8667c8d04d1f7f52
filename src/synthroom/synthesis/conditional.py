"""Conditional sampling: rows with given values (``where``), or equal shares of a column's values
(``balance``), drawn exactly from the fitted model, never by rejection.

A condition becomes weight tables on the model's codes (:func:`.model.conditioned`):

* a categorical column and a value (or a list of values): weight 1 on their codes, 0 elsewhere;
  a value the model never learned (too rare to pass the DP category selection, so folded into
  ``other``, or absent) is an error that says so;
* a numerical or datetime column and a range ``(lo, hi)`` (either end ``None``: open; a single
  number: that value): each bin weighs the share of its within-bin distribution that lies in
  the range, and values are then drawn inside the bin restricted to the range. So the rows
  follow the model conditioned on the range exactly, at the model's within-bin resolution.

Message passing on the weighted model then samples every column given the condition: a value
held by 1% of the model's rows gets all ``n`` rows at the cost of one ordinary draw. All of it
is post-processing of the DP model: no privacy cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import InputError, quoted
from ..rules import value_text
from .discretize import CategoricalColumn, NumericColumn

Factor = tuple[tuple[str, ...], np.ndarray]
MIN_SHARE = 1e-12  # a condition the model gives less probability than this is refused


@dataclass
class Condition:
    """Weight tables on the model's codes, and numeric columns restricted to a range."""

    factors: list[Factor] = field(default_factory=list)
    decoders: dict[str, NumericColumn] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)  # "plan = 'basic'", for messages

    def __bool__(self) -> bool:
        return bool(self.factors)

    def plus(self, other: "Condition") -> "Condition":
        return Condition(self.factors + other.factors, {**self.decoders, **other.decoders}, self.text + other.text)


def parse_where(
    where: Mapping[str, Any] | None, columns: Mapping[str, CategoricalColumn | NumericColumn], computed: set[str]
) -> Condition:
    """``where`` (column -> value, list of values, or ``(lo, hi)`` range) as a :class:`Condition`."""
    if where is None:
        return Condition()
    if not isinstance(where, Mapping):
        raise InputError("where must map column names to values")
    out = Condition()
    for name, value in where.items():
        if name in computed:
            raise InputError(
                f"column {name!r} is computed by a rule, not modelled: condition on the columns its formula uses"
            )
        col = columns.get(name)
        if col is None:
            raise InputError(f"where: column {name!r} is not in the model's schema")
        part = _categorical(col, value) if isinstance(col, CategoricalColumn) else _numeric(col, value)
        out = out.plus(part)
    return out


def _categorical(col: CategoricalColumn, value: Any) -> Condition:
    values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    if not values:
        raise InputError(f"where: column {col.name!r} is given no value")
    labels = col.labels()
    weights = np.zeros(col.size)
    for v in values:
        text = None if v is None or (isinstance(v, float) and math.isnan(v)) else value_text(v)
        if text not in labels:
            raise InputError(_unknown_value(col, v))
        weights[labels.index(text)] = 1.0
    shown = ", ".join(repr(v) for v in values)
    return Condition(
        [((col.name,), weights)], {}, [f"{col.name} in ({shown})" if len(values) > 1 else f"{col.name} = {shown}"]
    )


def _unknown_value(col: CategoricalColumn, value: Any) -> str:
    if value is None:
        return f"where: column {col.name!r} has no missing values in the model"
    folded = (
        f"; a value too rare to pass the DP category selection is folded into {col.other_label!r}"
        if col.coding.other_code is not None
        else ""
    )
    return (
        f"where: the model never learned the value {value!r} of column {col.name!r} (it knows "
        f"{quoted(col.coding.values)}{folded})"
    )


def _numeric(col: NumericColumn, value: Any) -> Condition:
    lo, hi = _range(col, value)
    if col.coding.clip is not None:
        lo, hi = max(lo, col.coding.clip[0]), min(hi, col.coding.clip[1])
    weights = np.zeros(col.size)
    los, his, ws = [], [], []
    for b in range(len(col.bin_weights)):
        piece_lo, piece_hi, share = _restrict(col, b, lo, hi)
        weights[b] = share.sum()
        keep = share > 0
        los.append(piece_lo[keep] if keep.any() else col.bin_lo[b][:1])
        his.append(piece_hi[keep] if keep.any() else col.bin_hi[b][:1])
        ws.append(share[keep] / share.sum() if keep.any() else np.ones(1))
    shown = f"{col.name} in [{_show(col, lo)}, {_show(col, hi)}]"
    if not weights.any():
        raise InputError(f"where: the model gives no probability to {shown}")
    return Condition(
        [((col.name,), weights)], {col.name: replace(col, bin_lo=los, bin_hi=his, bin_weights=ws)}, [shown]
    )


def _range(col: NumericColumn, value: Any) -> tuple[float, float]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        lo, hi = value
    elif isinstance(value, (list, tuple)):
        raise InputError(f"where: column {col.name!r} is {col.kind}: give a value or a (low, high) range")
    else:
        lo = hi = value
    if lo is None and hi is None:
        raise InputError(f"where: column {col.name!r}: a range needs at least one end")
    lo = -np.inf if lo is None else _number(col, lo)
    hi = np.inf if hi is None else _number(col, hi)
    if lo > hi:
        raise InputError(f"where: column {col.name!r}: the range starts after it ends")
    return lo, hi


def _number(col: NumericColumn, value: Any) -> float:
    if col.kind == "datetime" and not isinstance(value, (int, float)):
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            stamp = pd.NaT
        if pd.isna(stamp):
            raise InputError(f"where: column {col.name!r} is datetime and {value!r} is not a date")
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        return float((stamp - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"where: column {col.name!r} is {col.kind} and {value!r} is not a number") from None
    if math.isnan(number):
        raise InputError(f"where: column {col.name!r}: a range of numbers, not NaN")
    return number


def _show(col: NumericColumn, x: float) -> str:
    if col.kind == "datetime" and math.isfinite(x):
        return str(pd.Timestamp(x, unit="s"))
    return f"{x:g}"


def _restrict(col: NumericColumn, b: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin ``b``'s pieces cut to ``[lo, hi]``, and each cut piece's share of the bin's mass."""
    p_lo, p_hi, w = col.bin_lo[b], col.bin_hi[b], col.bin_weights[b]
    if col.integer:  # a piece holds the integers ceil(lo) .. ceil(hi) - 1 (see NumericColumn.decode)
        first, last = np.ceil(p_lo), np.ceil(p_hi) - 1.0
        point = last < first  # no integer inside: the decoder rounds the midpoint
        mid = np.round((p_lo + p_hi) / 2)
        new_first, new_last = (
            np.maximum(first, math.ceil(lo) if lo > -np.inf else first),
            np.minimum(last, math.floor(hi) if hi < np.inf else last),
        )
        frac = np.where(
            point,
            ((mid >= lo) & (mid <= hi)).astype(float),
            np.maximum(new_last - new_first + 1, 0) / np.maximum(last - first + 1, 1),
        )
        return np.where(point, p_lo, new_first), np.where(point, p_hi, new_last + 1.0), w * frac
    new_lo, new_hi = np.maximum(p_lo, lo), np.minimum(p_hi, hi)
    width = p_hi - p_lo
    inside_point = (width == 0) & (p_lo >= lo) & (p_lo <= hi)
    frac = np.where(width > 0, np.maximum(new_hi - new_lo, 0) / np.where(width > 0, width, 1), inside_point * 1.0)
    return np.where(width > 0, new_lo, p_lo), np.where(width > 0, new_hi, p_hi), w * frac


def balance_plan(
    model,
    columns: Mapping[str, CategoricalColumn | NumericColumn],
    name: str,
    condition: Condition,
    rows: int,
    computed: set[str],
) -> list[tuple[Condition, int]]:
    """Equal shares of ``rows`` for each value of the categorical column ``name``: the values
    ``condition`` lists for it, else every value the model can produce (probability at least
    :data:`MIN_SHARE` given the condition). The first ``rows % k`` values get one row more."""
    from .model import weighted_share

    col = columns.get(name)
    if col is None:
        raise InputError(
            f"balance: column {name!r} is "
            + ("computed by a rule, not modelled" if name in computed else "not in the model's schema")
        )
    if not isinstance(col, CategoricalColumn):
        raise InputError(f"balance: column {name!r} is {col.kind}; balance a categorical column")
    listed = [w for attrs, w in condition.factors if attrs == (name,)]
    allowed = np.flatnonzero(np.prod(listed, axis=0) > 0) if listed else np.arange(col.size)
    labels = col.labels()
    codes = []
    for candidate in allowed:
        one = np.zeros(col.size)
        one[candidate] = 1.0
        if weighted_share(model, condition.factors + [((name,), one)]) >= MIN_SHARE:
            codes.append(int(candidate))
    if not codes:
        raise InputError(f"balance: the model gives no value of {name!r} any probability under the condition")
    plan = []
    for i, code in enumerate(codes):
        one = np.zeros(col.size)
        one[code] = 1.0
        share = rows // len(codes) + int(i < rows % len(codes))
        plan.append((condition.plus(Condition([((name,), one)], {}, [f"{name} = {labels[code]!r}"])), share))
    return [(c, k) for c, k in plan if k > 0]


def combination_factors(rules, columns: Mapping[str, CategoricalColumn | NumericColumn]) -> list[Factor]:
    """0/1 tables for the schema's allowed-combination rules on the model's codes: an allowed
    tuple of learned values, or a tuple with a missing value (which satisfies the rule), weighs 1."""
    from ..rules import Combinations

    out = []
    for rule in rules:
        if not isinstance(rule, Combinations):
            continue
        cols = [columns[c] for c in rule.columns]
        assert all(isinstance(c, CategoricalColumn) for c in cols)  # the schema's check: categorical only
        weights = np.zeros([c.size for c in cols])
        index = [
            {label: code for code, label in enumerate(c.labels()) if label is not None}  # type: ignore[union-attr]
            for c in cols
        ]
        for combo in rule.allowed:
            codes = [ix.get(v) for ix, v in zip(index, combo)]
            if None not in codes:
                weights[tuple(codes)] = 1.0
        for axis, c in enumerate(cols):
            missing = c.coding.missing_code  # type: ignore[union-attr]
            if missing is not None:
                weights[(*(slice(None),) * axis, missing)] = 1.0
        out.append((rule.columns, weights))
    return out
