"""Category selection (synthesis/selection.py): the target's classes, the second selection for
columns that fold, public values, the fold warnings, and what each costs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synthroom import InputError, Synthesizer
from synthroom.engine import CategoryCoding, CountingSource
from synthroom.privacy import ZCDPAccountant
from synthroom.privacy.mechanisms import combined_threshold, sigma_for, threshold_for
from synthroom.privacy.noise import SeededNoise, discrete_gaussian_sf
from synthroom.schema import parse_schema
from synthroom.synthesis import selection
from synthroom.synthesis.selection import (
    ROWS_SHARE,
    ROWS_Z,
    TAIL_MAX_OF_REMAINING,
    TAIL_MAX_SHARE,
    TAIL_RATE,
    TARGET_LOSS,
    CategoricalColumn,
    TargetClassesLost,
    count_rows,
    first_domains,
    fold_warnings,
    keep_probability_rho,
    learn_categorical,
    release_tails,
    target_selection_rho,
)

DELTA_COL = 5e-10 / 3


def loan(n: int, yes: int, seed: int = 0) -> pd.DataFrame:
    """``n`` loan decisions, exactly ``yes`` of them approved, with two features."""
    rng = np.random.default_rng(seed)
    y = np.array(["yes"] * yes + ["no"] * (n - yes))
    rng.shuffle(y)
    return pd.DataFrame(
        {
            "income": rng.normal(50, 15, n).round() + 15 * (y == "yes"),
            "purpose": rng.choice(["car", "home", "edu"], n),
            "approved": y,
        }
    )


LOAN_SCHEMA = {
    "target": "approved",
    "columns": [
        {"name": "income", "type": "numerical"},
        {"name": "purpose", "type": "categorical"},
        {"name": "approved", "type": "categorical"},
    ],
}


def _domains(df: pd.DataFrame, schema: dict, seed: int, epsilon: float = 1.0, unit_cap: int = 1):
    """The fit's row count and ``first_domains`` (the target's classes) on ``df`` with seeded noise."""
    parsed = parse_schema(schema)
    acc = ZCDPAccountant(epsilon, 1e-9, 5e-10, unit_cap=unit_cap)
    source = CountingSource.open(df, {c.name: c.kind for c in parsed.columns})
    noise = SeededNoise(seed)
    try:
        rows = count_rows(len(df), acc, noise)
        columns = first_domains(source, parsed, acc, noise, 0.25 * acc.rho_budget / 3, DELTA_COL, rows)
    finally:
        source.close()
    return columns, rows, acc


# -- the predictive column ---------------------------------------------------------------------
def test_keep_probability_rho_is_the_least_rho_that_keeps_the_class():
    for rows, k in ((150, 1), (500, 1), (150, 3)):
        rho = keep_probability_rho(rows, DELTA_COL, k)
        sigma = sigma_for(rho, k)

        def lost(s, rows=rows, k=k):
            return 1.0 - discrete_gaussian_sf(int(threshold_for(s, DELTA_COL, k)) - rows + 1, s)

        assert lost(sigma) <= TARGET_LOSS < lost(sigma * 1.02)
    # At epsilon 1 a class of 150 rows needs about a fifth of the whole budget.
    budget = ZCDPAccountant(1.0, 1e-9, 5e-10).rho_budget
    assert 0.17 < keep_probability_rho(150, DELTA_COL, 1) / budget < 0.21
    assert keep_probability_rho(3, DELTA_COL, 4) == math.inf  # 3 rows can never clear a threshold for 4


def test_target_selection_rho_is_sized_by_the_dp_row_count_between_floor_and_cap():
    budget, floor = 0.0144, 1e-5
    at_150 = keep_probability_rho(150, DELTA_COL, 1)
    assert target_selection_rho(budget, None, DELTA_COL, 1, floor) == at_150
    assert target_selection_rho(budget, 1_000, DELTA_COL, 1, floor) == at_150  # 10% is below 150
    assert target_selection_rho(budget, 5_000, DELTA_COL, 1, floor) == keep_probability_rho(500, DELTA_COL, 1)
    assert target_selection_rho(budget, 1e6, DELTA_COL, 1, floor) == floor  # a feature's share at least
    assert target_selection_rho(0.001, None, DELTA_COL, 1, floor) == 0.25 * 0.001  # at most a quarter


def test_the_row_count_and_the_target_selection_cost_exactly_what_they_state():
    df = loan(1_666, 219)
    columns, rows, acc = _domains(df, LOAN_SCHEMA, seed=4)
    count, target = acc.charges
    assert count.step == "rows of the table (size regime and category selection)" and count.mechanism == "gaussian"
    assert count.rho == pytest.approx(ROWS_SHARE * acc.rho_budget, rel=1e-12) and count.sensitivity == 1.0
    assert count.noise == pytest.approx(sigma_for(ROWS_SHARE * acc.rho_budget), rel=1e-12)
    assert rows.sigma == count.noise and rows.low == pytest.approx(rows.noisy - ROWS_Z * count.noise, rel=1e-12)
    assert rows.low == max(0.0, rows.noisy - ROWS_Z * rows.sigma) and abs(rows.noisy - 1_666) < 6 * rows.sigma
    # The target's rho is target_selection_rho of the count's lower bound.
    expected = target_selection_rho(acc.rho_budget, rows.low, DELTA_COL, 1, 0.25 * acc.rho_budget / 3)
    assert target.step == "classes of the predictive column 'approved' (partition selection)"
    assert target.mechanism == "gaussian-threshold" and target.delta == DELTA_COL
    assert target.rho == pytest.approx(expected, rel=1e-12) and target.sensitivity == 1.0
    assert columns["approved"].coding.values[:2] == ("no", "yes")


@pytest.mark.parametrize("n, rare", [(1_000, 150), (1_500, 150), (5_000, 500)])
def test_a_rare_but_large_enough_target_class_is_kept(n, rare):
    # A class of max(150, 10% of the rows) rows is lost with probability at most TARGET_LOSS
    # (1e-6) per run, plus 1e-6 that the row count's lower bound is above the truth; 25 runs fail
    # together with probability below 5e-5, whatever the seeds.
    df = loan(n, rare, seed=n)
    for seed in range(25):
        columns, _, _ = _domains(df, LOAN_SCHEMA, seed=seed)
        assert set(columns["approved"].coding.values) == {"no", "yes"}, seed


def test_the_rare_class_reaches_the_synthetic_rows():
    # The table: 219 approvals of 1,666 rows. Before, the class folded into 'other' and a
    # model trained on the synthetic rows scored AUC 0.5.
    synth = Synthesizer(LOAN_SCHEMA, epsilon=1.0).fit(loan(1_666, 219))
    out = synth.sample(5_000)
    assert set(out["approved"]) == {"no", "yes"}
    assert 0.05 < (out["approved"] == "yes").mean() < 0.25  # 13% real; the model's noise is far smaller
    assert not any("predictive column" in w for w in synth.warnings_)


def test_fewer_than_two_classes_stop_the_fit_before_anything_more_is_spent():
    df = loan(1_000, 8)  # 8 approvals: far below any threshold
    with pytest.raises(TargetClassesLost) as info:
        _domains(df, LOAN_SCHEMA, seed=0)
    assert str(info.value) == (
        "the predictive column 'approved' would hold only 'no' at epsilon 1: its other classes are too rare to "
        "release with DP, and a classifier needs at least two; declare its classes in the schema (categories: "
        "[...], a public list costs no budget) or raise epsilon. The run stopped before spending the rest of its "
        "budget"
    )
    assert isinstance(info.value, InputError) and info.value.category == "target_classes_lost"
    synth = Synthesizer(LOAN_SCHEMA, epsilon=1.0)
    with pytest.raises(TargetClassesLost):
        synth.fit(df)
    steps = [c["step"] for c in synth.privacy_report()["charges"]]
    assert steps == [
        "rows of the table (size regime and category selection)",  # the fit's one count, before any domain
        "classes of the predictive column 'approved' (partition selection)",
    ]
    with pytest.raises(TargetClassesLost, match="would hold no class at epsilon 1"):
        Synthesizer(LOAN_SCHEMA, epsilon=1.0).fit(loan(20, 3))


def test_declared_classes_are_kept_whatever_their_size_and_cost_nothing():
    schema = {
        **LOAN_SCHEMA,
        "columns": LOAN_SCHEMA["columns"][:2]
        + [{"name": "approved", "type": "categorical", "categories": ["no", "yes", "maybe"]}],
    }
    df = loan(1_000, 3)
    columns, _, acc = _domains(df, schema, seed=0)
    assert columns == {} and [c.step for c in acc.charges] == ["rows of the table (size regime and category selection)"]
    synth = Synthesizer(schema, epsilon=1.0).fit(df)
    assert synth.columns_["approved"].coding.values == ("no", "yes", "maybe")
    assert not any("'approved'" in c["step"] for c in synth.privacy_report()["charges"])  # only in marginals


# -- stage 2: a second selection for columns that fold ---------------------------------------------
def _zipf(n: int, values: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, values + 1) ** 0.9
    city = rng.choice(values, n, p=w / w.sum())
    return pd.DataFrame(
        {"city": [f"c{i:03d}" for i in city], "plan": rng.choice(["a", "b"], n), "y": rng.choice(["no", "yes"], n)}
    )


def _zipf_run(df: pd.DataFrame):
    """The zipf table's kinds, an epsilon-1 accountant, seeded noise and a counting source on ``df``."""
    kinds = {"city": "categorical", "plan": "categorical", "y": "categorical"}
    return kinds, ZCDPAccountant(1.0, 1e-9, 5e-10), SeededNoise(2), CountingSource.open(df, kinds)


