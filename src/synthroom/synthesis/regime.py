"""Size regimes: how to spend the budget on the data it can afford, chosen from a DP row count.

A table's usable signal is how many rows it has against the noise each column's measurement
will carry: with the budget ``rho`` split evenly over ``K`` columns, one column's Gaussian count
has noise std ``sqrt(K / (2 rho))``, so the **signal** is ``n_hat * sqrt(2 rho / K)``
(``n_hat``: the DP estimate of the row count). It grows with rows and epsilon alike: 1,000 rows
at epsilon 10 look like about 8,000 at epsilon 1. Everything here is a function of that DP
estimate and of public parameters (epsilon, delta, the schema), so the choice costs nothing
beyond the count itself: the fit's one DP row count (:func:`.selection.count_rows`,
``selection.ROWS_SHARE`` of rho), which also sizes the category selection, or the release gate's
estimate of the training part when the gate runs.

* **standard** (signal at least :data:`SMALL_SIGNAL`): the settings the benchmarks measured on
  Adult (:class:`~synthroom.synthesis.synthesizer.Settings`).
* **small** (below it): fewer, coarser bins (3 to 8), from coarser fine histograms (4 pieces per
  grid cell; from :data:`SMALL_TAIL_ROWS` rows the standard regime's pieces, each run of kept
  cells read as one smooth density plus the pieces that stand out from it: ``Regime.shaped_pieces``)
  and numeric ranges grown to the next grid cells that clear a lower threshold (lower still from
  :data:`SMALL_TAIL_ROWS` rows: :data:`SMALL_SHAPED_GROW`); a
  categorical column three times a numeric one's domain budget; no spanning tree of triples,
  only as many (feature, feature, target) cliques as the signal affords, none below signal
  :data:`SMALL_CLIQUE_SIGNAL` (the anchors then get the whole marginal budget); most of the marginal
  budget on the features' marginals with the target (the anchors), from signal
  :data:`SMALL_FOCUS_SIGNAL` half of it measuring again the few anchors the first noisy round
  shows most tied to the target (and the cliques are chosen among those features only; below
  it the first round's ranking is mostly noise, so every anchor is measured once); no second
  selection of categories below :data:`SMALL_TAIL_ROWS` rows (its budget goes to the marginals,
  and its threshold delta to the first selection), from there one of at most
  :data:`SMALL_TAIL_SHARE` of rho (a table small only for its many columns has the rows a tail
  value needs: the threshold is in rows); and a larger share of the domain budget for the
  predictive column, so its classes clear the category threshold; and from :data:`SMALL_TAIL_ROWS`
  rows or signal :data:`SMALL_FOCUS_SIGNAL`, at most :data:`SMALL_ITERS` steps of the estimator
  (``Regime.iters``).

A table is **too small for its epsilon** when the signal is below :data:`TOO_SMALL_SIGNAL`:
then even the small regime's measurements are mostly noise. The fit still runs (the guarantee
holds whatever the size) but warns, and the ledger's ``regime`` entry gives the smallest epsilon
at which this row estimate would clear the bar (``epsilon_needed``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .discretize import MIN_BINS, SUB_PIECES
from .selection import FOLD_WARN_SHARE, TAIL_MAX_SHARE, TAIL_TRIGGER_SHARE
from .structure import ANCHOR_SHARE, SELECT_SHARE

SMALL_SIGNAL = 400.0
TOO_SMALL_SIGNAL = 30.0
# The standard regime's knobs (Settings' defaults; the benchmarks measured them on Adult).
STANDARD = {
    "max_bins": 64,
    "max_target_bins": 16,
    "domain_share": 0.25,
    "anchor_share": ANCHOR_SHARE,
    "select_share": SELECT_SHARE,
    "min_bins": MIN_BINS,
    "tail_share": TAIL_MAX_SHARE,
    "tail_trigger": TAIL_TRIGGER_SHARE,
    "focus": 0,
    "focus_share": 0.0,
    "grow": 0.0,
    "sub_pieces": SUB_PIECES,
    "categorical_weight": 1.0,
    "iters": 1000,
}
# The small regime's knobs (see Regime).
SMALL_MAX_BINS = 8
SMALL_MIN_BINS = 3
SMALL_TARGET_BINS = 4
SMALL_DOMAIN_SHARE = 0.3
SMALL_ANCHOR_SHARE = 0.7
SMALL_SELECT_SHARE = 0.1
SMALL_TARGET_SHARE = 0.15  # of the whole rho, for the predictive column's domain
SIGNAL_PER_EDGE = 40.0  # one (feature, feature, target) clique per this much signal, ...
# ... and none below this signal: there the one or two cliques took 30% of the marginals' budget
# (selection and measurement) from anchors whose noise decides the lift (narrow and credit at 1,000
# and 2,000 rows, seeded: lift kept median 0.70 -> 0.79 and 0.70 -> 0.78; bench/RESULTS.md, "Small
# tables: no cliques below signal 100").
SMALL_CLIQUE_SIGNAL = 100.0
SMALL_TAIL_SHARE = 0.2  # of rho, at most, for the categories' second selection, from SMALL_TAIL_ROWS rows ...
SMALL_TAIL_ROWS = 10_000  # ... of the DP row estimate (below it: none, see Regime)
SIGNAL_PER_FOCUS = 10.0  # one anchor measured again per this much signal ...
SMALL_FOCUS = (3, 8)  # ... at least 3, at most 8 ...
# ... and none below this signal: there the first round's noise decides which anchors are measured
# again (Adult at 2,000 rows, signal ~70: its worst seeded fits re-measured a one-bin column or left
# out marital-status), so every anchor is measured once, at the anchors' whole budget, instead
# (bench/RESULTS.md, "Small tables: no second anchor round below signal 100").
SMALL_FOCUS_SIGNAL = 100.0
SMALL_FOCUS_SHARE = 0.5  # of the anchors' budget, for measuring those again
SMALL_GROW = 2.0  # a numeric range grows to next cells above this many noise stds (discretize.grown) ...
# ... and from SMALL_TAIL_ROWS rows (the shaped pieces: one smooth density over each run of kept
# cells) above this many: a column's tail octave (Adult's ages 64-127, 4.7% of the rows, and the
# weights of 32,768-65,535, 7%, at epsilon 0.1) was dropped at 2 stds in most fits, and the
# smooth density makes an empty neighbour kept by noise hold little (Adult at epsilon 0.1, seeds
# 1-10, with the smooth density: numeric columns' 20-quantile TVD 0.107 at 2 stds, 0.084 at 1;
# bench/RESULTS.md, "Adult at epsilon 0.1: one smooth density per run of cells").
SMALL_SHAPED_GROW = 1.0
SMALL_SUB_PIECES = 4  # fine pieces per grid cell below SMALL_TAIL_ROWS rows (16 in the standard regime)
# A categorical column's domain budget against a numeric one's: its partition selection needs a
# value to clear about 6.5 noise stds, a numeric grid cell about 2-3.5, so at an even split a
# small table's categorical columns keep one or two values (the rest fold into ``other``).
SMALL_CATEGORICAL_WEIGHT = 3.0
# The estimator's mirror-descent steps in the small regime from SMALL_TAIL_ROWS rows or signal
# SMALL_FOCUS_SIGNAL (the standard regime's: Settings.iters, 1,000). Its measurements are so noisy
# there that further steps fit the noise: Adult at epsilon 0.1 (dev loop, seeds 1-5) gave a TSTR AUC
# about 0.015 lower at 3,000 steps than at 1,000, and about as much higher at 400, with the 2-way TVD
# no worse (bench/RESULTS.md, "Adult at epsilon 0.1: fewer estimator steps"); the simulator's
# 61-column table at 5,000 rows (signal 109, classes declared) kept 0.71 -> 0.85 of the lift on
# seeds 1001-1006 and 0.78 -> 0.87 on seeds 1-6, better on every seed, and its 21-column one at 5,000
# rows gained on every seed too (bench/RESULTS.md, "Small tables: the estimator stops early from
# signal 100"). Below that signal (anchors only: no cliques, no second round) the gain was not
# consistent (61 columns at 2,000 rows: 0.59 -> 0.53 on four seeds; 36 columns at 2,000 rows: 0.756
# -> 0.778 on six; 11 and 21 columns at 1,000 rows: unchanged), so those fits keep Settings.iters.
# Stopping early keeps the model nearer its maximum-entropy start.
SMALL_ITERS = 400


@dataclass(frozen=True)
class Regime:
    """The settings one fit uses, and why (the DP quantities they were chosen from)."""

    name: str  # "standard" or "small"
    rows_estimate: float  # the DP row estimate the choice was made from
    signal: float
    max_bins: int
    max_target_bins: int
    min_bins: int
    domain_share: float  # of rho, for every column's domain
    target_share: float | None  # of rho, for the predictive column's domain (None: an even split)
    anchor_share: float  # of the marginal budget, for the (feature, target) marginals
    select_share: float  # of the marginal budget, for choosing cliques
    max_edges: int | None  # the most (feature, feature, target) cliques (None: a spanning tree)
    tail_share: float  # of rho, at most, for the categories' second selection (selection.release_tails)
    tail_trigger: float  # the DP folded share of rows above which a column gets that second selection
    focus: int  # anchors measured again, the most tied to the target (structure.measure_anchors)
    focus_share: float  # of the anchors' budget, for measuring them again
    grow: float  # numeric ranges grow to next grid cells above this many noise stds (0: no)
    sub_pieces: int  # fine pieces per kept grid cell of a numeric column
    categorical_weight: float  # a categorical column's share of the domain budget against a numeric one's
    iters: int  # the estimator's mirror-descent steps (model.estimate)
    too_small: bool
    epsilon_needed: float | None  # when too small: the epsilon at which the signal would clear the bar

    @property
    def shaped_pieces(self) -> bool:
        """Whether a numeric column's fine pieces are read as one smooth density over each run of
        adjacent kept cells plus the pieces that stand out from it (discretize._smoothed): the
        small regime's pieces at the standard resolution, a cell of at most 16 whole units cut by
        unit (discretize._pieces), from :data:`SMALL_TAIL_ROWS` rows."""
        return self.name == "small" and self.sub_pieces >= SUB_PIECES

    def summary(self) -> dict:
        return asdict(self)


def signal(rows: float, rho: float, n_columns: int) -> float:
    """The row estimate in noise standard deviations of one column's share of ``rho``."""
    return max(rows, 0.0) * math.sqrt(2.0 * rho / max(n_columns, 1))


