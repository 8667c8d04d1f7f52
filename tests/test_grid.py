import duckdb
import numpy as np
import pandas as pd
import pytest

from synthroom.engine.grid import DATE_GRID, LOG_GRID, NEG_HUGE, POS_HUGE, ZERO


@pytest.fixture(scope="module")
def values():
    rng = np.random.default_rng(0)
    special = [
        0,
        1,
        2,
        3,
        4,
        7,
        8,
        16,
        40,
        1.5,
        -1,
        -2,
        -16,
        -1.125,
        -40,
        1e300,
        -1e300,
        np.inf,
        -np.inf,
        1e-30,
        -1e-30,
        2.0**63,
        2.0**64,
        -(2.0**64),
        0.1,
        123456789.0,
    ]
    return np.concatenate([rng.normal(0, 1e3, 3000), rng.integers(-300, 300, 3000), rng.lognormal(5, 4, 3000), special])


def test_sql_and_numpy_agree(values):
    con = duckdb.connect()
    df = pd.DataFrame({"x": np.append(values, np.nan)})
    sql = con.execute(f"SELECT {LOG_GRID.sql_cell('x')} AS c FROM df").fetchnumpy()["c"]
    assert np.array_equal(sql, LOG_GRID.cell_of(df.x.to_numpy()))


def test_every_value_lies_in_its_cell(values):
    cells = LOG_GRID.cell_of(values)
    lo, hi = LOG_GRID.bounds(cells)
    finite = np.isfinite(values) & (cells != ZERO) & (cells != POS_HUGE) & (cells != NEG_HUGE)
    negative = values < 0
    inside = np.where(negative, (values > lo) & (values <= hi), (values >= lo) & (values < hi))
    assert inside[finite].all()
    assert (cells[values == 0] == ZERO).all()


def test_cells_increase_with_value(values):
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(LOG_GRID.cell_of(values[order])) >= 0)


def test_integers_in_cells():
    first, last = LOG_GRID.integers_in(LOG_GRID.cell_of(np.array([5.0, 40.0, -5.0, 1.5, 0.3])))
    assert list(first[:4]) == [4, 32, -7, 1] and list(last[:4]) == [7, 63, -4, 1]  # (-8, -4] for -5
    assert last[4] < first[4]  # [0.25, 0.5) holds no integer


def test_date_grid_sql_and_numpy_agree():
    x = np.array([0.0, 1.7e9, -3e9, 5e9, np.nan, -2208988800.0])
    con = duckdb.connect()
    sql = con.execute(f"SELECT {DATE_GRID.sql_cell('x')} AS c FROM (SELECT unnest(?) AS x)", [list(x)]).fetchnumpy()[
        "c"
    ]
    assert np.array_equal(sql, DATE_GRID.cell_of(x))
    lo, hi = DATE_GRID.bounds(DATE_GRID.cell_of(x[:2]))
    assert (lo <= x[:2]).all() and (x[:2] < hi).all()
