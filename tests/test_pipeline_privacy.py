"""The gated pipeline's privacy paths around the synthesizer: the per-person keyed holdout split,
and output types that come from the schema or declared file types, never from CSV content."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import numpy as np
import pandas as pd
import pytest

from synthroom import Synthesizer
from synthroom.demo import CUSTOMERS_SCHEMA, simulate_customers
from synthroom.engine.split import hmac_sql
from synthroom.pipeline import holdout_key, split_frame, synthesize_with_gate
from synthroom.synthesis.selection import TargetClassesLost


# -- the keyed split ---------------------------------------------------------------------------
@pytest.mark.parametrize("key", [bytes(range(32)), b"k", bytes(range(100))])
def test_the_split_hash_is_rfc_2104_hmac_sha256(key):
    con = duckdb.connect()
    for message in ("", "user-17", "ünïcödé ✓", "x" * 200):
        got = con.execute(f"SELECT {hmac_sql(key, 'encode(?)')}", [message]).fetchone()[0]
        assert got == hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def test_the_key_is_secret_unless_a_seed_is_given():
    assert holdout_key(None) != holdout_key(None) and len(holdout_key(None)) == 32
    assert holdout_key(5) == holdout_key(5) != holdout_key(6)


def _people(n: int, seed: int) -> pd.DataFrame:
    """``n`` people with 1 to 4 rows each (a ``user`` column names the person)."""
    rng = np.random.default_rng(seed)
    users = np.repeat([f"u{i}" for i in range(n)], rng.integers(1, 5, n))
    return pd.DataFrame({"user": users, "x": rng.normal(size=len(users)).round(3)})


def _part_of(df: pd.DataFrame, units: pd.Series, seed: int) -> dict[str, bool]:
    """Each unit's part (True: holdout); fails if a unit's rows were split between the parts."""
    train, holdout = split_frame(df, 0.3, seed, units=units)
    parts = pd.concat([train.assign(h=False), holdout.assign(h=True)])
    per_unit = parts.groupby("user")["h"].agg(["min", "max"])
    assert (per_unit["min"] == per_unit["max"]).all(), "a unit's rows went to both parts"
    return per_unit["min"].to_dict()


def test_adding_one_person_moves_nobody_else():
    """Neighbouring tables (one extra person, 3 rows, put first so every row number shifts): every
    other person is in the same part in both. The old fixed-size permutation moved about a third
    of them."""
    df = _people(600, seed=1)
    extra = pd.DataFrame({"user": ["newcomer"] * 3, "x": [1.0, 2.0, 3.0]})
    bigger = pd.concat([extra, df], ignore_index=True)
    before, after = _part_of(df, df["user"], 11), _part_of(bigger, bigger["user"], 11)
    assert set(after) == set(before) | {"newcomer"}
    assert all(after[u] == before[u] for u in before)
    assert 0.2 < np.mean(list(before.values())) < 0.4  # 600 units at 0.3: standard deviation 0.019


def test_adding_one_row_moves_no_other_row_without_units():
    df = simulate_customers(1500, seed=4)
    bigger = pd.concat([simulate_customers(1, seed=99), df], ignore_index=True)
    holdout = split_frame(df, 0.2, seed=3)[1]
    holdout_bigger = split_frame(bigger, 0.2, seed=3)[1]
    key = ["age", "income", "monthly_spend", "signup_date"]
    rows = lambda h: set(map(tuple, h[key].astype(str).to_numpy().tolist()))  # noqa: E731
    assert rows(holdout_bigger) - rows(bigger.iloc[[0]]) == rows(holdout)


def test_units_are_checked():
    from synthroom.errors import InputError

    df = _people(10, seed=2)
    with pytest.raises(InputError, match=r"^units has 3 values for \d+ rows: give one privacy unit per row$"):
        split_frame(df, 0.2, 1, units=["a", "b", "c"])
    with pytest.raises(InputError, match="^units holds a missing value: every row needs its privacy unit$"):
        split_frame(df, 0.2, 1, units=[None] * len(df))


# -- types from the schema, not from CSV content -----------------------------------------------
SCHEMA = {
    "target": "y",
    "columns": [
        {"name": "n", "type": "numerical"},
        {"name": "k", "type": "numerical", "integer": True},
        {"name": "c", "type": "categorical"},
        {"name": "y", "type": "categorical"},
    ],
}


def _csv(folder, rows: int, odd: bool):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "n": rng.integers(0, 50, rows).astype(str),
            "k": rng.integers(0, 9, rows).astype(str),
            "c": rng.integers(1, 4, rows).astype(str),
            "y": rng.choice(["a", "b"], rows),
        }
    )
    if odd:  # the neighbour: one more row, holding 3.5 in the integer-looking column
        df = pd.concat([df, pd.DataFrame({"n": ["3.5"], "k": ["3.5"], "c": ["2"], "y": ["a"]})], ignore_index=True)
    path = folder / f"t_{odd}.csv"
    df.to_csv(path, index=False)
    return path


def test_neighbouring_csvs_give_the_same_output_types(tmp_path):
    """One row holding 3.5 used to turn an integer column's output from Int64 to float (DuckDB's
    sniffer read the CSV's content). Now a CSV's types come from the schema: ``n`` is float and
    ``k`` (declared ``integer: true``) whole numbers on both neighbours, and the categorical
    ``c`` stays text (it used to become an integer column)."""
    dtypes = []
    for odd in (False, True):
        path = _csv(tmp_path, 3000, odd)
        direct = Synthesizer(SCHEMA, epsilon=2.0, seed=1).fit(path).sample(200)
        gated = synthesize_with_gate(path, SCHEMA, epsilon=2.0, seed=1, rows=200).synthetic
        dtypes.append([str(t) for t in (*direct.dtypes, *gated.dtypes)])
    assert dtypes[0] == dtypes[1] == ["float64", "Int64", "object", "object"] * 2


def test_a_value_that_does_not_parse_is_missing_not_a_failure(tmp_path):
    path = _csv(tmp_path, 3000, False)
    df = pd.read_csv(path, dtype=str)
    df.loc[5, "n"] = "n/a"
    df.loc[6, "k"] = "inf"
    df.to_csv(path, index=False)
    synthetic = Synthesizer(SCHEMA, epsilon=2.0, seed=1).fit(path).sample(100)
    assert len(synthetic) == 100 and synthetic["n"].notna().all()


def test_the_room_splits_per_privacy_unit(tmp_path):
    """The sandbox hands each capped row's unit to the pipeline, so the holdout is per person."""
    from roomkit import two_party
    from synthroom.room.jobs import run_job, start_job

    tp = two_party(tmp_path, users=300, budget=5)
    seen = {}

    def records(frame, schema, **kw):
        seen.update(rows=len(frame), units=kw["units"])
        raise RuntimeError("stop here")

    run_job(tp.room, start_job(tp.room, tp.advertiser, tp.template["id"])["id"], synthesize=records)
    audience = pd.read_csv(tmp_path / "data" / "publisher" / "audience.csv")
    units = seen["units"]
    assert len(units) == seen["rows"] == 300 and units.is_unique  # the demo template: one row per user
    assert set(units) == set(audience.user_id.astype(str))


