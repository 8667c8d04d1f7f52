"""DP category selection: which values of each categorical column the synthetic data may hold.

A value can reach the output in one of three ways, cheapest first:

* **Public**: a category list declared in the schema, or the finite set of literals the approved
  clean-room template can output for that column (``CASE WHEN ... THEN 'yes' ELSE 'no' END``;
  :func:`synthroom.sql.template.output_literals`). Both are public to the collaboration and not
  derived from the rows, so they cost nothing and every value is kept.
* **The predictive column** (a categorical target without a declared list) is selected *first*,
  by Gaussian partition selection at the rho that keeps any class held by at least
  ``max(150, 10% of the rows)`` rows with probability ``1 - 1e-6`` (:func:`target_selection_rho`,
  from the fit's one DP row count, :class:`RowCount`). If fewer than two classes come out, the fit stops with
  :class:`TargetClassesLost` before anything more is spent.
* **Features**: partition selection at the column's share of the domain budget (stage 1), then,
  for every column whose rows fold into ``other`` for more than the size regime's trigger by the DP
  estimates (:data:`TAIL_TRIGGER_SHARE` in the standard regime, :data:`FOLD_WARN_SHARE` in the
  small one), a second partition selection over the values not yet kept (stage 2,
  :func:`release_tails`), from a pool of the budget sized by how much folded, its fresh counts
  combined with stage 1's unreleased counts of those values (so a value is kept at both stages'
  rho together). Stage 2 reserves half of the column's threshold delta, and spends it only when it
  runs; a regime without stage 2 (the small one, below ``regime.SMALL_TAIL_ROWS`` rows) gives
  stage 1 all of it.

A learned column whose DP estimates show (almost) no folded rows gets no ``other`` code at all
(:func:`drop_empty_other`): a 2-class target then has 2 codes, not 3.

After the fit, :func:`fold_warnings` reads the model's DP estimate of each column's ``other`` share
and says loudly when a column, or the target, lost most of its values or a class (post-processing).
Every charge and why it is private: docs/privacy.md ("Category selection").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..engine import CategoryCoding, CountingSource
from ..errors import TargetClassesLost
from ..privacy import ZCDPAccountant
from ..privacy.mechanisms import (
    combined_thresholded_counts,
    gaussian_counts,
    person_sensitivity,
    sigma_for,
    threshold_for,
    thresholded_counts,
)
from ..privacy.noise import Noise, discrete_gaussian_sf
from ..schema import ColumnSpec
from .structure import Measurement

# A column whose DP share of rows in ``other`` is above this gets a warning (and, in the small
# regime, a second selection).
FOLD_WARN_SHARE = 0.10
# The standard regime: a column whose DP share of rows in ``other`` is above this gets a second
# selection. On Adult at epsilon 1, race (1.8% folded: two values of ~250-280 rows, just under
# stage 1's threshold) and native-country (6.7%) get one.
TAIL_TRIGGER_SHARE = 0.01
# The predictive column: the warning fires above this share of ``other`` (a class was lost).
TARGET_FOLD_WARN_SHARE = 0.01
# The promise for the predictive column: a class of at least max(rows, share * table) is kept ...
TARGET_CLASS_ROWS = 150
TARGET_CLASS_SHARE = 0.10
TARGET_LOSS = 1e-6  # ... except with at most this probability per class
TARGET_MAX_SHARE = 0.25  # of the whole rho: the most the target's selection may cost
ROWS_SHARE = 0.02  # of the whole rho: the fit's DP row count (the size regime, the target's selection, stage 2)
ROWS_Z = 4.75  # the row count is read as (noisy - ROWS_Z sigma): an underestimate with prob 1 - 1e-6
# Stage 2: the pool is TAIL_RATE * rho for each column's folded share (summed), at most TAIL_MAX_SHARE * rho.
TAIL_RATE = 0.5
TAIL_MAX_SHARE = 0.3
TAIL_MAX_OF_REMAINING = 0.5  # never more than half of what is left for the marginals
# No ``other`` code when the DP estimate of the folded rows plus EMPTY_OTHER_Z of its std is below
# EMPTY_OTHER_SHARE of the DP row count (the predictive column: TARGET_FOLD_WARN_SHARE; drop_empty_other).
EMPTY_OTHER_Z = 2.0
EMPTY_OTHER_SHARE = 0.02


@dataclass(frozen=True)
class Selected:
    """What one partition selection released about the values it kept: their noisy counts (in
    the order of ``values``; ``None`` = missing) and the noise std. A DP output like the kept
    values themselves, so the model may read it as a 1-way measurement of those cells."""

    values: tuple
    noisy: np.ndarray
    sigma: float


@dataclass
class CategoricalColumn:
    """A categorical column's codes and how to turn them back into values."""

    name: str
    coding: CategoryCoding
    other_label: str
    storage_type: str
    noisy_rows: float | None = None  # DP estimate of the rows whose value was kept (None: public list)
    rows_var: float = 0.0  # the variance of noisy_rows (the kept values' noise)
    tail_delta: float = 0.0  # threshold delta reserved for a second selection (stage 2), unspent so far
    selected: tuple[Selected, ...] = ()  # each selection's noisy counts of the values it kept (not saved)
    # Stage 1's noisy counts of the values it did NOT keep, when a stage 2 may follow: never released,
    # read only by stage 2 (combined with its own counts), then dropped by finish_domains.
    unreleased: Selected | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return self.coding.size

    def labels(self) -> list[str | None]:
        out: list[str | None] = [None] * self.coding.size
        for i, v in enumerate(self.coding.values):
            out[i] = v
        if self.coding.other_code is not None:
            out[self.coding.other_code] = self.other_label
        return out

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        table = np.array(self.labels(), dtype=object)
        return table[np.asarray(codes, dtype=np.int64)]


