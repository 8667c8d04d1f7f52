"""evaluate(): calibration of the membership attacks, fidelity, utility, gates and bad input.

Calibration runs on the seeded customer simulator (always available): 12,000 rows split into
three disjoint real sets of 4,000, a training set, a holdout set and a "fresh" set. Releasing the
training rows themselves must be caught; releasing fresh real rows (never used for anything) must
score like guessing. Under no signal, the AUC of 4,000 members against 4,000 non-members has a
standard error of 0.0065 (density attack: 2,000 each, 0.009), so the +-0.05 band is more than
five standard errors wide: it cannot fail by accident, and a biased attack cannot pass by luck.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from synthroom.demo.simulator import CUSTOMERS_SCHEMA, simulate_customers
from synthroom.errors import InputError
from synthroom.evaluation import evaluate
from synthroom.evaluation.binning import bin_columns
from synthroom.evaluation.tables import prepare_tables
from synthroom.evaluation.utility import measure_utility
from synthroom.schema import parse_schema

SCHEMA = parse_schema(CUSTOMERS_SCHEMA)
SPLIT = 4000


@pytest.fixture(scope="module")
def real() -> dict[str, pd.DataFrame]:
    df = simulate_customers(3 * SPLIT, seed=7)
    return {
        "train": df.iloc[:SPLIT].reset_index(drop=True),
        "holdout": df.iloc[SPLIT : 2 * SPLIT].reset_index(drop=True),
        "fresh": df.iloc[2 * SPLIT :].reset_index(drop=True),
    }


@pytest.fixture(scope="module")
def copied(real):
    """The training rows released as if they were synthetic."""
    return evaluate(real["train"], real["holdout"], real["train"].copy(), SCHEMA, max_mia_score=0.6, anonymeter=False)


@pytest.fixture(scope="module")
def fresh(real):
    """Real rows the 'synthesizer' never saw released as synthetic: the ideal outcome."""
    return evaluate(real["train"], real["holdout"], real["fresh"], SCHEMA, max_mia_score=0.6, anonymeter=False)


def _score(report, version: str) -> float:
    return next(a.score for a in report.attacks if a.attack_version == version)


# -- calibration ------------------------------------------------------------------------------
def test_releasing_the_training_rows_is_exposed_and_refused(copied):
    assert [a.attack_version for a in copied.attacks][:2] == ["DCR-v1", "DENSITY-RATIO-v1"]
    assert _score(copied, "DCR-v1") >= 0.95
    assert _score(copied, "DENSITY-RATIO-v1") >= 0.9
    assert not copied.passed
    (gate,) = copied.gates
    assert (gate.name, gate.threshold, gate.passed) == ("DCR-v1", 0.6, False)
    assert copied.advice[0] == (
        "DCR-v1 is over its threshold of 0.6: training rows lie closer to the synthetic rows than unseen real rows do."
    )
    assert any(line.startswith("Lower epsilon") for line in copied.advice)
    assert copied.copies["exact_copy_rate_train"] == 1.0
    assert copied.copies["near_copy_rate_train"] == 1.0


def test_releasing_fresh_real_rows_scores_like_guessing_and_passes(fresh):
    assert abs(_score(fresh, "DCR-v1") - 0.5) <= 0.05
    assert abs(_score(fresh, "DENSITY-RATIO-v1") - 0.5) <= 0.05
    assert fresh.passed and fresh.advice == []
    assert fresh.copies["exact_copy_rate_train"] == 0.0  # a continuous column makes rows unique
    assert fresh.copies["near_copy_rate_train"] < 0.05


def test_dcr_histograms_share_edges_and_count_every_candidate(copied):
    details = next(a for a in copied.attacks if a.attack_version == "DCR-v1").details
    hist = details["histogram"]
    assert len(hist["members"]) == len(hist["non_members"]) == len(hist["bin_edges"]) - 1
    assert sum(hist["members"]) == details["members"] == SPLIT
    assert sum(hist["non_members"]) == details["non_members"] == SPLIT
    assert details["share_zero_members"] == 1.0 and details["share_zero_non_members"] == 0.0


def test_gates_on_other_attacks_and_the_stricter_threshold(real):
    report = evaluate(
        real["train"],
        real["holdout"],
        real["fresh"],
        SCHEMA,
        gates={"DENSITY-RATIO-v1": 0.7, "DCR-v1": 0.9},
        max_mia_score=0.55,
        anonymeter=False,
    )
    assert {g.name: g.threshold for g in report.gates} == {"DENSITY-RATIO-v1": 0.7, "DCR-v1": 0.55}
    assert report.passed


def test_report_is_strict_json_with_the_reference_names(fresh):
    data = json.loads(json.dumps(fresh.to_dict(), allow_nan=False))
    assert data["fidelityScore"] == fresh.fidelity.score
    assert data["membershipInferenceAttackScores"][0]["attackVersion"] == "DCR-v1"
    assert data["released"] is True
    assert data["rows"] == {"train": SPLIT, "holdout": SPLIT, "synthetic": SPLIT}


# -- fidelity ---------------------------------------------------------------------------------
def test_identical_tables_have_zero_kl(copied):
    assert all(c.kl == 0.0 for c in copied.fidelity.columns)
    assert copied.fidelity.score == 1.0
    assert copied.fidelity.tvd_2way == 0.0 and copied.fidelity.association_diff_mean == 0.0


def test_fresh_rows_reach_the_ceiling(fresh):
    f = fresh.fidelity
    assert f.score > 0.99 and abs(f.score - f.score_ceiling) < 0.01
    assert abs(f.tvd_2way - f.tvd_2way_ceiling) < 0.01


def test_independent_shuffle_keeps_marginals_but_loses_the_pairs(real):
    rng = np.random.default_rng(3)
    train = real["train"]
    shuffled = pd.DataFrame({c: train[c].to_numpy()[rng.permutation(len(train))] for c in train.columns})
    f = evaluate(train, real["holdout"], shuffled, SCHEMA, anonymeter=False).fidelity
    assert all(c.kl == 0.0 for c in f.columns)  # same values, so the same marginals
    assert f.tvd_2way > f.tvd_2way_ceiling + 0.02
    assert f.association_diff_mean > 3 * f.association_diff_ceiling


def test_column_shares_for_plots(fresh):
    by_name = {c.name: c for c in fresh.fidelity.columns}
    income = by_name["income"]
    assert income.bins[-1] == "(missing)" and 0.02 < income.real[-1] < 0.08  # 5% undeclared
    assert by_name["support_calls"].bins[:2] == ["= 0", "= 1"]  # point masses get their own bin
    assert by_name["signup_date"].bins[0].startswith("< 20")  # datetime bins read as dates
    for c in fresh.fidelity.columns:
        assert len(c.bins) == len(c.real) == len(c.synthetic) == len(c.holdout)
        assert abs(sum(c.real) - 1) < 1e-9 and abs(sum(c.synthetic) - 1) < 1e-9


# -- utility ----------------------------------------------------------------------------------
def test_fresh_rows_are_as_useful_as_the_training_rows(fresh):
    u = fresh.utility
    assert (u.task, u.target) == ("classification", "churned")
    assert set(u.tstr) == set(u.trtr) == {"auc", "accuracy", "f1"}
    assert u.trtr["auc"] > 0.7 and abs(u.tstr["auc"] - u.trtr["auc"]) < 0.03


def test_single_class_synthetic_target_gives_auc_half_and_a_note(real):
    tables = prepare_tables(
        real["train"], real["holdout"], real["fresh"].assign(churned="no"), SCHEMA, max_rows=50_000, seed=0
    )
    notes: list[str] = []
    u = measure_utility(tables, bin_columns(tables), notes)
    assert u.tstr["auc"] == 0.5 and u.tstr["f1"] == 0.0
    assert notes == [
        "utility: the synthetic rows hold a single target class (no); the model predicts it for every row, so its AUC is 0.5"
    ]


def test_numerical_target_is_regression(real):
    schema = parse_schema({**CUSTOMERS_SCHEMA, "target": "monthly_spend"})
    tables = prepare_tables(real["train"], real["holdout"], real["fresh"], schema, max_rows=50_000, seed=0)
    u = measure_utility(tables, bin_columns(tables), [])
    assert u.task == "regression" and set(u.trtr) == {"r2", "mae"}
    assert u.trtr["r2"] > 0.5 and abs(u.tstr["r2"] - u.trtr["r2"]) < 0.05


def test_adult_utility_is_in_the_published_range(adult_dir, adult_schema):
    train = pd.read_csv(adult_dir / "train.csv")
    holdout = pd.read_csv(adult_dir / "test.csv").sample(5000, random_state=0)
    synthetic = train.sample(8000, random_state=1)  # real rows: TSTR should match TRTR closely
    tables = prepare_tables(
        train.sample(10_000, random_state=0), holdout, synthetic, parse_schema(adult_schema), max_rows=50_000, seed=0
    )
    u = measure_utility(tables, bin_columns(tables), [])
    assert u.trtr["auc"] >= 0.9 and 0.83 <= u.trtr["accuracy"] <= 0.9
    assert 0.6 <= u.trtr["f1"] <= 0.75  # F1 of the minority class ">50K"
    assert abs(u.tstr["auc"] - u.trtr["auc"]) < 0.02


def test_multiclass_target_uses_macro_one_vs_rest(real):
    schema = parse_schema({**CUSTOMERS_SCHEMA, "target": "plan"})
    tables = prepare_tables(real["train"], real["holdout"], real["fresh"], schema, max_rows=50_000, seed=0)
    u = measure_utility(tables, bin_columns(tables), [])
    assert u.task == "classification" and 0.6 < u.trtr["auc"] < 1.0 and 0.0 < u.trtr["f1"] < 1.0


# -- subsampling and bad input ----------------------------------------------------------------
def test_large_tables_are_subsampled_with_a_note(real):
    report = evaluate(real["train"], real["holdout"], real["fresh"], SCHEMA, max_rows=1000, seed=5, anonymeter=False)
    assert report.rows == {"train": 1000, "holdout": 1000, "synthetic": 1000}
    assert (
        "the training table was subsampled from 4,000 to 1,000 rows (seeded draw without replacement, seed 5)"
        in report.notes
    )
    assert (
        "the synthetic table was subsampled from 4,000 to 1,000 rows (seeded draw without replacement, seed 5)"
        in report.notes
    )


def test_without_a_sidecar_the_anonymeter_risks_are_noted_not_fatal(real, monkeypatch):
    monkeypatch.setenv("SYNTHROOM_ANONYMETER_PYTHON", "/nonexistent/python")
    report = evaluate(real["train"].iloc[:500], real["holdout"].iloc[:500], real["fresh"].iloc[:500], SCHEMA)
    assert [a.attack_version for a in report.attacks] == ["DCR-v1", "DENSITY-RATIO-v1"]
    assert (
        "anonymeter risks not computed: SYNTHROOM_ANONYMETER_PYTHON is set to '/nonexistent/python', which is not a file"
        in report.notes
    )
    with pytest.raises(InputError) as err:
        evaluate(real["train"], real["holdout"], real["fresh"], SCHEMA, gates={"ANONYMETER-LINKABILITY-v1": 0.1})
    assert str(err.value) == (
        "gate on 'ANONYMETER-LINKABILITY-v1': that attack cannot be computed (SYNTHROOM_ANONYMETER_PYTHON "
        "is set to '/nonexistent/python', which is not a file)"
    )


def _error(real, **changes) -> str:
    args = {"train": real["train"], "holdout": real["holdout"], "synthetic": real["fresh"], "schema": SCHEMA}
    gates = changes.pop("gates", None)
    args.update(changes)
    with pytest.raises(InputError) as err:
        evaluate(args["train"], args["holdout"], args["synthetic"], args["schema"], gates=gates, anonymeter=False)
    return str(err.value)


def test_bad_input_messages(real):
    train, holdout, fresh = real["train"], real["holdout"], real["fresh"]
    assert (
        _error(real, synthetic=fresh.drop(columns="plan"))
        == "column 'plan' is in the schema but not in the synthetic table"
    )
    assert (
        _error(real, holdout=holdout.drop(columns="age"))
        == "column 'age' is in the schema but not in the holdout table"
    )
    assert (
        _error(real, train=train.drop(columns="churned"))
        == "column 'churned' is in the schema but not in the training table"
    )
    assert (
        _error(real, synthetic=fresh.drop(columns=["age", "plan"]))
        == "columns 'age' and 'plan' are in the schema but not in the synthetic table"
    )
    assert _error(
        real, holdout=holdout.astype({"age": object}).assign(age=lambda d: d["age"].where(d.index != 3, "old"))
    ) == ("column 'age' is numerical but the holdout table holds the value 'old'")
    assert _error(real, synthetic=fresh.assign(signup_date=1.5e9)) == (
        "column 'signup_date' is declared datetime but the synthetic table holds numbers"
    )
    assert _error(real, synthetic=fresh.assign(signup_date="someday")) == (
        "column 'signup_date' is datetime but the synthetic table holds the value 'someday'"
    )
    assert _error(real, holdout=holdout.iloc[:0]) == "the holdout table has no rows"
    assert _error(real, holdout=holdout.iloc[:150]) == (
        "the holdout table has 150 rows; at least 200 are needed for a meaningful membership-inference score"
    )
    assert _error(real, synthetic=fresh.iloc[:0]) == "the synthetic table has no rows"
    assert _error(real, gates={"MAGIC-v9": 0.6}).startswith(
        "gate on 'MAGIC-v9': no attack has that version (known: DCR-v1, "
    )
    assert _error(real, gates={"DCR-v1": 0.3}) == "max MIA score 0.3 is outside the allowed range [0.5, 1.0]"
    assert _error(real, gates={"ANONYMETER-INFERENCE-v1": 0.2}) == (
        "gate on 'ANONYMETER-INFERENCE-v1': that attack cannot be computed (anonymeter risks turned off)"
    )


def test_values_are_normalised_across_file_types():
    from synthroom.evaluation.tables import normalise_column

    # a categorical code read as 1 in one file and 1.0 in another (because of a gap) still matches
    assert list(normalise_column(pd.Series([1.0, np.nan, 2.0]), "categorical", "c", "synthetic")) == ["1", None, "2"]
    assert list(normalise_column(pd.Series([1, 2, 2]), "categorical", "c", "training")) == ["1", "2", "2"]
    # naive datetimes are UTC; aware ones are converted; text dates parse
    aware = pd.Series(pd.to_datetime(["2024-01-01 01:00"]).tz_localize("Europe/Paris"))
    assert normalise_column(aware, "datetime", "d", "synthetic")[0] == pd.Timestamp("2024-01-01").timestamp()
    assert (
        normalise_column(pd.Series(["2024-01-01", None]), "datetime", "d", "holdout")[0]
        == pd.Timestamp("2024-01-01").timestamp()
    )
    assert np.isnan(normalise_column(pd.Series(["2024-01-01", " "]), "datetime", "d", "holdout")[1])
    with pytest.raises(InputError, match=r"^column 'n' is numerical but the training table holds an infinite value$"):
        normalise_column(pd.Series([1.0, np.inf]), "numerical", "n", "training")


def test_advice_names_the_ledger_epsilon_and_the_schema_columns(real):
    from synthroom.evaluation.gates import advise
    from synthroom.evaluation.result import GateResult

    advice = advise([GateResult("DENSITY-RATIO-v1", 0.6, 0.71, False)], SCHEMA, {"epsilon": 2.0})
    assert advice == [
        "DENSITY-RATIO-v1 is over its threshold of 0.6: the synthetic rows crowd the training rows more than "
        "real data does.",
        "Lower epsilon: this data was synthesized with epsilon 2; try 1, which bounds every row's influence on "
        "the output twice as tightly.",
        "Coarsen fine-grained numerical columns before synthesis (round them or cut them into fewer bins): "
        "age, income, tenure_months, monthly_spend, support_calls, signup_date.",
        "Drop or generalise rare values of categorical columns, merging them into broader groups: region, plan, "
        "channel.",
        "Use fewer columns: drop those the task does not need; a row that is unique on all 9 feature columns is "
        "the kind attacks expose.",
    ]
    assert advise([], SCHEMA, None) == []


def test_advice_quotes_no_value_and_no_count_of_the_real_rows(real):
    """A value held by 3 rows, and one more row with a new value: the refused run's advice names
    no value, no count and no share of the rows, and is the same on both neighbouring tables."""
    train = real["train"].copy()
    train.loc[:2, "region"] = "zanzibar-7"
    neighbour = pd.concat(
        [train, train.iloc[[5]].assign(region="atlantis-9", monthly_spend=123456.75)], ignore_index=True
    )
    reports = [
        evaluate(t, real["holdout"], t.copy(), SCHEMA, max_mia_score=0.6, anonymeter=False) for t in (train, neighbour)
    ]
    assert not reports[0].passed and not reports[1].passed
    assert reports[0].advice == reports[1].advice
    text = " ".join(reports[0].advice + reports[1].advice)
    for value in ("zanzibar", "atlantis", "123456", "distinct", "%"):
        assert value not in text
    numbers = set(re.findall(r"(?<!\w)\d[\d.,]*", text))  # (not the 1 of "DCR-v1")
    assert numbers <= {"0.6", "9"}, numbers  # the gate's threshold and the schema's column count only


def test_a_broken_sidecar_is_noted_and_a_gate_on_it_refused(real, monkeypatch):
    import sys

    monkeypatch.setenv("SYNTHROOM_ANONYMETER_PYTHON", sys.executable)  # runs, but has no anonymeter
    train, holdout, fresh = real["train"].iloc[:300], real["holdout"].iloc[:300], real["fresh"].iloc[:300]
    report = evaluate(train, holdout, fresh, SCHEMA)
    assert [a.attack_version for a in report.attacks] == ["DCR-v1", "DENSITY-RATIO-v1"]
    (note,) = report.notes
    assert note.startswith(
        "anonymeter risks not computed: the sidecar exited with code 1: ModuleNotFoundError: No module named"
    )
    with pytest.raises(InputError) as err:
        evaluate(train, holdout, fresh, SCHEMA, gates={"ANONYMETER-INFERENCE-v1": 0.5})
    assert str(err.value).startswith(
        "gate on 'ANONYMETER-INFERENCE-v1': that attack was not computed (anonymeter risks not computed: the sidecar exited with code 1"
    )
