"""The size regime: chosen from a DP row count, charged, reported; too-small tables say so."""

import math

import numpy as np
import pandas as pd
import pytest
from benchkit import load_bench

from synthroom import Synthesizer
from synthroom.synthesis.synthesizer import Settings
from synthroom.demo.small import SMALL_TABLES, informative_columns, small_table
from synthroom.privacy.accountant import rho_from_epsilon
from synthroom.synthesis import regime as rg
from synthroom.synthesis.selection import ROWS_SHARE

RHO_1 = rho_from_epsilon(1.0, 5e-10)  # epsilon 1, half of delta 1e-9 for the conversion


def test_the_regime_follows_the_signal_of_the_dp_row_count():
    """signal = rows * sqrt(2 rho / columns): small below 400, too small below 30."""
    assert rg.signal(1000, RHO_1, 21) == pytest.approx(1000 * math.sqrt(2 * RHO_1 / 21))
    adult = rg.choose_regime(32_561, RHO_1, 15, 5e-10)
    assert adult.name == "standard" and not adult.too_small and adult.max_edges is None
    small = rg.choose_regime(2_000, RHO_1, 21, 5e-10, standard={"max_bins": 64, "max_target_bins": 16})
    assert small.name == "small" and small.max_bins == 8 and small.max_target_bins == 4
    assert small.target_share == rg.SMALL_TARGET_SHARE and small.anchor_share == rg.SMALL_ANCHOR_SHARE
    assert small.signal < rg.SMALL_CLIQUE_SIGNAL and small.max_edges == 0 and not small.too_small
    assert small.tail_share == 0.0
    # A small regime with many rows (the 74-column table: 20,000 rows, signal 395) may run stage 2:
    # its threshold is in rows, which such a table has. Decided by the DP row estimate.
    wide = rg.choose_regime(20_000, RHO_1, 74, 5e-10)
    assert wide.name == "small" and wide.tail_share == rg.SMALL_TAIL_SHARE == 0.2
    assert rg.choose_regime(rg.SMALL_TAIL_ROWS, RHO_1, 74, 5e-10).tail_share == rg.SMALL_TAIL_SHARE
    assert rg.choose_regime(rg.SMALL_TAIL_ROWS - 0.5, RHO_1, 74, 5e-10).tail_share == 0.0
    # A second round of anchors only from signal 100: below it the first round's noise picks them.
    assert small.signal < rg.SMALL_FOCUS_SIGNAL == 100 and small.focus == 0 and small.focus_share == 0.0
    below, above = rg.choose_regime(2_200, RHO_1, 15, 5e-10), rg.choose_regime(2_300, RHO_1, 15, 5e-10)
    assert below.signal < 100 < above.signal < 101  # 96.4 and 100.8
    assert below.focus == 0 and below.focus_share == 0.0
    assert above.focus == 8 and above.focus_share == rg.SMALL_FOCUS_SHARE  # signal // 10 = 10, at most 8
    # Cliques only from signal 100 too: below it the anchors get the whole marginal budget.
    assert rg.SMALL_CLIQUE_SIGNAL == 100 and below.max_edges == 0 and above.max_edges == 2  # 100.8 // 40
    big = rg.choose_regime(6_000, RHO_1, 21, 5e-10)  # signal 222
    assert big.max_edges == int(big.signal // rg.SIGNAL_PER_EDGE) == 5
    assert adult.tail_share == rg.TAIL_MAX_SHARE and adult.focus == 0 and adult.focus_share == 0.0
    assert adult.tail_trigger == rg.TAIL_TRIGGER_SHARE == 0.01 and wide.tail_trigger == rg.FOLD_WARN_SHARE == 0.1
    # The same rows at a ten times larger epsilon are no longer small; the edge is at signal 400.
    edge = 400 / math.sqrt(2 * RHO_1 / 21)
    assert rg.choose_regime(edge * 1.01, RHO_1, 21, 5e-10).name == "standard"
    assert rg.choose_regime(edge * 0.99, RHO_1, 21, 5e-10).name == "small"
    assert rg.choose_regime(2_000, rho_from_epsilon(10.0, 5e-10), 21, 5e-10).name == "standard"
    assert rg.choose_regime(32_561, RHO_1, 15, 5e-10, force="small").name == "small"
    assert rg.choose_regime(100, RHO_1, 15, 5e-10, force="standard").name == "standard"


def test_a_too_small_table_gets_the_epsilon_it_would_need():
    """The epsilon needed is the one whose budget lifts the same DP row estimate to signal 30."""
    tiny = rg.choose_regime(150, RHO_1, 21, 5e-10)
    assert tiny.too_small and tiny.name == "small" and tiny.epsilon_needed > 1
    rho_needed = rho_from_epsilon(tiny.epsilon_needed, 5e-10)
    assert rg.signal(150, rho_needed, 21) == pytest.approx(rg.TOO_SMALL_SIGNAL, rel=1e-6)
    assert rg.choose_regime(150, RHO_1, 21, 5e-10).summary()["epsilon_needed"] == tiny.epsilon_needed
    none = rg.choose_regime(-3, RHO_1, 21, 5e-10)  # a noisy count below one row
    assert none.too_small and none.epsilon_needed is None
    assert "its DP row estimate is below one row" in rg.too_small_warning(none, 1.0, 21)
    line = rg.too_small_warning(tiny, 1.0, 21)
    assert line.startswith("the table is too small for epsilon 1: about 150 rows (a DP estimate) for 21 columns")
    assert f"it would need epsilon {tiny.epsilon_needed:.2g}" in line
    assert rg.too_small_warning(rg.choose_regime(2_000, RHO_1, 21, 5e-10), 1.0, 21) is None


@pytest.fixture(scope="module")
def narrow_1000():
    frame, schema = small_table(SMALL_TABLES[0], rows=1000, seed=5)
    return frame, schema


def test_a_small_table_is_fitted_in_the_small_regime_and_costs_add_up(narrow_1000):
    frame, schema = narrow_1000
    synth = Synthesizer(schema, epsilon=1.0, seed=3).fit(frame)
    report = synth.privacy_report()
    count = report["charges"][0]
    assert count["step"] == "rows of the table (size regime and category selection)" and count["sensitivity"] == 1.0
    assert count["rho"] == pytest.approx(ROWS_SHARE * report["rho_budget"], rel=1e-12)
    assert [c["step"] for c in report["charges"]].count(count["step"]) == 1  # the one count: the selection's too
    assert not any(c["step"].startswith("rows of") for c in report["charges"][1:])
    assert sum(c["rho"] for c in report["charges"]) == pytest.approx(report["rho_budget"], rel=1e-9)
    assert report["epsilon_spent"] == pytest.approx(1.0, rel=1e-6)
    regime = report["regime"]
    assert regime["name"] == "small" and abs(regime["rows_estimate"] - 1000) < 6 / math.sqrt(2 * count["rho"])
    # The undeclared categorical target's classes are selected first, on selection.py's budget;
    # no spanning tree of triples.
    target = [c for c in report["charges"] if c["step"].startswith("classes of the predictive column 'label'")]
    assert len(target) == 1 and set(synth.sample(200)["label"]) == {"no", "yes"}
    triples = [c for c in report["charges"] if c["step"].startswith("marginal") and c["step"].count("x") >= 3]
    assert regime["signal"] < rg.SMALL_CLIQUE_SIGNAL and regime["max_edges"] == 0 and not triples
    # No second selection of categories; no clique and no second round of anchors (signal below
    # 100): every feature's anchor once, at an even share of all the marginals' budget.
    assert regime["tail_share"] == 0 and not [c for c in report["charges"] if c["step"].startswith("rarer")]
    assert regime["signal"] < rg.SMALL_FOCUS_SIGNAL and regime["focus"] == 0 and regime["focus_share"] == 0
    assert not [c for c in report["charges"] if c["step"].startswith("marginal (again)")]
    features = [c["name"] for c in schema["columns"][:-1]]
    anchors = [c for c in report["charges"] if c["step"] in {f"marginal {x}xlabel" for x in features}]
    assert len(anchors) == len(features) and all(c["rho"] == anchors[0]["rho"] for c in anchors)
    assert not [c for c in report["charges"] if c["step"].startswith("marginal ") and c not in anchors]
    assert not [c for c in report["charges"] if c["step"].startswith("select clique")]
    before = [c["rho"] for c in report["charges"] if not c["step"].startswith("marginal ")]
    assert len(anchors) * anchors[0]["rho"] == pytest.approx(report["rho_budget"] - sum(before), rel=1e-9)
    # A categorical column's domain budget is three numeric ones' (both histograms together).
    cat = next(c for c in report["charges"] if c["step"].startswith("categories of 'x05_cat'"))
    grid = [c["rho"] for c in report["charges"] if c["step"].endswith("'x00_gauss' on the public grid")]
    fine = [c["rho"] for c in report["charges"] if c["step"].startswith("fine histogram of 'x00_gauss'")]
    assert cat["rho"] == pytest.approx(rg.SMALL_CATEGORICAL_WEIGHT * (grid[0] + fine[0]), rel=1e-9)
    # Four fine pieces per kept grid cell of a non-integer column (16 in the standard regime).
    nsub = np.asarray(synth.columns_["x00_gauss"].coding.pieces.nsub)
    assert set(nsub[nsub > 0]) == {rg.SMALL_SUB_PIECES}
    assert all(col.size <= 8 + 1 for col in synth.columns_.values())  # at most 8 bins (+ missing)
    # No stage 2, so no delta reserved for it: each learned categorical's selection spends its
    # whole share of the thresholds' delta (the target's included), and all of delta is spent.
    selections = [c for c in report["charges"] if c["mechanism"] == "gaussian-threshold"]
    share = report["delta_for_thresholds"] / len(selections)
    assert len(selections) == 1 + sum(c["type"] == "categorical" for c in schema["columns"][:-1])
    assert all(c["delta"] == pytest.approx(share, rel=1e-12) for c in selections)
    assert report["delta_spent"] == pytest.approx(report["delta"], rel=1e-12)


def test_a_small_regime_table_with_many_rows_runs_a_tail_round_that_keeps_more_values():
    """12,000 rows in the small regime (forced: four columns would be standard), a 300-value Zipf
    column: stage 2 runs, costs exactly its pool (at most SMALL_TAIL_SHARE of rho) and the deltas
    stage 1 reserved, and keeps values stage 1 could not (its counts combined with stage 1's)."""
    from synthroom.synthesis.selection import TAIL_MAX_OF_REMAINING, TAIL_RATE

    rng = np.random.default_rng(4)
    w = 1.0 / np.arange(1, 301) ** 0.9
    n = 12_000
    y = rng.choice(["no", "yes"], n)
    df = pd.DataFrame(
        {
            "city": [f"c{i:03d}" for i in rng.choice(300, n, p=w / w.sum())],
            "plan": rng.choice(["a", "b"], n),
            "x": rng.normal(50, 10, n).round(1) + 5 * (y == "yes"),
            "y": y,
        }
    )
    schema = {"target": "y", "columns": [{"name": c, "type": "numerical" if c == "x" else "categorical"} for c in df]}
    synth = Synthesizer(schema, epsilon=1.0, seed=2, settings=Settings(regime="small")).fit(df)
    report = synth.privacy_report()
    regime, charges, budget = report["regime"], report["charges"], report["rho_budget"]
    assert regime["name"] == "small" and regime["tail_share"] == rg.SMALL_TAIL_SHARE
    assert regime["rows_estimate"] >= rg.SMALL_TAIL_ROWS
    (i,) = [j for j, c in enumerate(charges) if c["step"].startswith("rarer categories")]
    tail = charges[i]
    assert tail["step"] == "rarer categories of 'city' (second partition selection)"  # 'plan' folds nothing
    city = synth.columns_["city"]
    stage1, stage2 = city.selected
    share = (regime["rows_estimate"] - stage1.noisy.sum()) / regime["rows_estimate"]
    remaining = budget - sum(c["rho"] for c in charges[:i])
    pool = min(TAIL_RATE * share * budget, rg.SMALL_TAIL_SHARE * budget, TAIL_MAX_OF_REMAINING * remaining)
    assert share > 0.4 and tail["rho"] == pytest.approx(pool, rel=1e-12)
    # Stage 1 of each learned feature reserved half of its delta; stage 2 spends those reserves.
    firsts = [c for c in charges if c["step"].startswith("categories of")]
    assert [c["step"][:18] for c in firsts] == ["categories of 'cit", "categories of 'pla"]
    assert tail["delta"] == pytest.approx(sum(c["delta"] for c in firsts), rel=1e-12)
    assert firsts[0]["delta"] == pytest.approx(report["delta_for_thresholds"] / 3 / 2, rel=1e-12)
    assert report["delta_spent"] == pytest.approx(report["delta"], rel=1e-12)
    assert sum(c["rho"] for c in charges) == pytest.approx(budget, rel=1e-9)
    # Kept values: stage 1's, then more; those read at the two rounds' combined noise.
    assert list(city.coding.values[: len(stage1.values)]) == list(stage1.values)
    assert len(stage2.values) >= 3 and len(city.coding.values) == len(stage1.values) + len(stage2.values)
    sigma1 = next(c["noise"] for c in charges if c["step"].startswith("categories of 'city'"))
    assert stage2.sigma == pytest.approx(1 / math.sqrt(1 / sigma1**2 + 1 / tail["noise"] ** 2), rel=1e-12)
    assert city.unreleased is None  # stage 1's unreleased counts do not outlive the selection


def test_a_table_too_small_for_its_epsilon_says_so_and_what_it_would_need():
    # The classes declared: 150 rows are too few to select them with DP (selection.py stops the fit).
    frame, schema = small_table(SMALL_TABLES[0], rows=1000, seed=5, declare_classes=True)
    synth = Synthesizer(schema, epsilon=1.0, seed=3).fit(frame.head(150))
    regime = synth.privacy_report()["regime"]
    assert regime["too_small"] and regime["epsilon_needed"] > 1
    lines = [w for w in synth.warnings_ if w.startswith("the table is too small for epsilon 1:")]
    assert len(lines) == 1 and f"it would need epsilon {regime['epsilon_needed']:.2g}" in lines[0]
    assert np.isfinite(synth.sample(50).shape[0])


def test_behind_the_gate_the_count_of_all_rows_sizes_the_holdout_and_chooses_the_regime():
    """One count of all rows (5% of rho) sizes the holdout, checks both parts and, minus the
    holdout's noisy count, gives the fit its row estimate: no count of the fit's own; the run's
    ledger and the holdout's both add up to the run's rho exactly."""
    from synthroom.pipeline import HOLDOUT_CHECK_SHARE, synthesize_with_gate

    frame, schema = small_table(SMALL_TABLES[0], rows=1500, seed=6)
    run = synthesize_with_gate(frame, schema, epsilon=1.0, seed=4, rows=300)
    privacy = run.report.privacy
    steps = [c["step"] for c in privacy["charges"]]
    assert steps[0] == "rows of the table (holdout size and holdout-size check)"
    assert [s for s in steps if s.startswith("rows of")] == [steps[0]]  # the gate's count serves the whole fit
    assert privacy["charges"][0]["rho"] == pytest.approx(HOLDOUT_CHECK_SHARE * privacy["rho_budget"], rel=1e-12)
    assert sum(c["rho"] for c in privacy["charges"]) == pytest.approx(privacy["rho_budget"], rel=1e-9)
    ledger = privacy["holdout_check"]
    assert sum(c["rho"] for c in ledger["charges"]) == pytest.approx(ledger["rho_budget"], rel=1e-9)
    note = run.report.notes[0]
    held = int(note.split("holdout: ")[1].split(" of ")[0].replace(",", ""))
    assert "sized from a DP count of the rows" in note and 0.14 * 1500 < held < 0.26 * 1500  # share 0.2
    regime = privacy["regime"]
    assert regime["name"] == "small" and abs(regime["rows_estimate"] - (1500 - held)) < 6 * 26.5


def _dependent_table(n: int, seed: int) -> pd.DataFrame:
    """'a' decides the target 90% of the time, 'b' tilts it, 'c', 'd', 'e' are independent of it."""
    rng = np.random.default_rng(seed)
    y = rng.choice(["no", "yes"], n)
    a = np.where(rng.random(n) < 0.9, np.where(y == "yes", "p", "q"), rng.choice(["p", "q"], n))
    b = np.where(rng.random(n) < 0.3, np.where(y == "yes", "u", "v"), rng.choice(["u", "v", "w"], n))
    free = {k: rng.choice(["r", "s", "t"], n) for k in "cde"}
    return pd.DataFrame({"a": a, "b": b, **free, "y": y})


def test_anchors_measured_again_are_those_tied_to_the_target_and_the_costs_are_exact():
    """measure_anchors: every anchor at (1 - focus_share) of rho evenly, then the `focus` most
    dependent ones (read from those noisy tables) at focus_share of rho evenly: exactly rho."""
    from synthroom.engine import CountingSource
    from synthroom.privacy import ZCDPAccountant
    from synthroom.privacy.mechanisms import sigma_for
    from synthroom.privacy.noise import SeededNoise
    from synthroom.synthesis.selection import public_coding
    from synthroom.synthesis.structure import measure_anchors

    df = _dependent_table(4000, seed=1)
    source = CountingSource.open(df, {c: "categorical" for c in df.columns})
    source.encode({c: public_coding(tuple(sorted(df[c].unique()))) for c in df.columns})
    acc = ZCDPAccountant(1.0, 1e-9, 0.0)
    rho = 0.5 * acc.rho_budget
    anchors = [(x, "y") for x in "abcde"]
    try:
        out = measure_anchors(source, acc, SeededNoise(3), anchors, "y", 2, 0.4, rho)
    finally:
        source.close()
    first, again = acc.charges[:5], acc.charges[5:]
    assert [c.step for c in first] == [f"marginal {x}xy" for x in "abcde"]
    assert [c.step for c in again] == ["marginal (again) axy", "marginal (again) bxy"]
    assert all(c.rho == pytest.approx(0.6 * rho / 5, rel=1e-12) for c in first)
    assert all(c.rho == pytest.approx(0.4 * rho / 2, rel=1e-12) for c in again)
    assert again[0].noise == pytest.approx(sigma_for(0.2 * rho), rel=1e-12)
    assert acc.rho_spent == pytest.approx(rho, rel=1e-12)
    assert [m.clique for m in out] == anchors + [("a", "y"), ("b", "y")]
    # Without focus, one even share each; a focus as large as the features: no second round.
    for focus, share in ((0, 0.4), (5, 0.4), (2, 0.0)):
        acc = ZCDPAccountant(1.0, 1e-9, 0.0)
        source = CountingSource.open(df, {c: "categorical" for c in df.columns})
        source.encode({c: public_coding(tuple(sorted(df[c].unique()))) for c in df.columns})
        try:
            measure_anchors(source, acc, SeededNoise(3), anchors, "y", focus, share, rho)
        finally:
            source.close()
        assert len(acc.charges) == 5 and all(c.rho == pytest.approx(rho / 5, rel=1e-12) for c in acc.charges)


def test_dependence_is_net_of_the_noise():
    from synthroom.synthesis.structure import Measurement, dependence

    independent = np.outer([300.0, 700.0], [0.5, 0.5])
    assert dependence(Measurement(("x", "y"), independent, 10.0)) == pytest.approx(-math.sqrt(2 / math.pi) * 40)
    tied = np.array([[450.0, 50.0], [50.0, 450.0]])
    assert dependence(Measurement(("x", "y"), tied, 10.0)) == pytest.approx(800 - math.sqrt(2 / math.pi) * 40)


def test_a_one_bin_features_anchor_is_never_measured_again():
    """A feature with one bin (capital-gain at 2,000 rows, or at epsilon 0.1: its nonzero values
    never clear the threshold) has a (feature, target) table of one row: the target's marginal,
    which cannot show a tie. Net of noise its dependence was -0.8 sigma per cell, above a real but
    weakly tied feature of 15 cells, so it could take a slot of the second round of anchors
    (a seeded Adult fit at 2,000 rows spent one there, when that round still ran below signal 100). It now ranks below every table that has
    two rows and two columns."""
    from synthroom.synthesis.structure import Measurement, dependence

    one_bin = Measurement(("capital-gain", "income"), np.array([[1500.0, 500.0]]), 50.0)
    weak = Measurement(("fnlwgt", "income"), np.outer([400.0, 400, 400, 400, 400], [0.75, 0.25]) + 20, 50.0)
    assert dependence(one_bin) < dependence(weak)
    assert dependence(Measurement(("x", "income"), np.array([[700.0], [300.0]]), 50.0)) == -math.inf


def test_a_numeric_range_grows_to_next_cells_that_clear_the_lower_threshold():
    """discretize.grown: from the kept cells, neighbours (consecutive grid cells) above `low`,
    one at a time; no jump over a cell below it; the missing cell grows nothing."""
    from synthroom.synthesis.discretize import grown

    possible = np.array([0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11])  # cell 8 lies outside the bounds
    noisy = np.array([90.0, 10.0, 60.0, 70.0, 500.0, 55.0, 5.0, 80.0, 90.0, 95.0, 400.0])
    kept = noisy > 300  # cells 4 and 11 (11: the missing cell)
    allowed = possible != 11
    out = grown(possible, noisy, kept, allowed, 50.0)
    assert possible[out].tolist() == [2, 3, 4, 5, 11]  # 1 and 6 stop it; 9, 10 are not next to 11
    assert grown(possible, noisy, kept, allowed, 1000.0).tolist() == kept.tolist()


def test_epsilon_needed_makes_sense():
    """More rows need less epsilon, more columns more; at the epsilon named the same table is no
    longer too small, just below it still is; never below the epsilon that was too small."""
    from synthroom.privacy.accountant import epsilon_from_rho

    needed = {(rows, k): rg.epsilon_needed(rows, k, 5e-10) for rows in (100, 300, 600) for k in (11, 61)}
    for k in (11, 61):
        assert needed[(100, k)] > needed[(300, k)] > needed[(600, k)]
    for rows in (100, 300, 600):
        assert needed[(rows, 61)] > needed[(rows, 11)]
    for (rows, k), eps in needed.items():
        assert not rg.choose_regime(rows, rho_from_epsilon(eps * 1.001, 5e-10), k, 5e-10).too_small
        below = rg.choose_regime(rows, rho_from_epsilon(eps * 0.999, 5e-10), k, 5e-10)
        assert below.too_small and below.epsilon_needed == pytest.approx(eps, rel=1e-9)
        assert epsilon_from_rho(k * (rg.TOO_SMALL_SIGNAL / rows) ** 2 / 2, 5e-10) == pytest.approx(eps, rel=1e-9)
    # A 1,000-row table of 11 columns is not too small at epsilon 1; of 61 columns it is (the bar:
    # 586 and 1,380 rows), and needs about epsilon 1.4 (21.7 of signal at epsilon 1, 30 needed).
    assert not rg.choose_regime(1000, RHO_1, 11, 5e-10).too_small
    wide = rg.choose_regime(1000, RHO_1, 61, 5e-10)
    assert wide.too_small and 1.35 < wide.epsilon_needed < 1.45  # the signal grows about as epsilon


def test_a_value_below_the_kept_range_is_coded_in_its_lowest_bin():
    """A value in a grid cell that was not kept is coded as the nearest kept cell's nearest bin:
    below the kept range, the lowest bin; above it, the highest. (With a single kept cell, both
    sides were once coded as its highest bin, so a small table's low values, often the ones tied
    to the target, were counted in the top bin: the anchors' association could flip its sign.)"""
    from synthroom.engine import CountingSource
    from synthroom.engine.grid import LOG_GRID
    from synthroom.privacy import ZCDPAccountant
    from synthroom.schema import parse_schema
    from synthroom.synthesis.discretize import learn_numeric

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(33, 63, 940), np.full(30, 20.0), np.full(30, 200.0)])
    df = pd.DataFrame({"x": x, "y": ["a"] * x.size})
    spec = parse_schema(
        {"target": "y", "columns": [{"name": "x", "type": "numerical"}, {"name": "y", "type": "categorical"}]}
    ).columns[0]
    source = CountingSource.open(df, {"x": "numerical", "y": "categorical"})
    try:
        acc = ZCDPAccountant(1.0, 1e-9)
        col = learn_numeric(source, spec, acc, np.random.default_rng(1), 0.0004, 8, 5.0, min_bins=3)
    finally:
        source.close()
    low, mid, high = LOG_GRID.cell_of(np.array([20.0, 40.0, 200.0]))
    kept = [c for c, n in enumerate(col.coding.pieces.nsub) if n > 0]
    assert kept == [mid] and col.size >= 3  # only [32, 64) stood out, cut into 3+ bins
    assert col.coding.cell_to_bin[low] == 0
    assert col.coding.cell_to_bin[high] == col.size - 1


