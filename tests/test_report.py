"""The report writer: PATH.html (self-contained, escaped) and PATH.json beside it, from a
hand-built EvaluationReport (no fitting: the renderer must work from the data model alone)."""

from __future__ import annotations

import json
import math
import re

import pytest

from synthroom.errors import InputError
from synthroom.evaluation.result import Attack, ColumnFidelity, EvaluationReport, Fidelity, GateResult, Utility
from synthroom.report import check_report_path, explain_refusal, write_report

EVIL = "<script>alert('x')</script>"


def _column(name: str, kind: str, bins: list[str]) -> ColumnFidelity:
    k = len(bins)
    real = [1 / k] * k
    synthetic = [(i + 1) / (k * (k + 1) / 2) for i in range(k)]
    return ColumnFidelity(name, kind, 0.12, 0.01, math.exp(-0.12), bins, real, synthetic, real)


def make_report(dcr_score: float = 0.52, threshold: float | None = 0.6, privacy: bool = True) -> EvaluationReport:
    """A plausible report with a hostile column name and category value."""
    columns = [
        _column("age", "numerical", ["[18, 30)", "[30, 45)", "[45, 90]"]),
        _column(EVIL, "categorical", ["north", "<b>south</b>", "(missing)"]),
        _column("country", "categorical", [f"c{i}" for i in range(60)]),  # more bars than a chart shows
        _column("churned", "categorical", ["yes", "no"]),
    ]
    names = [c.name for c in columns]
    real = [[1.0 if i == j else 0.3 for j in range(4)] for i in range(4)]
    synth = [[1.0 if i == j else 0.2 for j in range(4)] for i in range(4)]
    fidelity = Fidelity(0.89, 0.99, columns, 0.08, 0.03, names, real, synth, 0.1, 0.02)
    hist = {"bin_edges": [0.0, 0.5, 1.0, 1.5], "members": [50, 30, 20], "non_members": [20, 30, 50]}
    attacks = [
        Attack("DCR-v1", dcr_score, "distance to closest record", {"members": 100, "histogram": hist}),
        Attack("DENSITY-RATIO-v1", 0.51, "density ratio", {"members": 100}),
        Attack("ANONYMETER-LINKABILITY-v1", float("nan"), "linkability risk", {}),
    ]
    gates = [] if threshold is None else [GateResult("DCR-v1", threshold, dcr_score, dcr_score <= threshold)]
    failed = [g for g in gates if not g.passed]
    advice = (
        [
            f"DCR-v1 is over its threshold of {threshold:g}: training rows lie closer.",
            "Lower epsilon: try 0.5.",
            f"Drop or generalise rare values: {EVIL} (3 values).",
        ]
        if failed
        else []
    )
    ledger = {
        "unit": "one input row (add/remove)",
        "epsilon": 1.0,
        "delta": 1e-9,
        "rho_budget": 0.0144,
        "rho_spent": 0.0144,
        "epsilon_spent": 1.0,
        "delta_spent": 1e-9,
        "charges": [
            {
                "step": f"domain {EVIL}",
                "mechanism": "gaussian",
                "sensitivity": 1.0,
                "noise": 30.0,
                "rho": 0.0144,
                "delta": 0.0,
            }
        ],
    }
    return EvaluationReport(
        rows={"train": 2400, "holdout": 600, "synthetic": 2400},
        notes=["the training table was subsampled from 80,000 to 50,000 rows (seed 0)"],
        fidelity=fidelity,
        utility=Utility("classification", "churned", "HistGradientBoostingClassifier", {"auc": 0.81}, {"auc": 0.84}),
        attacks=attacks,
        copies={
            "exact_copy_rate_train": 0.0,
            "exact_copy_rate_holdout": 0.0,
            "exact_copy_rate_ceiling": 0.0,
            "near_copy_threshold": 0.1,
            "near_copy_rate_train": 0.011,
            "near_copy_rate_holdout": 0.01,
            "near_copy_rate_ceiling": 0.01,
        },
        gates=gates,
        advice=advice,
        privacy=ledger if privacy else None,
        timings={"fidelity": 0.3},
    )


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    path = tmp_path_factory.mktemp("refused") / "report.html"
    html_path, json_path = write_report(make_report(dcr_score=0.97), path)
    return html_path.read_text(encoding="utf-8"), json.loads(json_path.read_text(encoding="utf-8"))


