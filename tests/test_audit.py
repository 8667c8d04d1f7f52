"""The privacy audit's fault switch: off by default, unreachable from user-facing paths, marked
in the ledger when on, and each broken variant really changes what is released.

Also the audit's arithmetic (Clopper-Pearson bounds to an epsilon lower bound) and one short
game on ``bench/audit.py``'s tables, showing its statistics separate a broken run's D and D'.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from benchkit import load_bench

from synthroom import Synthesizer
from synthroom.cli.app import app
from synthroom.engine import CountingSource
from synthroom.engine.grid import LOG_GRID
from synthroom.privacy import ZCDPAccountant, faults
from synthroom.privacy.mechanisms import gaussian_counts, threshold_for, thresholded_counts
from synthroom.schema import parse_schema
from synthroom.synthesis.discretize import learn_numeric
from synthroom.synthesis.synthesizer import Settings

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "synthroom"
HOOKED = {"privacy/mechanisms.py", "synthesis/discretize.py", "synthesis/synthesizer.py"}
# what reaches the switch: an import of the module, its attributes, or its name (dynamic imports)
_SWITCH = re.compile(r"\bimport\b.*\bfaults\b|\bfaults\.[A-Za-z_]|privacy\.faults\b|[\"']faults[\"']")


audit = load_bench("audit", as_name="bench_audit")


# -- off by default, unreachable ------------------------------------------------------------
def test_no_fault_is_on_by_default():
    assert faults._active == set()
    acc = ZCDPAccountant(1.0, 1e-9)
    counts = np.full(1000, 50.0)
    noisy, sigma = gaussian_counts(acc, np.random.default_rng(0), counts, acc.rho_budget / 2, "m")
    assert np.std(noisy - counts) > sigma / 2
    assert faults.broken_by(acc.summary()) == []


def test_the_cli_exposes_no_fault_option():
    command = typer.main.get_command(app)
    for name, sub in command.commands.items():
        for param in sub.params:
            names = " ".join([param.name or "", *param.opts, *param.secondary_opts]).lower()
            assert "fault" not in names and "inject" not in names, (name, param.name)
            assert not re.search(r"\b(faults?|inject\w*)\b", getattr(param, "help", "") or "", re.I), (name, param.name)


def test_the_python_api_exposes_no_fault_parameter():
    names = set(inspect.signature(Synthesizer).parameters) | {f.name for f in dataclasses.fields(Settings)}
    names |= set(inspect.signature(Synthesizer.fit).parameters)
    assert not [n for n in names if "fault" in n.lower() or "broken" in n.lower()]


def test_only_the_hooks_consult_the_switch_and_nothing_in_the_package_turns_it_on():
    users = sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.name != "faults.py" and _SWITCH.search(p.read_text(encoding="utf-8"))
    )
    assert set(users) <= HOOKED, users
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\binjected\s*\(", text) or path.name == "faults.py", path
    faults_src = (SRC / "privacy" / "faults.py").read_text(encoding="utf-8")
    assert not re.search(r"os\.environ|getenv|import os", faults_src)


def test_unknown_fault_and_the_switch_turns_off_after_an_error():
    with pytest.raises(ValueError, match=r"unknown fault 'no_noise'; known: no_measurement_noise, "):
        with faults.injected("no_noise"):
            pass
    with pytest.raises(KeyError):
        with faults.injected("no_measurement_noise"):
            raise KeyError("boom")
    assert faults._active == set()


# -- each variant really changes behaviour --------------------------------------------------
def test_no_measurement_noise_releases_exact_counts_and_marks_the_ledger():
    acc = ZCDPAccountant(1.0, 1e-9)
    counts = np.arange(100.0)
    with faults.injected("no_measurement_noise"):
        noisy, sigma = gaussian_counts(acc, np.random.default_rng(0), counts, acc.rho_budget / 4, "m")
        gaussian_counts(acc, np.random.default_rng(0), counts, acc.rho_budget / 4, "m again")
    assert np.array_equal(noisy, counts) and sigma > 1
    assert acc.charges[0].noise == sigma  # the ledger still claims the noise
    assert len(faults.broken_by(acc.summary())) == 1  # marked once
    assert "no_measurement_noise" in faults.broken_by(acc.summary())[0]
    again, _ = gaussian_counts(acc, np.random.default_rng(0), counts, acc.rho_budget / 4, "after")
    assert not np.array_equal(again, counts)


def test_noiseless_category_selection_keeps_exactly_the_counts_above_the_threshold():
    acc = ZCDPAccountant(1.0, 1e-9, delta_threshold=5e-10)
    rho = acc.rho_budget / 4
    tau = threshold_for(1 / math.sqrt(2 * rho), 5e-10)
    counts = np.array([math.floor(tau), math.floor(tau) + 1, 1.0, 5000.0])
    with faults.injected("noiseless_category_selection"):
        noisy, keep, _ = thresholded_counts(acc, np.random.default_rng(0), counts, rho, 5e-10, "cats")
    assert np.array_equal(noisy, counts) and keep.tolist() == [False, True, False, True]
    assert faults.broken_by(acc.summary())
    honest = [
        thresholded_counts(ZCDPAccountant(1.0, 1e-9, 5e-10), np.random.default_rng(s), counts, rho, 5e-10, "cats")[1][
            :2
        ].tolist()
        for s in range(40)
    ]
    assert len({tuple(k) for k in honest}) > 1  # with noise, the edge values come and go


def test_numeric_bounds_from_data_models_an_outliers_cell():
    df = pd.DataFrame({"x": np.r_[np.arange(1, 500) % 90, 1e9], "y": ["a"] * 500})
    spec = parse_schema(
        {"target": "y", "columns": [{"name": "x", "type": "numerical"}, {"name": "y", "type": "categorical"}]}
    ).columns[0]
    far = int(LOG_GRID.cell_of(np.array([1e9]))[0])
    kept = {}
    for fault in (None, "numeric_bounds_from_data"):
        source = CountingSource.open(df, {"x": "numerical", "y": "categorical"})
        acc = ZCDPAccountant(1.0, 1e-9)
        try:
            if fault:
                with faults.injected(fault):
                    col = learn_numeric(source, spec, acc, np.random.default_rng(0), acc.rho_budget / 2, 16, 5.0)
            else:
                col = learn_numeric(source, spec, acc, np.random.default_rng(0), acc.rho_budget / 2, 16, 5.0)
        finally:
            source.close()
        kept[fault] = col.coding.pieces.nsub[far] > 0
        assert bool(faults.broken_by(acc.summary())) == bool(fault)
    assert kept == {None: False, "numeric_bounds_from_data": True}


# -- a broken run says so and cannot leave --------------------------------------------------
@pytest.fixture(scope="module")
def broken_fit():
    df = pd.DataFrame({"x": np.arange(300) % 7, "y": np.where(np.arange(300) % 3 == 0, "a", "b")})
    schema = {"target": "y", "columns": [{"name": "x", "type": "categorical"}, {"name": "y", "type": "categorical"}]}
    with faults.injected("no_measurement_noise"):
        return Synthesizer(schema, epsilon=1.0, seed=0).fit(df)


def test_a_broken_run_is_marked_in_its_report_and_cannot_be_saved(broken_fit, tmp_path):
    report = broken_fit.privacy_report()
    marks = faults.broken_by(report)
    assert len(marks) == 1 and "NOT private" in marks[0]
    assert report["rho_spent"] == pytest.approx(report["rho_budget"], rel=1e-9)  # the mark costs nothing
    assert float(broken_fit.model_.total) == pytest.approx(300.0, abs=1e-6)  # exact: no noise
    with pytest.raises(RuntimeError, match="refusing to save a model fitted with a deliberately broken mechanism"):
        broken_fit.save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# -- the audit's arithmetic and game ----------------------------------------------------------
def test_clopper_pearson_epsilon_bound():
    alpha = 0.025
    n = 200
    u = 1 - alpha ** (1 / n)  # upper bound of a rate with no errors
    assert audit.rate_upper_bound(0, n, alpha) == pytest.approx(u, rel=1e-9)
    assert audit.epsilon_lower_bound(0, 0, n, 1e-9, alpha) == pytest.approx(math.log((1 - 1e-9 - u) / u), rel=1e-9)
    assert abs(audit.epsilon_lower_bound(0, 0, n, 1e-9, alpha) - math.log(n / 3.7)) < 0.05
    assert audit.epsilon_lower_bound(n // 2, n // 2, n, 1e-9, alpha) == 0.0  # a coin flip proves nothing
    assert audit.epsilon_lower_bound(0, n // 2, n, 1e-9, alpha) > 2.0  # never fires on D: still strong


def test_the_quick_run_can_catch_a_broken_variant_at_epsilon_one():
    config = audit.Config("t", 1.0, "no_measurement_noise", runs=20)
    config.hits["rows"] = [0, 20]
    assert config.empirical() == ("rows", pytest.approx(1.31, abs=0.01)) and config.passed()


def test_the_game_separates_a_broken_runs_neighbours():
    game = audit.build_game("categorical-heavy", edge_count=3)
    assert len(game.world(True)) == len(game.table) + 1
    assert (game.table.region == audit.EDGE_VALUE).sum() == 3
    seen = {}
    for with_canary in (False, True):
        seen[with_canary] = audit.play(("categorical-heavy", 3, 1.0, "numeric_bounds_from_data", with_canary, 5))
    assert seen[True]["range"] and not seen[False]["range"]


def test_the_summary_fails_on_an_uncaught_variant_or_an_exceeded_claim():
    shipped = audit.Config("t", 1.0, None, runs=200)
    broken = audit.Config("t", 1.0, "no_measurement_noise", runs=20)
    broken.hits["rows"] = [0, 20]
    line, ok = audit.summary([shipped, broken])
    assert ok and line == "audit: 1 configurations, 1 of 1 broken variants caught, max empirical/claimed epsilon 0.00"
    broken.hits["rows"] = [10, 10]  # the game no longer tells D from D'
    assert audit.summary([shipped, broken]) == (
        "audit: 1 configurations, 0 of 1 broken variants caught, max empirical/claimed epsilon 0.00",
        False,
    )
    broken.hits["rows"] = [0, 20]
    shipped.hits["category"] = [0, 200]  # a perfect attack on the shipped code: far above epsilon 1
    line, ok = audit.summary([shipped, broken])
    assert not ok and line.endswith("max empirical/claimed epsilon 3.72")
