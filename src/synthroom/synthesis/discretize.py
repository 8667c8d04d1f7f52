"""DP discretisation: which values each column may take, learned under the accountant.

* Categorical: a declared category list is public and used as is. Otherwise the categories are
  chosen by Gaussian partition selection (noisy count above a threshold), so a value held by one
  or a few rows never reaches the output; every value not kept folds into one ``other`` value.
  A missing value is a category like any other (kept if its noisy count passes).
* Numerical and datetime: one noisy histogram of the column on a fixed public grid
  (:mod:`synthroom.engine.grid`); cells whose noisy count clears a threshold set so that on
  average fewer than 0.05 empty cells pass are kept. Bins are runs of consecutive kept cells
  holding about ``1/n_bins`` of the noisy mass each (DP quantiles, as post-processing). Values are
  drawn back inside their bin, cell by cell in proportion to the noisy counts and uniformly within
  a cell, so outputs are not visibly bucketed. Declared ``min``/``max`` clip values first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from ..engine import CategoryCoding, CountingSource, NumericCoding
from ..engine.grid import DATE_GRID, LOG_GRID, Grid
from ..privacy import ZCDPAccountant
from ..privacy.mechanisms import gaussian_counts, sigma_for, thresholded_counts
from ..schema import ColumnSpec

# Expected number of empty grid cells that pass the threshold by noise alone.
PHANTOM_CELLS = 0.05
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


@dataclass
class CategoricalColumn:
    """A categorical column's codes and how to turn them back into values."""

    name: str
    coding: CategoryCoding
    other_label: str
    storage_type: str

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


@dataclass
class NumericColumn:
    """A numeric (or datetime) column's bins: runs of grid cells with within-bin weights."""

    name: str
    kind: str
    coding: NumericCoding
    bin_cells: list[np.ndarray]
    bin_weights: list[np.ndarray]
    missing_bin: int | None
    integer: bool
    storage_type: str

    @property
    def size(self) -> int:
        return self.coding.size

    def bin_edges(self) -> list[tuple[float, float]]:
        """(low, high) of every non-missing bin, for reports."""
        out = []
        for cells in self.bin_cells:
            lo, hi = self.coding.grid.bounds(cells)
            out.append((float(np.nanmin(lo)), float(np.nanmax(hi))) if len(cells) else (np.nan, np.nan))
        return out

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64)
        out = np.full(codes.shape, np.nan)
        grid = self.coding.grid
        for b in np.unique(codes):
            if b == self.missing_bin:
                continue
            rows = np.flatnonzero(codes == b)
            cells, weights = self.bin_cells[b], self.bin_weights[b]
            pick = cells[rng.choice(len(cells), size=len(rows), p=weights)]
            lo, hi = grid.bounds(pick)
            if self.integer:
                first, last = grid.integers_in(pick)
                has_int = last >= first
                span = np.where(has_int, last - first + 1, 1)
                draw = first + np.floor(rng.random(len(rows)) * span)
                out[rows] = np.where(has_int, draw, np.round((lo + hi) / 2))
            else:
                out[rows] = lo + rng.random(len(rows)) * (hi - lo)
        if self.coding.clip is not None:
            out = np.clip(out, *self.coding.clip)
        return out


def _other_label(values: list[str]) -> str:
    label = "other"
    while label in values:
        label = "_" + label
    return label


def learn_categorical(
    source: CountingSource,
    spec: ColumnSpec,
    accountant: ZCDPAccountant,
    rng: np.random.Generator,
    rho: float,
    delta: float,
) -> CategoricalColumn:
    """Codes for a categorical column: the declared list, or a DP selection of its values."""
    stype = source.storage_type(spec.name)
    if spec.categories is not None:
        values = list(spec.categories)
        coding = CategoryCoding(tuple(values), len(values), len(values) + 1, len(values) + 2)
        return CategoricalColumn(spec.name, coding, _other_label(values), stype)
    observed, counts = source.category_counts(spec.name)
    noisy, keep, _ = thresholded_counts(
        accountant, rng, counts, rho, delta, step=f"categories of {spec.name!r} (partition selection)"
    )
    order = np.argsort(-noisy, kind="stable")
    kept = [observed[i] for i in order if keep[i]]
    values = [v for v in kept if v is not None]
    missing_code = len(values) if None in kept else None
    other_code = len(values) + (missing_code is not None)
    coding = CategoryCoding(tuple(values), missing_code, other_code, other_code + 1)
    return CategoricalColumn(spec.name, coding, _other_label(values), stype)


def learn_numeric(
    source: CountingSource,
    spec: ColumnSpec,
    accountant: ZCDPAccountant,
    rng: np.random.Generator,
    rho: float,
    n_bins: int,
) -> NumericColumn:
    """Bins for a numerical/datetime column from one noisy histogram on the public grid."""
    grid: Grid = DATE_GRID if spec.kind == "datetime" else LOG_GRID
    clip = None
    if spec.min is not None or spec.max is not None:
        clip = (-np.inf if spec.min is None else spec.min, np.inf if spec.max is None else spec.max)
    counts = source.grid_counts(spec.name, grid, clip)
    possible = _possible_cells(grid, clip)
    noisy, sigma = gaussian_counts(
        accountant, rng, counts[possible], rho, step=f"histogram of {spec.name!r} on the public grid"
    )
    tau = sigma * float(-ndtri(PHANTOM_CELLS / len(possible)))
    kept = possible[noisy > tau]
    mass = noisy[noisy > tau]
    if kept.size == 0:  # nothing clears the threshold: keep the single largest noisy cell
        kept, mass = possible[[int(np.argmax(noisy))]], np.array([1.0])
    missing_kept = grid.missing in kept
    value_cells = kept[kept != grid.missing]
    value_mass = mass[kept != grid.missing]
    if value_cells.size == 0:  # only missing values survive: model a single cell around zero
        fallback = grid.cell_of(np.array([0.0 if clip is None else float(np.clip(0.0, *clip))]))
        value_cells, value_mass = fallback, np.array([1.0])
    bin_cells, bin_weights, bin_mass = _group_cells(value_cells, value_mass, n_bins)
    n_value_bins = len(bin_cells)
    missing_bin = n_value_bins if missing_kept else None
    size = n_value_bins + (missing_kept and 1)
    lookup = _cell_lookup(grid, bin_cells, missing_bin, bin_mass)
    coding = NumericCoding(grid, tuple(int(b) for b in lookup), clip, size)
    stype = source.storage_type(spec.name)
    integer = spec.kind == "numerical" and stype.split("(")[0] in _INTEGER_TYPES
    return NumericColumn(spec.name, spec.kind, coding, bin_cells, bin_weights, missing_bin, integer, stype)


def _possible_cells(grid: Grid, clip: tuple[float, float] | None) -> np.ndarray:
    """Cells a value can land in: all of them, or those inside public bounds (and missing)."""
    if clip is None:
        return np.arange(grid.size)
    lo, hi = grid.cell_of(np.array([clip[0], clip[1]]))
    return np.union1d(np.arange(lo, hi + 1), [grid.missing])


def _group_cells(cells: np.ndarray, mass: np.ndarray, n_bins: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Split value-ordered cells into runs of about ``total / n_bins`` noisy mass each."""
    order = np.argsort(cells)
    cells, mass = cells[order], np.maximum(mass[order], 1e-9)
    target = mass.sum() / max(1, n_bins)
    groups: list[list[int]] = [[]]
    acc = 0.0
    for i, m in enumerate(mass):
        if groups[-1] and (m >= target or acc >= target):
            groups.append([])
            acc = 0.0
        groups[-1].append(i)
        acc += m
    bin_cells = [cells[g] for g in groups]
    bin_mass = np.array([mass[g].sum() for g in groups])
    bin_weights = [mass[g] / mass[g].sum() for g in groups]
    return bin_cells, bin_weights, bin_mass


def _cell_lookup(grid: Grid, bin_cells: list[np.ndarray], missing_bin: int | None, bin_mass: np.ndarray) -> np.ndarray:
    """Map every grid cell to a bin: kept cells to their own, others to the nearest bin by value."""
    starts = np.array([c.min() for c in bin_cells])
    all_cells = np.arange(grid.size)
    lookup = np.clip(np.searchsorted(starts, all_cells, side="right") - 1, 0, len(bin_cells) - 1)
    # Cells below the first bin go to the first; cells in a gap go to the closer neighbour.
    ends = np.array([c.max() for c in bin_cells])
    nxt = np.minimum(lookup + 1, len(bin_cells) - 1)
    closer_next = (all_cells > ends[lookup]) & (starts[nxt] - all_cells < all_cells - ends[lookup])
    lookup = np.where(closer_next, nxt, lookup)
    if missing_bin is not None:
        lookup[grid.missing] = missing_bin
    else:  # no missing bin: a missing value is coded as the bin holding the median mass
        lookup[grid.missing] = int(np.searchsorted(np.cumsum(bin_mass) / bin_mass.sum(), 0.5))
    return lookup
