"""Declared rules: logical facts every synthetic row must satisfy (the schema's ``rules`` list).

A rule is a *public* fact the data owner declares, like a column's ``min``/``max``: it is part of
the schema, costs no privacy budget, and is enforced on the synthetic rows only, as
post-processing of the DP model (:mod:`synthroom.synthesis.enforce`). Four kinds::

    rules:
      - "signup_date <= last_login"                    # an inequality between two columns
      - {check: "start < end", name: ordered}          # the same, with a name for messages
      - {columns: [state, region], allowed: [[CA, West], [NY, East]]}   # fixed combinations
      - {column: price, min: 0, max: 1000, step: 0.01}                  # a range and rounding
      - {column: total, formula: "price * quantity"}                    # a computed column

* **Inequality** (``<``, ``<=``, ``>``, ``>=``) between two numerical or two datetime columns.
  As in SQL's ``CHECK``, a row with a missing operand satisfies it.
* **Combinations**: the listed categorical columns must hold one of the ``allowed`` tuples
  (values compared as text). A row with a missing value in any of the columns satisfies it.
* **Range and rounding**: ``min``/``max`` (numbers; dates for a datetime column), and for a
  numerical column ``step``: values are whole multiples of it. Missing values satisfy it.
* **Computed column**: a numerical column derived from numerical columns by a formula, parsed
  with sqlglot and evaluated on arrays (never ``eval``): numbers, columns (double-quote names
  with spaces), ``+ - * /``, parentheses, ``ROUND(x, digits)``, ``ABS``, ``LEAST``,
  ``GREATEST``. It is not modelled (no budget is spent on it); it is computed on every sampled
  row. A missing input, or a division by zero, makes it missing.

An invalid rule is an :class:`~synthroom.errors.InputError` that names the rule.
:func:`violations` tells, for rows normalised as the evaluation normalises them (categorical as
text, numbers as floats, datetime as epoch seconds), which rows break each rule.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError

OPERATORS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
_RULE_KEYS = {
    "check": {"check", "name"},
    "allowed": {"columns", "allowed", "name"},
    "formula": {"column", "formula", "name"},
    "range": {"column", "min", "max", "step", "name"},
}


@dataclass(frozen=True)
class Inequality:
    """``left op right + offset`` between two numerical or two datetime columns. ``offset`` is in
    the columns' units: a number, or seconds for datetime columns (declared with a unit:
    ``signup_date + 7 days``)."""

    left: str
    op: str
    right: str
    name: str | None = None
    offset: float = 0.0
    timed: bool = False  # datetime columns: the offset is a duration (seconds)

    @property
    def label(self) -> str:
        return self.name or self.text

    @property
    def text(self) -> str:
        """The check as text (parses back to this rule)."""
        return f"{_quote(self.left)} {self.op} {_quote(self.right)}{_offset_text(self.offset, self.timed)}"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.left, self.right)

    def to_dict(self) -> dict[str, Any]:
        return _named({"check": self.text}, self.name)


@dataclass(frozen=True)
class Combinations:
    """The ``columns`` (categorical) must hold one of the ``allowed`` tuples."""

    columns: tuple[str, ...]
    allowed: tuple[tuple[str, ...], ...]
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or f"({', '.join(self.columns)}) in {len(self.allowed)} allowed combinations"

    def to_dict(self) -> dict[str, Any]:
        return _named({"columns": list(self.columns), "allowed": [list(t) for t in self.allowed]}, self.name)


@dataclass(frozen=True)
class Range:
    """``min <= column <= max``, and values whole multiples of ``step`` (each optional)."""

    column: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    name: str | None = None
    raw: tuple[Any, Any] = (None, None)  # min/max as declared (a date stays a date in to_dict)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        parts = [
            f"{self.column} >= {self.raw[0]}" if self.min is not None else "",
            f"{self.column} <= {self.raw[1]}" if self.max is not None else "",
            f"{self.column} in steps of {self.step:g}" if self.step is not None else "",
        ]
        return ", ".join(p for p in parts if p)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column}
        for key, value in (("min", self.raw[0]), ("max", self.raw[1]), ("step", self.step)):
            if value is not None:
                out[key] = value
        return _named(out, self.name)

    def round_to_step(self, values: np.ndarray) -> np.ndarray:
        """Values rounded to the nearest multiple of ``step``; one inside the range stays inside it
        (a value outside is left to the range check). Missing stays missing."""
        assert self.step is not None
        x = np.asarray(values, dtype=float)
        k = np.round(x / self.step)
        lo, hi = self.step_bounds()
        with np.errstate(invalid="ignore"):
            inside = (x >= (-np.inf if self.min is None else self.min)) & (
                x <= (np.inf if self.max is None else self.max)
            )
        return np.round(np.where(inside, np.clip(k, lo, hi), k) * self.step, 12)

    def step_bounds(self) -> tuple[float, float]:
        """The first and last multiple of ``step`` (as multipliers) inside the range."""
        assert self.step is not None
        lo = -np.inf if self.min is None else math.ceil(self.min / self.step - 1e-9)
        hi = np.inf if self.max is None else math.floor(self.max / self.step + 1e-9)
        return lo, hi


@dataclass(frozen=True)
class Computed:
    """``column`` is derived from other numerical columns by ``formula`` (not modelled)."""

    column: str
    formula: str
    inputs: tuple[str, ...]
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or f"{self.column} = {self.formula}"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column, *self.inputs)

    def to_dict(self) -> dict[str, Any]:
        return _named({"column": self.column, "formula": self.formula}, self.name)

    def compute(self, frame: Mapping[str, np.ndarray]) -> np.ndarray:
        """The formula on float arrays (NaN for missing; a division by zero is missing)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = _evaluate(_parse_formula(self.formula), frame)
        out = np.asarray(out, dtype=float)
        return np.where(np.isfinite(out), out, np.nan)


