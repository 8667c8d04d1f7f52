"""A seeded simulator of small tables: the clean-room joins of issue 17 (1,000-5,000 rows).

    frame, schema = small_table(SMALL_TABLES[0], rows=1000, seed=1)

Each :class:`TableSpec` fixes a table's *shape* (columns, minority share, missing values); the
rows are drawn from latent factors whose loadings come from the spec's own seed, so two calls
with different ``seed`` give independent rows of the *same* distribution (a training table and
fresh rows to score it on). The binary target depends on a few columns of every kind through a
logistic model whose intercept is set so that the minority class holds ``minority`` of the rows.
Numerical columns are Gaussian, log-normal (money-like) or small integers; categorical ones have
3-8 skewed levels; ``missing`` of the columns lose 10-40% of their values (some at random, some
more often for one class). The schema is the benchmark's JSON spelling, with nothing declared but
the kinds (``declare_classes=True`` adds the target's two classes as a public category list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

TARGET = "label"
CLASSES = ("no", "yes")  # "yes" is the minority class


@dataclass(frozen=True)
class TableSpec:
    """The shape of one simulated table."""

    name: str
    columns: int  # features, the target excluded
    minority: float  # share of the minority class
    missing: float  # share of the feature columns with missing values
    factors: int = 4
    informative: int = 6  # features the target depends on directly
    seed: int = 0  # fixes loadings, column kinds and the target's coefficients


# The benchmark's tables (bench/small_tables.py runs each at 1,000, 2,000 and 5,000 rows).
SMALL_TABLES = (
    TableSpec("narrow", columns=10, minority=0.20, missing=0.2, seed=11),
    TableSpec("credit", columns=20, minority=0.10, missing=0.3, seed=12),
    TableSpec("survey", columns=35, minority=0.15, missing=0.5, seed=13),
    TableSpec("wide", columns=60, minority=0.05, missing=0.3, informative=8, seed=14),
)


def _kinds(spec: TableSpec, rng: np.random.Generator) -> list[str]:
    """Column kinds: about 45% Gaussian, 20% money, 10% integer counts, 25% categorical."""
    return list(rng.choice(["gauss", "money", "count", "cat"], size=spec.columns, p=[0.45, 0.2, 0.1, 0.25]))


def _column(kind: str, latent: np.ndarray, levels: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "gauss":
        return np.round(latent * 10 + 50, 2)
    if kind == "money":
        return np.round(np.exp(latent * 0.8 + 7), 0)
    if kind == "count":
        return np.clip(np.round(np.exp(latent * 0.6 + 0.8)), 0, 40)
    cuts = np.quantile(rng.normal(size=50_000), np.linspace(0, 1, levels + 1)[1:-1] ** 1.4)
    return np.array([f"v{k}" for k in range(levels)], dtype=object)[np.searchsorted(cuts, latent)]


def small_table(spec: TableSpec, rows: int, seed: int, *, declare_classes: bool = False) -> tuple[pd.DataFrame, dict]:
    """``rows`` rows of the table ``spec`` (row draws from ``seed``) and its schema."""
    kinds, loadings, levels, informative, coef, gappy, gap_rate = _shape(spec)
    rng = np.random.default_rng([spec.seed, seed])
    z = rng.normal(size=(rows, spec.factors))
    latent = z @ loadings + rng.normal(scale=0.7, size=(rows, spec.columns))
    signal = latent[:, informative] @ coef + rng.logistic(size=rows)
    label = signal > np.quantile(_signal_sample(spec, loadings, informative, coef), 1 - spec.minority)
    cols: dict[str, np.ndarray] = {}
    schema_cols = []
    for j in range(spec.columns):
        values = _column(kinds[j], latent[:, j], int(levels[j]), np.random.default_rng([spec.seed, 2, j]))
        if gappy[j]:
            rate = np.where(label, gap_rate[j] * 1.5, gap_rate[j]) if j % 2 else np.full(rows, gap_rate[j])
            gone = rng.random(rows) < rate
            values = values.astype(object) if kinds[j] == "cat" else values.astype(float)
            values[gone] = None if kinds[j] == "cat" else np.nan
        name = _column_name(j, kinds[j])
        cols[name] = values
        schema_cols.append({"name": name, "type": "categorical" if kinds[j] == "cat" else "numerical"})
    cols[TARGET] = np.where(label, CLASSES[1], CLASSES[0])
    target: dict[str, object] = {"name": TARGET, "type": "categorical"}
    if declare_classes:
        target["categories"] = list(CLASSES)
    schema = {"name": spec.name, "target": TARGET, "task": "classification", "columns": schema_cols + [target]}
    return pd.DataFrame(cols), schema


class _Shape(NamedTuple):
    """A table's distribution, the same for every row seed."""

    kinds: list[str]  # each column's kind
    loadings: np.ndarray  # factors x columns
    levels: np.ndarray  # a categorical column's category count
    informative: np.ndarray  # the columns the target depends on ...
    coef: np.ndarray  # ... and their coefficients
    gappy: np.ndarray  # which columns have missing values ...
    gap_rate: np.ndarray  # ... and how many


def _shape(spec: TableSpec) -> _Shape:
    """The table's distribution, drawn from ``spec.seed``."""
    shape = np.random.default_rng(spec.seed)
    kinds = _kinds(spec, shape)
    loadings = shape.normal(size=(spec.factors, spec.columns)) / np.sqrt(spec.factors)
    levels = shape.integers(3, 9, size=spec.columns)
    informative = shape.choice(spec.columns, size=min(spec.informative, spec.columns), replace=False)
    coef = shape.choice([-1.0, 1.0], size=informative.size) * shape.uniform(0.6, 1.4, size=informative.size)
    gappy = shape.random(spec.columns) < spec.missing
    gap_rate = shape.uniform(0.1, 0.4, size=spec.columns)
    return _Shape(kinds, loadings, levels, informative, coef, gappy, gap_rate)


def informative_columns(spec: TableSpec) -> list[str]:
    """The features the target depends on directly: known to the simulator only (a benchmark's
    oracle, bench/dp_classifier.py --oracle)."""
    shape = _shape(spec)
    return [_column_name(j, shape.kinds[j]) for j in sorted(shape.informative)]


def _column_name(j: int, kind: str) -> str:
    """Feature ``j``'s name, its kind in it: ``x07_money``."""
    return f"x{j:02d}_{kind}"


def _signal_sample(spec: TableSpec, loadings: np.ndarray, informative: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """The target's latent score on 200,000 rows of a fixed seed: its quantile sets the intercept."""
    rng = np.random.default_rng([spec.seed, 3])
    z = rng.normal(size=(200_000, spec.factors))
    latent = z @ loadings[:, informative] + rng.normal(scale=0.7, size=(200_000, informative.size))
    return latent @ coef + rng.logistic(size=200_000)