def test_json_beside_html_with_reference_fields(tmp_path):
    html_path, json_path = write_report(make_report(), tmp_path / "r.html")
    assert (html_path, json_path) == (tmp_path / "r.html", tmp_path / "r.json")
    data = json.loads(json_path.read_text())
    assert data["fidelityScore"] == pytest.approx(0.89)
    scores = data["membershipInferenceAttackScores"]
    assert scores[0] == {"attackVersion": "DCR-v1", "score": 0.52}
    assert [s["attackVersion"] for s in scores] == ["DCR-v1", "DENSITY-RATIO-v1", "ANONYMETER-LINKABILITY-v1"]
    assert scores[2]["score"] is None  # NaN becomes null: the file is strict JSON
    assert data["released"] is True and data["gates"][0]["passed"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json"]  # no temporary files left


def test_html_is_self_contained(refused):
    html, _ = refused
    for needle in ("http://", "https://", "src=", "<link", "@import", "url(", "<script", "<img", "<iframe"):
        assert needle not in html.lower(), needle
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")


def test_user_text_is_escaped(refused):
    html, _ = refused
    assert EVIL not in html and "<b>south</b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "&lt;b&gt;south&lt;/b&gt;" in html


def test_refused_summary_names_score_threshold_and_advice(refused):
    html, data = refused
    summary = html[html.index('class="card summary') : html.index("<h2>")]
    assert ">REFUSED<" in summary and "summary fail" in summary
    assert "DCR-v1 scored 0.970, over the threshold 0.600" in summary
    advice = summary[summary.index("What to try") :]
    assert "Lower epsilon: try 0.5." in advice and "DCR-v1 scored" not in advice  # the reason is not repeated
    assert '<span class="badge fail">FAIL</span>' in summary
    assert "subsampled from 80,000 to 50,000 rows" in summary  # notes are on the summary card
    assert data["released"] is False and data["gates"] == [
        {"name": "DCR-v1", "threshold": 0.6, "value": 0.97, "passed": False}
    ]


def test_sections_and_charts(refused):
    html, _ = refused
    for heading in (
        "Column distributions",
        "Associations",
        "Privacy attacks",
        "Utility",
        "Copies",
        "Privacy accounting",
    ):
        assert f"<h2>{heading}</h2>" in html
    assert html.count("<svg") == 4 + 3 + 3 + 1  # 4 columns, 3 heatmaps with a colour legend each, 1 DCR histogram
    assert "21 rarest of 60 bins pooled into one bar" in html
    assert "distance to the closest synthetic record" in html
    ledger = html[html.index("<h2>Privacy accounting</h2>") :]
    assert "1 charges" in ledger and "gaussian" in ledger and "0.0144 of 0.0144" in ledger


def test_verdict_words(tmp_path):
    def verdict(report) -> str:
        html = write_report(report, tmp_path / "v.html")[0].read_text()
        return re.search(r'<span class="big">([A-Z ]+)</span>', html).group(1)

    assert verdict(make_report()) == "RELEASED"
    assert verdict(make_report(privacy=False)) == "PASSED"
    assert verdict(make_report(dcr_score=0.9, privacy=False)) == "FAILED"
    assert verdict(make_report(threshold=None)) == "NO GATE SET"


def test_explain_refusal_splits_reason_from_advice():
    why, to_try = explain_refusal(make_report(dcr_score=0.97))
    assert why == ["DCR-v1 scored 0.970, over the threshold 0.600: training rows lie closer."]
    assert to_try[0] == "Lower epsilon: try 0.5." and len(to_try) == 2
    assert explain_refusal(make_report()) == ([], [])


@pytest.mark.parametrize(
    "name, message",
    [
        ("r.txt", "report file '{d}/r.txt' must end in .html (the JSON is written beside it)"),
        ("missing/r.html", "report folder '{d}/missing' does not exist"),
    ],
)
def test_bad_report_paths(tmp_path, name, message):
    with pytest.raises(InputError) as info:
        check_report_path(tmp_path / name)
    assert str(info.value) == message.format(d=tmp_path)


def test_failed_rendering_writes_nothing(tmp_path, monkeypatch):
    import synthroom.report.writer as writer

    def broken(_report):
        raise RuntimeError("boom")

    monkeypatch.setattr(writer, "render_html", broken)
    with pytest.raises(RuntimeError):
        write_report(make_report(), tmp_path / "r.html")
    assert list(tmp_path.iterdir()) == []


def test_member_summary_rounds_the_non_dp_scores_and_leaves_out_rows_and_notes():
    from synthroom.evaluation.disclosure import member_refusal, member_summary

    report = make_report(dcr_score=0.97346)
    report.fidelity.score = 0.8861
    summary = member_summary(report)
    assert summary == {
        "fidelityScore": 0.89,
        "membershipInferenceAttackScores": [
            {"attackVersion": "DCR-v1", "score": 0.97},
            {"attackVersion": "DENSITY-RATIO-v1", "score": 0.51},
            {"attackVersion": "ANONYMETER-LINKABILITY-v1", "score": None},
        ],
        "released": False,
        "gates": [{"name": "DCR-v1", "threshold": 0.6, "value": 0.97, "passed": False}],
        "advice": report.advice,
        "non_dp": "the scores, the gates and the release decision are computed from the real rows without noise: "
        "they are not differentially private; scores are rounded to 2 decimals",
    }
    assert member_refusal(report) == ["DCR-v1 scored 0.97, over the threshold 0.60"]
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary
