"""The audit chain: one entry per action; any edit, removal or reordering is detected, also a
whole chain rewritten with recomputed hashes (entries carry the server's HMAC); signed heads."""

import stat

import pytest
from roomkit import ADMIN, two_party
from sqlalchemy import text

from synthroom.room import Room, audit_log
from synthroom.room.audit import GENESIS, ROOM_SCOPE, entry_hash, read_chain, verify_chain
from synthroom.room.models import AuditHead


def test_actions_are_logged_and_an_edited_entry_is_detected(tmp_path):
    tp = two_party(tmp_path, users=200)
    log = audit_log(tp.room, tp.publisher, tp.collab)
    assert log["verified"] and log["problem"] is None
    assert [e["action"] for e in log["entries"]] == [
        "collaboration.created",
        "membership.accepted",
        "membership.accepted",
        "table.associated",
        "table.associated",
        "template.created",
        "template.approved",
        "template.approved",
    ]
    assert [e["actor"] for e in log["entries"][1:4]] == ["publisher", "analyst", "publisher"]
    assert log["entries"][6]["details"]["hash"] == tp.template["hash"]
    scope = f"collaboration:{tp.collab}"
    with tp.room.db.engine.begin() as con:  # someone with database access rewrites history
        con.execute(text("UPDATE audit SET actor = 'analyst' WHERE scope = :s AND seq = 7"), {"s": scope})
    log = audit_log(tp.room, tp.publisher, tp.collab)
    assert not log["verified"]
    assert log["problem"] == "entry 7 (template.approved) was altered: its hash does not match"


def test_a_removed_last_entry_is_detected(tmp_path):
    tp = two_party(tmp_path, users=200)
    with tp.room.db.engine.begin() as con:
        con.execute(text("DELETE FROM audit WHERE scope = :s AND seq = 8"), {"s": f"collaboration:{tp.collab}"})
    log = audit_log(tp.room, tp.publisher, tp.collab)
    assert not log["verified"] and log["problem"] == "the chain ends at entry 7 but its head records entry 8"


def test_removed_and_relinked_entries_are_detected(tmp_path):
    tp = two_party(tmp_path, users=200)
    with tp.room.transaction() as s:
        chain = read_chain(s, ROOM_SCOPE)
        assert verify_chain(chain).ok and verify_chain(chain).entries == 5  # 3 members, 2 tables
        assert verify_chain(chain[:2] + chain[3:]).problem == "entry 3 is missing (found 4)"
        forged = chain[-1]
        forged.prev_hash = chain[0].entry_hash
        assert verify_chain(chain).problem == "entry 5 does not link to entry 4"
        s.rollback()


def _rewrite_from(tp, seq: int, **changes) -> None:
    """What someone who can write the database but not read the audit key can do: edit entry
    ``seq`` and recompute every SHA-256 link after it, and the head row."""
    scope = f"collaboration:{tp.collab}"
    with tp.room.transaction() as s:
        chain = read_chain(s, scope)
        prev = chain[seq - 2].entry_hash if seq > 1 else GENESIS
        for e in chain[seq - 1 :]:
            if e.seq == seq:
                for field, value in changes.items():
                    setattr(e, field, value)
            e.prev_hash = prev
            e.entry_hash = prev = entry_hash(e.scope, e.seq, e.at, e.actor, e.action, e.details, e.prev_hash)
        head = s.get(AuditHead, scope)
        head.entry_hash = prev


def test_a_whole_chain_rewritten_with_recomputed_hashes_is_detected(tmp_path):
    tp = two_party(tmp_path, users=200)
    with tp.room.transaction() as s:  # a member's own check, without the key, is fooled...
        before = verify_chain(read_chain(s, f"collaboration:{tp.collab}"))
    _rewrite_from(tp, 7, actor="analyst")
    with tp.room.transaction() as s:
        forged = read_chain(s, f"collaboration:{tp.collab}")
        assert verify_chain(forged).ok and verify_chain(forged).head != before.head
    log = audit_log(tp.room, tp.publisher, tp.collab)  # ...the server's, with the key, is not
    assert not log["verified"]
    assert log["problem"] == (
        "entry 7 (template.approved) was not written by this server: its MAC does not match (the chain was rewritten)"
    )