def test_the_second_selection_costs_its_share_of_the_pool_exactly():
    df = _zipf(20_000, 400, seed=1)
    kinds, acc, noise, source = _zipf_run(df)
    try:
        rho_col = 0.25 * acc.rho_budget / 3
        columns = {
            s.name: learn_categorical(source, s, acc, noise, rho_col, DELTA_COL)
            for s in parse_schema(
                {"target": "y", "columns": [{"name": k, "type": v} for k, v in kinds.items()]}
            ).columns
            if s.name != "y"
        }
        assert all(c.delta == DELTA_COL / 2 for c in acc.charges)  # stage 1: half of each column's delta
        rows = 20_000.0
        share = selection.folded_share(columns["city"], rows)
        assert share > 0.3 and selection.folded_share(columns["plan"], rows) < 0.01
        before, remaining = list(columns["city"].coding.values), acc.rho_remaining
        release_tails(source, columns, acc, noise, rows)
    finally:
        source.close()
    (tail,) = acc.charges[2:]  # 'plan' folds nothing: no second selection
    pool = min(TAIL_RATE * share * acc.rho_budget, TAIL_MAX_SHARE * acc.rho_budget, TAIL_MAX_OF_REMAINING * remaining)
    assert tail.step == "rarer categories of 'city' (second partition selection)"
    assert tail.rho == pytest.approx(pool, rel=1e-12) and tail.delta == pytest.approx(DELTA_COL, rel=1e-12)
    assert tail.noise == pytest.approx(sigma_for(pool), rel=1e-12)
    after = columns["city"].coding.values
    assert list(after[: len(before)]) == before and len(after) > len(before) + 5
    # Every value the second selection kept cleared its threshold in expectation terms: none
    # held fewer rows than the threshold less 6 noise standard deviations (probability < 1e-9).
    counts = df["city"].value_counts()
    tau = threshold_for(tail.noise, tail.delta)
    assert counts[list(after[len(before) :])].min() > tau - 6 * tail.noise