def test_the_anticipated_noise_of_anchors_only_is_their_first_rounds():
    """With no clique (max_edges 0) the bins are sized for an anchor's noise; with a second round
    only the first is certain for every anchor: (1 - focus_share) of rho over the features."""
    from synthroom.privacy.mechanisms import sigma_for
    from synthroom.synthesis.structure import anticipated_noise

    rho = 0.01
    assert anticipated_noise(rho, 21, max_edges=0) == pytest.approx(sigma_for(rho / 20), rel=1e-12)
    got = anticipated_noise(rho, 21, max_edges=0, focus=3, focus_share=0.5)
    assert got == pytest.approx(sigma_for(0.5 * rho / 20), rel=1e-12)
    assert got == pytest.approx(1 / math.sqrt(2 * 0.5 * rho / 20), rel=1e-12)
    # A focus as large as the features: no second round (measure_anchors), one even share each.
    assert anticipated_noise(rho, 4, max_edges=0, focus=3, focus_share=0.5) == pytest.approx(sigma_for(rho / 3))
    # With cliques, a clique's noise, whatever the anchors do.
    assert anticipated_noise(rho, 21, max_edges=2, focus=3, focus_share=0.5) == pytest.approx(
        sigma_for((1 - 0.3 - 0.15) * rho / 2), rel=1e-12
    )


