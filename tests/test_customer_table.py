"""The wide customer-table simulator (demo/customers.py): the properties other tests rely on."""

from __future__ import annotations

import pandas as pd
import pytest

from synthroom.demo import CITY_HIERARCHY, CUSTOMER_TABLE_SCHEMA, simulate_customer_table, write_customer_table
from synthroom.schema import parse_schema


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return simulate_customer_table(rows=20_000, customers=400, seed=3)


def test_shape_schema_and_seed(table):
    assert list(table.columns) == parse_schema(CUSTOMER_TABLE_SCHEMA).names
    assert len(table.columns) >= 11 and len(table) == 20_000
    again = simulate_customer_table(rows=20_000, customers=400, seed=3)
    pd.testing.assert_frame_equal(table, again)
    assert not table.equals(simulate_customer_table(rows=20_000, customers=400, seed=4))


def test_customers_are_repeated(table):
    counts = table.value_counts(dropna=False)
    assert len(counts) <= 400 and counts.min() >= 50  # 400 customers, 50 rows each (rows may coincide)
    default = simulate_customer_table(rows=5_000, seed=0)
    assert len(default.drop_duplicates()) <= 5_000 // 50


def test_city_state_region_hierarchy(table):
    assert len(CITY_HIERARCHY) == 400 and len(set(s for s, _ in CITY_HIERARCHY.values())) >= 25
    rows = table.dropna(subset=["city"])
    assert all(CITY_HIERARCHY[c] == (s, r) for c, s, r in zip(rows.city, rows.state, rows.region))
    big = simulate_customer_table(rows=200_000, customers=100_000, seed=0).city.value_counts(normalize=True)
    assert big.index.nunique() > 300 and 0.1 < big.iloc[0] < 0.3 and big.iloc[:10].sum() > 0.4  # Zipf-like


def test_dates_missing_and_target(table):
    both = table.signup_date.notna() & table.last_login.notna()
    assert (table.last_login[both] >= table.signup_date[both]).all()
    big = simulate_customer_table(rows=50_000, customers=50_000, seed=1)
    missing = big.isna().mean()
    assert ((missing > 0.015) & (missing < 0.1)).sum() >= 6 and missing.max() < 0.1
    assert set(big.churned) == {"yes", "no"} and 0.1 < (big.churned == "yes").mean() < 0.4


def test_written_file_matches(tmp_path):
    path = write_customer_table(tmp_path / "t.parquet", rows=3_000, customers=100, seed=2, chunk_rows=1_000)
    expected = simulate_customer_table(rows=3_000, customers=100, seed=2)
    got = pd.read_parquet(path)
    assert got.shape == expected.shape
    assert (got.city.fillna("") == expected.city.fillna("")).all()
    csv = write_customer_table(tmp_path / "t.csv", rows=3_000, customers=100, seed=2, chunk_rows=1_000)
    assert len(pd.read_csv(csv)) == 3_000


def test_bad_arguments():
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        simulate_customer_table(rows=0)
    with pytest.raises(ValueError, match="customers must be an integer"):
        simulate_customer_table(rows=10, customers=11)
