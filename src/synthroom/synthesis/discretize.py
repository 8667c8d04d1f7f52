"""DP discretisation: which values each column may take, learned under the accountant.

* Categorical: :mod:`.selection` (a declared or template-given list is public and used as is;
  otherwise Gaussian partition selection, so a value held by one or a few rows never reaches the
  output; every value not kept folds into one ``other`` value). A missing value is a category
  like any other (kept if its noisy count passes).
* Numerical and datetime: a noisy histogram of the column on a fixed public grid of coarse cells
  (:mod:`synthroom.engine.grid`), keeping the cells whose noisy count clears a threshold set so
  that on average fewer than 0.05 empty cells pass; then a second noisy histogram of the kept
  cells cut into fine pieces (see :func:`learn_numeric`). Bins are runs of pieces holding about
  ``1/n_bins`` of the noisy mass each (DP quantiles, as post-processing). Values are drawn back
  inside their bin, piece by piece in proportion to the noisy counts and uniformly within a
  piece, so outputs are not visibly bucketed. Declared ``min``/``max`` clip values first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtri

from ..engine import CountingSource, NumericCoding, Pieces
from ..engine.grid import DATE_GRID, DAY, LOG_GRID, Grid
from ..engine.types import integer_float_range, is_integer
from ..errors import InputError
from ..privacy import ZCDPAccountant, faults
from ..privacy.noise import Noise
from ..privacy.mechanisms import gaussian_counts
from ..schema import ColumnSpec
from .selection import CategoricalColumn, learn_categorical  # noqa: F401 - re-exported: the domains' one entry point

# Expected number of empty grid cells that pass the threshold by noise alone.
PHANTOM_CELLS = 0.05
# Share of a numeric column's budget for the grid histogram; the rest refines the kept cells.
COARSE_SHARE = 0.5
MAX_INTEGER_PIECES = 32
MIN_BINS = 4
PIECE_THRESHOLD = 2.0  # in noise standard deviations
# A piece of a run of kept cells that only noise filled stands out with at most this probability (_phantom_cells).
PHANTOM_PIECE = 0.005
SUB_PIECES = 16
GAP_SPLIT = 0.25  # of a bin's mass: a separate value after it opens a bin (_group_pieces)
# The small regime (``grow`` > 0): runs of this many consecutive grid cells are also tested, each
# as one count (see :func:`runs`), so a column spread over several octaves, none of which clears
# the threshold alone, still gets its range.
RUNS = (2, 4, 8)
# A month column (``hierarchy: month``): one bin per month up to this many (50 years), then runs.
MONTH_BINS = 600


@dataclass
class NumericColumn:
    """A numeric (or datetime) column's bins, each a set of weighted value pieces ``[lo, hi)``."""

    name: str
    kind: str
    coding: NumericCoding
    bin_lo: list[np.ndarray]
    bin_hi: list[np.ndarray]
    bin_weights: list[np.ndarray]
    missing_bin: int | None
    integer: bool
    storage_type: str
    noisy_rows: float | None = None  # DP estimate of the row count
    range_learned: bool = True  # False: no range stood out from the noise; values are placeholders

    @property
    def size(self) -> int:
        return self.coding.size

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw a value for each code: a piece by its weight, then uniformly inside the piece."""
        codes = np.asarray(codes, dtype=np.int64)
        out = np.full(codes.shape, np.nan)
        for b in np.unique(codes):
            if b == self.missing_bin:
                continue
            rows = np.flatnonzero(codes == b)
            pick = rng.choice(len(self.bin_weights[b]), size=len(rows), p=self.bin_weights[b])
            lo, hi = self.bin_lo[b][pick], self.bin_hi[b][pick]
            if self.integer:
                first, last = np.ceil(lo), np.ceil(hi) - 1.0
                has_int = last >= first
                span = np.where(has_int, last - first + 1, 1)
                draw = first + np.floor(rng.random(len(rows)) * span)
                out[rows] = np.where(has_int, draw, np.round((lo + hi) / 2))
            else:
                out[rows] = lo + rng.random(len(rows)) * (hi - lo)
        if self.coding.clip is not None:
            out = np.clip(out, *self.coding.clip)
        return out


@dataclass(frozen=True)
class _Coarse:
    """Level 1's output: the kept grid cells (ascending, missing apart), their noisy counts and the
    noise std, whether missing values were kept (and their noisy count), whether a range stood out."""

    cells: np.ndarray
    mass: np.ndarray
    sigma: float
    missing_kept: bool
    missing_mass: float
    range_learned: bool


def learn_numeric(
    source: CountingSource,
    spec: ColumnSpec,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
    max_bins: int,
    noise_scale: float,
    *,
    min_bins: int = MIN_BINS,
    grow: float = 0.0,
    sub_pieces: int = SUB_PIECES,
    gap_split: float = 0.0,
    shaped: bool = False,
) -> NumericColumn:
    """Bins for a numerical/datetime column from two noisy histograms (``min_bins``: the fewest;
    ``grow`` and ``sub_pieces``: the small-table regime's, see :func:`grown` and below;
    ``gap_split``: see :func:`_group_pieces`; the standard regime's is :data:`GAP_SPLIT`;
    ``shaped``: each cell's pieces as a line plus the pieces that stand out from it, see
    :func:`_shaped`, instead of the thresholded noisy counts).

    The number of bins adapts to the noise the model's marginals will carry (``noise_scale``,
    the std of one measured cell): ``sqrt(n / (4 * noise_scale))`` bins for a column whose noisy
    row count is ``n``, between 4 and ``max_bins``, so that a clique of two such columns and the
    target keeps far more rows than noise in each cell.

    Level 1 (``COARSE_SHARE`` of ``rho``): every cell of the public grid (octaves, or years),
    thresholded; only the cells that clear it are modelled. Level 2 (the rest): each kept cell
    cut into pieces (each integer, for an integer column with at most ``MAX_INTEGER_PIECES`` in
    the cell; with the standard ``sub_pieces``, each unit ``[k, k + 1)`` for a cell of more than
    ``SUB_PIECES`` and at most ``MAX_INTEGER_PIECES`` units, such as [32, 64), so that whole
    numbers read as text from a CSV keep their place; else ``sub_pieces`` equal parts). The
    pieces depend only on level 1's output, so
    level 2 is a plain Gaussian mechanism on a public domain. Each cell's noisy piece counts are
    projected onto the non-negative vectors summing to the cell's estimated total (which zeroes
    pieces that only noise filled). Bins are runs of pieces holding about ``1/n_bins`` of the
    mass each; a piece heavier than that (a point mass such as "0" or "40 hours") is a bin alone,
    and the mass beside such point masses is then cut as a column of its own would be
    (:func:`_bin_share`).
    """
    stype = source.storage_type(spec.name)
    # declared, or the file's declared type
    integer = spec.integer if spec.integer is not None else (spec.kind == "numerical" and is_integer(stype))
    integers = integer_float_range(stype) if integer else None  # public: what the storage type holds
    grid, clip = grid_and_clip(spec, integers)
    coarse = _coarse_cells(source, spec, accountant, noise, COARSE_SHARE * rho, grid, clip, grow)
    pieces, piece_lo, piece_hi = _pieces(grid, coarse.cells, integer, sub_pieces, units=shaped)
    fine, sigma2 = gaussian_counts(
        accountant,
        noise,
        source.piece_counts(spec.name, grid, clip, pieces),
        (1 - COARSE_SHARE) * rho,
        step=f"fine histogram of {spec.name!r} inside its kept cells",
    )
    bounds = np.concatenate([[0], np.cumsum(np.asarray(pieces.nsub)[coarse.cells])])
    # Only cells level 1 kept can be phantoms: the placeholder of a column with no range is not one.
    phantom = _phantom_cells(coarse.cells, fine, sigma2, bounds) & coarse.range_learned
    if phantom.all():
        # Level 1 kept only cells that level 2 shows to be noise (an 800-row table's dates, whose
        # years none cleared level 1, were all drawn in 2095): as if it had kept none.
        coarse = _no_range(grid, clip, coarse)
        pieces, piece_lo, piece_hi = _pieces(grid, coarse.cells, integer, sub_pieces, units=shaped)
        bounds = np.concatenate([[0], np.cumsum(np.asarray(pieces.nsub)[coarse.cells])])
        piece_mass = np.full(bounds[-1], 1.0 / bounds[-1])
    else:
        piece_mass = _piece_masses(coarse, fine, sigma2, bounds, phantom, piece_hi - piece_lo if shaped else None)
    n_bins = int(np.clip(round(np.sqrt(piece_mass.sum() / (4.0 * noise_scale))), min_bins, max_bins))
    groups = _group_pieces(piece_mass, n_bins, gap_split, share=_bin_share(piece_mass, n_bins, noise_scale))
    coding = _bin_coding(grid, clip, pieces, coarse, groups, piece_mass, bounds)
    return NumericColumn(
        spec.name,
        spec.kind,
        coding,
        [piece_lo[g] for g in groups],
        [piece_hi[g] for g in groups],
        # (shaped pieces are smoothed already: shrinking them toward flat would undo it)
        [
            _normalise(piece_mass[g] if shaped else _shrunk(piece_mass[g], piece_hi[g] - piece_lo[g], sigma2))
            for g in groups
        ],
        len(groups) if coarse.missing_kept else None,
        integer,
        stype,
        float(piece_mass.sum() + coarse.missing_mass),
        coarse.range_learned,
    )


def learn_months(
    source: CountingSource,
    spec: ColumnSpec,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
    *,
    grow: float = 0.0,
) -> NumericColumn:
    """A datetime column whose month is a public hierarchy level (``hierarchy: month``): level 1 of
    :func:`learn_numeric` (the noisy histogram on the public year grid, at ``COARSE_SHARE`` of
    ``rho``; the rest stays in the budget for the marginals), then no second histogram: each kept
    cell is cut into whole UTC days (public: they depend only on level 1's output) and the days'
    calendar months are the column's bins (:func:`month_bins`; the noisy year counts spread evenly
    over their days until :func:`.hierarchy.measure_days` weighs each day with the noisy (day,
    month) table and builds the bins again from it). One bin per month, whatever the size
    regime's bin cap (up to :data:`MONTH_BINS`): a month's share and its ties to the other columns
    are what the level is for, and a month shares a bin only at the price of its share within the
    bin coming from the day table, whose month totals carry the noise of 28 to 31 days."""
    stype = source.storage_type(spec.name)
    grid, clip = grid_and_clip(spec)
    coarse = _coarse_cells(source, spec, accountant, noise, COARSE_SHARE * rho, grid, clip, grow)
    pieces = _day_pieces(grid, coarse.cells)
    nsub = np.asarray(pieces.nsub)[coarse.cells]
    piece_mass = np.repeat(np.maximum(coarse.mass, 0.0) / nsub, nsub)
    days, _ = column_days(pieces, clip)
    day_mass = np.zeros(days.size)
    np.add.at(day_mass, np.searchsorted(days, piece_days(pieces)), piece_mass)
    base = NumericColumn(
        spec.name,
        spec.kind,
        NumericCoding(grid, pieces, (), (), clip, 0),
        [],
        [],
        [],
        0 if coarse.missing_kept else None,
        False,
        stype,
        float(piece_mass.sum() + coarse.missing_mass),
        coarse.range_learned,
    )
    return month_bins(base, day_mass)


def column_days(pieces: Pieces, clip: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """The days of a month column's pieces (each once, ascending) and which lie within ``clip``."""
    days = np.unique(piece_days(pieces))
    inside = np.ones(days.size, dtype=bool) if clip is None else (days * DAY + DAY > clip[0]) & (days * DAY <= clip[1])
    return days, inside