def test_an_anchor_measured_twice_is_combined_by_inverse_variance():
    """structure.combined: one measurement per clique, weights sigma^-2, noise (sum sigma^-2)^-1/2;
    the naive-Bayes prediction the cliques are scored against reads the combination."""
    from synthroom.synthesis.structure import Measurement, _naive_bayes, combined

    first = Measurement(("x", "y"), np.array([[100.0, 20.0], [300.0, 80.0]]), 4.0)
    again = Measurement(("x", "y"), np.array([[110.0, 40.0], [290.0, 60.0]]), 2.0)
    other = Measurement(("z", "y"), np.array([[200.0, 50.0], [200.0, 50.0]]), 4.0)
    out = {m.clique: m for m in combined([first, other, again])}
    assert list(out) == [("x", "y"), ("z", "y")] and out[("z", "y")] is not None
    w1, w2 = 1 / 16, 1 / 4
    assert out[("x", "y")].noisy == pytest.approx((w1 * first.noisy + w2 * again.noisy) / (w1 + w2), rel=1e-12)
    assert out[("x", "y")].noisy[0, 1] == pytest.approx(36.0)
    assert out[("x", "y")].sigma == pytest.approx((w1 + w2) ** -0.5, rel=1e-12)
    assert out[("z", "y")].noisy.tolist() == other.noisy.tolist() and out[("z", "y")].sigma == 4.0
    sizes = {"x": 2, "z": 2, "y": 2}
    both = _naive_bayes([first, other, again], sizes, "y")(("x", "z", "y"))
    only = _naive_bayes([out[("x", "y")], other], sizes, "y")(("x", "z", "y"))
    assert both == pytest.approx(only, rel=1e-12)
    # P(x = 0 | y = 1) is the combination's 36 / 100, not the later measurement's 40 / 100.
    assert both[0, :, 1].sum() / both[:, :, 1].sum() == pytest.approx(0.36, rel=1e-6)


