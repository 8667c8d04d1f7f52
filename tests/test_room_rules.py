"""Every authorisation rule of the clean room, from both sides, on the domain layer (no HTTP)."""

import json

import pytest
from roomkit import ADMIN, two_party
from sqlalchemy import text

from synthroom.demo.adtech import DEMO_CLASSIFICATION, DEMO_TEMPLATE
from synthroom.errors import InputError
from synthroom.room import (
    BudgetExhausted,
    Conflict,
    Forbidden,
    NotFound,
    audit_log,
    get_job,
    result_path,
    run_job,
    start_job,
)
from synthroom.room.models import Job


@pytest.fixture()
def tp(tmp_path):
    return two_party(tmp_path, users=300, approve=False)


def _approve_all(tp, template):
    for actor in (tp.publisher, tp.advertiser):
        template = tp.room.approve_template(actor, template["id"], template["hash"])
    return template


def test_members_need_the_admin_key_and_a_valid_api_key(tp):
    with pytest.raises(Forbidden, match="needs the server's admin key"):
        tp.room.create_member("wrong", "mallory")
    assert tp.room.authenticate(tp.keys["publisher"]).name == "publisher"
    with pytest.raises(Forbidden, match="the API key is not valid"):
        tp.room.authenticate("sr_forged")
    with pytest.raises(Conflict, match="a member named 'publisher' already exists"):
        tp.room.create_member(ADMIN, "publisher")


def test_a_member_cannot_point_a_table_at_anothers_files_or_read_anothers_table(tp):
    other = tp.folder / "data" / "publisher" / "audience.csv"
    with pytest.raises(Forbidden, match="is outside 'advertiser''s data folders"):
        tp.room.configure_table(tp.advertiser, "stolen", "csv", str(other), ["age"], epsilon_budget=1)
    outsider = tp.room.create_member(ADMIN, "outsider", [])
    from synthroom.room import Actor

    with pytest.raises(NotFound, match=f"^no table with id {tp.audience}$"):  # as if it did not exist
        tp.room.get_table(Actor(outsider["id"], "outsider"), tp.audience)
    seen = tp.room.get_table(tp.advertiser, tp.audience)  # a collaborator sees the rule, not the source
    assert "source_path" not in seen and seen["allowed_columns"][0] == "user_id"
    assert tp.room.get_table(tp.publisher, tp.audience)["source_path"].endswith("audience.csv")
    with pytest.raises(InputError, match="association name 'synthroom_result' is reserved"):
        tp.room.associate(tp.publisher, tp.collab, tp.audience, "synthroom_result")
    with pytest.raises(Forbidden, match="only the owner of table 'audience' can associate it"):
        tp.room.associate(tp.advertiser, tp.collab, tp.audience, "aud2")
    with pytest.raises(NotFound, match=f"^no collaboration with id {tp.collab}$"):
        tp.room.get_collaboration(Actor(outsider["id"], "outsider"), tp.collab)


def test_table_rule_validation(tp):
    import duckdb

    db = tp.folder / "data" / "publisher" / "crm.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE people AS SELECT 1 AS user_id, 'a' AS tier")
    table = tp.room.configure_table(
        tp.publisher,
        "crm",
        "duckdb",
        str(db),
        ["user_id", "tier"],
        epsilon_budget=1,
        unit_column="user_id",
        source_table="people",
    )
    assert table["columns"] == ["user_id", "tier"] and table["source_table"] == "people"
    path = str(tp.folder / "data" / "publisher" / "audience.csv")
    with pytest.raises(InputError, match="column 'salary' is not in audience.csv"):
        tp.room.configure_table(tp.publisher, "t", "csv", path, ["age", "salary"], epsilon_budget=1)
    with pytest.raises(InputError, match="the privacy-unit column 'user_id' must be among the allowed columns"):
        tp.room.configure_table(tp.publisher, "t", "csv", path, ["age"], epsilon_budget=1, unit_column="user_id")
    with pytest.raises(InputError, match="retention_days 31 must be a whole number of days from 1 to 30"):
        tp.room.create_collaboration(tp.publisher, "x", [], payer="publisher", retention_days=31)


def test_templates_are_checked_against_allowed_columns_and_classification(tp):
    with pytest.raises(InputError, match="column 'email' of table 'audience' may not be used"):
        tp.room.create_template(
            tp.advertiser,
            tp.collab,
            "peek",
            "SELECT a.email, a.age FROM audience a",
            epsilon=1,
            classification={
                "target": "age",
                "columns": [{"name": "email", "type": "categorical"}, {"name": "age", "type": "numerical"}],
            },
        )
    wrong = json.loads(json.dumps(DEMO_CLASSIFICATION))
    wrong["columns"][1]["type"] = "numerical"  # region is text
    with pytest.raises(InputError, match="column 'region' is classified numerical but the template gives VARCHAR"):
        tp.room.create_template(tp.advertiser, tp.collab, "bad", DEMO_TEMPLATE, epsilon=1, classification=wrong)


def test_unapproved_template_cannot_run_and_approvals_bind_the_hash(tp):
    template = tp.template
    assert template["approvers"] == ["advertiser", "publisher"] and not template["approved"]
    tp.room.approve_template(tp.advertiser, template["id"], template["hash"])
    with pytest.raises(Forbidden, match="is not approved by publisher"):
        start_job(tp.room, tp.advertiser, template["id"])
    with pytest.raises(Conflict, match="is not the content hash of template 'converters'"):
        tp.room.approve_template(tp.publisher, template["id"], "0" * 64)
    with pytest.raises(Forbidden, match="'analyst' owns no table that template 'converters' reads"):
        tp.room.approve_template(tp.analyst, template["id"], template["hash"])
    tp.room.approve_template(tp.publisher, template["id"], template["hash"])
    assert start_job(tp.room, tp.advertiser, template["id"])["state"] == "queued"


def test_an_edit_is_a_new_version_that_needs_its_own_approvals(tp):
    v1 = _approve_all(tp, tp.template)
    v2 = tp.room.create_template(
        tp.advertiser,
        tp.collab,
        "converters",
        DEMO_TEMPLATE.replace("a.age,", "a.age + 0 AS age,", 1),
        epsilon=1,
        classification=DEMO_CLASSIFICATION,
    )
    assert v2["version"] == 2 and v2["hash"] != v1["hash"] and not v2["approved"]
    with pytest.raises(Forbidden, match="version 2 is not approved by advertiser, publisher"):
        start_job(tp.room, tp.advertiser, v2["id"])
    assert start_job(tp.room, tp.advertiser, v1["id"])["state"] == "queued"


def test_a_template_altered_in_the_database_cannot_run(tp):
    template = _approve_all(tp, tp.template)
    with tp.room.db.engine.begin() as con:
        con.execute(
            text("UPDATE templates SET sql = replace(sql, 'LEFT JOIN', 'JOIN') WHERE id = :i"), {"i": template["id"]}
        )
    with pytest.raises(Conflict, match="was altered after it was created"):
        start_job(tp.room, tp.advertiser, template["id"])


def test_running_needs_the_run_ability_and_a_permitted_receiver(tp):
    template = _approve_all(tp, tp.template)
    with pytest.raises(Forbidden, match="'publisher' may not run templates"):
        start_job(tp.room, tp.publisher, template["id"])
    job = start_job(tp.room, tp.analyst, template["id"])  # analyst may run...
    for actor in (tp.analyst, tp.publisher):  # ...but neither it nor the publisher may receive
        with pytest.raises(Forbidden, match=f"'{actor.name}' may not receive the results of job {job['id']}"):
            result_path(tp.room, actor, job["id"])
    with pytest.raises(Conflict, match=f"job {job['id']} released no synthetic data"):
        result_path(tp.room, tp.advertiser, job["id"])


def test_no_job_when_no_member_may_receive(tmp_path):
    tp = two_party(tmp_path, users=300, approve=False)
    path = str(tmp_path / "data" / "advertiser" / "conversions.parquet")
    table = tp.room.configure_table(
        tp.advertiser,
        "conv_strict",
        "parquet",
        path,
        ["user_id", "campaign", "order_value"],
        epsilon_budget=1,
        unit_column="user_id",
        allowed_receivers=["publisher"],
    )
    collab = tp.room.create_collaboration(
        tp.advertiser, "strict", [{"name": "publisher", "can_run": False, "can_receive": False}], payer="advertiser"
    )
    tp.room.associate(tp.advertiser, collab["id"], table["id"], "conversions")
    template = tp.room.create_template(
        tp.advertiser,
        collab["id"],
        "t",
        "SELECT c.campaign, c.order_value FROM conversions c",
        epsilon=1,
        classification={
            "target": "campaign",
            "columns": [{"name": "campaign", "type": "categorical"}, {"name": "order_value", "type": "numerical"}],
        },
    )
    tp.room.approve_template(tp.advertiser, template["id"], template["hash"])
    members = tp.room.get_collaboration(tp.advertiser, collab["id"])["members"]
    assert {m["name"] for m in members} == {"advertiser", "publisher"}
    with pytest.raises(Forbidden, match="may not run templates"):  # the creator got no abilities
        start_job(tp.room, tp.advertiser, template["id"])


