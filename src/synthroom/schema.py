"""The column classification: which columns exist, their kind, and the predictive column.

Three spellings are accepted, so configurations move over unchanged:

* Synthroom's own (YAML or JSON)::

      target: income
      columns:
        - {name: age, type: numerical, min: 17, max: 90, integer: true}
        - {name: workclass, type: categorical, categories: [Private, State-gov]}
        - {name: signup, type: datetime}

* the cloud clean-room product's synthetic-data parameters, verbatim::

      {"epsilon": 1.0, "maxMembershipInferenceAttackScore": 0.6,
       "columnClassification": {"columnMapping": [
           {"columnName": "age", "columnType": "NUMERICAL", "isPredictiveValue": false}]}}

* the benchmark's ``schema.json`` (``{"target": ..., "columns": [{"name", "type"}]}``).

Declared ``min``/``max`` and ``categories`` are *public facts* the data owner vouches for: they
are used as given and cost no privacy budget. Anything not declared is learned with DP.
``integer: true`` makes a numerical column's synthetic values whole numbers; undeclared, a column
is integer only when the file declares an integer type (Parquet, a database table, a DataFrame's
dtype). A CSV declares no types, and its content is never sniffed for them: one row holding 3.5
must not change the output's type.

An optional ``rules`` list declares facts every synthetic row keeps (inequalities between columns,
allowed combinations, ranges and steps, computed columns): public like the rest of the schema,
parsed and checked by :mod:`synthroom.rules`, enforced on sampled rows (docs/rules.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import InputError

ColumnKind = Literal["categorical", "numerical", "datetime"]
KINDS: tuple[str, ...] = ("categorical", "numerical", "datetime")
EPSILON_RANGE = (0.0001, 10.0)
MIA_RANGE = (0.5, 1.0)


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the schema; ``min``/``max``/``categories`` are optional public facts."""

    name: str
    kind: ColumnKind
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    format: str | None = None  # datetime output format (strftime); default: the input's type
    integer: bool | None = None  # numerical: whole numbers out (True) or not; None: as the file declares

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"column {self.name!r}: type {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.categories is not None and self.kind != "categorical":
            raise InputError(f"column {self.name!r}: categories are only for categorical columns")
        if self.integer is not None and (self.kind != "numerical" or not isinstance(self.integer, bool)):
            raise InputError(f"column {self.name!r}: integer must be true or false, and only for numerical columns")
        if (self.min is not None or self.max is not None) and self.kind == "categorical":
            raise InputError(f"column {self.name!r}: min/max are only for numerical columns")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InputError(f"column {self.name!r}: min {self.min} is greater than max {self.max}")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise InputError(f"column {self.name!r}: the declared categories repeat a value")


@dataclass(frozen=True)
class Schema:
    """Every output column with its kind, and exactly one predictive (target) column."""

    columns: tuple[ColumnSpec, ...]
    target: str
    epsilon: float | None = None  # only when the file carried synthetic-data parameters
    max_mia_score: float | None = None
    extras: dict[str, Any] = field(default_factory=dict, compare=False)
    rules: tuple[Any, ...] = ()  # declared rules (synthroom.rules); see "Rules" below

    def __post_init__(self) -> None:
        if not self.columns:
            raise InputError("the schema lists no columns")
        seen: set[str] = set()
        for col in self.columns:
            if not isinstance(col.name, str) or col.name == "":
                raise InputError(f"column name {col.name!r} is not a non-empty string")
            if col.name in seen:
                raise InputError(f"column {col.name!r} appears twice in the schema")
            seen.add(col.name)
        if self.target not in seen:
            raise InputError(f"the predictive column {self.target!r} is not among the schema's columns")
        if self.epsilon is not None:
            check_epsilon(self.epsilon)
        if self.max_mia_score is not None:
            check_max_mia_score(self.max_mia_score)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Synthroom's own spelling, as JSON-ready data (round-trips through :func:`parse_schema`)."""
        out: list[dict[str, Any]] = []
        for c in self.columns:
            d: dict[str, Any] = {"name": c.name, "type": c.kind}
            for key in ("min", "max", "format", "integer"):
                if getattr(c, key) is not None:
                    d[key] = getattr(c, key)
            if c.categories is not None:
                d["categories"] = list(c.categories)
            out.append(d)
        return {"target": self.target, "columns": out, **rules_to_dict(self.rules)}

    def with_columns(self, columns: list[ColumnSpec]) -> "Schema":
        return replace(self, columns=tuple(columns))


def check_epsilon(epsilon: float) -> float:
    """Epsilon must lie in the reference product's range, [0.0001, 10]."""
    lo, hi = EPSILON_RANGE
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        raise InputError(f"epsilon {epsilon!r} is not a number") from None
    if not lo <= value <= hi:
        raise InputError(f"epsilon {epsilon!r} is outside the allowed range [{lo}, {hi}]")
    return value