def month_bins(column: NumericColumn, day_mass: np.ndarray) -> NumericColumn:
    """``column`` (a month column: its coding's day pieces, clip and missing values are kept) with
    its calendar months as bins, the days within them weighted by ``day_mass`` (one entry per day
    of :func:`column_days`): the months with a day within the public bounds, one bin each when
    there are at most :data:`MONTH_BINS`, else runs of whole months of about equal mass. A piece
    of a month outside the bounds (it holds no value) goes with the nearest month. Post-processing
    of the noisy masses."""
    coding = column.coding
    pieces, clip = coding.pieces, coding.clip
    days, inside = column_days(pieces, clip)
    day_month = month_of(days)
    months = np.unique(day_month[inside]) if inside.any() else np.unique(day_month)
    month_index = np.clip(np.searchsorted(months, day_month), 0, months.size - 1)
    mass = np.maximum(np.asarray(day_mass, dtype=float), 0.0)
    month_mass = np.bincount(month_index, weights=mass, minlength=months.size)
    if months.size <= MONTH_BINS:
        groups = [np.array([m]) for m in range(months.size)]
    else:
        groups = _group_pieces(month_mass, MONTH_BINS)
    month_bin = np.empty(months.size, dtype=np.int64)
    for b, g in enumerate(groups):
        month_bin[g] = b
    day_bin = month_bin[month_index]
    piece_to_bin = day_bin[np.searchsorted(days, piece_days(pieces))]
    cells = np.flatnonzero(np.asarray(pieces.nsub) > 0)
    bounds = np.concatenate([[0], np.cumsum(np.asarray(pieces.nsub)[cells])])
    missing_bin = len(groups) if column.missing_bin is not None else None
    lookup = _cell_lookup(
        coding.grid,
        cells,
        piece_to_bin[bounds[:-1]],
        piece_to_bin[bounds[1:] - 1],
        missing_bin,
        np.bincount(day_bin, weights=mass, minlength=len(groups)),
    )
    new = NumericCoding(
        coding.grid,
        pieces,
        tuple(int(b) for b in piece_to_bin),
        tuple(int(b) for b in lookup),
        clip,
        len(groups) + (missing_bin is not None),
    )
    ok = inside if inside.any() else np.ones(days.size, dtype=bool)
    own = [np.isin(day_month, months[g]) & ok for g in groups]
    return replace(
        column,
        coding=new,
        bin_lo=[days[k] * DAY for k in own],
        bin_hi=[days[k] * DAY + DAY for k in own],
        bin_weights=[_normalise(mass[k]) for k in own],
        missing_bin=missing_bin,
    )