def test_budget_is_enforced_with_the_remaining_budget_named(tmp_path):
    tp = two_party(tmp_path, users=300, budget=2.5)
    start_job(tp.room, tp.advertiser, tp.template["id"])
    start_job(tp.room, tp.advertiser, tp.template["id"])
    with pytest.raises(BudgetExhausted, match=r"table 'audience' has epsilon 0.5 left of 2.5; this job needs 1"):
        start_job(tp.room, tp.advertiser, tp.template["id"])
    assert tp.room.get_table(tp.publisher, tp.audience)["epsilon_spent"] == pytest.approx(2.0)
    assert tp.room.get_table(tp.advertiser, tp.conversions)["epsilon_spent"] == pytest.approx(2.0)
    log = audit_log(tp.room, tp.publisher, tp.collab)
    assert [e["action"] for e in log["entries"]].count("job.started") == 2
    assert log["entries"][-1]["action"] == "job.refused" and "0.5 left" in log["entries"][-1]["details"]["reason"]
    assert log["verified"]


def test_a_failure_after_the_template_read_rows_is_charged_and_members_see_only_its_category(tmp_path, caplog):
    tp = two_party(tmp_path, users=300, budget=5)

    def fails_early(frame, schema, **kw):  # before the synthesizer measured anything: still charged
        kw["progress"]("splitting", "holding out")
        raise InputError("column 'age' is broken at value '57'")

    def fails_after_measuring(frame, schema, **kw):
        kw["progress"]("measuring", "learning the domains")
        raise RuntimeError("out of memory in /srv/room/pid 4242")

    early = start_job(tp.room, tp.advertiser, tp.template["id"])
    with caplog.at_level("WARNING", logger="synthroom.jobs"):
        done = run_job(tp.room, early["id"], synthesize=fails_early)
    assert done["state"] == "failed" and not done["budget_released"]
    assert "column 'age' is broken at value '57'" in caplog.text  # the operator's log has the detail
    for who in (tp.publisher, tp.advertiser, tp.analyst):  # owners included: the detail may quote their data
        seen = get_job(tp.room, who, early["id"])
        assert "detail" not in seen and "'57'" not in json.dumps(seen)
        assert (seen["category"], seen["reason"]) == ("template_error", "the template failed while running")
    late = start_job(tp.room, tp.advertiser, tp.template["id"])
    done = run_job(tp.room, late["id"], synthesize=fails_after_measuring)
    assert done["state"] == "failed" and not done["budget_released"]
    assert (done["category"], done["reason"]) == ("internal_error", "an internal error")
    assert "4242" not in json.dumps(get_job(tp.room, tp.advertiser, late["id"]))
    assert tp.room.get_table(tp.publisher, tp.audience)["epsilon_spent"] == pytest.approx(2.0)
    assert "rows_real" not in get_job(tp.room, tp.publisher, late["id"])  # an exact join size is not DP
    with tp.room.transaction() as s:  # the operator's record: one row per audience user, and the detail
        assert s.get(Job, late["id"]).rows_real == 300
        assert s.get(Job, late["id"]).detail == "RuntimeError: out of memory in /srv/room/pid 4242"
    entries = audit_log(tp.room, tp.advertiser, tp.collab)["entries"]
    assert [e["action"] for e in entries[-6:]] == ["job.started", "job.running", "job.failed"] * 2
    details = json.dumps([e["details"] for e in entries])
    assert "4242" not in details and "'57'" not in details