def epsilon_needed(rows: float, n_columns: int, delta: float) -> float | None:
    """The smallest epsilon whose budget gives ``rows`` a signal of :data:`TOO_SMALL_SIGNAL`
    (``delta``: the share of delta that pays for the zCDP conversion); None when no epsilon can
    (no rows)."""
    from ..privacy.accountant import epsilon_from_rho

    if rows < 1:
        return None
    rho = n_columns * (TOO_SMALL_SIGNAL / rows) ** 2 / 2.0
    return epsilon_from_rho(rho, delta)


def choose_regime(
    rows: float, rho: float, n_columns: int, delta: float, *, force: str = "auto", standard: dict | None = None
) -> Regime:
    """The regime for a table of ``rows`` (a DP estimate) and ``n_columns`` columns at budget
    ``rho`` (``delta``: the conversion's share, for ``epsilon_needed``). ``standard``: the
    standard regime's knobs (max_bins, max_target_bins, domain_share, anchor_share,
    select_share, iters); ``force``: "auto", "standard" or "small"."""
    if force not in ("auto", "standard", "small"):
        raise ValueError(f"regime {force!r} must be 'auto', 'standard' or 'small'")
    s = signal(rows, rho, n_columns)
    small = s < SMALL_SIGNAL if force == "auto" else force == "small"
    too_small = s < TOO_SMALL_SIGNAL
    needed = epsilon_needed(rows, n_columns, delta) if too_small else None
    if not small:
        knobs = {**STANDARD, **(standard or {})}
        return Regime(
            "standard",
            float(rows),
            s,
            target_share=None,
            max_edges=None,
            too_small=too_small,
            epsilon_needed=needed,
            **knobs,
        )
    std = standard or {}
    iters = int(std.get("iters", STANDARD["iters"]))
    many = rows >= SMALL_TAIL_ROWS  # enough rows for a tail selection and the standard pieces (shaped)
    focus = 0 if s < SMALL_FOCUS_SIGNAL else int(min(max(s // SIGNAL_PER_FOCUS, SMALL_FOCUS[0]), SMALL_FOCUS[1]))
    return Regime(
        "small",
        float(rows),
        s,
        max_bins=min(SMALL_MAX_BINS, std.get("max_bins", SMALL_MAX_BINS)),
        max_target_bins=min(SMALL_TARGET_BINS, std.get("max_target_bins", SMALL_TARGET_BINS)),
        min_bins=SMALL_MIN_BINS,
        domain_share=SMALL_DOMAIN_SHARE,
        target_share=SMALL_TARGET_SHARE,
        anchor_share=SMALL_ANCHOR_SHARE,
        select_share=SMALL_SELECT_SHARE,
        max_edges=0 if s < SMALL_CLIQUE_SIGNAL else int(s // SIGNAL_PER_EDGE),
        tail_share=SMALL_TAIL_SHARE if many else 0.0,
        tail_trigger=FOLD_WARN_SHARE,
        focus=focus,
        focus_share=SMALL_FOCUS_SHARE if focus else 0.0,
        grow=SMALL_SHAPED_GROW if many else SMALL_GROW,
        sub_pieces=SUB_PIECES if many else SMALL_SUB_PIECES,
        categorical_weight=SMALL_CATEGORICAL_WEIGHT,
        iters=min(SMALL_ITERS, iters) if many or s >= SMALL_FOCUS_SIGNAL else iters,
        too_small=too_small,
        epsilon_needed=needed,
    )


def too_small_warning(regime: Regime, epsilon: float, n_columns: int) -> str | None:
    """The fit's warning when the table is too small for its epsilon (post-processing)."""
    if not regime.too_small:
        return None
    if regime.epsilon_needed is None:
        return (
            f"the table is too small for epsilon {epsilon:g}: its DP row estimate is below one row (the estimate's "
            "noise is larger than the table), so no epsilon can be named; the synthetic rows will carry little of "
            "the data's structure"
        )
    need = (
        f"it would need epsilon {regime.epsilon_needed:.2g}"
        if regime.epsilon_needed <= 10
        else f"it would need epsilon {regime.epsilon_needed:.2g}, above the largest allowed (10)"
    )
    return (
        f"the table is too small for epsilon {epsilon:g}: about {regime.rows_estimate:,.0f} rows (a DP estimate) "
        f"for {n_columns} columns leave the measurements mostly noise; {need} (or more rows, or fewer columns); "
        "the synthetic rows will carry little of the data's structure"
    )