def test_the_standard_regime_gives_a_second_selection_to_a_column_folding_more_than_1_percent():
    """A 60-value column folds ~9% of its rows at stage 1: under the small regime's trigger (10%,
    the fold warning's) it gets no second selection; under the standard regime's
    (TAIL_TRIGGER_SHARE, 1%) it does, and keeps more values (Adult at epsilon 1: race folded 1.8%,
    two values of 250-280 rows just under stage 1's threshold, and native-country 6.7%)."""
    df = _zipf(20_000, 60, seed=1)
    runs = []
    for trigger in (selection.FOLD_WARN_SHARE, selection.TAIL_TRIGGER_SHARE):
        kinds, acc, noise, source = _zipf_run(df)
        try:
            columns = {
                s.name: learn_categorical(source, s, acc, noise, 0.25 * acc.rho_budget / 3, DELTA_COL)
                for s in parse_schema(
                    {"target": "y", "columns": [{"name": k, "type": v} for k, v in kinds.items()]}
                ).columns
                if s.name != "y"
            }
            share = selection.folded_share(columns["city"], 20_000.0)
            release_tails(source, columns, acc, noise, 20_000.0, trigger=trigger)
        finally:
            source.close()
        runs.append((share, [c.step for c in acc.charges[2:]], len(columns["city"].coding.values)))
    (share, small_steps, small_kept), (_, standard_steps, standard_kept) = runs
    assert 0.05 < share < selection.FOLD_WARN_SHARE and selection.TAIL_TRIGGER_SHARE == 0.01
    assert small_steps == [] and standard_steps == ["rarer categories of 'city' (second partition selection)"]
    assert standard_kept > small_kept