Rule = Inequality | Combinations | Range | Computed


# A duration's unit in seconds (months and years have no fixed length: refused).
UNIT_SECONDS = {"week": 604800.0, "day": 86400.0, "hour": 3600.0, "minute": 60.0, "second": 1.0}
_DURATION = re.compile(
    r"(interval\s*'?)?(?<![\w.])(\d+(?:\.\d+)?)\s*'?\s*(weeks?|days?|hours?|minutes?|seconds?|months?|years?)\b",
    re.IGNORECASE,
)


def _durations(text: str) -> str:
    """``7 days`` as SQL's ``INTERVAL '7' days`` (an INTERVAL written as such is left alone)."""
    return _DURATION.sub(lambda m: m.group(0) if m.group(1) else f"INTERVAL '{m.group(2)}' {m.group(3)}", text)


def _offset_text(offset: float, timed: bool) -> str:
    """`` + 7 days``, `` - 2.5``, or nothing for no offset."""
    if offset == 0:
        return ""
    sign, size = ("+" if offset > 0 else "-"), abs(offset)
    if not timed:
        return f" {sign} {size:g}"
    unit = next(u for u in ("day", "hour", "minute", "second") if size % UNIT_SECONDS[u] == 0 or u == "second")
    amount = size / UNIT_SECONDS[unit]
    return f" {sign} {amount:g} {unit}{'s' if amount != 1 else ''}"


def _named(out: dict[str, Any], name: str | None) -> dict[str, Any]:
    return {**out, "name": name} if name else out


def _quote(column: str) -> str:
    return column if column.isidentifier() else '"' + column.replace('"', '""') + '"'