def _day_pieces(grid: Grid, cells: np.ndarray) -> Pieces:
    """The kept cells cut into whole UTC days: from the midnight at or before a cell's start to the
    day holding its end (a day that two cells share is a piece of each)."""
    origin, step, nsub = np.zeros(grid.size), np.zeros(grid.size), np.zeros(grid.size, dtype=np.int64)
    lo, hi = grid.bounds(cells)
    start = np.floor(lo / DAY) * DAY
    origin[cells], step[cells] = start, DAY
    nsub[cells] = np.ceil((hi - start) / DAY).astype(np.int64)
    return Pieces(tuple(origin.tolist()), tuple(step.tolist()), tuple(int(n) for n in nsub))


def piece_days(pieces: Pieces) -> np.ndarray:
    """The day (since 1970-01-01) of each flat piece of day-cut cells (see :func:`learn_months`)."""
    cut = np.flatnonzero(np.asarray(pieces.nsub) > 0)
    origin, nsub = np.asarray(pieces.origin)[cut], np.asarray(pieces.nsub)[cut]
    if not cut.size:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.round(o / DAY) + np.arange(n) for o, n in zip(origin, nsub)]).astype(np.int64)


def month_of(day: np.ndarray) -> np.ndarray:
    """The calendar month (months since 1970-01) of each day (days since 1970-01-01)."""
    return np.asarray(day, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _coarse_cells(
    source: CountingSource,
    spec: ColumnSpec,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
    grid: Grid,
    clip: tuple[float, float] | None,
    grow: float = 0.0,
) -> _Coarse:
    """Level 1 of :func:`learn_numeric` on ``rho``: the kept cells, sorted, missing values apart."""
    kept, mass, sigma1 = _kept_cells(source, spec, accountant, noise, rho, clip, grow)
    missing_kept = grid.missing in kept
    cells, cell_mass = kept[kept != grid.missing], mass[kept != grid.missing]
    missing_mass = mass[kept == grid.missing].sum() if missing_kept else 0.0
    coarse = _Coarse(cells, cell_mass, sigma1, missing_kept, missing_mass, True)
    if not cells.size:
        return _no_range(grid, clip, coarse)
    order = np.argsort(cells)
    return replace(coarse, cells=cells[order], mass=cell_mass[order])


def _no_range(grid: Grid, clip: tuple[float, float] | None, coarse: _Coarse) -> _Coarse:
    """Level 1's output when no value range stood out from the noise (too few rows for this
    budget), or only missing values did: the largest noisy cell would then be a random cell of
    the public grid (values up to 2^63), so a single data-independent cell around zero (or the
    declared bound nearest to it) is modelled instead, and the fit warns about it."""
    cells = grid.cell_of(np.array([0.0 if clip is None else float(np.clip(0.0, *clip))]))
    return replace(coarse, cells=cells, mass=np.array([1.0]), range_learned=False)


def _piece_masses(
    coarse: _Coarse,
    fine: np.ndarray,
    sigma2: float,
    bounds: np.ndarray,
    phantom: np.ndarray,
    width: "np.ndarray | None" = None,
) -> np.ndarray:
    """Level 2's noisy piece counts (cell ``i``'s pieces are ``fine[bounds[i]:bounds[i+1]]``),
    each cell's projected onto the non-negative vectors summing to its estimated total (with the
    pieces' ``width``, the shaped pieces: :func:`_smoothed`'s density over each run of adjacent
    cells, scaled to the run's total), except a ``phantom`` cell's (:func:`_phantom_cells`),
    which get no mass."""
    piece_mass = np.zeros(bounds[-1])
    totals = np.zeros(coarse.cells.size)
    for i in range(coarse.cells.size):
        y = fine[bounds[i] : bounds[i + 1]]
        # Inverse-variance combination of the cell's two total estimates.
        w1, w2 = 1 / coarse.sigma**2, 1 / (y.size * sigma2**2)
        totals[i] = max((w1 * coarse.mass[i] + w2 * y.sum()) / (w1 + w2), 1.0)
    if width is not None:
        return _smoothed(coarse, fine, sigma2, bounds, phantom, width, totals)
    for i in range(coarse.cells.size):
        if phantom[i]:
            continue
        y, total = fine[bounds[i] : bounds[i + 1]], totals[i]
        # Pieces noise alone could fill are zeroed; if none is left the cell is spread evenly.
        y = np.where(y > PIECE_THRESHOLD * sigma2, y, 0.0)
        if not y.any():
            y = np.ones(y.size)
        piece_mass[bounds[i] : bounds[i + 1]] = _project_to_total(y, total)
    return piece_mass


def _smoothed(
    coarse: _Coarse,
    fine: np.ndarray,
    sigma2: float,
    bounds: np.ndarray,
    phantom: np.ndarray,
    width: np.ndarray,
    totals: np.ndarray,
) -> np.ndarray:
    """The shaped pieces' masses: over each run of adjacent kept cells on the grid (a phantom
    cell ends a run and gets no mass), a smooth density plus the pieces that stand out from it
    (:func:`_smooth_shape`): the standouts keep their noisy counts and the smooth part is scaled
    to the rest of the run's estimated total (``totals``: each cell's). The exact-zero cell (a
    point piece) is a run alone. One density across a run's cells, not a line per cell: a cell's slope is then
    read from its neighbours too (Adult's ages 32-63 fall towards the few rows of 64-127), where
    a line through one cell's noisy pieces (hundreds of rows of noise on each at epsilon 0.1)
    leaned either way. Post-processing of the noisy counts."""
    out = np.zeros(bounds[-1])
    z = standout(fine.size)  # a piece stands out above this many noise stds
    cell_mass, cell_sigma = coarse.mass, coarse.sigma
    point = np.array([not (width[bounds[i] : bounds[i + 1]] > 0).all() for i in range(phantom.size)], dtype=bool)
    spread = np.flatnonzero(~phantom & ~point)  # the exact-zero cell (a point piece) is a run alone
    runs = [[int(i)] for i in np.flatnonzero(~phantom & point)]
    runs += [spread[r].tolist() for r in _cell_runs(coarse.cells[spread])]
    for run in runs:
        if bounds[run[-1] + 1] - bounds[run[0]] > MAX_SMOOTHED:  # too many to solve at once: cell by cell
            for i in run:
                piece = slice(bounds[i], bounds[i + 1])
                shape = _shaped(fine[piece], z * sigma2, sigma2)
                out[piece] = shape * (totals[i] / shape.sum())
            continue
        idx = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in run])
        cut = np.concatenate([[0], np.cumsum([bounds[i + 1] - bounds[i] for i in run])])
        shape, spike = _smooth_shape(fine[idx], width[idx], z * sigma2, sigma2, (cut, cell_mass[run], cell_sigma))
        # the run's estimated total: the standouts keep their noisy counts, the smooth part the rest
        rest = totals[run].sum() - shape[spike].sum()
        smooth = shape[~spike].sum()
        out[idx] = np.where(spike, shape, shape * (rest / smooth if rest > 0 and smooth > 0 else 1.0))
    return out