def other_label(values: list[str]) -> str:
    """``other``, or ``_other``, ``__other``... when a kept value is itself spelled ``other``."""
    label = "other"
    while label in values:
        label = "_" + label
    return label


def public_coding(categories: tuple[str, ...]) -> CategoryCoding:
    """The coding of a declared (public) list: every value, then missing, then ``other``."""
    n = len(categories)
    return CategoryCoding(tuple(categories), n, n + 1, n + 2)


def coding_of(kept: list[str | None]) -> CategoryCoding:
    """Kept values (``None`` = missing) in code order, then missing if kept, then ``other``."""
    values = [v for v in kept if v is not None]
    missing_code = len(values) if None in kept else None
    other_code = len(values) + (missing_code is not None)
    return CategoryCoding(tuple(values), missing_code, other_code, other_code + 1)


def select(
    accountant: ZCDPAccountant,
    noise: Noise,
    observed: list,
    counts: np.ndarray,
    rho: float,
    delta: float,
    step: str,
) -> tuple[list, float, float, Selected, Selected]:
    """Gaussian partition selection over ``observed`` values: the kept ones (largest noisy count
    first), the sum of their noisy counts and its noise variance, those counts with their noise
    std (:class:`Selected`), and the noisy counts of the values *not* kept (not released: only a
    stage 2 may read them, :func:`release_tails`). Charged: rho and delta (see mechanisms)."""
    noisy, keep, _ = thresholded_counts(accountant, noise, counts, rho, delta, step=step)
    sigma = sigma_for(rho, person_sensitivity(accountant, 1.0))
    return _selected(observed, noisy, keep, sigma)


def _selected(observed: list, noisy: np.ndarray, keep: np.ndarray, sigma: float):
    order = [i for i in np.argsort(-noisy, kind="stable") if keep[i]]
    kept = [observed[i] for i in order]
    chosen = Selected(tuple(kept), noisy[order].astype(float), float(sigma))
    rest = np.flatnonzero(~keep)
    unreleased = Selected(tuple(observed[i] for i in rest), noisy[rest].astype(float), float(sigma))
    return kept, float(noisy[keep].sum()), float(keep.sum()) * sigma**2, chosen, unreleased


@dataclass(frozen=True)
class RowCount:
    """The fit's one DP count of the table's rows: the noisy count and its noise std. It chooses
    the size regime (:mod:`.regime`), sizes the target's selection (read as the lower bound
    :attr:`low`) and stage 2 (its folded shares); a second count would spend the budget twice."""

    noisy: float
    sigma: float

    @property
    def low(self) -> float:
        """``noisy - ROWS_Z sigma``, at least 0: below the true count with probability at least 1 - 1e-6."""
        return max(0.0, self.noisy - ROWS_Z * self.sigma)


