"""Consent, as in the reference product: a collaboration invites its members; an invited member
acts in it (or is charged) only after it accepts; the paying member accepts paying; no job starts
or runs until the owners of the tables it reads and the payer are active (and the payer pays)."""

import json

import pytest
from fastapi.testclient import TestClient
from roomkit import two_party
from sqlalchemy import text
from typer.testing import CliRunner

from synthroom.api import create_app
from synthroom import client as room_client
from synthroom.cli.app import app as cli
from synthroom.demo.adtech import DEMO_CLASSIFICATION, DEMO_TEMPLATE
from synthroom.errors import InputError
from synthroom.room import Conflict, Forbidden, NotFound, audit_log, get_job, metering, result_path, run_job, start_job

INVITED = "'publisher' has not accepted the invitation to collaboration {} yet (`synthroom room accept {}`)"


@pytest.fixture()
def tp(tmp_path):
    return two_party(tmp_path, users=300, budget=10)


def _collaboration(tp, payer="advertiser", analyst_receives=False):
    """A second collaboration, created by the advertiser: the publisher (and the analyst) invited."""
    return tp.room.create_collaboration(
        tp.advertiser,
        "second",
        [
            {"name": "publisher"},
            {"name": "advertiser", "can_run": True, "can_receive": True},
            {"name": "analyst", "can_receive": analyst_receives},
        ],
        payer=payer,
    )["id"]


def _template(tp, cid):
    """Both tables associated and the demo template approved in collaboration ``cid``."""
    tp.room.associate(tp.publisher, cid, tp.audience, "audience")
    tp.room.associate(tp.advertiser, cid, tp.conversions, "conversions")
    template = tp.room.create_template(
        tp.advertiser, cid, "converters", DEMO_TEMPLATE, epsilon=1, classification=DEMO_CLASSIFICATION
    )
    for owner in (tp.publisher, tp.advertiser):
        template = tp.room.approve_template(owner, template["id"], template["hash"])
    return template


def _statuses(view):
    return {m["name"]: m["status"] for m in view["members"]}


def test_an_invited_member_reads_its_invitation_but_acts_only_after_accepting(tp):
    cid = _collaboration(tp)
    view = tp.room.get_collaboration(tp.publisher, cid)  # an invitee may read what it is invited to
    assert _statuses(view) == {"advertiser": "active", "publisher": "invited", "analyst": "invited"}
    assert view["payer"] == "advertiser" and view["payer_accepted"]  # the creator named itself: it consented
    assert [c["id"] for c in tp.room.invitations(tp.publisher)] == [cid]
    assert cid not in [c["id"] for c in tp.room.list_collaborations(tp.publisher)]
    message = INVITED.format(cid, cid)
    for act in (
        lambda: tp.room.associate(tp.publisher, cid, tp.audience, "audience"),
        lambda: tp.room.list_templates(tp.publisher, cid),
        lambda: audit_log(tp.room, tp.publisher, cid),
        lambda: metering(tp.room, tp.publisher, cid),
    ):
        with pytest.raises(Forbidden) as refused:
            act()
        assert str(refused.value) == message
    view = tp.room.accept_invitation(tp.publisher, cid)
    assert _statuses(view)["publisher"] == "active" and tp.room.invitations(tp.publisher) == []
    assert cid in [c["id"] for c in tp.room.list_collaborations(tp.publisher)]
    tp.room.associate(tp.publisher, cid, tp.audience, "audience")
    assert tp.room.accept_invitation(tp.publisher, cid) == tp.room.get_collaboration(tp.publisher, cid)  # idempotent
    actions = [(e["actor"], e["action"]) for e in audit_log(tp.room, tp.publisher, cid)["entries"]]
    assert actions == [
        ("advertiser", "collaboration.created"),
        ("publisher", "membership.accepted"),
        ("publisher", "table.associated"),
    ]
    created = audit_log(tp.room, tp.publisher, cid)["entries"][0]["details"]["members"]
    assert created["publisher"] == {"can_run": False, "can_receive": False, "status": "invited"}


def test_no_job_starts_until_the_payer_accepts_paying(tp):
    cid = _collaboration(tp, payer="publisher")
    assert not tp.room.get_collaboration(tp.advertiser, cid)["payer_accepted"]
    tp.room.accept_invitation(tp.publisher, cid)  # a member now, but not paying yet
    template = _template(tp, cid)
    expected = (
        f"no job runs in collaboration {cid} until the owners of the tables it reads and the paying member "
        f"have accepted: the paying member 'publisher' has not accepted paying for synthetic-data generation "
        f"(`synthroom room accept {cid} --pay`)"
    )
    with pytest.raises(Conflict) as refused:
        start_job(tp.room, tp.advertiser, template["id"])
    assert str(refused.value) == expected
    assert metering(tp.room, tp.publisher, cid)["entries"] == []  # nothing was charged to it
    with pytest.raises(
        Conflict, match=f"^'analyst' is not the paying member of collaboration {cid}: accept without pay$"
    ):
        tp.room.accept_invitation(tp.analyst, cid, pay=True)
    assert tp.room.accept_invitation(tp.publisher, cid, pay=True)["payer_accepted"]
    job = start_job(tp.room, tp.advertiser, template["id"])

    def measures_then_fails(frame, schema, **kw):
        kw["progress"]("measuring", "learning the domains")
        raise RuntimeError("stop here")

    run_job(tp.room, job["id"], synthesize=measures_then_fails)
    assert [e["payer"] for e in metering(tp.room, tp.publisher, cid)["entries"]] == [
        "publisher"
    ]  # charged after consent
    entries = audit_log(tp.room, tp.advertiser, cid)["entries"]
    refusal = next(e for e in entries if e["action"] == "job.refused")
    assert refusal["actor"] == "advertiser" and refusal["details"]["reason"] == expected
    paid = next(e for e in entries if e["action"] == "payment.accepted")
    assert paid["actor"] == "publisher" and paid["details"] == {
        "payer": "publisher",
        "pays_for": "synthetic-data generation",
    }
    assert entries.index(refusal) < entries.index(paid) < [e["action"] for e in entries].index("job.started")


def test_declining_is_final_and_leaves_no_trace_of_access(tp):
    cid = _collaboration(tp)
    assert tp.room.decline_invitation(tp.analyst, cid) == {
        "collaboration_id": cid,
        "member": "analyst",
        "status": "declined",
    }
    for act in (
        lambda: tp.room.get_collaboration(tp.analyst, cid),
        lambda: tp.room.accept_invitation(tp.analyst, cid),
        lambda: tp.room.decline_invitation(tp.analyst, cid),
    ):
        with pytest.raises(NotFound, match=f"^no collaboration with id {cid}$"):
            act()
    assert tp.room.invitations(tp.analyst) == []
    assert _statuses(tp.room.get_collaboration(tp.advertiser, cid))["analyst"] == "declined"
    with pytest.raises(Conflict, match=f"'advertiser' is already an active member of collaboration {cid}"):
        tp.room.decline_invitation(tp.advertiser, cid)  # the creator is active from the start
    entry = audit_log(tp.room, tp.advertiser, cid)["entries"][-1]
    assert (entry["actor"], entry["action"], entry["details"]) == (
        "analyst",
        "membership.declined",
        {"member": "analyst"},
    )


def test_a_payer_that_declines_means_no_job_ever_runs(tp):
    cid = _collaboration(tp, payer="analyst")
    tp.room.accept_invitation(tp.publisher, cid)
    template = _template(tp, cid)
    tp.room.decline_invitation(tp.analyst, cid)
    with pytest.raises(Conflict, match="analyst has not accepted the invitation; the paying member 'analyst' has not"):
        start_job(tp.room, tp.advertiser, template["id"])


def test_an_invited_receiver_receives_nothing_from_jobs_started_before_it_accepted(tp):
    cid = _collaboration(tp, analyst_receives=True)
    tp.room.accept_invitation(tp.publisher, cid)
    job = start_job(tp.room, tp.advertiser, _template(tp, cid)["id"])
    tp.room.accept_invitation(tp.analyst, cid)
    with pytest.raises(Forbidden, match=f"^'analyst' may not receive the results of job {job['id']}$"):
        result_path(tp.room, tp.analyst, job["id"])


