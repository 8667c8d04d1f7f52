"""Synthetic columns keep their input's types: integers stay integers (issue 12's
``TypeError: cannot safely cast non-equivalent float64 to int64``), dates stay dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthroom import Synthesizer
from synthroom.engine.grid import LOG_GRID
from synthroom.engine.types import integer_float_range
from synthroom.synthesis.discretize import grid_and_clip
from synthroom.synthesis.synthesizer import _to_series
from synthroom.schema import ColumnSpec


@pytest.fixture(scope="module")
def wide_ints(tmp_path_factory):
    """Integer columns as real files hold them: unsigned 64-bit hashes (above int64's range), ids
    near 2**62 with missing values, and a categorical 19-digit code with missing values."""
    rng = np.random.default_rng(0)
    n = 3_000
    gap = rng.random(n) < 0.3
    df = pd.DataFrame(
        {
            "hash": pd.array(rng.integers(2**63, 2**64 - 2**12, n, dtype=np.uint64), dtype="UInt64"),
            "big": pd.array(np.where(gap, None, 2**62 + rng.integers(0, 2**61, n)), dtype="Int64"),
            "code": pd.array(np.where(gap, None, 4611686018427387905 + rng.integers(0, 3, n)), dtype="Int64"),
            "small": pd.array(rng.integers(-5, 100, n), dtype="Int16"),
            "y": rng.choice(["a", "b"], n),
        }
    )
    path = tmp_path_factory.mktemp("ints") / "ints.parquet"
    df.to_parquet(path)
    return df, path


def test_integer_columns_always_get_integers(wide_ints):
    df, path = wide_ints
    schema = {
        "target": "y",
        "columns": [
            {"name": "hash", "type": "numerical"},
            {"name": "big", "type": "numerical"},
            {"name": "code", "type": "categorical"},
            {"name": "small", "type": "numerical"},
            {"name": "y", "type": "categorical"},
        ],
    }
    out = Synthesizer(schema, epsilon=1.0, seed=0).fit(path).sample(2_000, seed=0)
    assert out.dtypes.astype(str).to_dict() == {
        "hash": "UInt64",
        "big": "Int64",
        "code": "Int64",
        "small": "Int64",
        "y": "object",
    }
    assert out.hash.min() >= 2**62 and out.big.isna().any() and out.code.isna().any()
    assert set(out.code.dropna()) <= set(df.code.dropna())  # exact: no float64 detour for 19 digits
    assert out.small.between(-(2**15), 2**15 - 1).all()
    written = path.with_name("out.parquet")
    out.to_parquet(written)
    back = pd.read_parquet(written)
    assert str(back.hash.dtype) == "UInt64" and back.code.equals(out.code)


def test_a_value_outside_the_storage_range_is_clipped_not_a_crash():
    """A grid cell beyond 2**63 (kept by noise alone: 0.05 such cells per column on average)."""
    from synthroom.engine import NumericCoding, Pieces

    coding = NumericCoding(LOG_GRID, Pieces((), (), ()), (), (), None, 1)
    from synthroom.synthesis.discretize import NumericColumn

    col = NumericColumn(
        "x", "numerical", coding, [np.array([1e19])], [np.array([3e19])], [np.array([1.0])], None, True, "BIGINT"
    )
    out = _to_series(col, np.array([1.5e19, np.nan, -3e19, 7.0]), None)
    assert str(out.dtype) == "Int64"
    assert out.tolist()[0] == 2**63 - 1024 and out.isna().tolist() == [False, True, False, False]
    assert out.tolist()[2] == -(2**63) and out.tolist()[3] == 7


def test_the_storage_range_bounds_an_integer_columns_grid():
    spec = ColumnSpec("x", "numerical")
    assert grid_and_clip(spec)[1] is None
    assert grid_and_clip(spec, integer_float_range("TINYINT"))[1] == (-128.0, 127.0)
    assert grid_and_clip(ColumnSpec("x", "numerical", min=0, max=1000), integer_float_range("SMALLINT"))[1] == (0, 1000)
    assert integer_float_range("BIGINT") == (-(2.0**63), 2.0**63 - 1024)
    assert integer_float_range("UBIGINT") == (0.0, 2.0**64 - 2048)
    from synthroom.errors import InputError

    with pytest.raises(InputError, match="declared min/max lie outside the integers its storage type holds"):
        grid_and_clip(ColumnSpec("x", "numerical", min=300), integer_float_range("TINYINT"))


def test_declared_bounds_keep_missing_values_missing_and_one_bound_is_enough():
    """DuckDB's greatest/least skip NULLs: a declared min turned every missing value into the min;
    a single declared bound (the other infinite) did not parse at all."""
    rng = np.random.default_rng(1)
    n = 3_000
    df = pd.DataFrame(
        {
            "x": np.where(rng.random(n) < 0.4, np.nan, rng.uniform(10, 50, n)),
            "z": np.where(rng.random(n) < 0.4, np.nan, rng.uniform(10, 50, n)),
            "y": rng.choice(["a", "b"], n),
        }
    )
    schema = {
        "target": "y",
        "columns": [
            {"name": "x", "type": "numerical", "min": 5, "max": 60},
            {"name": "z", "type": "numerical", "max": 60},
            {"name": "y", "type": "categorical"},
        ],
    }
    out = Synthesizer(schema, epsilon=4.0, seed=0).fit(df).sample(3_000, seed=0)
    for col in ("x", "z"):
        assert 0.3 < out[col].isna().mean() < 0.5
        assert out[col].min() >= 5 and out[col].max() <= 60