def count_rows(exact: int, accountant: ZCDPAccountant, noise: Noise) -> RowCount:
    """A DP count of the table's ``exact`` rows (Gaussian, L2 sensitivity 1 per row) at
    ``ROWS_SHARE`` of the budget: the fit's only count of its rows, unless the release gate's
    count of all rows gives the estimate (then none is measured here)."""
    noisy, sigma = gaussian_counts(
        accountant,
        noise,
        np.array([int(exact)]),
        ROWS_SHARE * accountant.rho_budget,
        step="rows of the table (size regime and category selection)",
    )
    return RowCount(float(noisy[0]), float(sigma))


def keep_probability_rho(rows: int, delta: float, unit_cap: int, loss: float = TARGET_LOSS) -> float:
    """The smallest rho at which partition selection (threshold for ``delta``, ``unit_cap`` rows per
    person) releases a value held by ``rows`` rows with probability at least ``1 - loss``.

    The value is lost when ``rows + Z <= tau``, Z discrete Gaussian of scale sigma, tau
    :func:`~synthroom.privacy.mechanisms.threshold_for`; that probability grows with sigma, so the
    largest sigma that meets ``loss`` is found by bisection (exact discrete Gaussian tail)."""
    k = int(unit_cap)

    def lost(sigma: float) -> float:
        tau = int(threshold_for(sigma, delta, k))
        return 1.0 - discrete_gaussian_sf(tau - int(rows) + 1, sigma)

    lo, hi = 1e-3, max(1.0, float(rows))
    if lost(lo) > loss:
        return math.inf  # no noise scale can keep it (tau is at least k, above ``rows``)
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if lost(mid) <= loss else (lo, mid)
    return (k / lo) ** 2 / 2.0  # the rho whose sigma (sensitivity k per person) is ``lo``


def target_selection_rho(rho_budget: float, rows_low: float | None, delta: float, unit_cap: int, floor: float) -> float:
    """The predictive column's selection rho: enough to keep a class of
    ``max(TARGET_CLASS_ROWS, TARGET_CLASS_SHARE * rows_low)`` rows with probability 1 - TARGET_LOSS,
    at least ``floor`` (a feature's share) and at most ``TARGET_MAX_SHARE * rho_budget``."""
    rows = TARGET_CLASS_ROWS if rows_low is None else max(TARGET_CLASS_ROWS, TARGET_CLASS_SHARE * rows_low)
    needed = keep_probability_rho(int(math.floor(rows)), delta, unit_cap)
    return min(TARGET_MAX_SHARE * rho_budget, max(floor, needed))


# -- the selections ------------------------------------------------------------------------------
def learn_categorical(
    source: CountingSource,
    spec: ColumnSpec,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
    delta: float,
    *,
    reserve_tail: bool = True,
) -> CategoricalColumn:
    """Codes for a feature: its declared (public) list, or stage 1 of the DP selection at ``rho``
    with half of ``delta`` (the other half is reserved for stage 2, :func:`release_tails`); with
    ``reserve_tail`` False (a regime that runs no stage 2) with all of ``delta``: a lower
    threshold, so more values are kept at the same rho."""
    stype = source.storage_type(spec.name)
    if spec.categories is not None:
        return CategoricalColumn(spec.name, public_coding(spec.categories), other_label(list(spec.categories)), stype)
    observed, counts = source.category_counts(spec.name)
    tail = delta / 2 if reserve_tail else 0.0
    kept, rows, var, selected, unreleased = select(
        accountant,
        noise,
        observed,
        counts,
        rho,
        delta - tail,
        step=f"categories of {spec.name!r} (partition selection)",
    )
    coding = coding_of(kept)
    return CategoricalColumn(
        spec.name,
        coding,
        other_label(list(coding.values)),
        stype,
        rows,
        rows_var=var,
        tail_delta=tail,
        selected=(selected,),
        unreleased=unreleased if reserve_tail else None,
    )