def test_a_column_spread_over_octaves_none_above_the_threshold_keeps_its_range():
    """discretize.runs: in the small regime a run of consecutive grid cells is tested as one count
    (threshold z sqrt(w) sigma, z for PHANTOM_CELLS over all runs), so a 1,000-row money column
    spread over six octaves of 80-250 rows (credit's x15_money, the column that carries its lift)
    keeps a range and 3 bins (8 of 10 noise draws); cell by cell it kept none in 7 of 10 (one bin,
    placeholder values). Pure noise passes no run in most draws; overlapping runs keep one."""
    from synthroom.engine import CountingSource
    from synthroom.privacy import ZCDPAccountant
    from synthroom.schema import parse_schema
    from synthroom.synthesis import discretize
    from synthroom.synthesis.discretize import learn_numeric, runs

    frame, schema = small_table(SMALL_TABLES[1], rows=1000, seed=1000)
    spec = parse_schema(schema)["x15_money"]
    source = CountingSource.open(frame[["x15_money", "label"]], {"x15_money": "numerical", "label": "categorical"})
    rho = 2 / (2 * 93.0**2)  # half for the grid histogram: noise std 93, as at epsilon 1 on 21 columns

    def learned(seed: int) -> bool:
        col = learn_numeric(
            source, spec, ZCDPAccountant(1.0, 1e-9), np.random.default_rng(seed), rho, 8, 50.0, min_bins=3, grow=2.0
        )
        return col.range_learned and col.size >= 3

    try:
        with_runs = sum(learned(s) for s in range(10))
        saved, discretize.RUNS = discretize.RUNS, ()
        try:
            cell_by_cell = sum(learned(s) for s in range(10))
        finally:
            discretize.RUNS = saved
    finally:
        source.close()
    assert with_runs >= 7 and cell_by_cell <= 4, (with_runs, cell_by_cell)  # seeds 0-9: 8 and 3

    possible, allowed = np.arange(182), np.ones(182, dtype=bool)
    rng = np.random.default_rng(0)
    empty = [runs(possible, rng.normal(0, 93.0, 182), np.zeros(182, bool), allowed, 93.0).any() for _ in range(200)]
    assert sum(empty) <= 20  # about PHANTOM_CELLS (5%) of pure-noise draws keep a run
    flat = np.zeros(182)
    flat[100:104] = 300.0  # four cells of 300 (3.2 stds each, below the cells' 3.46): one run of 4
    out = runs(possible, flat, np.zeros(182, bool), allowed, 93.0)
    assert possible[out].tolist() == [100, 101, 102, 103]