def check_max_mia_score(score: float) -> float:
    """The membership-inference threshold must lie in [0.5, 1]."""
    lo, hi = MIA_RANGE
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise InputError(f"max MIA score {score!r} is not a number") from None
    if not lo <= value <= hi:
        raise InputError(f"max MIA score {score!r} is outside the allowed range [{lo}, {hi}]")
    return value


def load_schema(path: str | Path) -> Schema:
    """Read a schema file (YAML or JSON, any of the three spellings)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read schema file {str(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"schema file {str(path)!r} does not parse: {exc}") from None
    return parse_schema(data)


def parse_schema(data: Any) -> Schema:
    """Build a :class:`Schema` from already-parsed data in any accepted spelling."""
    if isinstance(data, Schema):
        return data
    if not isinstance(data, dict):
        raise InputError("the schema must be a mapping with 'columns' (or 'columnClassification')")
    if "columnClassification" in data:
        return _parse_reference_product(data)
    return _parse_native(data)


def _parse_native(data: dict[str, Any]) -> Schema:
    cols = data.get("columns")
    if not isinstance(cols, list):
        raise InputError("the schema needs a 'columns' list")
    specs = []
    targets = []
    for i, raw in enumerate(cols):
        if not isinstance(raw, dict) or "name" not in raw:
            raise InputError(f"schema column #{i + 1} needs a 'name'")
        kind = str(raw.get("type", raw.get("kind", ""))).lower()
        cats = raw.get("categories")
        specs.append(
            ColumnSpec(
                name=raw["name"],
                kind=kind,  # type: ignore[arg-type]
                min=_opt_float(raw, "min"),
                max=_opt_float(raw, "max"),
                categories=None if cats is None else tuple(str(c) for c in cats),
                format=raw.get("format"),
                integer=raw.get("integer"),
            )
        )
        if raw.get("target") or raw.get("predictive"):
            targets.append(raw["name"])
    if "target" in data:
        targets.append(data["target"])
    targets = list(dict.fromkeys(targets))
    if not targets:
        raise InputError("the schema names no predictive (target) column")
    if len(targets) > 1:
        raise InputError(
            f"the schema names {len(targets)} predictive columns ({', '.join(map(repr, targets))}); exactly one is "
            "allowed"
        )
    schema = Schema(
        columns=tuple(specs),
        target=targets[0],
        epsilon=data.get("epsilon"),
        max_mia_score=data.get("max_mia_score"),
    )
    return with_rules(schema, data.get("rules"))


def _parse_reference_product(data: dict[str, Any]) -> Schema:
    mapping = (data.get("columnClassification") or {}).get("columnMapping")
    if not isinstance(mapping, list):
        raise InputError("columnClassification needs a 'columnMapping' list")
    specs, targets = [], []
    for i, raw in enumerate(mapping):
        if not isinstance(raw, dict) or "columnName" not in raw:
            raise InputError(f"columnMapping entry #{i + 1} needs a 'columnName'")
        kind = str(raw.get("columnType", "")).lower()
        specs.append(ColumnSpec(name=raw["columnName"], kind=kind))  # type: ignore[arg-type]
        if raw.get("isPredictiveValue") is True:
            targets.append(raw["columnName"])
    if not targets:
        raise InputError("no column has isPredictiveValue true; exactly one predictive column is required")
    if len(targets) > 1:
        raise InputError(
            f"{len(targets)} columns have isPredictiveValue true ({', '.join(map(repr, targets))}); exactly one is "
            "allowed"
        )
    return Schema(
        columns=tuple(specs),
        target=targets[0],
        epsilon=data.get("epsilon"),
        max_mia_score=data.get("maxMembershipInferenceAttackScore"),
    )


def _opt_float(raw: dict[str, Any], key: str) -> float | None:
    if raw.get(key) is None:
        return None
    try:
        return float(raw[key])
    except (TypeError, ValueError):
        raise InputError(f"column {raw['name']!r}: {key} {raw[key]!r} is not a number") from None


# -- Rules (the schema's optional ``rules`` list; definitions and checks in synthroom/rules.py) ----
def with_rules(schema: Schema, raw: Any) -> Schema:
    """``schema`` with its declared rules parsed and validated against its columns."""
    if raw is None:
        return schema
    from .rules import parse_rules

    return replace(schema, rules=parse_rules(raw, {c.name: c.kind for c in schema.columns}, schema.target))


def rules_to_dict(rules: tuple[Any, ...]) -> dict[str, Any]:
    """The ``rules`` entry of :meth:`Schema.to_dict` (nothing when there are none)."""
    return {"rules": [r.to_dict() for r in rules]} if rules else {}
