"""What a member can learn from a job beyond its DP release, and what it costs.

Charging from first touch (no refund that depends on a row), failures shown as fixed categories,
the delta ledger, who sees the non-DP scores, the owners' limit on gated runs, and the room's
refusal of explicit seeds (secure randomness only).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from roomkit import ADMIN, two_party

from synthroom.errors import FAILURE_CATEGORIES, InputError, SourceChanged
from synthroom.room import (
    BudgetExhausted,
    Conflict,
    Forbidden,
    Room,
    audit_log,
    get_job,
    list_jobs,
    metering,
    result_path,
    run_job,
    start_job,
)
from synthroom.room import jobs as jobs_module
from synthroom.room.jobs import refunded
from synthroom.room.models import Job, LedgerEntry

SMALL_DELTA = 1e-9
VOLATILE = ("id", "created_at", "started_at", "finished_at", "expires_at", "compute_seconds")


def _member_views(tp, job_id: int) -> list[dict]:
    """What each member sees of a job, without ids and times (those differ between rooms anyway)."""
    views = []
    for who in (tp.publisher, tp.advertiser, tp.analyst):
        view = get_job(tp.room, who, job_id)
        views.append({k: v for k, v in view.items() if k not in VOLATILE})
    return views


# -- charging from first touch, failure categories -------------------------------------------------
def _fails_on_a_row(detail: str):
    """A stand-in executor for a template that fails on one person's row: the real sandbox's error
    quotes the row (as DuckDB's conversion errors do). The template check should make such a
    template impossible; the room's rule must hold even when one slips through."""

    def run_template(*_args, **_kwargs):
        raise InputError(f"the template failed to run: Conversion Error: Could not convert string '{detail}' to INT32")

    return run_template


@pytest.mark.parametrize("whose_row", ["alice-1990-02-01", "bob-1985-07-12"])
def test_a_failure_on_one_persons_row_is_charged_and_every_member_sees_the_same(tmp_path, monkeypatch, whose_row):
    tp = two_party(tmp_path, users=200, budget=3)
    monkeypatch.setattr(jobs_module, "run_template", _fails_on_a_row(whose_row))
    job = start_job(tp.room, tp.advertiser, tp.template["id"])
    done = run_job(tp.room, job["id"], synthesize=lambda *a, **k: pytest.fail("the synthesizer ran"))
    assert (done["state"], done["category"], done["budget_released"]) == ("failed", "template_error", False)
    views = _member_views(tp, job["id"])
    assert whose_row not in json.dumps(views)  # owners included: the detail quotes a row
    expected = {
        "state": "failed",
        "category": "template_error",
        "reason": FAILURE_CATEGORIES["template_error"],
        "budget_released": False,
        "released": False,
        "summary": None,
    }
    for view in views:
        assert {k: view[k] for k in expected} == expected
    assert tp.room.get_table(tp.publisher, tp.audience)["epsilon_spent"] == pytest.approx(1.0)
    with tp.room.transaction() as s:
        assert whose_row in s.get(Job, job["id"]).detail  # the operator keeps the detail


@pytest.mark.parametrize("present", [True, False])
def test_a_template_that_raises_on_one_person_costs_the_same_whether_the_person_is_there(tmp_path, present):
    """The refund oracle of the old rule: ``CASE WHEN user_id = X THEN error(...)`` was free when X
    was present (failed before the synthesizer measured: refunded). Now the budget spent does
    not depend on X (and the template check may refuse such a template outright)."""
    tp = two_party(tmp_path, users=200, budget=3)
    audience = pd.read_csv(tmp_path / "data" / "publisher" / "audience.csv")
    person = int(audience.user_id.iloc[7]) if present else -1
    sql = (
        f"SELECT CASE WHEN a.user_id = {person} THEN error('found ' || a.region) ELSE a.age END AS age, "
        "a.region, a.device, a.segment, a.weekly_visits, 'no' AS converted FROM audience AS a"
    )
    classification = json.loads(json.dumps(tp.template["params"]["classification"]))
    try:
        template = tp.room.create_template(
            tp.advertiser, tp.collab, "probe", sql, epsilon=1, classification=classification
        )
    except InputError as exc:  # the check refuses functions that raise: nothing can fail on a row
        assert str(exc).startswith("template rejected:")
        return
    tp.room.approve_template(tp.publisher, template["id"], template["hash"])  # it reads the audience only
    job = start_job(tp.room, tp.advertiser, template["id"])

    def stop(frame, schema, **kw):
        raise RuntimeError("stopped before synthesis (test)")

    done = run_job(tp.room, job["id"], synthesize=stop)
    assert done["state"] == "failed" and done["category"] == ("template_error" if present else "internal_error")
    assert not done["budget_released"]
    assert tp.room.get_table(tp.publisher, tp.audience)["epsilon_spent"] == pytest.approx(1.0)


def test_only_failures_decided_before_reading_rows_or_by_the_source_identity_are_refunded():
    for category in ("withdrawn", "template_error", "internal_error", "interrupted", "source_changed"):
        assert refunded(category, touched=False)
    for category in ("template_error", "resource_limit", "refused_by_gate", "internal_error", "interrupted"):
        assert not refunded(category, touched=True), category
    assert refunded("source_changed", touched=True)


def test_a_changed_source_is_refunded_and_a_template_the_current_rules_refuse_too(tmp_path, monkeypatch):
    tp = two_party(tmp_path, users=200, budget=3)

    def swapped(*_a, **_k):
        raise SourceChanged("/srv/data/publisher/audience.csv: inode 1234 is not the configured 999")

    monkeypatch.setattr(jobs_module, "run_template", swapped)
    job = start_job(tp.room, tp.advertiser, tp.template["id"])
    done = run_job(tp.room, job["id"])
    assert (done["category"], done["budget_released"]) == ("source_changed", True)
    assert "inode" not in json.dumps(get_job(tp.room, tp.publisher, job["id"]))

    def refused(*_a, **_k):
        raise InputError("template rejected: column 'email' is not allowed")

    monkeypatch.setattr(jobs_module, "check_template", refused)  # the rule changed after approval
    monkeypatch.setattr(jobs_module, "run_template", lambda *a, **k: pytest.fail("the sandbox ran"))
    job = start_job(tp.room, tp.advertiser, tp.template["id"])
    done = run_job(tp.room, job["id"])
    assert (done["category"], done["budget_released"]) == ("template_error", True)
    assert tp.room.get_table(tp.publisher, tp.audience)["epsilon_spent"] == pytest.approx(0.0)


# -- the delta ledger ----------------------------------------------------------------------------
def test_delta_is_reserved_and_released_with_epsilon_and_refused_beyond_its_budget(tmp_path):
    tp = two_party(tmp_path, users=200, budget=10, approve=False)
    path = str(tmp_path / "data" / "publisher" / "audience.csv")
    table = tp.room.configure_table(
        tp.publisher,
        "aud_delta",
        "csv",
        path,
        ["user_id", "age", "region"],
        epsilon_budget=10,
        unit_column="user_id",
        delta_budget=2.5e-9,
    )
    assert (table["delta_budget"], table["delta_spent"], table["delta_remaining"]) == (2.5e-9, 0.0, 2.5e-9)
    collab = tp.room.create_collaboration(
        tp.publisher, "deltas", [{"name": "publisher", "can_run": True, "can_receive": True}], payer="publisher"
    )
    tp.room.associate(tp.publisher, collab["id"], table["id"], "aud")
    template = tp.room.create_template(
        tp.publisher,
        collab["id"],
        "ages",
        "SELECT a.age, a.region FROM aud a",
        epsilon=1,
        delta=1e-9,
        classification={
            "target": "region",
            "columns": [{"name": "age", "type": "numerical"}, {"name": "region", "type": "categorical"}],
        },
    )
    tp.room.approve_template(tp.publisher, template["id"], template["hash"])
    first = start_job(tp.room, tp.publisher, template["id"])
    start_job(tp.room, tp.publisher, template["id"])
    view = tp.room.get_table(tp.publisher, table["id"])
    assert view["delta_spent"] == pytest.approx(2e-9, rel=1e-12) and view["delta_remaining"] == pytest.approx(0.5e-9)
    with pytest.raises(
        BudgetExhausted, match=r"table 'aud_delta' has delta 5e-10 left of 2.5e-09; this job needs 1e-09"
    ):
        start_job(tp.room, tp.publisher, template["id"])
    assert tp.room.get_table(tp.publisher, table["id"])["epsilon_spent"] == pytest.approx(2.0)  # nothing charged
    tp.room.revoke_approval(tp.publisher, template["id"])  # the first job is withdrawn: delta comes back with epsilon
    run_job(tp.room, first["id"])
    view = tp.room.get_table(tp.publisher, table["id"])
    assert view["delta_spent"] == pytest.approx(1e-9, rel=1e-12) and view["epsilon_spent"] == pytest.approx(1.0)
    with tp.room.transaction() as s:
        kinds = [(e.kind, e.delta) for e in s.query(LedgerEntry).filter_by(job_id=first["id"]).order_by(LedgerEntry.id)]
    assert kinds == [("reserve", 1e-9), ("release", 1e-9)]
    other = tp.room.get_collaboration(tp.publisher, collab["id"])["tables"][0]
    assert other["delta_spent"] == pytest.approx(1e-9, rel=1e-12)


@pytest.mark.parametrize(
    "delta_budget, max_gated_runs, message",
    [
        (0, 5, r"delta budget 0 must be a number in \(0, 0.0001\]"),
        (1e-3, 5, r"delta budget 0.001 must be a number in \(0, 0.0001\]"),
        (1e-6, 0, "max_gated_runs 0 must be a whole number from 1 to 1000"),
        (1e-6, True, "max_gated_runs True must be a whole number from 1 to 1000"),
    ],
)
def test_privacy_rule_validation(tmp_path, delta_budget, max_gated_runs, message):
    tp = two_party(tmp_path, users=50, approve=False)
    path = str(tmp_path / "data" / "publisher" / "audience.csv")
    with pytest.raises(InputError, match=message):
        tp.room.configure_table(
            tp.publisher,
            "t",
            "csv",
            path,
            ["user_id", "age"],
            epsilon_budget=1,
            delta_budget=delta_budget,
            max_gated_runs=max_gated_runs,
        )


# -- gated runs ----------------------------------------------------------------------------------
def test_owners_limit_gated_runs_per_template_version(tmp_path):
    tp = two_party(tmp_path, users=200, budget=10, approve=False)
    path = str(tmp_path / "data" / "publisher" / "audience.csv")
    table = tp.room.configure_table(
        tp.publisher,
        "aud_runs",
        "csv",
        path,
        ["user_id", "age", "region"],
        epsilon_budget=10,
        unit_column="user_id",
        max_gated_runs=2,
    )
    collab = tp.room.create_collaboration(
        tp.publisher, "runs", [{"name": "publisher", "can_run": True, "can_receive": True}], payer="publisher"
    )
    tp.room.associate(tp.publisher, collab["id"], table["id"], "aud")
    template = tp.room.create_template(
        tp.publisher,
        collab["id"],
        "ages",
        "SELECT a.age, a.region FROM aud a",
        epsilon=1,
        classification={
            "target": "region",
            "columns": [{"name": "age", "type": "numerical"}, {"name": "region", "type": "categorical"}],
        },
    )
    tp.room.approve_template(tp.publisher, template["id"], template["hash"])
    first = start_job(tp.room, tp.publisher, template["id"])
    start_job(tp.room, tp.publisher, template["id"])
    with pytest.raises(Conflict, match="template 'ages' version 1 has used its 2 gated runs"):
        start_job(tp.room, tp.publisher, template["id"])
    tp.room.revoke_approval(tp.publisher, template["id"])
    assert run_job(tp.room, first["id"])["budget_released"]  # a refunded job never read a row: it does not count
    tp.room.approve_template(tp.publisher, template["id"], template["hash"])
    start_job(tp.room, tp.publisher, template["id"])
    with pytest.raises(Conflict, match="has used its 2 gated runs"):
        start_job(tp.room, tp.publisher, template["id"])
    last = audit_log(tp.room, tp.publisher, collab["id"])["entries"][-1]
    assert last["action"] == "job.refused" and "gated runs" in last["details"]["reason"]


# -- who sees the non-DP scores --------------------------------------------------------------------
def test_scores_go_to_receivers_rounded_and_to_every_member_only_when_every_table_shares_them(tmp_path):
    tp = two_party(tmp_path, users=1500, budget=5)
    job = start_job(tp.room, tp.analyst, tp.template["id"])  # the analyst may run but not receive
    done = run_job(tp.room, job["id"])
    assert done["state"] in ("succeeded", "failed") and done["summary"] is not None
    mine = get_job(tp.room, tp.advertiser, job["id"])  # a result receiver
    assert mine["summary"] == done["summary"] and mine["state"] == done["state"]
    scores = [mine["summary"]["fidelityScore"]] + [
        a["score"] for a in mine["summary"]["membershipInferenceAttackScores"]
    ]
    assert scores and all(s == round(s, 2) for s in scores)
    for gate in mine["summary"]["gates"]:
        assert gate["value"] == round(gate["value"], 2)
    for who in (tp.publisher, tp.analyst):  # no scores, and no pass/refuse either
        seen = get_job(tp.room, who, job["id"])
        assert (seen["state"], seen["category"], seen["released"], seen["summary"]) == ("finished", None, None, None)
        assert seen["rows_synthetic"] == mine["rows_synthetic"] > 0  # the DP sample size, released or not
        assert [j["state"] for j in list_jobs(tp.room, who, tp.collab)] == ["finished"]
    assert isinstance(mine["compute_seconds"], int)
    assert metering(tp.room, tp.publisher, tp.collab)["entries"][0]["rows_synthetic"] == mine["rows_synthetic"]
    with tp.room.transaction() as s:  # the operator's copy keeps full precision
        assert s.get(Job, job["id"]).compute_seconds != mine["compute_seconds"]
    with tp.room.transaction() as s:  # both owners share scores: every member sees them
        s.get(Job, job["id"]).share_scores = True
    assert get_job(tp.room, tp.publisher, job["id"])["summary"] == mine["summary"]


def test_a_job_shares_scores_only_when_every_table_read_does(tmp_path):
    tp = two_party(tmp_path, users=100, approve=False)
    with tp.room.transaction() as s:
        from synthroom.room.models import ConfiguredTable

        s.get(ConfiguredTable, tp.audience).share_scores = True
    for actor in (tp.publisher, tp.advertiser):
        tp.room.approve_template(actor, tp.template["id"], tp.template["hash"])
    one = start_job(tp.room, tp.advertiser, tp.template["id"])
    with tp.room.transaction() as s:
        assert not s.get(Job, one["id"]).share_scores
        s.get(ConfiguredTable, tp.conversions).share_scores = True
    two = start_job(tp.room, tp.advertiser, tp.template["id"])
    with tp.room.transaction() as s:
        assert s.get(Job, two["id"]).share_scores


# -- seeds -----------------------------------------------------------------------------------------
def test_the_room_refuses_explicit_seeds_and_hands_the_synthesizer_none(tmp_path, monkeypatch):
    tp = two_party(tmp_path, users=200, budget=5)
    with pytest.raises(Forbidden, match="a room job takes no explicit seed"):
        start_job(tp.room, tp.advertiser, tp.template["id"], seed=1)
    assert tp.room.get_table(tp.publisher, tp.audience)["epsilon_spent"] == 0.0
    salts, seen = [], {}
    real = jobs_module.run_template

    def spy(checked, sources, cap, seed):
        salts.append(seed)
        return real(checked, sources, cap=cap, seed=seed)

    def records(frame, schema, **kw):
        seen.update(seed=kw["seed"])
        raise RuntimeError("stop here (test)")

    monkeypatch.setattr(jobs_module, "run_template", spy)
    for _ in range(2):
        job = start_job(tp.room, tp.advertiser, tp.template["id"])
        run_job(tp.room, job["id"], synthesize=records)
        with tp.room.transaction() as s:
            assert s.get(Job, job["id"]).seed is None and not s.get(Job, job["id"]).reproducible
    assert seen["seed"] is None  # the synthesizer and the split draw from the OS's secure generator
    assert salts[0] != salts[1] and all(0 <= v < 2**63 for v in salts)  # a fresh 63-bit salt per run, never stored


def test_an_operators_seeded_run_is_reproducible_and_never_released(tmp_path):
    tp = two_party(tmp_path, users=1500, budget=5, seeded_jobs=True)
    job = start_job(tp.room, tp.advertiser, tp.template["id"], seed=7)
    assert job["reproducible"]
    done = run_job(tp.room, job["id"])
    assert done["state"] == "succeeded" and done["reproducible"] and done["released"] is False
    with pytest.raises(
        Conflict, match=f"job {job['id']} is a reproducible run \\(an explicit seed\\): its data is never released"
    ):
        result_path(tp.room, tp.advertiser, job["id"])
    assert not (tmp_path / "artifacts" / "jobs" / str(job["id"]) / "synthetic.csv").exists()
    with tp.room.transaction() as s:
        assert s.get(Job, job["id"]).seed == 7


def test_a_serving_room_has_no_seeded_jobs(tmp_path):
    room = Room(f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "a", admin_key=ADMIN)
    assert room.seeded_jobs is False
