"""Fixed, data-independent grids on which numeric and datetime columns are counted.

Because the grid's cells do not depend on the data, a noisy histogram over *all* its cells is a
plain Gaussian mechanism (no data-dependent domain, no delta); thresholding the noisy counts
afterwards is post-processing. Bins for modelling are then unions of consecutive cells.

* :data:`LOG_GRID` (numbers): one cell per octave, ``[2^e, 2^(e+1))`` for ``e`` in [-24, 63]
  and both signs (``SUB`` cells per octave in general), plus an exact zero cell, two "tiny" cells
  next to zero, two overflow cells and a missing cell. Cell ids increase with the value.
* :data:`DATE_GRID` (datetimes, as seconds since 1970-01-01 UTC): one cell per 365.25 days from
  1900 to 2100, two overflow cells and a missing cell.

Coarse cells hold enough rows to clear a noise threshold even in a distribution's tails; the
synthesizer then refines the cells that survive (see ``synthesis/discretize.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dialect import DUCKDB, Dialect

E_MIN, E_MAX, SUB = -24, 63, 1
_N_OCT = (E_MAX - E_MIN + 1) * SUB
NEG_HUGE = 0
NEG_BASE = 1  # first negative octave cell (largest magnitude)
NEG_TINY = NEG_BASE + _N_OCT
ZERO = NEG_TINY + 1
POS_TINY = ZERO + 1
POS_BASE = POS_TINY + 1
POS_HUGE = POS_BASE + _N_OCT
LOG_MISSING = POS_HUGE + 1
LOG_SIZE = LOG_MISSING + 1
_HUGE = 2.0 ** (E_MAX + 1)
_TINY = 2.0**E_MIN


@dataclass(frozen=True)
class Grid:
    """A partition of the real line (plus a missing cell) into numbered cells."""

    name: str
    size: int
    missing: int

    def cell_of(self, values: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def sql_cell(self, x: str, dialect: Dialect = DUCKDB) -> str:
        """The cell of value ``x`` as one SQL expression (:meth:`cell_layers` inlined)."""
        return dialect.inline(*self.cell_layers(x, "synthroom_cell_", dialect))

    def cell_layers(
        self, x: str, tag: str, dialect: Dialect = DUCKDB
    ) -> tuple[list[dict[str, str]], str]:  # pragma: no cover - abstract
        """Layers (see ``counting.layered_sql``; names start with ``tag``) computing once per row
        what the cell of column ``x`` uses several times, and the cell's SQL over them."""
        raise NotImplementedError

    def bounds(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def integers_in(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and last integer inside each cell (last < first when there is none)."""
        lo, hi = self.bounds(cells)
        first = np.ceil(lo)
        last = np.ceil(hi) - 1.0
        # Negative octave cells are (-hi, -lo]: their integer range is shifted by one.
        neg = self._left_open(cells)
        first = np.where(neg, np.floor(lo) + 1.0, first)
        last = np.where(neg, np.floor(hi), last)
        return first, last

    def _left_open(self, cells: np.ndarray) -> np.ndarray:
        return np.zeros(np.shape(cells), dtype=bool)


class _LogGrid(Grid):
    def cell_of(self, values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=float)
        out = np.full(x.shape, LOG_MISSING, dtype=np.int64)
        ax = np.abs(x)
        finite_mid = (~np.isnan(x)) & (ax >= _TINY) & (ax < _HUGE)
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.floor(np.log2(np.where(finite_mid, ax, 1.0)))
            e = e - (ax < 2.0**e) + (ax >= 2.0 ** (e + 1))
            s = np.clip(np.floor((ax / 2.0**e - 1.0) * SUB), 0, SUB - 1)
        pos_cell = POS_BASE + (e - E_MIN) * SUB + s
        neg_cell = NEG_BASE + (E_MAX - e) * SUB + (SUB - 1 - s)
        out = np.where(finite_mid & (x > 0), pos_cell, out)
        out = np.where(finite_mid & (x < 0), neg_cell, out)
        out = np.where(x == 0, ZERO, out)
        out = np.where((x != 0) & (ax < _TINY) & (x > 0), POS_TINY, out)
        out = np.where((x != 0) & (ax < _TINY) & (x < 0), NEG_TINY, out)
        out = np.where(x >= _HUGE, POS_HUGE, out)
        out = np.where(x <= -_HUGE, NEG_HUGE, out)
        return out.astype(np.int64)

    def cell_layers(self, x: str, tag: str, dialect: Dialect = DUCKDB) -> tuple[list[dict[str, str]], str]:
        """The cell of value ``x``: ``floor(log2)`` is only a guess (Spark's log2 is a quotient of
        logarithms), corrected by exact comparisons with powers of two, so the cell is exact. The
        octave ``e`` (used twice in the cell, its guess three times in it) is a layer of its own,
        computed only for the values whose cell is an octave's."""
        n, ident = dialect.number, dialect.ident
        ax, e0, e, s = (ident(f"{tag}{name}") for name in ("abs", "e0", "e", "s"))
        octave = f"{ax} >= {n(_TINY)} AND {ax} < {n(_HUGE)}"
        layers = [
            {f"{tag}abs": f"abs({x})"},
            {f"{tag}e0": f"CASE WHEN {octave} THEN floor(log2({ax})) END"},
            {
                f"{tag}e": f"({e0} - CASE WHEN {ax} < pow({n(2)}, {e0}) THEN 1 ELSE 0 END"
                f" + CASE WHEN {ax} >= pow({n(2)}, {e0} + 1) THEN 1 ELSE 0 END)"
            },
            {f"{tag}s": f"least(greatest(floor(({ax} / pow({n(2)}, {e}) - {n(1)}) * {SUB}), 0), {SUB - 1})"},
        ]
        cell = (
            f"CASE WHEN {x} IS NULL OR isnan({x}) THEN {LOG_MISSING} "
            f"WHEN {x} = 0 THEN {ZERO} "
            f"WHEN {x} >= {n(_HUGE)} THEN {POS_HUGE} WHEN {x} <= {n(-_HUGE)} THEN {NEG_HUGE} "
            f"WHEN {ax} < {n(_TINY)} THEN CASE WHEN {x} > 0 THEN {POS_TINY} ELSE {NEG_TINY} END "
            f"WHEN {x} > 0 THEN CAST({POS_BASE} + ({e} - ({E_MIN})) * {SUB} + {s} AS BIGINT) "
            f"ELSE CAST({NEG_BASE} + ({E_MAX} - {e}) * {SUB} + ({SUB - 1} - {s}) AS BIGINT) END"
        )
        return layers, cell

    def bounds(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper value of each cell (NaN for the missing cell)."""
        c = np.asarray(cells, dtype=np.int64)
        lo = np.full(c.shape, np.nan)
        hi = np.full(c.shape, np.nan)
        pos = (c >= POS_BASE) & (c < POS_HUGE)
        k = c - POS_BASE
        e, s = E_MIN + k // SUB, k % SUB
        lo = np.where(pos, 2.0**e * (1 + s / SUB), lo)
        hi = np.where(pos, 2.0**e * (1 + (s + 1) / SUB), hi)
        neg = (c >= NEG_BASE) & (c < NEG_TINY)
        k = c - NEG_BASE
        e, s = E_MAX - k // SUB, SUB - 1 - k % SUB
        lo = np.where(neg, -(2.0**e) * (1 + (s + 1) / SUB), lo)
        hi = np.where(neg, -(2.0**e) * (1 + s / SUB), hi)
        lo = np.where(c == ZERO, 0.0, lo)
        hi = np.where(c == ZERO, 0.0, hi)
        lo = np.where(c == POS_TINY, 0.0, lo)
        hi = np.where(c == POS_TINY, _TINY, hi)
        lo = np.where(c == NEG_TINY, -_TINY, lo)
        hi = np.where(c == NEG_TINY, 0.0, hi)
        lo = np.where(c == POS_HUGE, _HUGE, lo)
        hi = np.where(c == POS_HUGE, 2 * _HUGE, hi)
        lo = np.where(c == NEG_HUGE, -2 * _HUGE, lo)
        hi = np.where(c == NEG_HUGE, -_HUGE, hi)
        return lo, hi

    def _left_open(self, cells: np.ndarray) -> np.ndarray:
        c = np.asarray(cells)
        return (c >= NEG_HUGE) & (c < ZERO)


DAY = 86400.0
_DATE_START = -2208988800.0  # 1900-01-01T00:00:00Z
_DATE_STEP = 365.25 * DAY
_DATE_CELLS = int(np.ceil((4102444800.0 - _DATE_START) / _DATE_STEP))  # up to 2100-01-01


class _DateGrid(Grid):
    def cell_of(self, values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            k = np.floor((x - _DATE_START) / _DATE_STEP)
        out = np.clip(np.nan_to_num(k, nan=0.0), -1, _DATE_CELLS) + 1
        return np.where(np.isnan(x), self.missing, out).astype(np.int64)

    def cell_layers(self, x: str, tag: str, dialect: Dialect = DUCKDB) -> tuple[list[dict[str, str]], str]:
        """The year cell of ``x`` (one cheap expression: no layers)."""
        n = dialect.number
        return [], (
            f"CASE WHEN {x} IS NULL OR isnan({x}) THEN {self.missing} ELSE "
            f"CAST(least(greatest(floor(({x} - ({n(_DATE_START)})) / {n(_DATE_STEP)}), -1), {_DATE_CELLS}) + 1 AS "
            "BIGINT) END"
        )

    def bounds(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(cells, dtype=float)
        lo = _DATE_START + (c - 1) * _DATE_STEP
        hi = lo + _DATE_STEP
        return np.where(c == self.missing, np.nan, lo), np.where(c == self.missing, np.nan, hi)


LOG_GRID: Grid = _LogGrid("log", LOG_SIZE, LOG_MISSING)
DATE_GRID: Grid = _DateGrid("date", _DATE_CELLS + 3, _DATE_CELLS + 2)