def test_a_second_selection_with_no_value_left_is_charged_all_the_same():
    """Whether stage 1 left any value unkept is not a DP fact, so stage 2 charges its rho and
    delta either way, and then keeps nothing new."""
    df = _zipf(20_000, 3, seed=1)
    _, acc, noise, source = _zipf_run(df)
    try:
        (spec,) = [
            c
            for c in parse_schema(
                {
                    "target": "y",
                    "columns": [{"name": "city", "type": "categorical"}, {"name": "y", "type": "categorical"}],
                }
            ).columns
            if c.name == "city"
        ]
        column = learn_categorical(source, spec, acc, noise, 0.01, DELTA_COL)
        assert column.unreleased is not None and column.unreleased.values == ()  # stage 1 kept all three
        after = selection._second_selection(source, column, acc, noise, 0.002, DELTA_COL / 2)
    finally:
        source.close()
    tail = acc.charges[-1]
    assert tail.step == "rarer categories of 'city' (second partition selection)"
    assert tail.rho == pytest.approx(0.002, rel=1e-12) and tail.delta == pytest.approx(DELTA_COL / 2, rel=1e-12)
    assert after.coding.values == column.coding.values and after.noisy_rows == column.noisy_rows
    assert len(after.selected) == 2 and after.selected[-1].values == ()


def test_the_selections_counts_are_1_way_measurements_of_the_kept_cells_at_no_cost():
    # Each selection's noisy counts of the values it kept (stage 1, then stage 2) come back as a
    # measurement of exactly those codes, with the noise std that selection charged; ``other``
    # (never released) is not measured, and reading them charges nothing.
    df = _zipf(20_000, 400, seed=1)
    df.loc[df.index[:300], "city"] = None  # missing values: a value of their own, selected like the others
    kinds, acc, noise, source = _zipf_run(df)
    try:
        schema = parse_schema({"target": "y", "columns": [{"name": k, "type": v} for k, v in kinds.items()]})
        columns = {
            s.name: learn_categorical(source, s, acc, noise, 0.25 * acc.rho_budget / 3, DELTA_COL)
            for s in schema.columns
        }
        release_tails(source, columns, acc, noise, 20_000.0)
    finally:
        source.close()
    charged = len(acc.charges)
    found = selection.selection_measurements(columns, {"city", "plan"})
    assert len(acc.charges) == charged
    city = columns["city"]
    stages = [c for c in acc.charges if "'city'" in c.step]
    assert [m.clique for m in found] == [("city",)] * 2 + [("plan",)] and len(stages) == 2
    # Stage 1's counts carry its own noise; stage 2's are combined with stage 1's unreleased ones
    # (here the combination's threshold is the lower), so they carry the combination's std.
    sigma_c = 1 / math.sqrt(1 / stages[0].noise ** 2 + 1 / stages[1].noise ** 2)
    tau_c = combined_threshold(sigma_c, stages[1].delta)
    assert tau_c < threshold_for(stages[1].noise, stages[1].delta)
    expected = [(stages[0].noise, threshold_for(stages[0].noise, stages[0].delta)), (sigma_c, tau_c)]
    codes = []
    for m, (sigma, tau), sel in zip(found, expected, city.selected):
        assert m.sigma == pytest.approx(sigma, rel=1e-12)
        assert len(m.cells) == len(m.noisy) == len(sel.values) > 0
        assert list(m.noisy) == sorted(m.noisy, reverse=True)  # largest first, as kept
        assert all(n > tau for n in m.noisy)
        codes += list(m.cells)
    assert sorted(codes) == [c for c in range(city.size) if c != city.coding.other_code]  # every kept code once
    assert city.coding.missing_code in codes
    # A column without an ``other`` code counts the rows not kept in its most frequent value: that
    # cell is not what the selection counted, so it is not measured.
    plan = selection.drop_empty_other(columns["plan"], selection.RowCount(20_000.0, 1.0))
    assert plan.coding.other_code is None and plan.coding.fold_code == 0
    (only,) = selection.selection_measurements({"plan": plan}, {"plan"})
    assert only.cells == (1,) and only.noisy[0] == found[2].noisy[1]
    truth = df["city"].value_counts(dropna=False)
    for m in found[:2]:
        values = [None if c == city.coding.missing_code else city.coding.values[c] for c in m.cells]
        exact = np.array([truth[v] if v is not None else df["city"].isna().sum() for v in values])
        assert np.abs(m.noisy - exact).max() < 6 * m.sigma + 1