def test_an_empty_join_is_refused_by_the_gate_not_failed():
    """Whether the clean room's joined rows are empty can depend on one person (a template that
    keeps one user's rows), so an empty DataFrame is no error: the fit runs on nothing (DP noise
    only), the DP holdout-size check skips the evaluation, and the gate refuses."""
    empty = simulate_customers(10, seed=1).head(0)
    declared = {
        **CUSTOMERS_SCHEMA,
        "columns": [
            {**c, "categories": ["no", "yes"]} if c["name"] == "churned" else c for c in CUSTOMERS_SCHEMA["columns"]
        ],
    }
    run = synthesize_with_gate(empty, declared, epsilon=1.0, max_mia_score=0.6, units=[])
    assert not run.released and run.synthetic is None
    assert [(g.name, g.passed) for g in run.report.gates] == [("DCR-v1", False)] and run.report.fidelity is None
    assert run.report.privacy["epsilon_spent"] == pytest.approx(1.0, rel=1e-6)
    ungated = synthesize_with_gate(empty, declared, epsilon=1.0, rows=50)
    assert ungated.released and len(ungated.synthetic) == 50
    # An undeclared predictive column keeps no class from no rows: the fit stops (a DP outcome:
    # the classes kept are the selection's output), as it would for any table too small for it.
    with pytest.raises(TargetClassesLost, match="the predictive column 'churned' would hold no class"):
        synthesize_with_gate(empty, CUSTOMERS_SCHEMA, epsilon=1.0, rows=50)
