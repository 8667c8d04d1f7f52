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

**A date's month** (``{name: signup_date, type: date, hierarchy: month}``) is the same idea with
the day as the child and the year-month as the parent, both inside one column: the model's bins
of the column are its calendar months (:func:`.discretize.learn_months`: the range from the DP
year histogram or the declared bounds, cut into whole days), and the day within the month comes
from one noisy (day of month, month) table (:func:`measure_days`, charged at the same even share;
a day that does not exist in its month has no cell), made consistent by Norm-Sub after pulling
each month toward the pooled day-of-month shape as far as the noise warrants (:func:`day_table`).
The month keeps its correlations with the other columns (it is modelled); a date is drawn on a day
of its sampled month in proportion to that day's count, a datetime at a uniform time of that day
(as without the key). A range condition (``where``) on the column is honoured exactly.
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
from .discretize import NumericColumn, column_days, month_bins, month_of, piece_days, standout
from .selection import CategoricalColumn


@dataclass
class Within:
    """A child column's distribution given its parent: ``table[child code, parent code]``, the
    post-processed noisy counts (non-negative), and ``allowed``, the cells that may hold rows."""

    child: str
    parent: str
    table: np.ndarray
    allowed: np.ndarray

    def weights(self, p: int) -> np.ndarray:
        """The child's weights within parent code ``p``: its column of the table (a column with no
        mass left: the child's overall shares among the values allowed there, else all of those
        values alike; all zero only when no value is allowed)."""
        allowed = self.allowed[:, p].astype(float)
        overall = self.table.sum(axis=1)
        return next((w for w in (self.table[:, p], overall * allowed) if w.sum() > 0), allowed)

    def draw(self, parent_codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Child codes for rows with these parent codes, each from its parent's weights."""
        out = np.zeros(len(parent_codes), dtype=np.int64)
        for p in np.unique(parent_codes):
            rows = np.flatnonzero(parent_codes == p)
            weights = self.weights(p)
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


def month_columns(schema: Schema) -> list[str]:
    """The datetime columns whose month is a hierarchy level (``hierarchy: month``)."""
    return [c.name for c in schema.columns if c.hierarchy == "month"]


def hierarchy_share(schema: Schema, columns: dict, accountant: ZCDPAccountant) -> float:
    """The rho of each public hierarchy's measurement: an even share of the marginals' budget,
    ``rho_remaining / (columns + month columns)`` (a child and a month column's day table each
    count as a column), taken once the domains are learned, before any of them is measured."""
    return accountant.rho_remaining / (len(columns) + len(month_columns(schema)))


def measure_within(
    source: CountingSource,
    schema: Schema,
    columns: dict,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
) -> dict[str, Within]:
    """The noisy (child, parent) table of every child column (see the module docstring), each
    at ``rho`` (:func:`hierarchy_share`); the source must be encoded with ``columns``' codings.
    Charged: one Gaussian measurement each."""
    kids = children(schema)
    if not kids:
        return {}
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


def measure_days(
    source: CountingSource, column: NumericColumn, accountant: ZCDPAccountant, noise: Noise, rho: float
) -> NumericColumn:
    """A month column's (day of month, month) table (:func:`.discretize.learn_months`), charged
    once: the exact count of each of the coding's day pieces (whole UTC days, public) with
    discrete Gaussian noise at ``rho`` (one row is in one piece: L2 sensitivity 1, ``unit_cap``
    per person). Post-processing after it (:func:`day_table`): the cells are (day of month,
    month), a day that does not exist in its month (30 February) or lies outside the public
    bounds has none; each month's days are pulled toward the column's pooled day-of-month shape
    by as much as the noise warrants, then made non-negative keeping the month's noisy total
    (Norm-Sub, as a child's); the months are the bins again (:func:`.discretize.month_bins`),
    each day weighing its cell (a month keeps its noisy total against the other months of its
    bin when months share bins, a day its count within its month)."""
    coding = column.coding
    exact = source.piece_counts(column.name, coding.grid, coding.clip, coding.pieces)
    noisy, sigma = gaussian_counts(
        accountant, noise, exact, rho, step=f"days of {column.name!r} within their month (public hierarchy)"
    )
    days, inside = column_days(coding.pieces, coding.clip)
    per_day = np.zeros(days.size)
    np.add.at(per_day, np.searchsorted(days, piece_days(coding.pieces)), noisy)
    mass = np.zeros(days.size)
    mass[inside] = day_table(days[inside], per_day[inside], sigma)
    return month_bins(column, mass)


DAY_SLOTS = 31  # the table's rows: day 1 to 31 of a month
END_DAYS = 3  # the pooled shape reads a month's last days by their distance from its end


def day_table(days: np.ndarray, noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Each day's weight from the noisy day counts (``days``: days since 1970-01-01, ascending;
    noise std ``sigma``).

    The counts form the table ``y[day of month, month]`` (a day that does not exist has no cell).
    The pooled shape gives each day its mean count over the months (:func:`pooled_shape`: a
    month's first days by their date, its last ``END_DAYS`` by their distance from its end, so
    the 1st, the 15th and month ends each pool with their kind). A month's expected counts are
    its noisy total spread by that shape; each cell is the blend ``w y + (1 - w) E`` with ``w =
    s^2 / (s^2 + sigma^2)``, ``s^2`` the months' own spread around the pooled shape (the cells'
    mean squared residual minus the noise variance): when the noise dominates, a month keeps the
    pooled shape at its own total; when the rows dominate, its own days. Then Norm-Sub per month
    (:func:`norm_sub`); a month with no mass left gets the pooled shape at a negligible weight
    (:meth:`Within.weights`: a bin of such months still draws plausible days). Post-processing of
    the noisy counts and the public sigma."""
    month = month_of(days)
    months = np.unique(month)
    m = np.searchsorted(months, month)
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    length = (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - first
    dom = days - first[m]
    y, allowed = np.zeros((DAY_SLOTS, months.size)), np.zeros((DAY_SLOTS, months.size))
    y[dom, m], allowed[dom, m] = noisy, 1.0
    totals = y.sum(axis=0)
    rate = pooled_shape(dom, length[m], noisy, sigma)
    shape = np.zeros_like(y)
    shape[dom, m] = rate
    expected = shape / np.maximum(shape.sum(axis=0), 1e-300) * np.maximum(totals, 0.0)
    spread = max(float(((y - expected) ** 2)[allowed > 0].mean()) - sigma**2, 0.0)
    w = spread / (spread + sigma**2) if spread + sigma**2 > 0 else 1.0
    within = Within("day", "month", norm_sub((w * y + (1 - w) * expected) * allowed), allowed)
    fallback = np.stack([within.weights(k) for k in range(months.size)], axis=1)
    table = within.table + 1e-9 * fallback / np.maximum(fallback.sum(axis=0), 1e-300)
    return table[dom, m]


def pooled_shape(dom: np.ndarray, length: np.ndarray, noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Each day's pooled mean count (``dom``: its day of month from 0, ``length``: its month's
    days): the mean noisy count of its slot (its day of month, or for the last ``END_DAYS`` days
    its distance from the month's end) where that mean stands out from the slots' median by more
    than ``z`` of its noise std (``sigma / sqrt(days in the slot)``; ``z`` such that on average
    fewer than ``PHANTOM_CELLS`` slots stand out by noise alone), else the mean of all the days of
    the slots that do not: a few peaks (the 1st, the 15th, the last day) keep their level, and the
    other days, whose means at a few rows a day are mostly noise, stay alike. Positive (a floor
    of 1e-9). Post-processing."""
    end = dom >= length - END_DAYS
    slot = np.where(end, DAY_SLOTS + (length - 1 - dom), dom)
    count = np.bincount(slot, minlength=DAY_SLOTS + END_DAYS).astype(float)
    total = np.bincount(slot, weights=noisy, minlength=count.size)
    used = np.flatnonzero(count > 0)
    mean = total[used] / count[used]
    z = standout(used.size)
    standing = np.abs(mean - np.median(mean)) > z * sigma / np.sqrt(count[used])
    flat = total[used][~standing].sum() / count[used][~standing].sum() if (~standing).any() else 0.0
    level = np.zeros(count.size)
    level[used] = np.where(standing, mean, flat)
    return np.maximum(level[slot], 1e-9)


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