# -- parsing ---------------------------------------------------------------------------------
def parse_rules(raw: Any, kinds: Mapping[str, str], target: str) -> tuple[Rule, ...]:
    """The schema's ``rules`` list, validated against the columns' kinds (``kinds``: column ->
    categorical | numerical | datetime). Raises :class:`InputError` naming the rule at fault."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError("the schema's 'rules' must be a list")
    rules = tuple(_parse_one(item, i, kinds, target) for i, item in enumerate(raw))
    computed = [r.column for r in rules if isinstance(r, Computed)]
    for i, rule in enumerate(rules):
        where = _where(i, rule.label)
        if isinstance(rule, Computed):
            if rule.column in [r.column for r in rules[:i] if isinstance(r, Computed)]:
                raise InputError(f"{where}: column {rule.column!r} is computed by more than one rule")
            used = [c for c in rule.inputs if c in computed]
            if used:
                raise InputError(
                    f"{where}: the formula uses the computed column {used[0]!r}; write it in terms of modelled columns"
                )
        elif isinstance(rule, Range) and rule.step is not None and rule.column in computed:
            raise InputError(f"{where}: a computed column cannot have a step; round in the formula (ROUND(x, digits))")
    return rules


def _where(index: int, label: str | None = None) -> str:
    return f"rule #{index + 1}" + (f" ({label})" if label else "")


def _parse_one(item: Any, index: int, kinds: Mapping[str, str], target: str) -> Rule:
    if isinstance(item, str):
        item = {"check": item}
    if not isinstance(item, dict):
        raise InputError(f"{_where(index)}: a rule is a text like 'a <= b' or a mapping, not {item!r}")
    kind = next((k for k in ("check", "allowed", "formula") if k in item), "range" if "column" in item else None)
    if kind is None:
        raise InputError(
            f"{_where(index)}: a rule needs 'check', 'allowed' (with 'columns'), 'formula' "
            "(with 'column') or 'column' with min/max/step"
        )
    unknown = sorted(set(item) - _RULE_KEYS[kind])
    if unknown:
        raise InputError(
            f"{_where(index)}: unknown key {unknown[0]!r} (a {kind} rule takes {', '.join(sorted(_RULE_KEYS[kind]))})"
        )
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise InputError(f"{_where(index)}: 'name' must be a non-empty text")
    parsers: dict[str, Callable[..., Rule]] = {
        "check": _parse_inequality,
        "allowed": _parse_combinations,
        "formula": _parse_computed,
        "range": _parse_range,
    }
    parse = parsers[kind]
    return parse(item, index, kinds, target, name)


def _column(name: Any, where: str, kinds: Mapping[str, str], allowed: Sequence[str], what: str) -> str:
    if not isinstance(name, str) or name not in kinds:
        raise InputError(f"{where}: column {name!r} is not in the schema")
    if kinds[name] not in allowed:
        raise InputError(f"{where}: column {name!r} is {kinds[name]}; {what}")
    return name


def _parse_inequality(item: dict, index: int, kinds: Mapping[str, str], target: str, name: str | None) -> Inequality:
    from sqlglot import exp

    text = item["check"]
    where = _where(index, name or (text if isinstance(text, str) else None))
    ops = {exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
    tree = _sql_expression(_durations(text) if isinstance(text, str) else text, where)
    if isinstance(tree, exp.EQ):  # 'total = price * quantity': meant as a computed column
        raise InputError(
            f"{where}: '=' is not a check; a column computed from others is declared as "
            f'{{column: {tree.this.sql()}, formula: "{tree.expression.sql()}"}}'
        )
    op = ops.get(type(tree))
    sides = [_side(tree.this, where), _side(tree.expression, where)] if op is not None else [None, None]
    if op is None or None in sides:
        raise InputError(
            f"{where}: a check compares two columns with <, <=, > or >=, either side optionally plus or minus "
            "a constant (e.g. 'start <= end', 'a <= b + 10', 'last_login >= signup_date + 7 days'); for a "
            "bound on one column use {column, min, max}"
        )
    (left, left_off, left_timed), (right, right_off, right_timed) = sides  # type: ignore[misc]
    what = "an inequality compares numerical or datetime columns"
    _column(left, where, kinds, ("numerical", "datetime"), what)
    _column(right, where, kinds, ("numerical", "datetime"), what)
    if kinds[left] != kinds[right]:
        raise InputError(f"{where}: cannot compare {left!r} ({kinds[left]}) with {right!r} ({kinds[right]})")
    if left == right:
        raise InputError(f"{where}: compares column {left!r} with itself")
    timed = kinds[left] == "datetime"
    for off, has_unit in ((left_off, left_timed), (right_off, right_timed)):
        if off and has_unit != timed:
            raise InputError(
                f"{where}: "
                + (
                    "an offset to a datetime column needs a unit (e.g. '+ 7 days'; weeks, days, hours, minutes, "
                    "seconds)"
                    if timed
                    else "a duration (days, hours...) can only offset datetime columns"
                )
            )
    offset = right_off - left_off
    return Inequality(left, op, right, name, offset, timed and offset != 0)


def _side(node, where: str) -> tuple[str, float, bool] | None:
    """One side of a check: ``column``, or ``column`` plus or minus a constant (a number or a
    duration): (column, offset, whether the offset is a duration); None for anything else."""
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Column) and not node.table:
        return node.name, 0.0, False
    if not isinstance(node, (exp.Add, exp.Sub)):
        return None
    column, constant = node.this, node.expression
    if isinstance(node, exp.Add) and isinstance(column, (exp.Literal, exp.Interval, exp.Neg)):
        column, constant = constant, column  # '7 + a'
    inner, value = _side(column, where), _constant(constant, where)
    if inner is None or value is None or (inner[1] and inner[2] != value[1]):
        return None  # not a column plus constants, or a number added to a duration
    amount = value[0] if isinstance(node, exp.Add) else -value[0]
    return inner[0], inner[1] + amount, value[1] or inner[2]


def _constant(node, where: str) -> tuple[float, bool] | None:
    """A number (False) or a duration in seconds (True); None when ``node`` is neither."""
    from sqlglot import exp

    if isinstance(node, exp.Neg):
        inner = _constant(node.this, where)
        return None if inner is None else (-inner[0], inner[1])
    if isinstance(node, exp.Literal) and not node.is_string:
        return float(node.this), False
    if not isinstance(node, exp.Interval):
        return None
    raw_unit = str(node.args["unit"].name if node.args.get("unit") is not None else "").lower()
    unit = raw_unit.rstrip("s")
    if unit not in UNIT_SECONDS:
        raise InputError(
            f"{where}: a duration is in weeks, days, hours, minutes or seconds, not {raw_unit or 'no unit'!r} "
            "(months and years have no fixed length)"
        )
    try:
        return float(node.this.this) * UNIT_SECONDS[unit], True
    except (TypeError, ValueError, AttributeError):
        raise InputError(f"{where}: the duration {node.this.sql()} is not a number of {unit}s") from None


def _parse_combinations(
    item: dict, index: int, kinds: Mapping[str, str], target: str, name: str | None
) -> Combinations:
    where = _where(index, name)
    cols = item.get("columns")
    if not isinstance(cols, list) or not cols:
        raise InputError(f"{where}: an 'allowed' rule needs 'columns', a list of categorical columns")
    for col in cols:
        _column(col, where, kinds, ("categorical",), "allowed combinations are of categorical columns")
    if len(set(cols)) != len(cols):
        raise InputError(f"{where}: 'columns' repeats a column")
    allowed = item["allowed"]
    if not isinstance(allowed, list) or not allowed:
        raise InputError(f"{where}: 'allowed' must be a non-empty list of value lists")
    tuples = []
    for t in allowed:
        t = [t] if len(cols) == 1 and not isinstance(t, list) else t
        if not isinstance(t, list) or len(t) != len(cols) or any(v is None or isinstance(v, (list, dict)) for v in t):
            raise InputError(
                f"{where}: each allowed combination must list {len(cols)} value(s), one per column, not {t!r}"
            )
        tuples.append(tuple(value_text(v) for v in t))
    return Combinations(tuple(cols), tuple(dict.fromkeys(tuples)), name)


def _parse_range(item: dict, index: int, kinds: Mapping[str, str], target: str, name: str | None) -> Range:
    where = _where(index, name)
    col = _column(
        item["column"], where, kinds, ("numerical", "datetime"), "a range or step is for numerical or datetime columns"
    )
    lo, hi = (_bound(item.get(k), kinds[col], where, k) for k in ("min", "max"))
    step = item.get("step")
    if step is not None:
        if kinds[col] != "numerical":
            raise InputError(f"{where}: 'step' is for numerical columns; {col!r} is {kinds[col]}")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0 or not math.isfinite(step):
            raise InputError(f"{where}: step {step!r} must be a positive number")
    if lo is None and hi is None and step is None:
        raise InputError(f"{where}: give at least one of min, max, step")
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"{where}: min {item['min']!r} is greater than max {item['max']!r}")
    raw_lo, raw_hi = (
        v if v is None or isinstance(v, (int, float)) else str(v) for v in (item.get("min"), item.get("max"))
    )
    rule = Range(col, lo, hi, None if step is None else float(step), name, (raw_lo, raw_hi))  # a YAML date: text
    if step is not None:
        first, last = rule.step_bounds()
        if first > last:
            raise InputError(f"{where}: no multiple of step {step!r} lies between min and max")
    return rule


def _bound(value: Any, kind: str, where: str, key: str) -> float | None:
    if value is None:
        return None
    if kind == "datetime" and not isinstance(value, (int, float)):
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            stamp = pd.NaT
        if pd.isna(stamp):
            raise InputError(f"{where}: {key} {value!r} is not a date")
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        return float((stamp - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: {key} {value!r} is not a number")
    return float(value)


def _parse_computed(item: dict, index: int, kinds: Mapping[str, str], target: str, name: str | None) -> Computed:
    formula = item["formula"]
    where = _where(index, name or (f"{item['column']} = {formula}" if isinstance(formula, str) else None))
    col = _column(item["column"], where, kinds, ("numerical",), "a computed column must be numerical")
    if col == target:
        raise InputError(f"{where}: the predictive column {col!r} cannot be computed")
    tree = _sql_expression(formula, where)
    inputs = _formula_columns(tree, where)
    for used in inputs:
        _column(used, where, kinds, ("numerical",), "a formula uses numerical columns")
    if col in inputs:
        raise InputError(f"{where}: the formula of {col!r} uses {col!r} itself")
    if not inputs:
        raise InputError(f"{where}: the formula uses no column")
    return Computed(col, formula, inputs, name)


def _sql_expression(text: Any, where: str):
    import sqlglot
    from sqlglot.errors import SqlglotError

    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: the expression must be a non-empty text")
    try:
        return sqlglot.parse_one(text)
    except SqlglotError:
        raise InputError(f"{where}: {text!r} does not parse as an expression") from None


# -- formulas (a small, closed subset of SQL, evaluated on arrays) ----------------------------
def _formula_nodes():
    from sqlglot import exp

    binary = {exp.Add: np.add, exp.Sub: np.subtract, exp.Mul: np.multiply, exp.Div: np.true_divide}
    many = {exp.Least: np.fmin, exp.Greatest: np.fmax}
    return exp, binary, many


def _formula_columns(tree, where: str) -> tuple[str, ...]:
    """The columns a formula reads; refuses anything outside the allowed subset."""
    exp, binary, many = _formula_nodes()
    allowed = (exp.Column, exp.Identifier, exp.Literal, exp.Paren, exp.Neg, exp.Abs, exp.Round, *binary, *many)
    for node in tree.walk():
        if not isinstance(node, allowed) or (isinstance(node, exp.Literal) and node.is_string):
            shown = node.sql() if hasattr(node, "sql") else str(node)
            raise InputError(
                f"{where}: {shown!r} is not allowed in a formula (numbers, columns, + - * /, "
                "parentheses, ROUND, ABS, LEAST, GREATEST)"
            )
        if isinstance(node, exp.Column) and node.table:
            raise InputError(f"{where}: {node.sql()!r}: name columns without a table")
        if (
            isinstance(node, exp.Round)
            and node.args.get("decimals") is not None
            and not isinstance(node.args["decimals"], exp.Literal)
        ):
            raise InputError(f"{where}: ROUND's digits must be a number")
    return tuple(dict.fromkeys(c.name for c in tree.find_all(exp.Column)))


def _parse_formula(formula: str):
    import sqlglot

    return sqlglot.parse_one(formula)


def _evaluate(node, frame: Mapping[str, np.ndarray]):
    exp, binary, many = _formula_nodes()
    if isinstance(node, exp.Column):
        return np.asarray(frame[node.name], dtype=float)
    if isinstance(node, exp.Literal):
        return float(node.this)
    if isinstance(node, exp.Paren):
        return _evaluate(node.this, frame)
    if isinstance(node, exp.Neg):
        return -_evaluate(node.this, frame)
    if isinstance(node, exp.Abs):
        return np.abs(_evaluate(node.this, frame))
    if isinstance(node, exp.Round):
        digits = int(float(node.args["decimals"].this)) if node.args.get("decimals") is not None else 0
        return np.round(_evaluate(node.this, frame), digits)
    if type(node) in binary:
        return binary[type(node)](_evaluate(node.this, frame), _evaluate(node.expression, frame))
    out = _evaluate(node.this, frame)
    for arg in node.expressions:  # LEAST/GREATEST; a missing input makes the result missing
        value = _evaluate(arg, frame)
        out = np.where(np.isnan(out) | np.isnan(value), np.nan, many[type(node)](out, value))
    return out


# -- checking --------------------------------------------------------------------------------
def violations(rule: Rule, frame: Mapping[str, np.ndarray]) -> np.ndarray:
    """Which rows break ``rule`` (a boolean array), for normalised columns: categorical as text
    (``None`` missing), numerical and datetime as floats (datetime in epoch seconds; NaN missing)."""
    if isinstance(rule, Inequality):
        a, b = (np.asarray(frame[c], dtype=float) for c in (rule.left, rule.right))
        with np.errstate(invalid="ignore"):
            return ~np.isnan(a) & ~np.isnan(b) & ~OPERATORS[rule.op](a, b + rule.offset)
    if isinstance(rule, Combinations):
        cols = [np.asarray(frame[c], dtype=object) for c in rule.columns]
        present = np.logical_and.reduce([np.array([v is not None for v in c], dtype=bool) for c in cols])
        allowed = set(rule.allowed)
        ok = np.array([t in allowed for t in zip(*cols)], dtype=bool) if len(cols[0]) else np.zeros(0, bool)
        return present & ~ok
    if isinstance(rule, Range):
        x = np.asarray(frame[rule.column], dtype=float)
        bad = np.zeros(x.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            if rule.min is not None:
                bad |= x < rule.min
            if rule.max is not None:
                bad |= x > rule.max
            if rule.step is not None:
                multiple = x / rule.step
                bad |= np.abs(multiple - np.round(multiple)) > 1e-6 * np.maximum(1.0, np.abs(multiple))
        return bad & ~np.isnan(x)
    expected = rule.compute(frame)
    x = np.asarray(frame[rule.column], dtype=float)
    with np.errstate(invalid="ignore"):
        differ = ~np.isclose(x, expected, rtol=1e-9, atol=1e-9)
    return np.where(np.isnan(expected), ~np.isnan(x), differ | np.isnan(x))


def violation_rates(rules: Sequence[Rule], frame: Mapping[str, np.ndarray], rows: int) -> list[float]:
    """The share of ``rows`` rows that break each rule (NaN for an empty table)."""
    return [float(violations(r, frame).mean()) if rows else float("nan") for r in rules]


def value_text(value: Any) -> str:
    """A declared value as text, as the evaluation compares categories (``1`` and ``1.0`` match)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
