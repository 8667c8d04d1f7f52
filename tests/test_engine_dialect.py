"""What a value is, decided by the engine (dialect.py), not by DuckDB's or Spark's own parser."""

import numpy as np
import pandas as pd

from synthroom.engine import CountingSource
from synthroom.engine.grid import LOG_GRID
from synthroom.schema import ColumnSpec
from synthroom.synthesis.discretize import grid_and_clip


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