def test_the_model_fits_a_measurement_of_some_cells():
    from synthroom.synthesis.model import estimate
    from synthroom.synthesis.structure import Measurement

    some = Measurement(("a",), np.array([600.0, 300.0]), 1.0, cells=(2, 0))
    rough = Measurement(("a",), np.array([250.0, 250.0, 250.0, 250.0]), 1e3)
    model = estimate({"a": 4}, [some, rough], 2000)
    counts = np.asarray(model.project(["a"]).datavector())
    assert counts[2] == pytest.approx(600, abs=5) and counts[0] == pytest.approx(300, abs=5)


def test_a_collapsing_column_keeps_far_more_values_than_before():
    # 20,000 rows, a 400-value Zipf(0.9) column at epsilon 1: one selection at a fifth of the domain
    # budget kept about 13 values (60% folded); with the second selection more than 30 are kept
    # and at most 45% of the rows fold (threshold ~85 rows, sigma ~11: the kept count moves by a
    # few values between runs, the folded share by about 1%).
    df = _zipf(20_000, 400, seed=3)
    synth = Synthesizer(
        {"target": "y", "columns": [{"name": c, "type": "categorical"} for c in df.columns]}, epsilon=1.0
    ).fit(df)
    kept = synth.columns_["city"].coding.values
    assert len(kept) > 30
    assert (~df["city"].isin(kept)).mean() < 0.45
    (line,) = [w for w in synth.warnings_ if "'city'" in w]
    assert line.startswith("column 'city': ") and f"only {len(kept)} values were frequent enough" in line


# -- warnings -------------------------------------------------------------------------------------
class _Model:
    """A stand-in for the fitted model: fixed 1-way marginals."""

    def __init__(self, marginals: dict[str, list[float]]):
        self.marginals = marginals

    def project(self, attrs):
        class _F:
            def __init__(self, v):
                self.v = np.asarray(v, dtype=float)

            def datavector(self):
                return self.v

        return _F(self.marginals[attrs[0]])


def test_fold_warnings_say_what_folded_and_what_to_do():
    city = CategoricalColumn("city", CategoryCoding(("a", "b"), None, 2, 3), "other", "VARCHAR", 55.0)
    label = CategoricalColumn("label", CategoryCoding(("no", "yes"), None, 2, 3), "other", "VARCHAR", 90.0)
    plan = CategoricalColumn("plan", CategoryCoding(("x", "y"), 2, 3, 4), "other", "VARCHAR")  # declared
    quiet = CategoricalColumn("quiet", CategoryCoding(("a",), None, 1, 2), "other", "VARCHAR", 95.0)
    model = _Model({"city": [30, 25, 45], "label": [60, 38, 2], "plan": [40, 30, 0, 30], "quiet": [91, 9]})
    columns = {"city": city, "label": label, "plan": plan, "quiet": quiet}
    assert fold_warnings(model, columns, "label", 1.0) == [
        "column 'city': 45% of the synthetic rows are 'other' at epsilon 1 (only 2 values were frequent enough to "
        "release, the rest fold into 'other'); declare its categories in the schema (a public list costs no "
        "budget) or raise epsilon",
        "the predictive column 'label': 2% of the synthetic rows are 'other' at epsilon 1 (at least one class was "
        "too rare to release, so a model trained on these rows cannot predict it); declare its classes in the "
        "schema (a public list costs no budget) or raise epsilon",
        "column 'plan': 30% of the synthetic rows are 'other', values outside its declared categories; add the "
        "missing values to the declared list",
    ]  # 'quiet' folds 9%: under the 10% line


def test_the_cli_prints_the_fold_warning(tmp_path):
    from typer.testing import CliRunner
    import yaml

    from synthroom.cli.app import app

    df = _zipf(3_000, 400, seed=5)
    df.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "s.yaml").write_text(
        yaml.safe_dump({"target": "y", "columns": [{"name": c, "type": "categorical"} for c in df.columns]})
    )
    result = CliRunner().invoke(
        app,
        ["synthesize", str(tmp_path / "t.csv"), "-s", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "o.csv"), "-q"],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning: column 'city': " in text and "of the synthetic rows are 'other' at epsilon 1" in text


