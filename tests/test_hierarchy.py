"""Public hierarchies: a child column (city) sampled within its sampled parent (state)."""

import copy

import numpy as np
import pandas as pd
import pytest

from synthroom import InputError, Synthesizer, parse_schema
from synthroom.demo import CITY_HIERARCHY, CUSTOMER_TABLE_SCHEMA, simulate_customer_table
from synthroom.errors import SchemaError
from synthroom.privacy import faults
from synthroom.synthesis.hierarchy import norm_sub
from synthroom.synthesis.synthesizer import Settings

PAIRS = {city: state for city, (state, _) in CITY_HIERARCHY.items()}


def customer_schema(**city_keys) -> dict:
    d = copy.deepcopy(CUSTOMER_TABLE_SCHEMA)
    d["columns"][0].update(city_keys)
    return d


# -- the schema --------------------------------------------------------------------------------
def test_a_hierarchy_parses_and_round_trips():
    s = parse_schema(customer_schema(parent="state", parents=PAIRS))
    assert s["city"].parent == "state" and s["city"].categories == tuple(PAIRS)
    assert dict(s["city"].parents) == PAIRS
    # the declared parent values are public: the parent column's list, unless it declares its own
    assert s["state"].categories == tuple(dict.fromkeys(PAIRS.values()))
    assert parse_schema(s.to_dict()) == s
    only = parse_schema(customer_schema(parent="state"))
    assert only["city"].parents is None and only["city"].categories is None and only["state"].categories is None
    assert parse_schema(only.to_dict()) == only


@pytest.mark.parametrize(
    "change, message",
    [
        ({0: {"parent": "nosuch"}}, "column 'city': parent 'nosuch' is not another categorical column of the schema"),
        ({0: {"parent": "age"}}, "column 'city': parent 'age' is not another categorical column of the schema"),
        ({0: {"parent": "city"}}, "column 'city': parent 'city' is not another categorical column of the schema"),
        ({0: {"parent": 3}}, "column 'city': parent must be a non-empty string, not int 3"),
        (
            {0: {"parents": {"a": "b"}}},
            "column 'city': parents (value -> parent value) need 'parent', the parent column",
        ),
        (
            {0: {"parent": "state", "parents": ["a"]}},
            "column 'city': parents must map each value to its parent value, not list ['a']",
        ),
        (
            {0: {"parent": "state", "parents": {"a": ["b"]}}},
            "column 'city': parents entry 'a': ['b'] must map a value to one parent value",
        ),
        (
            {0: {"parent": "state", "parents": {"a": "CA"}, "categories": ["a", "b"]}},
            "column 'city': declared category 'b' has no parent in 'parents'",
        ),
        (
            {0: {"parent": "state", "parents": {"a": "XX"}}, 1: {"categories": ["CA"]}},
            "column 'city': parent value 'XX' is not among 'state''s declared categories",
        ),
        (
            {0: {"parent": "state"}, 1: {"parent": "region"}, 2: {"parent": "city"}},
            "column 'city': the parents form a cycle (city -> state -> region -> city)",
        ),
        ({3: {"parent": "state"}}, "column 'age': parent/parents are only for categorical columns"),
        (
            {12: {"parent": "plan"}},
            "column 'churned': the predictive column cannot have a parent (it is always modelled)",
        ),
    ],
)
def test_a_bad_hierarchy_is_a_schema_error_naming_it(change, message):
    d = copy.deepcopy(CUSTOMER_TABLE_SCHEMA)
    for i, keys in change.items():
        d["columns"][i].update(keys)
    with pytest.raises(SchemaError) as info:
        parse_schema(d)
    assert str(info.value) == message


def test_an_allowed_combination_on_a_child_is_refused(customer_small):
    d = customer_schema(parent="state")
    d["rules"] = [{"columns": ["city", "state"], "allowed": [["a", "b"]]}]
    with pytest.raises(InputError) as info:
        Synthesizer(d, epsilon=1.0, seed=0).fit(customer_small)
    assert str(info.value) == (
        "rule '(city, state) in 1 allowed combinations': column 'city' is sampled within its parent 'state' "
        "(a public hierarchy), not modelled; declare its pairs as 'parents' instead of allowed combinations"
    )


# -- post-processing ---------------------------------------------------------------------------
def test_norm_sub_keeps_each_total_and_removes_the_clipping_bias():
    table = np.array([[50.0, -3.0], [-10.0, -4.0], [4.0, 2.0], [-2.0, 1.0]])
    out = norm_sub(table)
    assert (out >= 0).all()
    assert out[:, 0].sum() == pytest.approx(42.0) and out[:, 1].sum() == 0.0  # a non-positive total: nothing
    assert out[:, 0] == pytest.approx([42.0, 0.0, 0.0, 0.0])  # shifted down by 8: only 50 - 8 stays positive
    # clipping alone would give 54 (upward bias on the tail); Norm-Sub keeps the noisy total 42
    assert np.clip(table[:, 0], 0, None).sum() == 54.0