def learn_target(
    source: CountingSource,
    spec: ColumnSpec,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
    delta: float,
) -> CategoricalColumn:
    """The predictive column's classes: its declared list, or one partition selection at ``rho``
    (:func:`target_selection_rho`) with all of ``delta``. Fewer than two classes kept raises
    :class:`TargetClassesLost` (nothing else has been spent on the domains yet)."""
    if spec.categories is not None:
        return learn_categorical(source, spec, accountant, noise, rho, delta)
    observed, counts = source.category_counts(spec.name)
    kept, rows, var, selected, _ = select(
        accountant,
        noise,
        observed,
        counts,
        rho,
        delta,
        step=f"classes of the predictive column {spec.name!r} (partition selection)",
    )
    classes = [v for v in kept if v is not None]
    if len(classes) < 2:
        raise TargetClassesLost(target_lost_message(spec.name, classes, accountant.epsilon))
    coding = coding_of(kept)
    return CategoricalColumn(
        spec.name, coding, other_label(classes), source.storage_type(spec.name), rows, var, selected=(selected,)
    )


def target_lost_message(name: str, classes: list[str], epsilon: float) -> str:
    """What a run that stopped for want of target classes says (DP outputs and parameters only)."""
    shown = f"only {classes[0]!r}" if classes else "no class"
    return (
        f"the predictive column {name!r} would hold {shown} at epsilon {epsilon:g}: its other classes are too "
        f"rare to release with DP, and a classifier needs at least two; declare its classes in the schema "
        f"(categories: [...], a public list costs no budget) or raise epsilon. The run stopped before spending "
        f"the rest of its budget"
    )


def folded_share(column: CategoricalColumn, rows: float) -> float:
    """The DP estimate of the share of rows outside the kept values (0 for a public list)."""
    if column.noisy_rows is None or rows <= 0:
        return 0.0
    return float(np.clip((rows - column.noisy_rows) / rows, 0.0, 1.0))


def release_tails(
    source: CountingSource,
    columns: dict,
    accountant: ZCDPAccountant,
    noise: Noise,
    rows: float,
    *,
    max_share: float = TAIL_MAX_SHARE,
    trigger: float = TAIL_TRIGGER_SHARE,
) -> None:
    """Stage 2, in place: every column whose DP folded share (``rows``: the DP row count) is above
    ``trigger`` (the size regime's: :data:`TAIL_TRIGGER_SHARE` in the standard one,
    :data:`FOLD_WARN_SHARE` in the small one) gets a second partition selection over its values not yet kept, with
    a share proportional to its folded share of a pool of rho and of the deltas every column
    reserved for stage 2 (those that need no second selection leave theirs to the others). The pool is
    ``TAIL_RATE`` times the summed folded shares of the whole rho, at most ``max_share`` of it (the
    size regime's: :data:`TAIL_MAX_SHARE` in the standard one) and half of what is left (the rest
    measures marginals); ``max_share`` 0: no second selection (nothing charged). Decisions read
    DP outputs and public parameters only."""
    shares = {n: folded_share(c, rows) for n, c in columns.items() if isinstance(c, CategoricalColumn) and c.tail_delta}
    needy = {n: s for n, s in shares.items() if s > trigger}
    if not needy or max_share <= 0:
        return
    budget, total = accountant.rho_budget, sum(needy.values())
    pool = min(TAIL_RATE * total * budget, max_share * budget, TAIL_MAX_OF_REMAINING * accountant.rho_remaining)
    delta_pool = math.fsum(columns[n].tail_delta for n in shares)  # the reserves of columns that need none too
    for name, share in needy.items():
        columns[name] = _second_selection(
            source, columns[name], accountant, noise, pool * share / total, delta_pool * share / total
        )


def _second_selection(
    source: CountingSource,
    column: CategoricalColumn,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
    delta: float,
) -> CategoricalColumn:
    """Partition selection over the values stage 1 did not keep, appended after the kept ones:
    fresh noisy counts at ``rho`` combined by inverse variance with stage 1's unreleased noisy
    counts of the same values (:func:`~synthroom.privacy.mechanisms.combined_thresholded_counts`),
    so a value is kept at the two stages' rho together, not at stage 2's alone. Always charged
    (also when no value is left: whether any is, is not a DP fact)."""
    observed, counts = source.category_counts(column.name)
    earlier = column.unreleased
    assert earlier is not None  # a column that reserved a stage 2 kept stage 1's unreleased counts
    prior = dict(zip(earlier.values, earlier.noisy))
    rest = [i for i, v in enumerate(observed) if v in prior]  # the values stage 1 did not keep
    noisy, keep, _, sigma = combined_thresholded_counts(  # no value left: charged all the same
        accountant,
        noise,
        counts[rest],
        np.array([prior[observed[i]] for i in rest], dtype=float),
        earlier.sigma,
        rho,
        delta,
        step=f"rarer categories of {column.name!r} (second partition selection)",
    )
    kept, rows, var, selected, _ = _selected([observed[i] for i in rest], noisy, keep, sigma)
    coding = column.coding
    before: list[str | None] = list(coding.values) + ([None] if coding.missing_code is not None else [])
    new = coding_of(before + kept)
    return CategoricalColumn(
        column.name,
        new,
        other_label(list(new.values)),
        column.storage_type,
        (column.noisy_rows or 0.0) + rows,
        column.rows_var + var,
        selected=(*column.selected, selected),
    )


