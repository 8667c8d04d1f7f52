"""Public hierarchies: a child column (``city``) sampled within its sampled parent (``state``).

The schema declares ``parent: state`` on ``city`` (and, optionally, the public pairs
``parents: {Springfield: IL, ...}``, which also make the city list public). The child is then not
a column of the graphical model: the model learns the parent with everything else, and the child
is drawn *given the parent* from one DP measurement, the noisy table of (child, parent) counts:

* **Measured once**: the exact table of the child's codes (its public list, or the values the DP
  category selection kept, plus ``other`` and missing) against the parent's codes, with discrete
  Gaussian noise (one row adds 1 to one cell: L2 sensitivity 1 per row, ``unit_cap`` per person),
  at an even share of the marginals' budget (``rho_remaining / (modelled columns + children)``),
  charged to the accountant like every measurement. The table's shape comes from the codings
  (public, or DP outputs), never from the rows.
* **Post-processing only** after that: each value goes with one parent value (its declared one,
  else the one its noisy counts put it in most), its other cells are zero; each parent's
  column of counts is made consistent (Norm-Sub: shifted down by the one constant that makes its
  positive part sum to its noisy total, then clipped at 0, which removes most of the upward bias
  that clipping alone gives a long tail of rare values). A synthetic row's child is drawn from its
  parent's column, so a rare city is drawn within its sampled state in proportion to its noisy
  count, and never in another state.
* **``other`` within its parent**: a value not selected (or outside the public list) is written
  ``other (CA)``, the ``other`` of its parent's value, instead of one global ``other``: the table
  counts, per parent value, the rows whose child was folded.

A child keeps its correlations with the other columns through its parent only (the price of not
spending budget on its many-valued marginals); a parent may itself have a parent (a chain is
sampled top-down). Conditions (``where``, ``balance``) and allowed-combination rules on a child
are refused: condition on the parent. Privacy costs: docs/privacy.md ("Public hierarchies").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import CountingSource
from ..errors import InputError
from ..privacy import ZCDPAccountant
from ..privacy.mechanisms import gaussian_counts
from ..privacy.noise import Noise
from ..rules import Combinations
from ..schema import Schema
from .selection import CategoricalColumn


@dataclass
class Within:
    """A child column's distribution given its parent: ``table[child code, parent code]``, the
    post-processed noisy counts (non-negative), and ``allowed``, the cells that may hold rows."""

    child: str
    parent: str
    table: np.ndarray
    allowed: np.ndarray

    def draw(self, parent_codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Child codes for rows with these parent codes, each from its parent's column (a column
        with no mass left: the child's overall shares among the values allowed there, else all
        of those values alike)."""
        out = np.zeros(len(parent_codes), dtype=np.int64)
        overall = self.table.sum(axis=1)
        for p in np.unique(parent_codes):
            rows = np.flatnonzero(parent_codes == p)
            allowed = self.allowed[:, p].astype(float)
            weights = next(w for w in (self.table[:, p], overall * allowed, allowed) if w.sum() > 0)
            out[rows] = rng.choice(self.table.shape[0], size=len(rows), p=weights / weights.sum())
        return out


def children(schema: Schema) -> dict[str, str]:
    """Child -> parent for every column with a ``parent``, parents first (a chain top-down).
    Refuses an allowed-combinations rule on a child (the child is not in the model)."""
    pending = {c.name: c.parent for c in schema.columns if c.parent is not None}
    out: dict[str, str] = {}
    while pending:
        ready = [n for n, p in pending.items() if p not in pending]
        for name in ready:
            out[name] = pending.pop(name)
    for rule in schema.rules:
        if isinstance(rule, Combinations) and set(rule.columns) & set(out):
            child = next(c for c in rule.columns if c in out)
            raise InputError(
                f"rule {rule.label!r}: column {child!r} is sampled within its parent {out[child]!r} (a public "
                "hierarchy), not modelled; declare its pairs as 'parents' instead of allowed combinations"
            )
    return out