def test_the_cli_exits_2_when_the_target_loses_its_classes(tmp_path):
    from typer.testing import CliRunner
    import yaml

    from synthroom.cli.app import app

    loan(1_000, 8).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(LOAN_SCHEMA))
    out = tmp_path / "o.csv"
    result = CliRunner().invoke(
        app, ["synthesize", str(tmp_path / "t.csv"), "-s", str(tmp_path / "s.yaml"), "-o", str(out), "-q"]
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "the predictive column 'approved' would hold only 'no' at epsilon 1" in text
    assert "declare its classes in the schema" in text and "Traceback" not in text
    assert not out.exists()


# -- no phantom ``other`` -------------------------------------------------------------------------
def test_a_two_class_target_and_a_fully_kept_feature_get_no_other_code():
    # 6,000 rows, every value frequent: before, the target had a third code ('other') that no row
    # could hold, so every clique with the target had 1.5x the cells (more noise, a harsher tree
    # penalty). Decided from DP outputs only: the row count minus the kept values' noisy counts
    # (at epsilon 4 their std is about 15 rows, against 1% of the rows for the target).
    df = loan(6_000, 2_000, seed=1)
    synth = Synthesizer(LOAN_SCHEMA, epsilon=4.0, seed=3).fit(df)
    target, purpose = synth.columns_["approved"].coding, synth.columns_["purpose"].coding
    assert (target.other_code, target.size, set(target.values)) == (None, 2, {"no", "yes"})
    assert (purpose.other_code, purpose.size, set(purpose.values)) == (None, 3, {"car", "home", "edu"})
    assert target.fold_code == purpose.fold_code == 0
    assert synth.model_.domain["approved"] == 2 and synth.model_.domain["purpose"] == 3
    out = synth.sample(2_000)
    assert set(out["approved"]) == {"no", "yes"} and set(out["purpose"]) == {"car", "home", "edu"}


def test_a_column_that_folds_keeps_its_other_code():
    # 8% of the rows hold 400 values of 3 rows each (none can be released): 'other' stays.
    df = loan(6_000, 2_000, seed=1)
    df.loc[:479, "purpose"] = [f"rare{i // 3}" for i in range(480)]
    synth = Synthesizer(LOAN_SCHEMA, epsilon=4.0, seed=3).fit(df)
    purpose = synth.columns_["purpose"].coding
    assert purpose.other_code == purpose.size - 1 == 3 and purpose.fold_code is None
    with pytest.raises(InputError, match="a value too rare to pass the DP category selection is folded into 'other'"):
        synth.sample(10, where={"purpose": "zz"})


def test_drop_empty_other_reads_the_dp_estimates_only():
    coding = CategoryCoding(("a", "b", "c"), None, 3, 4)
    rows = selection.RowCount(10_000.0, 40.0)

    def column(noisy_rows: float) -> CategoricalColumn:
        return CategoricalColumn("x", coding, "other", "VARCHAR", noisy_rows, rows_var=3 * 40.0**2)

    dropped = selection.drop_empty_other(column(10_020.0), rows)
    assert dropped.coding == CategoryCoding(("a", "b", "c"), None, None, 3, fold_code=0)
    # The folded estimate plus 2 std (std = sqrt(40^2 + 3 * 40^2) = 80) must stay below 2% of the
    # rows (200); the target's, below 1% (100).
    assert selection.drop_empty_other(column(9_961.0), rows).coding == dropped.coding  # 39 + 160 < 200
    assert selection.drop_empty_other(column(9_960.0), rows).coding == coding  # 40 + 160 = 200
    assert selection.drop_empty_other(column(10_000.0), rows, is_target=True).coding == coding  # 160 > 100
    assert selection.drop_empty_other(column(10_061.0), rows, is_target=True).coding == dropped.coding
    public = CategoricalColumn("x", coding, "other", "VARCHAR")  # a declared list: left as it is
    assert selection.drop_empty_other(public, rows) is public


def test_without_an_other_code_a_value_not_kept_is_counted_in_the_fold_code():
    df = pd.DataFrame({"x": ["a", "b", "b", "c", None, "b"]})
    source = CountingSource.open(df, {"x": "categorical"})
    try:
        source.encode({"x": CategoryCoding(("b", "a"), None, None, 2, fold_code=0)})
        (table,) = source.marginals([("x",)])
    finally:
        source.close()
    assert table.tolist() == [5.0, 1.0]  # b, plus c and the missing value; a