# -- fitting and sampling ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def customer_small() -> pd.DataFrame:
    return simulate_customer_table(rows=6000, seed=2)


def fit(schema: dict, table: pd.DataFrame, epsilon: float = 1.0) -> Synthesizer:
    return Synthesizer(schema, epsilon=epsilon, seed=0, settings=Settings(iters=150)).fit(table)


@pytest.fixture(scope="module")
def with_pairs(customer_small) -> Synthesizer:
    return fit(customer_schema(parent="state", parents=PAIRS), customer_small)


@pytest.fixture(scope="module")
def parent_only(customer_small) -> Synthesizer:
    return fit(customer_schema(parent="state"), customer_small)


def test_with_public_pairs_every_city_is_in_its_state(with_pairs):
    df = with_pairs.sample(5000, seed=1)
    present = df["city"].notna() & ~df["city"].astype(str).str.startswith("other")
    assert present.mean() > 0.8
    present &= df["state"].notna()  # a row whose state is missing draws from the missing state's cities
    assert all(PAIRS[c] == s for c, s in zip(df.loc[present, "city"], df.loc[present, "state"]))
    assert set(df.loc[present, "city"]) <= set(PAIRS) and df.loc[present, "city"].nunique() > 100
    charges = [c["step"] for c in with_pairs.privacy_report()["charges"]]
    assert "'city' within its parent 'state' (public hierarchy)" in charges
    assert not any("categories of 'city'" in step for step in charges)  # a public list: no selection
    report = with_pairs.privacy_report()
    assert report["rho_spent"] == pytest.approx(report["rho_budget"], rel=1e-9)  # the charges add up
    assert "city" not in with_pairs.model_.domain and "state" in with_pairs.model_.domain


def test_a_value_not_released_is_other_within_its_parent(parent_only):
    df = parent_only.sample(5000, seed=1)
    city, state = df["city"].astype(object), df["state"].astype(object)
    other = city.astype(str).str.startswith("other")
    assert 0.01 < other.mean() < 0.6
    with_state = other & state.notna()
    assert (city[with_state] == "other (" + state[with_state].astype(str) + ")").all()
    kept = ~other & city.notna()
    assert (pd.DataFrame({"c": city[kept], "s": state[kept]}).groupby("c")["s"].nunique() == 1).all()


def test_a_city_is_drawn_within_its_state_in_proportion_to_the_measured_counts(customer_small):
    """Without the noise (a test-only switch), the table is the exact (city, state) counts, so a
    city's share within its state is its real share there, also for a city of 1% of its state."""
    with faults.injected("no_measurement_noise"):
        synth = fit(customer_schema(parent="state", parents=PAIRS), customer_small, epsilon=10.0)
    df = synth.sample(60_000, seed=3)
    real = customer_small.dropna(subset=["city", "state"])
    state = real["state"].value_counts().index[0]  # the largest state
    want = real.loc[real["state"] == state, "city"].value_counts(normalize=True)
    got = df.loc[df["state"] == state, "city"].value_counts(normalize=True)
    n = int((df["state"] == state).sum())
    for city, p in want.items():
        assert abs(got.get(city, 0.0) - p) < 4.5 * np.sqrt(p * (1 - p) / n) + 1e-3, city


def test_conditions_on_a_child_are_refused_and_a_saved_model_keeps_it(parent_only, tmp_path):
    with pytest.raises(InputError) as info:
        parent_only.sample(10, where={"city": "x"})
    assert str(info.value) == (
        "column 'city' is sampled within its parent 'state' (a public hierarchy), not modelled: condition on 'state'"
    )
    with pytest.raises(InputError, match="column 'city' is sampled within its parent 'state'"):
        parent_only.sample(10, balance="city")
    state = parent_only.sample(200, seed=4)["state"].dropna().iloc[0]
    assert (parent_only.sample(300, seed=5, where={"state": state})["state"] == state).all()
    parent_only.save(tmp_path / "m.npz")
    loaded = Synthesizer.load(tmp_path / "m.npz")
    pd.testing.assert_frame_equal(loaded.sample(500, seed=6), parent_only.sample(500, seed=6))
    assert np.array_equal(loaded.within_["city"].table, parent_only.within_["city"].table)
    assert np.array_equal(loaded.within_["city"].allowed, parent_only.within_["city"].allowed)


def test_the_fold_warning_names_other_within_its_parent(parent_only):
    within, coding = parent_only.within_["city"], parent_only.columns_["city"].coding
    share = within.table[coding.other_code].sum() / within.table.sum()
    assert share > 0.10  # 6,000 rows at epsilon 1: the tail of 400 cities cannot be released
    assert [w for w in parent_only.warnings_ if w.startswith("column 'city'")] == [
        f"column 'city': {share:.0%} of the synthetic rows are 'other' within their 'state' at epsilon 1 "
        "(values too rare to release); declare its categories with their parents ('parents', a public list "
        "costs no budget) or raise epsilon"
    ]
