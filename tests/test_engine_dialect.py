"""What a value is, decided by the engine (dialect.py), not by DuckDB's or Spark's own parser."""

import numpy as np
import pandas as pd

from synthroom.engine import CountingSource
from synthroom.engine.counting import NumericCoding
from synthroom.engine.grid import LOG_GRID
from synthroom.schema import ColumnSpec
from synthroom.synthesis.discretize import _pieces, grid_and_clip


def _grid(values, **bounds) -> np.ndarray:
    source = CountingSource.open(pd.DataFrame({"x": values}), {"x": "numerical"})
    try:
        grid, clip = grid_and_clip(ColumnSpec("x", "numerical", **bounds))
        return source.grid_counts("x", grid, clip)
    finally:
        source.close()


def test_one_declared_bound_clips_on_that_side_only():
    # Before: the open side was rendered as the SQL name ``inf`` and the count failed.
    counts = _grid(["-5", "3", "500"], max=100.0)
    cells = LOG_GRID.cell_of(np.array([-5.0, 3.0, 100.0]))
    assert counts.sum() == 3 and all(counts[c] == 1 for c in cells)


def test_a_missing_value_stays_missing_under_declared_bounds():
    # least/greatest skip NULLs: before, a missing value was counted at the lower bound.
    counts = _grid(["", "abc", "7"], min=1.0, max=10.0)
    assert counts[LOG_GRID.missing] == 2 and counts[LOG_GRID.cell_of(np.array([1.0]))[0]] == 0


def test_text_is_a_number_only_in_the_engines_grammar():
    counts = _grid(["1_000", "0x10", "1.5d", " 12 ", "1e3", ".5"])
    assert counts[LOG_GRID.missing] == 3  # DuckDB alone would read 1_000, Spark alone 1.5d
    assert counts[LOG_GRID.cell_of(np.array([12.0]))[0]] == 1 and counts[LOG_GRID.cell_of(np.array([0.5]))[0]] == 1


class RecordedQueries:
    """Wraps what runs a source's queries (a DuckDB connection's ``execute``, a Spark session's
    ``sql``), recording the text of each query and passing it on."""

    def __init__(self, runner, method: str):
        self.runner, self.method, self.queries = runner, method, []

    def __getattr__(self, name: str):
        if name != self.method:
            return getattr(self.runner, name)

        def run(sql, *args, **kwargs):
            self.queries.append(sql)
            return getattr(self.runner, name)(sql, *args, **kwargs)

        return run


VALUES = ["1", " 2.5", "x", None, "1e3", "-7", "40", "0", "3.75"]  # text: typed by the grammar's parse
CLIP = (-1.0, 100.0)


def numeric_coding(source: CountingSource, name: str) -> NumericCoding:
    """``name``'s coding as the fit's second stage builds it (every non-empty cell cut into
    pieces, one bin per piece, then one per grid cell for the cells not cut), from exact counts."""
    grid, clip = grid_and_clip(ColumnSpec(name, "numerical", min=CLIP[0], max=CLIP[1]))
    cells = source.grid_counts(name, grid, clip)
    kept = np.setdiff1d(np.flatnonzero(cells), [grid.missing])
    pieces = _pieces(grid, kept, integer=False)[0]
    cell_to_bin = tuple(pieces.count + c for c in range(grid.size))
    return NumericCoding(grid, pieces, tuple(range(pieces.count)), cell_to_bin, clip, pieces.count + grid.size)


def expected_codes(values: list, coding: NumericCoding) -> np.ndarray:
    """The codes of ``values`` computed apart, in numpy: clip, grid cell, piece or cell's bin."""
    x = np.clip(pd.to_numeric(pd.Series(values, dtype=object).str.strip(), errors="coerce").to_numpy(float), *CLIP)
    cell = coding.grid.cell_of(x)
    nsub, step, origin = (np.asarray(a)[cell] for a in (coding.pieces.nsub, coding.pieces.step, coding.pieces.origin))
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(step > 0, np.clip(np.floor((x - origin) / np.where(step > 0, step, 1.0)), 0, nsub - 1), 0)
    piece = coding.pieces.offsets[cell] + within.astype(np.int64)
    return np.where(nsub > 0, piece, np.asarray(coding.cell_to_bin)[cell])


def cell_and_value_once(sql: str, source: CountingSource, name: str) -> bool:
    """The query names ``name``'s typed value once, and the log grid's octave (``log2``) once."""
    return sql.count(source.value_sql(name)) == 1 and sql.count("log2(") == 1


def test_each_value_and_its_grid_cell_are_computed_once_per_row():
    """A piece pass and the encoding compute a column's typed value and its grid cell once per
    row. Before, the cell's CASE was inlined into each per-cell array lookup (six copies in a
    piece pass, thirteen in a code), the value into each copy: a piece pass cost ~100x a grid
    pass on Spark, which shares no subexpression between CASE branches."""
    source = CountingSource.open(pd.DataFrame({"x": VALUES}), {"x": "numerical"})
    try:
        recorded = source._con = RecordedQueries(source._con, "execute")  # type: ignore[assignment]
        coding = numeric_coding(source, "x")
        pieces = source.piece_counts("x", coding.grid, coding.clip, coding.pieces)
        assert cell_and_value_once(recorded.queries[-1], source, "x")
        source.encode({"x": coding})
        assert cell_and_value_once(recorded.queries[-1], source, "x")
        codes = expected_codes(VALUES, coding)
        assert np.array_equal(pieces, np.bincount(codes[codes < coding.pieces.count], minlength=coding.pieces.count))
        assert np.array_equal(source.marginals([("x",)])[0], np.bincount(codes, minlength=coding.size))
    finally:
        source.close()