def selection_measurements(columns: dict, modelled: set[str]) -> list[Measurement]:
    """The selections' noisy counts as 1-way measurements of the modelled columns' kept cells
    (``Measurement.cells``: their codes; ``other`` is never measured, as its count is not
    released, nor the value that stands in for it when a column has no ``other`` code, whose
    cell also holds the rows not kept: :func:`drop_empty_other`). Post-processing of the
    selections' DP outputs: no charge. Without them the model learns a kept value's share only
    from the marginals, where a 50-value column's 1-way table is the sum of a (column, target)
    anchor's cells and carries their summed noise. (The counts of values kept near the threshold
    are biased upward, as every released count is conditioned on clearing it; the truncated
    normal's maximum-likelihood correction had a larger error than the raw counts in our
    simulation, docs/privacy.md, so they are used as released.)"""
    out = []
    for name, col in columns.items():
        if name not in modelled or not isinstance(col, CategoricalColumn):
            continue
        for sel in col.selected:
            pairs = [(_code_of(col.coding, v), n) for v, n in zip(sel.values, sel.noisy)]
            pairs = [(c, n) for c, n in pairs if c != col.coding.fold_code]
            if pairs:
                cells, noisy = zip(*pairs)
                out.append(Measurement((name,), np.array(noisy, dtype=float), sel.sigma, cells=tuple(cells)))
    return out


def _code_of(coding: CategoryCoding, value) -> int:
    """The code of a kept value (``None``: the missing code, kept when missing values were)."""
    if value is None:
        assert coding.missing_code is not None  # a selection that kept missing values coded them
        return coding.missing_code
    return coding.values.index(value)


# -- warnings ------------------------------------------------------------------------------------
def fold_warnings(model, columns: dict, target: str, epsilon: float) -> list[str]:
    """One line per column whose ``other`` holds more than :data:`FOLD_WARN_SHARE` of the model's
    rows (the predictive column: more than :data:`TARGET_FOLD_WARN_SHARE`, a lost class), with
    what to do. Reads the fitted model's 1-way marginals: post-processing, no extra cost. Columns
    with no value kept at all are left to ``domain_warnings``."""
    from .model import jax_settings

    out = []
    for name, col in columns.items():
        if not isinstance(col, CategoricalColumn) or col.coding.other_code is None:
            continue
        if col.noisy_rows is not None and not col.coding.values and col.coding.missing_code is None:
            continue
        with jax_settings():  # the model's arithmetic as mbi needs it (see model.py)
            counts = np.clip(np.asarray(model.project([name]).datavector(), dtype=float), 0.0, None)
        share = float(counts[col.coding.other_code] / counts.sum()) if counts.sum() > 0 else 0.0
        limit = TARGET_FOLD_WARN_SHARE if name == target else FOLD_WARN_SHARE
        if share > limit:
            out.append(fold_message(col, share, name == target, epsilon))
    return out


def fold_message(column: CategoricalColumn, share: float, is_target: bool, epsilon: float) -> str:
    """The warning for a column with ``share`` of its synthetic rows in ``other``."""
    other, n = column.other_label, len(column.coding.values)
    head = f"the predictive column {column.name!r}" if is_target else f"column {column.name!r}"
    if column.noisy_rows is None:
        return (
            f"{head}: {share:.0%} of the synthetic rows are {other!r}, values outside its declared categories; "
            f"add the missing values to the declared list"
        )
    lost = (
        "at least one class was too rare to release, so a model trained on these rows cannot predict it"
        if is_target
        else f"only {n} value{'s were' if n != 1 else ' was'} frequent enough to release, the rest fold into {other!r}"
    )
    return (
        f"{head}: {share:.0%} of the synthetic rows are {other!r} at epsilon {epsilon:g} ({lost}); declare "
        f"its {'classes' if is_target else 'categories'} in the schema (a public list costs no budget) or raise "
        f"epsilon"
    )


