"""The schema's declared rules on sampled rows: post-processing of the DP model, no privacy cost.

Rules use only the schema (public) and the synthetic rows, never the real rows. How each kind is
met, in order of how little it moves the model's distribution:

* **Allowed combinations** are conditioned into the model before sampling (a 0/1 table on the
  columns' codes, :func:`.conditional.combination_factors`), so every row is drawn from the model
  given that its tuple is allowed: nothing is rejected or moved.
* **Steps** (``step``) round each value to the nearest multiple (inside the range when the value
  was inside it): a deterministic projection, like the output's integer rounding.
* **Computed columns** are not modelled; they are computed from the row's other values.
* **Inequalities and ranges** are met by redrawing the rows that break them from the same
  (conditioned) model until they pass: the kept rows are then draws from the model conditioned
  on the rules, the distribution closest to the model (in KL divergence) among those that meet
  them. Clipping (a point mass at the bound) or swapping would move values the model put
  elsewhere. The loop stops after :data:`MAX_ROUNDS` or :data:`MAX_DRAWN` times the rows asked
  for; rows still failing then (only when the
  model almost never meets a rule) are replaced by copies of rows that pass, and
  :attr:`RuleReport.copied` says how many. If no drawn row passes, it is an error naming the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import InputError
from ..rules import Computed, Range, Rule, value_text, violations
from ..schema import Schema

MAX_ROUNDS = 30
MIN_RATE = 0.02  # the smallest pass rate the redraw sizes assume
MAX_DRAW = 20  # one redraw draws at most this many times the rows asked for
MAX_DRAWN = 100  # nor all of them together


@dataclass
class RuleReport:
    """What enforcing did on one sample: each rule's violation rate in the first draw (the model's
    own rate), the rows drawn in all, and how many rows are copies of passing rows."""

    before: dict[str, float] = field(default_factory=dict)
    drawn: int = 0
    copied: int = 0


def computed_columns(schema: Schema) -> set[str]:
    """Columns a rule computes: not modelled."""
    return {r.column for r in schema.rules if isinstance(r, Computed)}


def modelled_schema(schema: Schema) -> Schema:
    """The columns the model learns: all but the computed ones."""
    computed = computed_columns(schema)
    return schema.with_columns([c for c in schema.columns if c.name not in computed]) if computed else schema


def normalised(df: pd.DataFrame, schema: Schema, names: set[str]) -> dict[str, np.ndarray]:
    """Output columns as the rules compare them: text, or floats (datetime: epoch seconds)."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        spec, s = schema[name], df[name]
        if spec.kind == "categorical":
            values = s.to_numpy(dtype=object, na_value=None)
            mapping = {v: None if v is None or v is pd.NA or v != v else value_text(v) for v in pd.unique(values)}
            out[name] = np.array([mapping[v] for v in values], dtype=object)
        elif spec.kind == "numerical" or pd.api.types.is_numeric_dtype(s):
            out[name] = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        else:
            stamps = pd.to_datetime(s, utc=True, errors="coerce", format=spec.format)
            out[name] = ((stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(
                dtype=float, na_value=np.nan
            )
    return out


def finish(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Sampled rows with the deterministic rules applied (steps, then computed columns), in the
    schema's column order."""
    for rule in schema.rules:
        if isinstance(rule, Range) and rule.step is not None:
            df[rule.column] = _numbers(
                rule.round_to_step(normalised(df, schema, {rule.column})[rule.column]),
                schema[rule.column].integer,
                df[rule.column],
            )
    for rule in schema.rules:
        if isinstance(rule, Computed):
            values = rule.compute(normalised(df, schema, set(rule.inputs)))
            df[rule.column] = _numbers(values, schema[rule.column].integer, None)
    return df[[n for n in schema.names if n in df]]


def _numbers(values: np.ndarray, integer: bool | None, like: pd.Series | None) -> pd.Series:
    """Whole numbers as Int64 when the column is integer (declared, or as the output was typed)
    and every value is whole; else floats."""
    whole = bool(np.all(np.isnan(values) | (values == np.round(values))))
    as_int = (
        integer
        if integer is not None
        else (like is not None and str(like.dtype) == "Int64") or (like is None and whole)
    )
    if as_int and whole:
        return pd.Series(values).round().astype("Int64")
    return pd.Series(values, dtype=float)


def failing(df: pd.DataFrame, schema: Schema, rules: list[Rule]) -> np.ndarray:
    """Which rows break at least one of ``rules``."""
    if not rules:
        return np.zeros(len(df), dtype=bool)
    frame = normalised(df, schema, {c for r in rules for c in r.columns})
    return np.logical_or.reduce([violations(r, frame) for r in rules])


def enforce(
    schema: Schema,
    draw: Callable[[int], pd.DataFrame],
    rows: int,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, RuleReport]:
    """``rows`` rows from ``draw`` (finished sampled rows) that meet every rule of ``schema``."""
    checked = [r for r in schema.rules if not isinstance(r, Computed)]
    df = draw(rows)
    frame = normalised(df, schema, {c for r in checked for c in r.columns})
    report = RuleReport({r.label: float(violations(r, frame).mean()) for r in checked}, rows)
    bad = failing(df, schema, checked)
    kept, passed = [df[~bad]], int((~bad).sum())
    for _ in range(MAX_ROUNDS):
        need = rows - sum(len(k) for k in kept)
        if need == 0:
            break
        rate = max(passed / report.drawn, MIN_RATE)
        size = min(math.ceil(need / rate * 1.1) + 10, MAX_DRAW * rows, MAX_DRAWN * rows - report.drawn)
        if size <= 0:
            break
        fresh = draw(size)
        ok = ~failing(fresh, schema, checked)
        report.drawn += len(fresh)
        passed += int(ok.sum())
        kept.append(fresh[ok].head(need))
    out = pd.concat(kept, ignore_index=True)
    missing = rows - len(out)
    if missing:
        if len(out) == 0:
            worst = max(report.before, key=lambda label: report.before[label])
            raise InputError(
                f"rule {worst!r}: none of the {report.drawn:,} rows drawn from the model meets the "
                "rules (with the conditions asked for); the model learned data that contradicts it"
            )
        copies = out.iloc[rng.integers(0, len(out), size=missing)]
        out = pd.concat([out, copies], ignore_index=True)
        report.copied = missing
    return out, report