def measure_within(
    source: CountingSource,
    schema: Schema,
    columns: dict,
    accountant: ZCDPAccountant,
    noise: Noise,
) -> dict[str, Within]:
    """The noisy (child, parent) table of every child column (see the module docstring); the
    source must be encoded with ``columns``' codings. Charged: one Gaussian measurement each."""
    kids = children(schema)
    if not kids:
        return {}
    rho = accountant.rho_remaining / len(columns)  # an even share of the marginals' budget
    exact = source.marginals([(child, parent) for child, parent in kids.items()])
    out = {}
    for (child, parent), counts in zip(kids.items(), exact):
        noisy, _ = gaussian_counts(
            accountant,
            noise,
            counts.ravel(),
            rho,
            step=f"{child!r} within its parent {parent!r} (public hierarchy)",
        )
        table = noisy.reshape(counts.shape)
        allowed = allowed_cells(schema, columns[child], columns[parent], table)
        out[child] = Within(child, parent, norm_sub(table * allowed), allowed)
    return out


def allowed_cells(schema: Schema, child: CategoricalColumn, parent: CategoricalColumn, noisy: np.ndarray) -> np.ndarray:
    """1 where a (child code, parent code) pair can hold rows: a value goes with one parent value,
    its declared one (the public pairs; a parent value the parent's coding does not hold: the
    parent's ``other``), else the one its noisy counts put it in most (post-processing: a child
    has one parent). ``other`` and missing children go with any parent."""
    mask = np.ones((child.size, parent.size))
    pairs = dict(schema[child.name].parents or ())
    parent_code = {v: i for i, v in enumerate(parent.coding.values)}
    for i, value in enumerate(child.coding.values):
        if pairs and value not in pairs:
            continue
        code = parent_code.get(pairs[value], parent.coding.other_code) if pairs else int(np.argmax(noisy[i]))
        mask[i] = 0.0
        if code is not None:
            mask[i, code] = 1.0
    return mask


def norm_sub(table: np.ndarray) -> np.ndarray:
    """Each column of noisy counts made non-negative with its total kept: the counts minus the
    constant ``lam >= 0`` for which the positive parts sum to the column's noisy total (0 where
    that total is not positive). Post-processing."""
    out = np.zeros_like(table, dtype=float)
    for p in range(table.shape[1]):
        x, total = table[:, p].astype(float), float(table[:, p].sum())
        if total <= 0:
            continue
        lo, hi = 0.0, max(float(x.max()), 0.0)
        for _ in range(60):  # sum(max(x - lam, 0)) falls as lam grows: bisection
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if np.clip(x - mid, 0, None).sum() > total else (lo, mid)
        out[:, p] = np.clip(x - hi, 0, None)
    return out


def draw_children(within: dict[str, Within], codes: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Add each child's codes to ``codes`` (sampled rows), parents first."""
    for child, w in within.items():
        codes[child] = w.draw(np.asarray(codes[w.parent], dtype=np.int64), rng)


def decode_child(column: object, codes: np.ndarray, parent_labels: np.ndarray) -> np.ndarray:
    """Labels of a child's codes; its ``other`` as ``other (<the row's parent value>)``."""
    assert isinstance(column, CategoricalColumn)  # a parent's child is categorical (schema.py)
    out = column.decode(codes, np.random.default_rng(0))
    other = column.coding.other_code
    if other is None:
        return out
    rows = np.flatnonzero(np.asarray(codes) == other)
    out[rows] = [
        column.other_label if p is None else f"{column.other_label} ({p})" for p in parent_labels[rows].tolist()
    ]
    return out


def refuse_conditions(within: dict[str, Within], where: Any, balance: str | None) -> None:
    """A child is not in the model: a condition on it is refused, naming its parent."""
    for name in [*(where or {}), *([balance] if balance else [])]:
        if name in within:
            raise InputError(
                f"column {name!r} is sampled within its parent {within[name].parent!r} (a public hierarchy), "
                f"not modelled: condition on {within[name].parent!r}"
            )


def hierarchy_warnings(within: dict[str, Within], columns: dict, epsilon: float) -> list[str]:
    """One line per child whose ``other (...)`` holds more than 10% of its rows (post-processing)."""
    out = []
    for child, w in within.items():
        col = columns[child]
        total = w.table.sum()
        if col.coding.other_code is None or total <= 0:
            continue
        share = float(w.table[col.coding.other_code].sum() / total)
        if share > 0.10:
            out.append(
                f"column {child!r}: {share:.0%} of the synthetic rows are {col.other_label!r} within their "
                f"{w.parent!r} at epsilon {epsilon:g} (values too rare to release); declare its categories "
                f"with their parents ('parents', a public list costs no budget) or raise epsilon"
            )
    return out