# -- the synthesizer's two hooks -----------------------------------------------------------------
def first_domains(
    source: CountingSource,
    schema,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho_col: float,
    delta_col: float,
    rows: RowCount,
) -> dict:
    """What the fit learns before any other domain: the predictive column's classes, if it is an
    undeclared categorical (:func:`learn_target`, which may stop the fit), its rho sized from the
    fit's DP row count ``rows`` (:func:`target_selection_rho` of its lower bound)."""
    spec = schema[schema.target]
    if spec.kind != "categorical" or spec.categories is not None:
        return {}
    rho = target_selection_rho(accountant.rho_budget, rows.low, delta_col, accountant.unit_cap, rho_col)
    return {spec.name: learn_target(source, spec, accountant, noise, rho, delta_col)}


def finish_domains(
    source: CountingSource,
    schema,
    columns: dict,
    accountant: ZCDPAccountant,
    noise: Noise,
    rows: RowCount,
    *,
    tail_share: float = TAIL_MAX_SHARE,
    tail_trigger: float = TAIL_TRIGGER_SHARE,
) -> dict:
    """After every column's first selection: stage 2 (:func:`release_tails`, its folded shares
    against the DP row count ``rows``, at most ``tail_share`` of rho, for the columns folding more
    than ``tail_trigger``); the columns in schema order."""
    release_tails(source, columns, accountant, noise, rows.noisy, max_share=tail_share, trigger=tail_trigger)
    done = {n: replace(c, unreleased=None) if isinstance(c, CategoricalColumn) else c for n, c in columns.items()}
    return {
        c.name: done[c.name] if c.parent else drop_empty_other(done[c.name], rows, c.name == schema.target)
        for c in schema.columns
    }


def drop_empty_other(column, rows: RowCount, is_target: bool = False):
    """``column`` without its ``other`` code when the DP estimates say (almost) no row folds into
    it: the row count minus the kept values' noisy counts, plus ``EMPTY_OTHER_Z`` times the noise
    std of that difference, is below ``EMPTY_OTHER_SHARE`` of the row count (the predictive
    column: ``TARGET_FOLD_WARN_SHARE``, the share its fold warning reads). Every kept value
    keeps its code; a value not kept (and a missing one, when missing has no code) is then
    counted in the most frequent kept value's (code 0). A 2-class target or a column whose every
    value was kept thus has no phantom ``other`` cell, which would add noise to every clique
    holding it (1.5x the cells for a 2-class target). Post-processing of DP outputs (the
    selections and the row count); each row still lands in one cell of every marginal, so no
    sensitivity changes. Public lists and columns without a learned value are left as they are."""
    if not isinstance(column, CategoricalColumn) or column.noisy_rows is None or column.coding.other_code is None:
        return column
    coding = column.coding
    if not coding.values or coding.other_code != coding.size - 1 or coding.size < 3:
        return column
    folded = rows.noisy - column.noisy_rows
    std = math.sqrt(rows.sigma**2 + column.rows_var)
    share = TARGET_FOLD_WARN_SHARE if is_target else EMPTY_OTHER_SHARE
    if folded + EMPTY_OTHER_Z * std >= share * rows.noisy:
        return column
    new = CategoryCoding(coding.values, coding.missing_code, None, coding.size - 1, fold_code=0)
    return replace(column, coding=new)


def declare_public_values(schema, public: dict[str, tuple[str, ...]]):
    """``schema`` with ``public[name]`` declared as the categories of each categorical column that
    declares none (the clean room passes the approved template's output literals,
    :func:`synthroom.sql.template.output_literals`). A declared list is kept as it is."""
    columns = [
        replace(c, categories=public[c.name])
        if c.kind == "categorical" and c.categories is None and public.get(c.name)
        else c
        for c in schema.columns
    ]
    return schema.with_columns(columns)