def test_from_small_tail_rows_the_small_regime_cuts_standard_pieces_and_shapes_them():
    """From SMALL_TAIL_ROWS rows (the DP estimate) a small-regime fit cuts the standard regime's
    pieces and reads them as a line plus standouts; below it, and in the standard regime, the
    pieces are as before (and the ledger's regime entry keeps its keys)."""
    from synthroom.synthesis.discretize import SUB_PIECES

    small = rg.choose_regime(2_000, RHO_1, 21, 5e-10)
    below = rg.choose_regime(rg.SMALL_TAIL_ROWS - 0.5, RHO_1, 74, 5e-10)
    many = rg.choose_regime(rg.SMALL_TAIL_ROWS, RHO_1, 74, 5e-10)
    adult = rg.choose_regime(32_561, RHO_1, 15, 5e-10)
    assert small.sub_pieces == below.sub_pieces == rg.SMALL_SUB_PIECES == 4
    assert not small.shaped_pieces and not below.shaped_pieces
    assert many.name == "small" and many.sub_pieces == SUB_PIECES and many.shaped_pieces
    assert adult.sub_pieces == SUB_PIECES and not adult.shaped_pieces
    assert set(many.summary()) == set(small.summary()) and "shaped_pieces" not in many.summary()


def test_shaped_pieces_keep_a_point_mass_and_read_a_smooth_cell_as_a_line():
    """discretize._shaped on 32 unit pieces at 700 rows of noise each (Adult at epsilon 0.1 has
    about 770): a point mass of 14,000 rows keeps its piece every time, and the smooth part
    follows the true line far closer than the noisy counts do; on a smooth cell a piece stands
    out by noise alone about 0.05 times per cell (z set for that), not more."""
    from scipy.special import ndtri

    from synthroom.synthesis.discretize import _shaped

    rng = np.random.default_rng(0)
    sigma, x = 700.0, np.arange(32)
    truth = 900.0 - 18.0 * x  # 900 down to 342 rows a unit, like Adult's ages 32-63
    above = float(-ndtri(0.05 / 32)) * sigma
    kept, errors, raw_errors, false_standouts = 0, [], [], 0
    for _ in range(200):
        spiky = truth + rng.normal(0, sigma, 32)
        spiky[8] += 14_000
        shape = _shaped(spiky, above)
        kept += abs(shape[8] - (truth[8] + 14_000)) < 3 * sigma
        rest = np.delete(np.arange(32), 8)
        errors.append(np.abs(shape[rest] - truth[rest]).mean())
        raw_errors.append(np.abs(spiky[rest] - truth[rest]).mean())
        smooth = truth + rng.normal(0, sigma, 32)
        shape = _shaped(smooth, above)
        line = np.polyval(np.polyfit(x, smooth, 1), x)
        false_standouts += int(np.any(shape > np.maximum(line, 0) + 1e-9))
    assert kept == 200
    assert np.mean(errors) < 250 and np.mean(raw_errors) > 500  # the line: ~150; the noisy counts: ~560
    assert false_standouts < 25  # expected 10 of 200 (a threshold of 2 stds would give ~150)
    assert (_shaped(np.full(8, -5.0), above) == 1).all()  # nothing left: an even spread


def test_a_shaped_cells_slope_is_shrunk_as_far_as_the_noise_explains_it():
    """_shaped with the pieces' noise std: a cell of few rows (Adult's ages 64-127 at epsilon 0.1,
    about 90 rows a piece against 770 of noise) read as a noisy line cut off at zero put most of
    its rows at one end; with the slope shrunk (positive-part James-Stein) the shape is near the
    flat truth, while a real slope (ages 32-63) is kept about as well as before."""
    from scipy.special import ndtri

    from synthroom.synthesis.discretize import _shaped, _shrunk_slope

    sigma = 770.0
    above = float(-ndtri(0.05 / 64)) * sigma

    def error(truth: np.ndarray, noise: float) -> float:
        rng, out = np.random.default_rng(0), []
        for _ in range(200):
            shape = _shaped(truth + rng.normal(0, sigma, truth.size), above, noise)
            out.append(np.abs(shape / shape.sum() - truth / truth.sum()).sum() / 2)
        return float(np.mean(out))

    flat, sloped = np.full(16, 90.0), 900.0 - 18.0 * np.arange(32)
    assert error(flat, sigma) < 0.16 and error(flat, 0.0) > 0.33  # 0.13 against 0.37 unshrunk
    assert error(sloped, sigma) < 0.1 and error(sloped, sigma) < error(sloped, 0.0) + 0.01  # 0.090 / 0.085
    x = np.arange(5.0)  # se = 10 / sqrt(10): a slope of 2 se keeps 3/4 of itself, one below 1 se none
    assert _shrunk_slope(2 * 10 / math.sqrt(10), x, 10.0) == pytest.approx(1.5 * 10 / math.sqrt(10))
    assert _shrunk_slope(-0.9 * 10 / math.sqrt(10), x, 10.0) == 0.0 and _shrunk_slope(3.0, x, 0.0) == 3.0


def test_a_small_regime_table_with_many_rows_keeps_a_point_mass_on_its_unit():
    """12,000 rows in the small regime (forced), numbers typed as floats (as a CSV's integers are
    read): 45% of `hours` are 40. With 4 pieces per grid cell they were drawn uniformly over
    [40, 48) (about 7% in [40, 41)); with the standard pieces shaped, about 45%. A smooth column
    (age) gets no spikes of its own."""
    rng = np.random.default_rng(7)
    n = 12_000
    y = rng.choice(["no", "yes"], n, p=[0.7, 0.3])
    hours = np.where(rng.random(n) < 0.45, 40.0, rng.integers(20, 61, n).astype(float))
    age = np.clip(rng.normal(40, 12, n).round(), 17, 90).astype(float)
    df = pd.DataFrame({"age": age, "hours": hours, "y": y})
    schema = {
        "target": "y",
        "columns": [
            {"name": "age", "type": "numerical"},
            {"name": "hours", "type": "numerical"},
            {"name": "y", "type": "categorical"},
        ],
    }
    synth = Synthesizer(schema, epsilon=1.0, seed=3, settings=Settings(regime="small")).fit(df)
    regime = synth.privacy_report()["regime"]
    assert regime["name"] == "small" and regime["rows_estimate"] >= rg.SMALL_TAIL_ROWS and regime["sub_pieces"] == 16
    out = synth.sample(20_000, seed=1)
    real_share = float(np.mean(hours == 40))
    assert np.mean((out["hours"] >= 40) & (out["hours"] < 41)) == pytest.approx(real_share, abs=0.05)
    real_units = np.bincount(age.astype(int), minlength=128)[:128] / n
    drawn_units = np.bincount(np.floor(out["age"]).astype(int).clip(0, 127), minlength=128) / len(out)
    assert drawn_units.max() < 1.5 * real_units.max()


def test_the_small_regimes_shaped_pieces_cut_a_narrow_cell_into_whole_units():
    """With ``units`` (the small regime's shaped pieces) a cell of at most SUB_PIECES whole units
    is cut into one piece per unit, as wider cells already were; without it (the standard regime)
    such a cell keeps its 16 equal pieces. The pieces depend only on the kept cells (public)."""
    from synthroom.engine.grid import LOG_GRID
    from synthroom.synthesis.discretize import _pieces

    cells = LOG_GRID.cell_of(np.array([1.0, 2.0, 4.0, 8.0, 16.0, 0.6]))  # [1,2) [2,4) [4,8) [8,16) [16,32) [0.5,1)
    pieces, lo, hi = _pieces(LOG_GRID, cells, False, 16, units=True)
    assert [pieces.nsub[c] for c in cells] == [1, 2, 4, 8, 16, 16]
    assert lo[:15].tolist() == list(range(1, 16)) and (hi[:31] - lo[:31] == 1).all()
    assert hi[30] == 32 and lo[31] == 0.5 and hi[-1] == 1.0  # [16, 32) by unit as before; [0.5, 1) in 16
    standard, _, _ = _pieces(LOG_GRID, cells, False, 16)
    assert [standard.nsub[c] for c in cells] == [16, 16, 16, 16, 16, 16]


def test_a_small_regime_table_with_many_rows_draws_whole_numbers_in_their_own_units():
    """Adult's school years at epsilon 0.1 (values 1-16 read as text, so typed as floats; the
    small regime from SMALL_TAIL_ROWS rows): in half-unit pieces every other piece was empty and
    the shaped line put units' rows in their neighbours' pieces (14 and 15 years drawn at 13.5-14,
    none at 14 or above). By unit, each unit's share of the drawn values follows the real one."""
    rng = np.random.default_rng(11)
    n = 30_000
    share = np.array([1, 3, 6, 11, 9, 17, 20, 7, 180, 125, 24, 18, 92, 30, 10, 7], dtype=float)
    years = rng.choice(np.arange(1, 17), n, p=share / share.sum()).astype(float)
    y = np.where(rng.random(n) < 0.15 + 0.02 * years, "yes", "no")
    df = pd.DataFrame({"years": years, "y": y})
    schema = {"target": "y", "columns": [{"name": "years", "type": "numerical"}, {"name": "y", "type": "categorical"}]}
    real = np.bincount(years.astype(int), minlength=17)[8:16] / n  # the cell [8, 16), by unit
    errors = []
    for seed in (1, 2, 3):
        synth = Synthesizer(schema, epsilon=0.1, seed=seed, settings=Settings(regime="small")).fit(df)
        regime = synth.privacy_report()["regime"]
        assert regime["sub_pieces"] == 16 and regime["rows_estimate"] >= rg.SMALL_TAIL_ROWS
        out = synth.sample(30_000, seed=2)["years"].to_numpy()
        drawn = np.bincount(np.floor(out).astype(int).clip(0, 16), minlength=17)[8:16] / len(out)
        errors.append(np.abs(real - drawn).sum() / 2)
    assert np.mean(errors) < 0.03  # by unit 0.030 / 0.021 / 0.022; in half units 0.032 / 0.041 / 0.041


def test_the_small_regime_stops_the_estimator_early_from_tail_rows_or_focus_signal(monkeypatch):
    """From SMALL_TAIL_ROWS rows (the DP estimate) or signal SMALL_FOCUS_SIGNAL the small regime
    runs at most SMALL_ITERS steps of the estimator: its measurements are so noisy that further
    steps fit the noise (Adult at epsilon 0.1: TSTR AUC about 0.015 lower at 3,000 steps than at
    1,000; the simulator's 61-column table at 5,000 rows, signal 109: lift kept 0.71 -> 0.85 on six
    seeds). Below both, and in the standard regime, the steps are Settings.iters (1,000), as
    before; fewer asked for are kept."""
    from synthroom.synthesis import model

    assert rg.SMALL_ITERS == 400 and Settings().iters == 1000
    assert rg.choose_regime(rg.SMALL_TAIL_ROWS, RHO_1, 74, 5e-10).iters == 400
    wide = rg.choose_regime(5_000, RHO_1, 61, 5e-10)  # the simulator's wide table: focus and cliques
    assert wide.name == "small" and wide.signal >= rg.SMALL_FOCUS_SIGNAL and wide.iters == 400
    anchors_only = rg.choose_regime(2_000, RHO_1, 61, 5e-10)
    assert anchors_only.signal < rg.SMALL_FOCUS_SIGNAL and anchors_only.iters == 1000
    assert rg.choose_regime(32_561, RHO_1, 15, 5e-10).iters == 1000
    assert rg.choose_regime(rg.SMALL_TAIL_ROWS, RHO_1, 74, 5e-10, standard={"iters": 250}).iters == 250
    assert rg.choose_regime(32_561, RHO_1, 15, 5e-10, standard={"iters": 2000}).iters == 2000
    steps = []
    real = model.estimate
    monkeypatch.setattr(model, "estimate", lambda *a, **k: steps.append(a[2]) or real(*a, **k))
    rng = np.random.default_rng(1)
    n = 12_000
    df = pd.DataFrame({"x": rng.normal(40, 9, n).round(), "y": rng.choice(["no", "yes"], n, p=[0.7, 0.3])})
    schema = {"target": "y", "columns": [{"name": "x", "type": "numerical"}, {"name": "y", "type": "categorical"}]}
    synth = Synthesizer(schema, epsilon=1.0, seed=1, settings=Settings(regime="small")).fit(df)
    assert synth.privacy_report()["regime"]["iters"] == 400 and steps == [400]
    Synthesizer(schema, epsilon=1.0, seed=1, settings=Settings(regime="standard")).fit(df)
    assert steps == [400, 1000]


def _age_like_cells():
    """Adult-like ages on the log grid: [16, 32) and [32, 64) cut by unit, [64, 128) in 16 pieces of
    4 years; rising to 25, flat to 38, then falling (about 19,000 rows in all)."""
    x = np.concatenate([np.arange(16, 64) + 0.5, 64 + 4 * np.arange(16) + 2.0])
    width = np.concatenate([np.ones(48), np.full(16, 4.0)])
    density = np.where(x < 25, 60.0 * (x - 16), 540.0) * np.where(x > 38, np.exp(-(x - 38) / 18), 1.0)
    density[x < 17] = 0.0
    return density * width, width, np.array([0, 16, 48, 64])


def test_shaped_pieces_read_one_smooth_density_across_a_run_of_cells():
    """The small regime's shaped pieces from SMALL_TAIL_ROWS rows (discretize._smoothed): one
    smooth density over a run of adjacent kept cells, fitted to the pieces' and the cells' noisy
    counts (800 rows of noise on each, about Adult's at epsilon 0.1), follows the truth closer
    than a line per cell did (mean TVD over 100 draws about 0.15 against 0.20; the noisy counts
    themselves about 0.47); a point mass of 14,000 rows keeps its piece every time."""
    from synthroom.synthesis.discretize import _Coarse, _piece_masses, _shaped, standout

    truth, width, bounds = _age_like_cells()
    sigma, rng = 800.0, np.random.default_rng(0)
    above = standout(truth.size) * sigma

    def tvd(mass: np.ndarray, real: np.ndarray) -> float:
        return 0.5 * float(np.abs(mass / mass.sum() - real / real.sum()).sum())

    smooth, lines, kept = [], [], 0
    for draw in range(100):
        real = truth.copy()
        if draw % 2:
            real[24] += 14_000  # a point mass (40 hours a week)
        fine = real + rng.normal(0, sigma, real.size)
        totals = np.array([real[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])]) + rng.normal(0, sigma, 3)
        coarse = _Coarse(np.array([4, 5, 6]), totals, sigma, False, 0.0, True)
        mass = _piece_masses(coarse, fine, sigma, bounds, np.zeros(3, dtype=bool), width)
        assert (mass >= 0).all() and mass.sum() > 0
        if draw % 2:
            kept += abs(mass[24] - real[24]) < 3 * sigma
            continue
        per_cell = [_shaped(fine[a:b], above, sigma) for a, b in zip(bounds[:-1], bounds[1:])]
        line = np.concatenate([s * (t / s.sum()) for s, t in zip(per_cell, totals)])
        smooth.append(tvd(mass, real))
        lines.append(tvd(line, real))
    assert kept == 50
    assert np.mean(smooth) < 0.17 and np.mean(lines) > 0.19  # about 0.15 against 0.20


def test_a_run_of_too_many_pieces_is_shaped_cell_by_cell():
    """Above MAX_SMOOTHED pieces in one run (decades of dates cut into days' pieces), each cell is
    read alone, as a line plus its standouts (each smooth fit solves a dense system of that size)."""
    from synthroom.synthesis import discretize as dz

    rng = np.random.default_rng(1)
    n_cells, per = dz.MAX_SMOOTHED // 16 + 1, 16
    bounds = np.arange(n_cells + 1) * per
    fine = 500.0 + rng.normal(0, 50.0, n_cells * per)
    coarse = dz._Coarse(np.arange(n_cells) + 10, np.full(n_cells, 8_000.0), 50.0, False, 0.0, True)
    mass = dz._piece_masses(coarse, fine, 50.0, bounds, np.zeros(n_cells, dtype=bool), np.ones(fine.size))
    above = dz.standout(fine.size) * 50.0
    first = dz._shaped(fine[:per], above, 50.0)
    assert np.allclose(mass[:per], first * (mass[:per].sum() / first.sum()))


