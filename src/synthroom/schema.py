"""The column classification: which columns exist, their kind, and the predictive column.

Three spellings are accepted, so configurations move over unchanged:

* Synthroom's own (YAML or JSON)::

      target: income
      columns:
        - {name: age, type: numerical, min: 17, max: 90, integer: true}
        - {name: workclass, type: categorical, categories: [Private, State-gov]}
        - {name: signup, type: datetime}
        - {name: birthday, type: date}        # a datetime whose values are dates
      ignore: [customer_id]                   # in the input, neither read nor synthesized

* the cloud clean-room product's analysis template as it is (the whole template, also under
  ``analysisTemplate`` or with CloudFormation's capitalised keys; its ``syntheticDataParameters``;
  or the ``mlSyntheticDataParameters`` themselves)::

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

Every malformed schema raises one :class:`~synthroom.errors.SchemaError` (an ``InputError``: exit
code 2 on the command line) naming the entry at fault: a wrong type anywhere, an unknown key
(:data:`NATIVE_KEYS`, :data:`COLUMN_KEYS`, :data:`REFERENCE_KEYS`, :data:`MAPPING_KEYS` list the
known ones: a new key goes there), ``target`` as a list, an empty document.

A categorical column may name its ``parent`` in a public hierarchy (``{name: city, type:
categorical, parent: state, parents: {Albany: NY}}``): it is then drawn within its row's parent
value (synthroom.synthesis.hierarchy); ``parents`` (value -> parent value) are public pairs that
also list the column's categories, and the parent's when it declares none. A datetime or date
column may declare its month a hierarchy level (``{name: signup_date, type: date, hierarchy:
month}``): the model learns the year-month, the day is drawn within it (:data:`DATE_LEVELS`).

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

from .errors import InputError, SchemaError

ColumnKind = Literal["categorical", "numerical", "datetime"]
KINDS: tuple[str, ...] = ("categorical", "numerical", "datetime")
EPSILON_RANGE = (0.0001, 10.0)
MIA_RANGE = (0.5, 1.0)
DATE_LEVELS: tuple[str, ...] = ("month",)  # a datetime column's ``hierarchy`` (synthesis/hierarchy.py)


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
    date_only: bool = False  # datetime: the values are dates (``type: date``); also when the file stores DATE
    parent: str | None = None  # categorical: a public hierarchy's parent column (sampled within it; see below)
    parents: tuple[tuple[str, str], ...] | None = None  # the public (value, parent value) pairs, when declared
    hierarchy: str | None = None  # datetime: ``month``, the year-month modelled, the day drawn within it

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SchemaError(f"column {self.name!r}: type {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.categories is not None and self.kind != "categorical":
            raise SchemaError(f"column {self.name!r}: categories are only for categorical columns")
        if self.integer is not None and (self.kind != "numerical" or not isinstance(self.integer, bool)):
            raise SchemaError(f"column {self.name!r}: integer must be true or false, and only for numerical columns")
        if (self.min is not None or self.max is not None) and self.kind == "categorical":
            raise SchemaError(f"column {self.name!r}: min/max are only for numerical columns")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SchemaError(f"column {self.name!r}: min {self.min} is greater than max {self.max}")
        if self.date_only and self.kind != "datetime":
            raise SchemaError(f"column {self.name!r}: date_only is only for datetime columns")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise SchemaError(f"column {self.name!r}: the declared categories repeat a value")
        if (self.parent is not None or self.parents is not None) and self.kind != "categorical":
            raise SchemaError(f"column {self.name!r}: parent/parents are only for categorical columns")
        if self.hierarchy is not None and self.kind != "datetime":
            raise SchemaError(
                f"column {self.name!r}: hierarchy: {self.hierarchy} is only for datetime and date columns"
            )
        if self.hierarchy is not None and self.hierarchy not in DATE_LEVELS:
            raise SchemaError(
                f"column {self.name!r}: hierarchy {self.hierarchy!r} is not a level this version knows "
                f"(known: {', '.join(DATE_LEVELS)})"
            )
        if self.parents is not None and self.parent is None:
            raise SchemaError(f"column {self.name!r}: parents (value -> parent value) need 'parent', the parent column")
        if self.parents is not None and self.categories is not None:
            unmapped = [c for c in self.categories if c not in dict(self.parents)]
            if unmapped:
                raise SchemaError(f"column {self.name!r}: declared category {unmapped[0]!r} has no parent in 'parents'")


@dataclass(frozen=True)
class Schema:
    """Every output column with its kind, and exactly one predictive (target) column."""

    columns: tuple[ColumnSpec, ...]
    target: str
    epsilon: float | None = None  # only when the file carried synthetic-data parameters
    max_mia_score: float | None = None
    extras: dict[str, Any] = field(default_factory=dict, compare=False)
    rules: tuple[Any, ...] = ()  # declared rules (synthroom.rules); see "Rules" below
    ignore: tuple[str, ...] = ()  # columns of the input that are neither read nor synthesized

    def __post_init__(self) -> None:
        if not self.columns:
            raise SchemaError("the schema lists no columns")
        seen: set[str] = set()
        for col in self.columns:
            if not isinstance(col.name, str) or col.name == "":
                raise SchemaError(f"column name {col.name!r} is not a non-empty string")
            if col.name in seen:
                raise SchemaError(f"column {col.name!r} appears twice in the schema")
            seen.add(col.name)
        if self.target not in seen:
            raise SchemaError(f"the predictive column {self.target!r} is not among the schema's columns")
        check_hierarchies(self.columns, self.target)
        for name in self.ignore:
            if name in seen:
                raise SchemaError(f"column {name!r} is both classified and listed under ignore (or twice)")
            seen.add(name)
        try:
            if self.epsilon is not None:
                check_epsilon(self.epsilon)
            if self.max_mia_score is not None:
                check_max_mia_score(self.max_mia_score)
        except InputError as exc:
            raise SchemaError(str(exc)) from None

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
            d: dict[str, Any] = {"name": c.name, "type": "date" if c.date_only else c.kind}
            for key in ("min", "max", "format", "integer"):
                if getattr(c, key) is not None:
                    d[key] = getattr(c, key)
            if c.categories is not None:
                d["categories"] = list(c.categories)
            if c.parent is not None:
                d["parent"] = c.parent
            if c.parents is not None:
                d["parents"] = dict(c.parents)
            if c.hierarchy is not None:
                d["hierarchy"] = c.hierarchy
            out.append(d)
        ignore = {"ignore": list(self.ignore)} if self.ignore else {}
        return {"target": self.target, "columns": out, **ignore, **rules_to_dict(self.rules)}

    def with_ignored(self, names: "list[str] | tuple[str, ...]") -> "Schema":
        """This schema with more columns to leave out (the command line's ``--ignore``)."""
        return replace(self, ignore=self.ignore + tuple(names)) if names else self

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
        raise SchemaError(f"cannot read schema file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SchemaError(f"schema file {str(path)!r} is not UTF-8 text") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SchemaError(f"schema file {str(path)!r} does not parse: {exc}") from None
    return parse_schema(data)


NATIVE_KEYS = frozenset({"target", "columns", "epsilon", "max_mia_score", "rules", "ignore", "name", "task"})
COLUMN_KEYS = frozenset(
    {
        "name",
        "type",
        "kind",
        "min",
        "max",
        "categories",
        "format",
        "integer",
        "target",
        "predictive",
        "parent",
        "parents",
        "hierarchy",
    }
)
REFERENCE_KEYS = frozenset({"epsilon", "maxMembershipInferenceAttackScore", "columnClassification"})
MAPPING_KEYS = frozenset({"columnName", "columnType", "isPredictiveValue"})
COLUMN_TYPES = (*KINDS, "date")  # ``date``: a datetime column whose values are dates (no time of day)


def parse_schema(data: Any) -> Schema:
    """Build a :class:`Schema` from already-parsed data in any accepted spelling; anything
    malformed raises one :class:`SchemaError` naming the entry at fault."""
    if isinstance(data, Schema):
        return data
    if not isinstance(data, dict) or not data:
        raise SchemaError(
            "the schema must be a non-empty mapping with 'columns' (Synthroom's spelling) or "
            f"'columnClassification' (the reference product's), not {_shown(data)}"
        )
    reference = reference_parameters(data)
    if reference is not None:
        return _parse_reference_product(reference)
    return _parse_native(data)


def reference_parameters(data: dict[str, Any]) -> dict[str, Any] | None:
    """The reference product's ML synthetic-data parameters inside ``data``, whichever part of an
    analysis template was given: the whole template (also as ``get-analysis-template`` prints it,
    under ``analysisTemplate``), its ``syntheticDataParameters``, or the parameters themselves.
    Key spellings with a capital first letter (CloudFormation's) are accepted too. None when
    ``data`` is Synthroom's own spelling."""
    data = _lower_first(data)
    for key in ("analysisTemplate", "syntheticDataParameters", "mlSyntheticDataParameters"):
        if key in data and "columns" not in data:
            inner = data[key]
            if not isinstance(inner, dict):
                raise SchemaError(f"{key} must be a mapping, not {_shown(inner)}")
            return reference_parameters(inner) or _lower_first(inner)
    return data if "columnClassification" in data else None


def _lower_first(data: dict[str, Any]) -> dict[str, Any]:
    return {(k[:1].lower() + k[1:] if isinstance(k, str) else k): v for k, v in data.items()}


def _shown(value: Any) -> str:
    """A value for a message: its type, and the value itself when short."""
    text = repr(value)
    return f"{type(value).__name__} {text}" if len(text) <= 40 else f"a {type(value).__name__}"


def _unknown_keys(data: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = [k for k in data if k not in known]
    if unknown:
        raise SchemaError(f"unknown key {unknown[0]!r} in {where} (known: {', '.join(sorted(known))})")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or value == "":
        raise SchemaError(f"{what} must be a non-empty string, not {_shown(value)}")
    return value


def _number(value: Any, what: str) -> Any:
    """``value`` (None, or a number as given) after checking that it is a number."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise SchemaError(f"{what} must be a number, not {_shown(value)}")
    return value


def _float(value: Any, what: str) -> float | None:
    return None if _number(value, what) is None else float(value)


def _flag(value: Any, what: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise SchemaError(f"{what} must be true or false, not {_shown(value)}")
    return value


def _native_column(i: int, raw: Any) -> tuple[ColumnSpec, bool]:
    """One entry of ``columns``: its spec, and whether it is marked as the target."""
    if not isinstance(raw, dict) or "name" not in raw:
        raise SchemaError(f"schema column #{i + 1} must be a mapping with a 'name', not {_shown(raw)}")
    name = _text(raw["name"], f"schema column #{i + 1}'s name")
    where = f"column {name!r}"
    _unknown_keys(raw, COLUMN_KEYS, where)
    kind = raw.get("type", raw.get("kind"))
    if not isinstance(kind, str) or kind.lower() not in COLUMN_TYPES:
        raise SchemaError(f"{where}: type {kind!r} is not one of {', '.join(COLUMN_TYPES)}")
    cats = raw.get("categories")
    if cats is not None and (not isinstance(cats, list) or not all(isinstance(c, (str, int, float)) for c in cats)):
        raise SchemaError(f"{where}: categories must be a list of values (text or numbers), not {_shown(cats)}")
    fmt = raw.get("format")
    if fmt is not None:
        _text(fmt, f"{where}: format")
    parent, parents = _hierarchy_keys(raw, where)
    if parents is not None and cats is None:
        cats = list(dict(parents))  # the public mapping lists the values: they are the categories
    spec = ColumnSpec(
        name=name,
        kind="datetime" if kind.lower() == "date" else kind.lower(),  # type: ignore[arg-type]
        min=_float(raw.get("min"), f"{where}: min"),
        max=_float(raw.get("max"), f"{where}: max"),
        categories=None if cats is None else tuple(str(c) for c in cats),
        format=fmt,
        integer=_flag(raw.get("integer"), f"{where}: integer"),
        date_only=kind.lower() == "date",
        parent=parent,
        parents=parents,
        hierarchy=None if raw.get("hierarchy") is None else _text(raw["hierarchy"], f"{where}: hierarchy"),
    )
    marked = bool(_flag(raw.get("target"), f"{where}: target")) or bool(
        _flag(raw.get("predictive"), f"{where}: predictive")
    )
    return spec, marked


def _parse_native(data: dict[str, Any]) -> Schema:
    _unknown_keys(data, NATIVE_KEYS, "the schema")
    cols = data.get("columns")
    if not isinstance(cols, list) or not cols:
        raise SchemaError(
            "the schema needs a non-empty 'columns' list (or the reference product's "
            f"'columnClassification'), not {_shown(cols)}"
        )
    parsed = [_native_column(i, raw) for i, raw in enumerate(cols)]
    targets = [spec.name for spec, marked in parsed if marked]
    if "target" in data:
        targets.append(_text(data["target"], "target (the one predictive column)"))
    targets = list(dict.fromkeys(targets))
    if not targets:
        raise SchemaError("the schema names no predictive (target) column")
    if len(targets) > 1:
        raise SchemaError(
            f"the schema names {len(targets)} predictive columns ({', '.join(map(repr, targets))}); "
            "exactly one is allowed"
        )
    schema = Schema(
        columns=_public_parents([spec for spec, _ in parsed]),
        target=targets[0],
        epsilon=_number(data.get("epsilon"), "epsilon"),
        max_mia_score=_number(data.get("max_mia_score"), "max_mia_score"),
        ignore=_ignore_list(data.get("ignore")),
    )
    return with_rules(schema, data.get("rules"))


def _ignore_list(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SchemaError(f"ignore must be a list of column names, not {_shown(raw)}")
    return tuple(_text(name, f"ignore entry #{i + 1}") for i, name in enumerate(raw))


def _parse_reference_product(data: dict[str, Any]) -> Schema:
    _unknown_keys(data, REFERENCE_KEYS, "mlSyntheticDataParameters")
    classification = (
        _lower_first(data["columnClassification"]) if isinstance(data.get("columnClassification"), dict) else {}
    )
    mapping = classification.get("columnMapping")
    if not isinstance(mapping, list) or not mapping:
        raise SchemaError("columnClassification needs a non-empty 'columnMapping' list")
    specs, targets = [], []
    for i, raw in enumerate(mapping):
        if not isinstance(raw, dict) or not isinstance(_lower_first(raw).get("columnName"), str):
            raise SchemaError(
                f"columnMapping entry #{i + 1} must be a mapping with a 'columnName' string, not {_shown(raw)}"
            )
        raw = _lower_first(raw)
        name = _text(raw["columnName"], f"columnMapping entry #{i + 1}'s columnName")
        _unknown_keys(raw, MAPPING_KEYS, f"columnMapping entry {name!r}")
        kind = raw.get("columnType")
        if kind not in ("CATEGORICAL", "NUMERICAL"):
            raise SchemaError(f"column {name!r}: columnType {kind!r} is not CATEGORICAL or NUMERICAL")
        specs.append(ColumnSpec(name=name, kind=kind.lower()))  # type: ignore[arg-type]
        if _flag(raw.get("isPredictiveValue"), f"column {name!r}: isPredictiveValue"):
            targets.append(name)
    if not targets:
        raise SchemaError("no column has isPredictiveValue true; exactly one predictive column is required")
    if len(targets) > 1:
        raise SchemaError(
            f"{len(targets)} columns have isPredictiveValue true ({', '.join(map(repr, targets))}); "
            "exactly one is allowed"
        )
    return Schema(
        columns=tuple(specs),
        target=targets[0],
        epsilon=_number(data.get("epsilon"), "epsilon"),
        max_mia_score=_number(data.get("maxMembershipInferenceAttackScore"), "maxMembershipInferenceAttackScore"),
    )


# -- Public hierarchies (a column's ``parent``; sampled within it: synthesis/hierarchy.py) ----------
def _hierarchy_keys(raw: dict[str, Any], where: str) -> tuple[str | None, tuple[tuple[str, str], ...] | None]:
    """A column's ``parent`` (a column name) and ``parents`` (value -> parent value, public)."""
    parent = raw.get("parent")
    if parent is not None:
        _text(parent, f"{where}: parent")
    mapping = raw.get("parents")
    if mapping is None:
        return parent, None
    if not isinstance(mapping, dict) or not mapping:
        raise SchemaError(f"{where}: parents must map each value to its parent value, not {_shown(mapping)}")
    for value, up in mapping.items():
        if not isinstance(value, (str, int, float)) or not isinstance(up, (str, int, float)) or isinstance(up, bool):
            raise SchemaError(f"{where}: parents entry {value!r}: {up!r} must map a value to one parent value")
    return parent, tuple((_category(v), _category(p)) for v, p in mapping.items())


def _category(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _public_parents(specs: list[ColumnSpec]) -> tuple[ColumnSpec, ...]:
    """The columns, a parent that declares no categories getting its children's declared parent
    values as its public list (they are public facts of the schema too)."""
    named = {c.name: c for c in specs}
    for child in specs:
        up = named.get(child.parent) if child.parent is not None else None
        if child.parents is not None and up is not None and up.kind == "categorical" and up.categories is None:
            values = tuple(dict.fromkeys(p for _, p in child.parents))
            named[up.name] = replace(up, categories=values)
    return tuple(named[c.name] for c in specs)


def check_hierarchies(columns: tuple[ColumnSpec, ...], target: str) -> None:
    """Each ``parent`` is another categorical column of the schema, never the child's descendant;
    the predictive column is modelled, so it is no child; declared parent values are among the
    parent's declared categories."""
    specs = {c.name: c for c in columns}
    children = [c for c in columns if c.parent is not None]
    for col in children:
        where = f"column {col.name!r}"
        up = specs.get(col.parent)  # type: ignore[arg-type]
        if up is None or up.kind != "categorical" or up.name == col.name:
            raise SchemaError(f"{where}: parent {col.parent!r} is not another categorical column of the schema")
        if col.name == target:
            raise SchemaError(f"{where}: the predictive column cannot have a parent (it is always modelled)")
        if col.parents is not None and up.categories is not None:
            unknown = [p for _, p in col.parents if p not in up.categories]
            if unknown:
                raise SchemaError(
                    f"{where}: parent value {unknown[0]!r} is not among {up.name!r}'s declared categories"
                )
    for col in children:
        chain = [col.name]
        while specs[chain[-1]].parent is not None:
            chain.append(specs[chain[-1]].parent)  # type: ignore[arg-type]
            if chain[-1] in chain[:-1]:
                raise SchemaError(f"column {col.name!r}: the parents form a cycle ({' -> '.join(chain)})")


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