def test_a_queued_job_rechecks_consent_before_it_runs(tp):
    job = start_job(tp.room, tp.advertiser, tp.template["id"])
    with tp.room.db.engine.begin() as con:  # defence in depth: memberships changed behind the rules' back
        con.execute(text("UPDATE memberships SET status = 'invited' WHERE member_id = :m"), {"m": tp.publisher.id})

    def must_not_run(*_a, **_k):
        raise AssertionError("a job ran without its table owner's consent")

    done = run_job(tp.room, job["id"], synthesize=must_not_run)
    assert done["state"] == "failed" and done["budget_released"]
    with tp.room.transaction() as s:
        from synthroom.room.models import Job

        reason = s.get(Job, job["id"]).detail  # the operator's record; members see the category
    assert reason == (
        f"withdrawn before it ran: no job runs in collaboration {tp.collab} until the owners of the tables "
        "it reads and the paying member have accepted: publisher has not accepted the invitation"
    )
    assert get_job(tp.room, tp.advertiser, job["id"])["state"] == "failed"
    assert get_job(tp.room, tp.advertiser, job["id"])["category"] == "withdrawn"


def test_a_collaboration_lists_at_most_the_servers_member_limit(tp):
    tp.room.settings.max_collaboration_members = 3
    four = [{"name": n} for n in ("publisher", "advertiser", "analyst")] + [{"name": "x"}]
    with pytest.raises(InputError, match=r"^a collaboration may list at most 3 members \(4 listed\)$"):
        tp.room.create_collaboration(tp.advertiser, "big", four, payer="advertiser")
    with pytest.raises(InputError, match="^member 'publisher' is listed twice$"):
        tp.room.create_collaboration(tp.advertiser, "twice", [{"name": "publisher"}] * 2, payer="advertiser")
    tp.room.settings.max_collaboration_members = 2
    with pytest.raises(InputError, match="^a collaboration may have at most 2 members, its creator included$"):
        tp.room.create_collaboration(tp.advertiser, "three", four[::2], payer="advertiser")


def test_invitations_through_the_api_and_the_cli(tp, monkeypatch):
    cid = _collaboration(tp, payer="publisher")
    app = create_app(tp.room)
    http = TestClient(app)
    headers = {"X-API-Key": tp.keys["publisher"]}
    assert [c["id"] for c in http.get("/invitations", headers=headers).json()] == [cid]
    refused = http.get(f"/collaborations/{cid}/templates", headers=headers)
    assert refused.status_code == 403 and refused.json()["detail"] == INVITED.format(cid, cid)
    answer = http.post(f"/collaborations/{cid}/accept", headers=headers)  # no body: membership only
    assert answer.status_code == 200 and not answer.json()["payer_accepted"]
    assert http.post(f"/collaborations/{cid}/accept", json={"pay": True}, headers=headers).json()["payer_accepted"]
    missing = http.post("/collaborations/9999/accept", headers=headers)
    assert missing.status_code == 404 and missing.json()["detail"] == "no collaboration with id 9999"

    monkeypatch.setattr(room_client.httpx, "Client", lambda **_kw: http)  # the CLI's client talks to the app
    runner = CliRunner()
    analyst = ["room", "--key", tp.keys["analyst"]]
    listed = runner.invoke(cli, analyst + ["invitations"])
    assert listed.exit_code == 0 and [c["id"] for c in json.loads(listed.output)] == [cid]
    declined = runner.invoke(cli, analyst + ["decline", str(cid)])
    assert declined.exit_code == 0 and json.loads(declined.output)["status"] == "declined"
    again = runner.invoke(cli, analyst + ["accept", str(cid)])
    assert again.exit_code == 2 and f"refused (404): no collaboration with id {cid}" in again.output
    cid2 = _collaboration(tp, payer="analyst")
    paid = runner.invoke(cli, analyst + ["accept", str(cid2), "--pay"])
    assert paid.exit_code == 0 and json.loads(paid.output)["payer_accepted"] is True
