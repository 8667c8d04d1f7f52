"""The audit chain: one entry per action, and any edit, removal or reordering is detected."""

from roomkit import two_party
from sqlalchemy import text

from synthroom.room import audit_log
from synthroom.room.audit import ROOM_SCOPE, read_chain, verify_chain


def test_actions_are_logged_and_an_edited_entry_is_detected(tmp_path):
    tp = two_party(tmp_path, users=200)
    log = audit_log(tp.room, tp.publisher, tp.collab)
    assert log["verified"] and log["problem"] is None
    assert [e["action"] for e in log["entries"]] == [
        "collaboration.created", "table.associated", "table.associated", "template.created",
        "template.approved", "template.approved"]
    assert log["entries"][1]["actor"] == "publisher" and log["entries"][4]["details"]["hash"] == tp.template["hash"]
    scope = f"collaboration:{tp.collab}"
    with tp.room.db.engine.begin() as con:  # someone with database access rewrites history
        con.execute(text("UPDATE audit SET actor = 'analyst' WHERE scope = :s AND seq = 5"), {"s": scope})
    log = audit_log(tp.room, tp.publisher, tp.collab)
    assert not log["verified"]
    assert log["problem"] == "entry 5 (template.approved) was altered: its hash does not match"


def test_a_removed_last_entry_is_detected(tmp_path):
    tp = two_party(tmp_path, users=200)
    with tp.room.db.engine.begin() as con:
        con.execute(text("DELETE FROM audit WHERE scope = :s AND seq = 6"), {"s": f"collaboration:{tp.collab}"})
    log = audit_log(tp.room, tp.publisher, tp.collab)
    assert not log["verified"] and log["problem"] == "the chain ends at entry 5 but its head records entry 6"


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