def test_one_to_many_join_is_capped_and_the_synthesizer_accounts_for_the_cap(tmp_path):
    import pandas as pd

    tp = two_party(tmp_path, users=400, budget=5)
    pub_path = str(tmp_path / "data" / "publisher" / "audience.csv")
    adv_path = str(tmp_path / "data" / "advertiser" / "conversions.parquet")
    aud = tp.room.configure_table(
        tp.publisher,
        "aud2",
        "csv",
        pub_path,
        ["user_id", "age", "segment"],
        epsilon_budget=5,
        unit_column="user_id",
        unit_cap=3,
    )
    conv = tp.room.configure_table(
        tp.advertiser,
        "conv2",
        "parquet",
        adv_path,
        ["user_id", "campaign", "order_value"],
        epsilon_budget=5,
        unit_column="user_id",
        unit_cap=2,
    )
    collab = tp.room.create_collaboration(
        tp.advertiser,
        "purchases",
        [{"name": "publisher"}, {"name": "advertiser", "can_run": True, "can_receive": True}],
        payer="advertiser",
    )
    tp.room.accept_invitation(tp.publisher, collab["id"])
    tp.room.associate(tp.publisher, collab["id"], aud["id"], "audience")
    tp.room.associate(tp.advertiser, collab["id"], conv["id"], "conversions")
    template = tp.room.create_template(
        tp.advertiser,
        collab["id"],
        "orders",
        "SELECT a.age, a.segment, c.order_value, c.campaign FROM audience a JOIN conversions c ON a.user_id = c.user_id",
        epsilon=2,
        classification={
            "target": "campaign",
            "columns": [
                {"name": "age", "type": "numerical"},
                {"name": "segment", "type": "categorical"},
                {"name": "order_value", "type": "numerical"},
                {"name": "campaign", "type": "categorical"},
            ],
        },
    )
    for actor in (tp.publisher, tp.advertiser):
        template = tp.room.approve_template(actor, template["id"], template["hash"])
    seen = {}

    def records(frame, schema, **kw):
        seen.update(rows=len(frame), epsilon=kw["epsilon"], delta=kw["delta"], unit_cap=kw["unit_cap"])
        kw["progress"]("measuring", "learning the domains")
        raise RuntimeError("stop here")

    job = start_job(tp.room, tp.advertiser, template["id"])
    assert job["unit_cap"] == 2  # the smaller cap of the two tables
    done = run_job(tp.room, job["id"], synthesize=records)
    audience = pd.read_csv(pub_path)
    per_user = pd.read_parquet(adv_path).user_id.value_counts()
    expected = int(per_user[per_user.index.isin(audience.user_id)].clip(upper=2).sum())
    assert per_user.max() > 2 and seen["rows"] == expected  # at most 2 joined rows per user reached the synthesizer
    # the template's epsilon per person with up to 2 rows: every mechanism scales its sensitivity and
    # threshold by the cap itself (docs/privacy.md, "Group privacy"), not a budget rescaled from outside
    assert (seen["epsilon"], seen["unit_cap"]) == (2.0, 2)
    assert done["synth_epsilon"] == pytest.approx(seen["epsilon"]) and done["epsilon"] == 2.0
    for table_id, owner in ((aud["id"], tp.publisher), (conv["id"], tp.advertiser)):  # each table is charged 2
        assert tp.room.get_table(owner, table_id)["epsilon_spent"] == pytest.approx(2.0)


def test_owners_can_withdraw_and_queued_jobs_then_do_not_run(tmp_path):
    tp = two_party(tmp_path, users=300, budget=5)
    queued = start_job(tp.room, tp.advertiser, tp.template["id"])
    view = tp.room.revoke_approval(tp.publisher, tp.template["id"])
    assert not view["approved"] and view["approved_by"] == ["advertiser"]
    with pytest.raises(Forbidden, match="is not approved by publisher"):
        start_job(tp.room, tp.advertiser, tp.template["id"])

    def must_not_run(*_a, **_k):
        raise AssertionError("a withdrawn job ran")

    done = run_job(tp.room, queued["id"], synthesize=must_not_run)
    assert done["state"] == "failed" and done["budget_released"]  # it never read a row: refunded
    assert (done["category"], done["reason"]) == (
        "withdrawn",
        "an owner withdrew an approval or a table before the job ran",
    )
    with tp.room.transaction() as s:  # which one: the operator's record (the audit log shows the revocation)
        assert (
            s.get(Job, queued["id"]).detail
            == "withdrawn before it ran: publisher revoked the approval of template 'converters'"
        )
    assert tp.room.get_table(tp.publisher, tp.audience)["epsilon_spent"] == pytest.approx(0.0)
    with pytest.raises(NotFound, match="'publisher' has not approved template 'converters' version 1"):
        tp.room.revoke_approval(tp.publisher, tp.template["id"])

    tp.room.approve_template(tp.publisher, tp.template["id"], tp.template["hash"])
    queued = start_job(tp.room, tp.advertiser, tp.template["id"])
    with pytest.raises(Forbidden, match="only the owner of table 'audience' can take it out"):
        tp.room.dissociate(tp.advertiser, tp.collab, "audience")
    tp.room.dissociate(tp.publisher, tp.collab, "audience")
    done = run_job(tp.room, queued["id"], synthesize=must_not_run)
    assert done["category"] == "withdrawn" and done["budget_released"]
    with tp.room.transaction() as s:
        assert s.get(Job, queued["id"]).detail == (
            "withdrawn before it ran: table 'audience' is no longer associated "
            "as it was when template 'converters' was approved"
        )
    with pytest.raises(Conflict, match="table 'audience' is no longer associated"):
        start_job(tp.room, tp.advertiser, tp.template["id"])
    actions = [e["action"] for e in audit_log(tp.room, tp.advertiser, tp.collab)["entries"]]
    assert "template.revoked" in actions and "table.dissociated" in actions