def test_the_audit_key_lives_outside_the_database_with_mode_0600(tmp_path):
    tp = two_party(tmp_path, users=200)
    key_file = tmp_path / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text()) >= 43
    with tp.room.db.engine.connect() as con:
        for table in ("audit", "audit_heads"):
            rows = con.execute(text(f"SELECT * FROM {table}")).all()
            assert rows and all(key_file.read_text() not in str(row) for row in rows)
    reopened = Room(tp.room.db.url, tmp_path / "artifacts", admin_key=ADMIN)  # a restart reads the same key
    assert audit_log(reopened, tp.publisher, tp.collab)["verified"]
    stranger = Room(tp.room.db.url, tmp_path / "artifacts", admin_key=ADMIN, audit_key="another key")
    assert audit_log(stranger, tp.publisher, tp.collab)["problem"].endswith(
        "its MAC does not match (the chain was rewritten)"
    )


def test_an_exported_head_is_proved_while_the_chain_grows(tmp_path):
    tp = two_party(tmp_path, users=200)
    head = tp.room.audit_head(tp.analyst, tp.collab)
    assert (head["scope"], head["seq"]) == (f"collaboration:{tp.collab}", 8)
    assert head["hash"] == audit_log(tp.room, tp.analyst, tp.collab)["head"] and len(head["signature"]) == 64
    tp.room.revoke_approval(tp.publisher, tp.template["id"])  # the chain grows by one entry
    proof = tp.room.prove_audit_head(tp.analyst, tp.collab, head)
    assert proof["extends"] and proof["problem"] is None and proof["head"]["seq"] == 9
    assert tp.room.prove_audit_head(tp.analyst, tp.collab, proof["head"])["extends"]


@pytest.mark.parametrize(
    "forgery, problem",
    [
        ({"seq": 7}, "the exported head's signature does not match: this server did not sign it, or it was altered"),
        (
            {"hash": "0" * 64},
            "the exported head's signature does not match: this server did not sign it, or it was altered",
        ),
        ({"scope": "collaboration:99"}, "the exported head is for 'collaboration:99', not 'collaboration:1'"),
        ({"seq": "6"}, "the exported head needs scope, seq (a whole number), hash and signature"),
    ],
)
def test_a_forged_head_is_refuted(tmp_path, forgery, problem):
    tp = two_party(tmp_path, users=200)
    head = {**tp.room.audit_head(tp.analyst, tp.collab), **forgery}
    proof = tp.room.prove_audit_head(tp.analyst, tp.collab, head)
    assert not proof["extends"] and proof["problem"] == problem


def test_an_exported_head_refutes_a_rewritten_or_shortened_chain(tmp_path):
    tp = two_party(tmp_path, users=200)
    head = tp.room.audit_head(tp.analyst, tp.collab)
    scope = f"collaboration:{tp.collab}"
    with tp.room.db.engine.begin() as con:  # cut the last entry and move the head row back
        last = con.execute(text("SELECT prev_hash FROM audit WHERE scope = :s AND seq = 8"), {"s": scope}).scalar()
        con.execute(text("DELETE FROM audit WHERE scope = :s AND seq = 8"), {"s": scope})
        con.execute(text("UPDATE audit_heads SET seq = 7, entry_hash = :h WHERE scope = :s"), {"h": last, "s": scope})
    assert audit_log(tp.room, tp.publisher, tp.collab)["verified"]  # a valid shorter chain on its own...
    proof = tp.room.prove_audit_head(tp.analyst, tp.collab, head)  # ...but not the one the member saw
    assert not proof["extends"]
    assert proof["problem"] == "the chain now ends at entry 7, before the exported head's entry 8: entries were removed"


def test_an_exported_head_refutes_a_chain_rewritten_below_it(tmp_path):
    tp = two_party(tmp_path, users=200)
    head = tp.room.audit_head(tp.analyst, tp.collab)
    _rewrite_from(tp, 2, actor="analyst")
    proof = tp.room.prove_audit_head(tp.analyst, tp.collab, head)
    assert not proof["extends"] and proof["problem"].startswith("the current chain does not verify: entry 2 ")