def test_the_small_regime_grows_numeric_ranges_further_from_many_rows():
    """A numeric range grows to a neighbouring grid cell above SMALL_GROW (2) noise stds below
    SMALL_TAIL_ROWS rows, above SMALL_SHAPED_GROW (1) from there, where one smooth density over
    the run of cells gives an empty neighbour kept by noise little mass."""
    below = rg.choose_regime(rg.SMALL_TAIL_ROWS - 1, RHO_1 / 100, 15, 5e-10)
    many = rg.choose_regime(rg.SMALL_TAIL_ROWS, RHO_1 / 100, 15, 5e-10)
    assert below.name == many.name == "small"
    assert below.grow == rg.SMALL_GROW == 2.0 and many.grow == rg.SMALL_SHAPED_GROW == 1.0


def test_smoothed_runs_end_at_phantoms_and_the_exact_zero_cell_stands_alone():
    """discretize._smoothed's runs: a phantom cell ends a run and gets nothing; the exact-zero cell
    (one point piece of width 0, capital-gain's 92% of rows) is its own run and keeps its whole
    total, however the positive cells after it are shaped; every mass is finite and non-negative."""
    from synthroom.synthesis.discretize import _Coarse, _piece_masses

    rng = np.random.default_rng(2)
    # cells: the zero cell (grid index 9), then positive octaves 10-11, a phantom at 12, and 13-14
    cells = np.array([9, 10, 11, 12, 13, 14])
    bounds = np.array([0, 1, 17, 33, 49, 65, 81])
    width = np.concatenate([[0.0], np.full(80, 2.0)])
    fine = np.concatenate([[27_000.0], 300 + rng.normal(0, 100, 80)])
    coarse = _Coarse(cells, np.array([27_100.0, 4_800, 4_900, 900, 4_700, 4_800]), 100.0, False, 0.0, True)
    phantom = np.array([False, False, False, True, False, False])
    mass = _piece_masses(coarse, fine, 100.0, bounds, phantom, width)
    assert np.isfinite(mass).all() and (mass >= 0).all()
    assert (mass[33:49] == 0).all()  # the phantom
    w1, w2 = 1 / 100.0**2, 1 / 100.0**2
    assert mass[0] == pytest.approx((w1 * 27_100 + w2 * 27_000) / (w1 + w2))  # alone: its total
    for run in ((1, 33), (49, 81)):  # each run keeps its cells' estimated totals together
        totals = [
            (w1 * coarse.mass[i] + fine[bounds[i] : bounds[i + 1]].sum() / (16 * 100.0**2)) / (w1 + 1 / (16 * 100.0**2))
            for i in range(6)
            if run[0] <= bounds[i] < run[1]
        ]
        assert mass[run[0] : run[1]].sum() == pytest.approx(sum(totals))


def test_the_simulator_s_informative_columns_are_the_ones_its_target_depends_on():
    """bench/dp_classifier.py --oracle reads them: a logistic regression on those columns alone
    scores (nearly) as well as one on every column, and clearly better than one on as many others."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    def auc(train: pd.DataFrame, test: pd.DataFrame, columns: list[str]) -> float:
        both = pd.get_dummies(pd.concat([train[columns], test[columns]]), dtype=float)
        both = ((both - both.mean()) / both.std().replace(0, 1)).fillna(0)
        x, x_test = both.iloc[: len(train)], both.iloc[len(train) :]
        model = LogisticRegression(max_iter=2000).fit(x, train["label"] == "yes")
        return float(roc_auc_score(test["label"] == "yes", model.predict_proba(x_test)[:, 1]))

    for spec in SMALL_TABLES:
        train, _ = small_table(spec, rows=20_000, seed=1)
        test, _ = small_table(spec, rows=10_000, seed=2)
        named = informative_columns(spec)
        others = [c for c in train.columns if c not in named and c != "label"]
        assert len(named) == spec.informative and set(named) <= set(train.columns)
        every, oracle = auc(train, test, named + others), auc(train, test, named)
        assert oracle > every - 0.03 and oracle > auc(train, test, others[: len(named)]) + 0.05, spec.name


@pytest.mark.parametrize("share", ["0", "1.5"])
def test_the_dp_classifier_yardstick_refuses_a_budget_share_outside_zero_to_one(share: str):
    """bench/dp_classifier.py --share gives the classifier that share of rho: none or more than all
    of it is refused with argparse's usage error (exit 2) before any table is drawn."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "dp_classifier.py"
    done = subprocess.run([sys.executable, str(script), "--share", share], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().endswith(f"error: --share must be in (0, 1], not {float(share):g}")
    assert done.stdout == ""


def test_the_folding_bound_is_the_mean_over_pairs_of_the_rows_naming_a_folded_value():
    """bench/category_split.py's lower bound: a pair's TVD is at least the real rows' share in cells
    that name a value never sampled; a pair of two such columns counts a row once."""
    split = load_bench("category_split")
    frame = pd.DataFrame({"a": ["x", "y", "x", "x"], "n": [1.0, 2.0, 3.0, 4.0], "c": ["p", "p", "q", "p"]})
    keep = {"a": np.array([1.0, 0.0, 1.0, 1.0]), "c": np.array([1.0, 0.0, 0.0, 1.0])}
    # pairs (a, n): 1/4; (a, c): rows 1 and 2 = 2/4; (n, c): rows 1 and 2 = 2/4
    assert split.folding_bound(frame, keep) == pytest.approx((0.25 + 0.5 + 0.5) / 3)
    assert split.folding_bound(frame, {}) == 0.0


def test_the_folding_bound_passes_a_value_at_the_threshold_half_the_time():
    """A value's pass probability is Phi((count - tau) / sigma) at the selection's own threshold:
    one half at tau, about delta for a value of one row; and a selection on a vast budget folds
    nothing of two rows or more, on a tiny one everything."""
    from synthroom.privacy.mechanisms import sigma_for, threshold_for

    split = load_bench("category_split")
    rho, delta = 1e-4, 1e-10
    tau = threshold_for(sigma_for(rho), delta)
    probs = split.pass_probabilities(pd.Series({"at": tau, "one": 1.0}), rho, delta)
    assert probs["at"] == pytest.approx(0.5)
    assert probs["one"] < 10 * delta
    frame = pd.DataFrame({"a": ["x"] * 50 + ["y"] * 2, "n": np.arange(52.0)})
    selection = split.Selection(frame, ["a"], delta)
    for rho_a, expected in ((1e6, {"x", "y"}), (1e-6, {"other"})):
        synthetic = frame.copy()
        selection.fold(synthetic, {"a": rho_a}, np.random.default_rng(0))
        assert set(synthetic["a"]) == expected


def test_the_category_split_refuses_a_share_of_one_or_more():
    """bench/category_split.py --shares: the rest of rho fits the model, so a share of all of it
    (or more) is argparse's usage error (exit 2) before anything is read."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "category_split.py"
    done = subprocess.run(
        [sys.executable, str(script), "--shares", "0.2,1"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().endswith("error: argument --shares: each share must be in [0, 1), not '0.2,1'")
    assert done.stdout == ""