# The smoothing strengths tried (times the ratio of the data term's trace to the penalty's)
SMOOTHING = 10.0 ** np.arange(-3.0, 7.5, 0.5)
# The most pieces one smooth density spans (each strength solves a dense system of that size); a
# longer run of cells (decades of dates cut into days' pieces) is read cell by cell (_shaped).
MAX_SMOOTHED = 256


def _smooth_shape(
    y: np.ndarray, width: np.ndarray, above: float, noise: float, cells: "tuple[np.ndarray, np.ndarray, float]"
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy piece counts ``y`` (in value order, pieces of ``width``) as a smooth density plus the
    pieces that stand out from it (more than ``above`` over the smooth fit to the others, found in
    turn, as in :func:`_shaped`). The density per unit minimises the squared misfit, in noise
    stds, to the pieces' counts (std ``noise``) and to their cells' level-1 counts (``cells``: the
    cells' first pieces' offsets, then one more, their noisy counts and that noise's std) plus a
    penalty on its second differences (a Whittaker smoother, in piece order), its strength chosen
    among :data:`SMOOTHING` by Mallows' Cp (the misfit plus twice the fit's degrees of freedom: an
    unbiased estimate of its error, the noise being Gaussian of known std). The strongest
    smoothing is a straight line of density. Returns the shape (non-negative, not all zero) and
    which pieces stand out. Post-processing of the noisy counts."""
    n = y.size
    if n <= 3:
        return _shaped(y, above, noise), np.zeros(n, dtype=bool)
    penalty = np.diff(np.eye(n), 2, axis=0)
    penalty = penalty.T @ penalty
    cut, mass, sigma = cells
    sums = np.zeros((cut.size - 1, n))
    for k in range(cut.size - 1):
        sums[k, cut[k] : cut[k + 1]] = width[cut[k] : cut[k + 1]] / sigma

    def fit(out: np.ndarray, strengths: np.ndarray) -> np.ndarray:
        rest = ~out
        pieces = width[rest, None] * np.eye(n)[rest] / noise  # counts = width * density, in noise stds
        design = np.vstack([pieces, sums])
        observed = np.concatenate([y[rest] / noise, (mass - _spikes(y, out, cut)) / sigma])
        return width * _whittaker(design, observed, penalty, strengths)

    # The standouts against the smoothest fit (a line of density through the others, found in
    # turn): at the strength Cp picks, a fit through a spike would follow it and hide it.
    out = np.zeros(n, dtype=bool)
    for _ in range(n):
        if (~out).sum() < 3:
            break
        new = y - fit(out, SMOOTHING[-1:]) > above
        if (new == out).all():
            break
        out = new
    base = np.maximum(fit(out, SMOOTHING) if (~out).sum() >= 3 else np.zeros(n), 0.0)
    shape = np.where(out, np.maximum(y, base), base)
    return (shape, out) if shape.sum() > 0 else (np.ones(n), np.zeros(n, dtype=bool))


def _spikes(y: np.ndarray, out: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Each cell's noisy mass on its standout pieces (taken out of its level-1 count before the fit)."""
    return np.array([float(y[cut[k] : cut[k + 1]][out[cut[k] : cut[k + 1]]].sum()) for k in range(cut.size - 1)])


def _whittaker(design: np.ndarray, observed: np.ndarray, penalty: np.ndarray, strengths: np.ndarray) -> np.ndarray:
    """The penalised least-squares solution (observations in noise stds), its strength among
    ``strengths`` (times the data term's trace over the penalty's) by Mallows' Cp."""
    gram, target = design.T @ design, design.T @ observed
    scale = np.trace(gram) / np.trace(penalty)
    best, best_cp = np.zeros(design.shape[1]), np.inf
    for strength in strengths * scale:
        system = gram + strength * penalty
        solution = np.linalg.solve(system, target)
        dof = float(np.trace(np.linalg.solve(system, gram)))
        cp = float(((observed - design @ solution) ** 2).sum()) + 2.0 * dof
        if cp < best_cp:
            best, best_cp = solution, cp
    return best


def _shaped(y: np.ndarray, above: float, noise: float = 0.0) -> np.ndarray:
    """A cell's noisy piece counts ``y`` (in value order) as a straight line (least squares, no
    negative part) plus the pieces that stand out from it: more than ``above`` over the line fitted
    to the others (found in turn: a line through a spike leans towards it). Non-negative, not
    all zero; post-processing of the noisy counts.

    The small regime's noise on a piece (hundreds of rows at epsilon 0.1) is about what a year of
    age holds: thresholded piece by piece, a smooth column's mass lands on the few pieces noise
    lifted, and drawn uniformly over 4 coarse pieces, a point mass (40 hours a week, 9 or 13
    years of school) is spread over its whole piece. The line reads the cell's level and slope
    from all of its pieces; a point mass far above it keeps its own piece. The slope is shrunk
    toward flat as far as ``noise`` (a piece's noise std) explains it (:func:`_shrunk_slope`): in
    a cell of few rows (Adult's ages 64-127 at epsilon 0.1, about 90 rows a piece against 770 of
    noise) a noisy slope, cut off at zero, put most of the cell's rows at one end (ages 100-127),
    and in a cell of whole numbers it left 14 and 15 years of school no rows at all."""
    n = y.size
    if n <= 2:
        shape = np.maximum(y, 0.0)
        return shape if shape.sum() > 0 else np.ones(n)
    x = np.arange(n) - (n - 1) / 2.0
    out = np.zeros(n, dtype=bool)
    for _ in range(n):
        rest = ~out
        if rest.sum() >= 2:
            slope, level = np.polyfit(x[rest], y[rest], 1)
            slope = _shrunk_slope(slope, x[rest], noise)
            level = float(np.mean(y[rest] - slope * x[rest]))
        else:
            slope, level = 0.0, float(y[rest].sum())
        line = level + slope * x
        new = y - line > above
        if (new == out).all():
            break
        out = new
    base = np.maximum(line, 0.0)
    shape = np.where(out, np.maximum(y, base), base)
    return shape if shape.sum() > 0 else np.ones(n)


def _shrunk_slope(slope: float, x: np.ndarray, noise: float) -> float:
    """A least-squares slope over positions ``x`` shrunk toward zero as far as noise of std
    ``noise`` on each point explains it (positive-part James-Stein on one coefficient: the factor
    ``1 - se^2 / slope^2``, ``se = noise / sqrt(sum (x - mean)^2)``, at least 0). Post-processing."""
    spread = float(((x - x.mean()) ** 2).sum())
    if noise <= 0 or spread <= 0 or slope == 0:
        return float(slope)
    return float(slope) * max(0.0, 1.0 - noise**2 / spread / float(slope) ** 2)


def _phantom_cells(cells: np.ndarray, fine: np.ndarray, sigma2: float, bounds: np.ndarray) -> np.ndarray:
    """Which kept cells level 2 shows to be noise. Each run of adjacent kept cells on the grid is
    judged as one, except the column's body (the run of the largest level-2 sum, when it holds
    more than one cell: a real range spread thin over many cells, each under the threshold, is
    kept on level 1's evidence): a run is noise when its pieces' sum (a second noisy count,
    independent of level 1's test) is below ``PIECE_THRESHOLD`` of its std and none of its pieces
    stands out (above :func:`standout`, what the largest of that many noisy pieces reaches with
    probability ``PHANTOM_PIECE``).

    Level 1 lets about ``PHANTOM_CELLS`` empty cells through per column, anywhere on the grid
    (an octave near -2^58 for a column of school years), and the small regime's runs can keep
    adjacent empty cells together; without this, their few hundred noisy rows would be drawn
    there (seeded Adult fits at 2,000 rows drew 9% of ages near 2e19, others ages near 0.0005).
    A run of noise passes both tests with probability about 0.03. A real run fails both only
    when it holds under about ``PIECE_THRESHOLD * sqrt(pieces)`` noise stds of rows away from
    the column's body and no point mass in it clears the standout; its rows are then drawn in the
    nearest kept cell's bin. When every cell goes, the column has no range learned
    (:func:`learn_numeric`: as when level 1 keeps none, and the fit warns). Post-processing of
    the two noisy histograms."""
    members = _cell_runs(np.asarray(cells))
    pieces = [np.concatenate([fine[bounds[i] : bounds[i + 1]] for i in cells_of]) for cells_of in members]
    body = int(np.argmax([y.sum() for y in pieces])) if pieces else -1
    out = np.zeros(len(cells), dtype=bool)
    for r, (cells_of, y) in enumerate(zip(members, pieces)):
        if r == body and cells_of.size > 1:
            continue
        quiet = not (y > standout(y.size, PHANTOM_PIECE) * sigma2).any()
        out[cells_of] = quiet and y.sum() < PIECE_THRESHOLD * np.sqrt(y.size) * sigma2
    return out


def _cell_runs(cells: np.ndarray) -> list[np.ndarray]:
    """The runs of adjacent grid cells among ``cells`` (grid indices): each run as the positions
    in ``cells`` of its members, in ascending grid order."""
    order = np.argsort(cells, kind="stable")
    breaks = np.flatnonzero(np.diff(cells[order]) != 1) + 1
    return [run for run in np.split(order, breaks) if run.size]


def standout(tests: int, chance: float = PHANTOM_CELLS) -> float:
    """In noise stds: the threshold that the largest of ``tests`` draws of pure Gaussian noise
    exceeds with probability at most ``chance`` (a union bound; by default: on average fewer
    than ``PHANTOM_CELLS`` of them pass). Every "stands out from the noise" test here uses it."""
    return float(-ndtri(chance / max(tests, 1)))


def _bin_coding(
    grid: Grid,
    clip: tuple[float, float] | None,
    pieces: Pieces,
    coarse: _Coarse,
    groups: list[np.ndarray],
    piece_mass: np.ndarray,
    bounds: np.ndarray,
) -> NumericCoding:
    """How the engine maps values to bins: each piece's bin, each grid cell's (via its pieces),
    and the missing values' bin (after the others) when level 1 kept them."""
    piece_to_bin = np.empty(piece_mass.size, dtype=np.int64)
    for b, g in enumerate(groups):
        piece_to_bin[g] = b
    bin_mass = np.array([piece_mass[g].sum() for g in groups])
    missing_bin = len(groups) if coarse.missing_kept else None
    cell_to_bin = _cell_lookup(
        grid, coarse.cells, piece_to_bin[bounds[:-1]], piece_to_bin[bounds[1:] - 1], missing_bin, bin_mass
    )
    return NumericCoding(
        grid,
        pieces,
        tuple(int(b) for b in piece_to_bin),
        tuple(int(b) for b in cell_to_bin),
        clip,
        len(groups) + int(coarse.missing_kept),
    )


def _kept_cells(
    source: CountingSource,
    spec: ColumnSpec,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
    clip: tuple[float, float] | None,
    grow: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Level 1 of :func:`learn_numeric`: the grid cells whose noisy count clears the threshold
    (then, with ``grow`` > 0, :func:`grown`), their noisy counts and the noise scale. Cells outside
    ``clip`` (what an integer column's storage type holds: only noise could fill them) are
    dropped, as post-processing."""
    counts, possible, noisy, sigma1 = grid_histogram(source, spec, accountant, noise, rho)
    tau = sigma1 * standout(len(possible))
    allowed = np.isin(possible, _possible_cells(grid_and_clip(spec)[0], clip))
    inside = allowed & (noisy > tau)
    if grow > 0:
        missing = grid_and_clip(spec)[0].missing
        inside = runs(possible, noisy, inside, allowed & (possible != missing), sigma1)
        inside = grown(possible, noisy, inside, allowed & (possible != missing), grow * sigma1)
    if faults.active("numeric_bounds_from_data", accountant):  # test-only switch, see faults
        inside = counts[possible] > 0
        return possible[inside], counts[possible][inside].astype(float), sigma1
    return possible[inside], noisy[inside], sigma1


def runs(possible: np.ndarray, noisy: np.ndarray, kept: np.ndarray, allowed: np.ndarray, sigma: float) -> np.ndarray:
    """``kept`` widened by runs of ``w`` consecutive grid cells (``w`` in :data:`RUNS`), none
    kept yet, whose noisy counts sum above ``z sqrt(w) sigma``, the run of the highest sum in
    its noise stds first (so overlapping runs are not all kept: one, then the next among the
    cells still free): the sum of
    ``w`` noisy cells has noise std ``sqrt(w) sigma``, and ``z`` is set so that on average fewer
    than ``PHANTOM_CELLS`` runs of empty cells pass, over all the runs tested (the cells' own
    test allows as many). A 1,000-row money column spread over six octaves of 80-250 rows has
    no octave above the threshold (about 3.5 noise stds; 93 rows a std at epsilon 1 on 21
    columns), and without this kept no range at all: its values were placeholders, and the
    column that carried the table's predictive lift was one bin. A run that clears only because
    of one strong cell would have that cell kept already, so a run passes on mass spread over
    its cells. Post-processing of the noisy histogram: no cost."""
    keep = kept.copy()
    step = np.concatenate([np.diff(possible) == 1, [False]])  # cell i and i + 1 are consecutive
    sizes = [w for w in RUNS if w <= possible.size]
    z = standout(sum(possible.size - w + 1 for w in sizes))
    windows = np.lib.stride_tricks.sliding_window_view
    while True:  # the run of highest standardized sum first, then the next among cells still free
        best, best_w, best_i = z, 0, 0
        for w in sizes:
            ok = windows(step, w)[:, :-1].all(axis=1) & windows(allowed & ~keep, w).all(axis=1)
            score = np.where(ok, windows(noisy, w).sum(axis=1) / (np.sqrt(w) * sigma), -np.inf)
            if score.max() > best:
                best, best_w, best_i = float(score.max()), w, int(score.argmax())
        if not best_w:
            return keep
        keep[best_i : best_i + best_w] = True


def grown(possible: np.ndarray, noisy: np.ndarray, kept: np.ndarray, allowed: np.ndarray, low: float) -> np.ndarray:
    """``kept`` widened, one grid cell at a time, to the neighbouring cells (next in value) whose
    noisy count clears the lower threshold ``low``, while any does. A value range is contiguous:
    a cell next to one that stood out is tested alone against ``low`` (two tests per range,
    not one per grid cell), so the small table's tails (an octave of 100-170 rows, which the
    grid-wide threshold drops at sigma 50) are kept at little risk of a phantom cell, and a
    phantom can only sit next to the data. Post-processing of the noisy histogram: no cost."""
    keep = kept.copy()
    step = np.diff(possible) == 1  # consecutive cells of the grid
    while True:
        near, seeds = np.zeros_like(keep), keep & allowed  # (the missing cell grows nothing)
        near[1:] |= seeds[:-1] & step
        near[:-1] |= seeds[1:] & step
        new = near & ~keep & allowed & (noisy > low)
        if not new.any():
            return keep
        keep |= new


def grid_and_clip(
    spec: ColumnSpec,
    integers: tuple[float, float] | None = None,
) -> tuple[Grid, tuple[float, float] | None]:
    """A numeric column's public grid, and its bounds (None when it has none): the declared ones,
    within ``integers``, an integer column's storage range, when given (so no value, not even one
    in a cell that noise alone kept, can fall outside what the output type holds)."""
    grid: Grid = DATE_GRID if spec.kind == "datetime" else LOG_GRID
    lo = -np.inf if spec.min is None else spec.min
    hi = np.inf if spec.max is None else spec.max
    if integers is not None:
        if lo > integers[1] or hi < integers[0]:
            raise InputError(
                f"column {spec.name!r}: the declared min/max lie outside the integers its storage "
                f"type holds ({integers[0]:.0f} to {integers[1]:.0f})"
            )
        lo, hi = max(lo, integers[0]), min(hi, integers[1])
    if lo == -np.inf and hi == np.inf:
        return grid, None
    return grid, (lo, hi)


def grid_histogram(
    source: CountingSource,
    spec: ColumnSpec,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Level 1 of :func:`learn_numeric`: a Gaussian histogram on every possible cell of the public
    grid (one row adds 1 to one cell). Returns the exact counts on the whole grid, the possible
    cells (in order), their noisy counts and the noise scale."""
    grid, clip = grid_and_clip(spec)
    counts = source.grid_counts(spec.name, grid, clip)
    possible = _possible_cells(grid, clip)
    noisy, sigma = gaussian_counts(
        accountant, noise, counts[possible], rho, step=f"histogram of {spec.name!r} on the public grid"
    )
    return counts, possible, noisy, sigma


def _pieces(
    grid: Grid, cells: np.ndarray, integer: bool, sub_pieces: int = SUB_PIECES, *, units: bool = False
) -> tuple[Pieces, np.ndarray, np.ndarray]:
    """How each kept cell is cut for the fine histogram, and each piece's [lo, hi). With ``units``
    (the small regime's shaped pieces), a cell of at most ``sub_pieces`` whole units, such as
    [8, 16), is cut into one piece per unit too, not into fractions of a unit: whole numbers read
    as text from a CSV (school years) then fill every piece, where in half- or quarter-unit pieces
    they left every other piece empty and a line through that comb put a unit's rows in the
    neighbouring unit's piece (Adult at epsilon 0.1: 14 and 15 years of school drawn as 13.5-14)."""
    origin = np.zeros(grid.size)
    step = np.zeros(grid.size)
    nsub = np.zeros(grid.size, dtype=np.int64)
    lo, hi = grid.bounds(cells)
    first, last = grid.integers_in(cells)
    n_int = np.maximum(last - first + 1, 0)
    piece_lo, piece_hi = [], []
    for c, low, h, f, n in zip(cells, lo, hi, first, n_int):
        if h <= low:  # the exact-zero cell: one point piece
            origin[c], step[c], nsub[c] = low, 0.0, 1
            piece_lo.append([low])
            piece_hi.append([low])
            continue
        if integer and 0 < n <= MAX_INTEGER_PIECES:  # one piece per integer, centred on it
            origin[c], step[c], nsub[c] = f - 0.5, 1.0, int(n)
        elif sub_pieces >= SUB_PIECES and low == np.floor(low) and sub_pieces < h - low <= MAX_INTEGER_PIECES:
            # one piece per unit (the small regime's coarse pieces stay coarse)
            origin[c], step[c], nsub[c] = low, 1.0, int(h - low)
        elif units and low == np.floor(low) and h == np.floor(h) and 1 <= h - low <= sub_pieces:
            origin[c], step[c], nsub[c] = low, 1.0, int(h - low)  # one piece per unit in a narrow cell
        else:
            origin[c], step[c], nsub[c] = low, (h - low) / sub_pieces, sub_pieces
        starts = origin[c] + step[c] * np.arange(nsub[c])
        piece_lo.append(starts)
        piece_hi.append(starts + step[c])
    pieces = Pieces(tuple(origin.tolist()), tuple(step.tolist()), tuple(int(n) for n in nsub))
    return pieces, np.concatenate(piece_lo), np.concatenate(piece_hi)


def _shrunk(mass: np.ndarray, width: np.ndarray, sigma: float) -> np.ndarray:
    """A bin's piece masses shrunk toward their mean as far as the noise explains their spread
    (positive-part James-Stein: the factor ``1 - (k - 1) sigma^2 / sum (m - mean)^2`` over the
    bin's ``k`` non-zero pieces). Values are drawn inside a bin by these weights, independently of
    the other columns; where the pieces differ by no more than noise would make them (ages 21-23),
    their noise is what the draw reproduces, and the mean is nearer the truth. Pieces that hold
    nothing stay empty, and a bin whose pieces have different widths keeps its masses.
    Post-processing of the noisy counts."""
    on = mass > 0
    k = int(on.sum())
    if k < 2 or np.ptp(width[on]) > 0:
        return mass
    y = mass[on]
    spread = float(((y - y.mean()) ** 2).sum())
    factor = 0.0 if spread <= 0 else max(0.0, 1.0 - (k - 1) * sigma**2 / spread)
    out = mass.copy()
    out[on] = y.mean() + factor * (y - y.mean())
    return out


def _project_to_total(y: np.ndarray, total: float) -> np.ndarray:
    """Euclidean projection of ``y`` onto {w >= 0, sum(w) = total} (Duchi et al. 2008)."""
    u = np.sort(y)[::-1]
    css = np.cumsum(u) - total
    j = np.arange(1, y.size + 1)
    r = np.flatnonzero(u - css / j > 0)[-1]
    return np.maximum(y - css[r] / (r + 1), 0.0)


def _normalise(w: np.ndarray) -> np.ndarray:
    """Weights summing to 1, from float32-rounded shares (what sampling needs, not the noisy masses' bits)."""
    if not w.sum() > 0:
        return np.full(w.size, 1.0 / w.size)
    shares = np.asarray(w / w.sum(), dtype=np.float32).astype(np.float64)
    return shares / shares.sum()


def _possible_cells(grid: Grid, clip: tuple[float, float] | None) -> np.ndarray:
    """Cells a value can land in: all of them, or those inside public bounds (and missing)."""
    if clip is None:
        return np.arange(grid.size)
    lo, hi = grid.cell_of(np.array([clip[0], clip[1]]))
    return np.union1d(np.arange(lo, hi + 1), [grid.missing])


def _bin_share(mass: np.ndarray, n_bins: int, noise_scale: float) -> float:
    """The mass a bin aims at: ``total / n_bins``; when point masses at least that heavy take bins
    of their own, the rest of the mass is cut as a column of its own would be
    (``sqrt(rest / (4 noise_scale))`` bins), not left the few bins the point masses did not take."""
    share = mass.sum() / max(1, n_bins)
    heavy = mass >= share
    if not heavy.any() or heavy.all():
        return share
    rest = float(mass[~heavy].sum())
    return rest / max(1, round(np.sqrt(rest / (4.0 * noise_scale))))


def _group_pieces(
    mass: np.ndarray, n_bins: int, gap_split: float = 0.0, *, share: float | None = None
) -> list[np.ndarray]:
    """Split value-ordered pieces into runs of about ``total / n_bins`` mass each.

    A piece heavier than that (a point mass) is a bin alone. With ``gap_split`` > 0, a piece after
    an empty one (the next of a column's separate values, such as school years 11 and 12) also
    opens a bin once the current bin holds ``gap_split`` of that mass: values are drawn
    independently of the other columns inside a bin, so two values in one bin lose their own ties
    (education 'Assoc-voc' is education-num 11, never 12). Post-processing of the noisy masses.
    """
    target = mass.sum() / max(1, n_bins) if share is None else share
    groups: list[list[int]] = [[]]
    acc = 0.0
    for i, m in enumerate(mass):
        # Empty pieces never open a bin: they ride along with their neighbours (weight 0).
        after_gap = gap_split > 0 and i > 0 and mass[i - 1] == 0
        if m > 0 and acc > 0 and (m >= target or acc >= target or (after_gap and acc >= gap_split * target)):
            groups.append([])
            acc = 0.0
        groups[-1].append(i)
        acc += m
    return [np.array(g) for g in groups]


def _cell_lookup(
    grid: Grid,
    cells: np.ndarray,
    first_bin: np.ndarray,
    last_bin: np.ndarray,
    missing_bin: int | None,
    bin_mass: np.ndarray,
) -> np.ndarray:
    """Bin for a value in a cell that was not kept: that of the nearest kept cell's nearest piece
    (below the lowest kept cell, its first bin; above the highest, its last)."""
    all_cells = np.arange(grid.size)
    nxt = np.clip(np.searchsorted(cells, all_cells), 0, cells.size - 1)
    prv = np.clip(np.searchsorted(cells, all_cells, side="right") - 1, 0, cells.size - 1)
    below = all_cells < cells[prv]  # no kept cell at or below (``prv`` was clipped to the first)
    use_next = below | (np.abs(cells[nxt] - all_cells) < np.abs(all_cells - cells[prv]))
    lookup = np.where(use_next, first_bin[nxt], last_bin[prv])
    if missing_bin is not None:
        lookup[grid.missing] = missing_bin
    else:  # no missing bin: a missing value is coded as the bin holding the median mass
        lookup[grid.missing] = int(np.searchsorted(np.cumsum(bin_mass) / bin_mass.sum(), 0.5))
    return lookup


def domain_warnings(columns: dict[str, "CategoricalColumn | NumericColumn"], target: str) -> list[str]:
    """What a user must know about the learned domains: columns whose values could not be
    learned at this budget, one line per kind (post-processing of the DP outputs; no extra cost)."""
    no_range = [n for n, c in columns.items() if isinstance(c, NumericColumn) and not c.range_learned]
    no_value = [
        n
        for n, c in columns.items()
        if isinstance(c, CategoricalColumn)
        and c.noisy_rows is not None
        and not c.coding.values
        and c.coding.missing_code is None
    ]
    out = []
    if no_range:
        out.append(
            f"{_which(no_range, target)}: no value range stood out from the DP noise (too few rows for this "
            f"epsilon), so the synthetic values are placeholders near 0; declare min/max or raise epsilon"
        )
    if no_value:
        labels = sorted({columns[n].other_label for n in no_value})  # type: ignore[union-attr]
        out.append(
            f"{_which(no_value, target)}: no value is frequent enough to be released at this epsilon, so "
            f"every synthetic value is {' or '.join(map(repr, labels))}; declare the categories or raise epsilon"
        )
    return out


def _which(names: list[str], target: str) -> str:
    shown = ", ".join(repr(n) + (" (the predictive column)" if n == target else "") for n in names[:6])
    more = f" and {len(names) - 6} more" if len(names) > 6 else ""
    return f"{'column' if len(names) == 1 else 'columns'} {shown}{more}"
