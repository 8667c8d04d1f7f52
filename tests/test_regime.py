"""The size regime: chosen from a DP row count, charged, reported; too-small tables say so."""

import math

import numpy as np
import pytest

from synthroom import Synthesizer
from synthroom.demo.small import SMALL_TABLES, small_table
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
    assert small.max_edges == int(small.signal // rg.SIGNAL_PER_EDGE) and not small.too_small
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
def credit():
    frame, schema = small_table(SMALL_TABLES[0], rows=1000, seed=5)
    return frame, schema


def test_a_small_table_is_fitted_in_the_small_regime_and_costs_add_up(credit):
    frame, schema = credit
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
    assert len(triples) <= regime["max_edges"]
    assert all(col.size <= 8 + 1 for col in synth.columns_.values())  # at most 8 bins (+ missing)


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
