"""The audit log: append-only and tamper-evident.

Each entry's hash covers its scope, sequence number, time, actor, action, details and the
previous entry's hash, so editing, removing or reordering any entry breaks every later link.
:func:`verify_chain` recomputes the chain. (Someone who rewrites the whole chain after an edit
is caught by comparing the head hash with one a member kept: ``head`` is in every listing.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditEntry, AuditHead, utcnow

GENESIS = "0" * 64
ROOM_SCOPE = "room"


def collaboration_scope(collaboration_id: int) -> str:
    return f"collaboration:{collaboration_id}"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(scope: str, seq: int, at: str, actor: str, action: str, details: str, prev_hash: str) -> str:
    payload = _canonical([scope, seq, at, actor, action, details, prev_hash])
    return hashlib.sha256(payload.encode()).hexdigest()


def append(session: Session, scope: str, actor: str, action: str, details: dict[str, Any] | None = None) -> AuditEntry:
    """Add the next entry of ``scope``'s chain inside the caller's transaction.

    The chain's head row is read ``FOR UPDATE``: concurrent appenders to one chain wait for each
    other on databases with row locks (PostgreSQL); SQLite's IMMEDIATE transactions already
    serialise every writer."""
    head = session.get(AuditHead, scope, with_for_update=True)
    if head is None:
        head = AuditHead(scope=scope, seq=0, entry_hash=GENESIS)
        session.add(head)
    seq, prev = head.seq + 1, head.entry_hash
    at = utcnow().isoformat(timespec="microseconds")
    text = _canonical(details or {})
    entry = AuditEntry(scope=scope, seq=seq, at=at, actor=actor, action=action, details=text, prev_hash=prev,
                       entry_hash=entry_hash(scope, seq, at, actor, action, text, prev))
    head.seq, head.entry_hash = seq, entry.entry_hash
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    head: str
    problem: str | None = None  # the first broken link, in words


def verify_chain(entries: Iterable[AuditEntry]) -> ChainCheck:
    """Recompute every hash and link of one scope's entries (in sequence order)."""
    prev, count = GENESIS, 0
    for expected_seq, e in enumerate(sorted(entries, key=lambda e: e.seq), start=1):
        count += 1
        if e.seq != expected_seq:
            return ChainCheck(False, count, prev, f"entry {expected_seq} is missing (found {e.seq})")
        if e.prev_hash != prev:
            return ChainCheck(False, count, prev, f"entry {e.seq} does not link to entry {e.seq - 1}")
        if entry_hash(e.scope, e.seq, e.at, e.actor, e.action, e.details, e.prev_hash) != e.entry_hash:
            return ChainCheck(False, count, prev, f"entry {e.seq} ({e.action}) was altered: its hash does not match")
        prev = e.entry_hash
    return ChainCheck(True, count, prev)


def verify_scope(session: Session, scope: str, entries: list[AuditEntry]) -> ChainCheck:
    """:func:`verify_chain`, and the chain must end where its head row says (removing the last
    entries leaves a valid but shorter chain; the head row catches it)."""
    check = verify_chain(entries)
    head = session.get(AuditHead, scope)
    if check.ok and head is not None and (head.seq != check.entries or head.entry_hash != check.head):
        return ChainCheck(False, check.entries, check.head,
                          f"the chain ends at entry {check.entries} but its head records entry {head.seq}")
    return check


def read_chain(session: Session, scope: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.scope == scope).order_by(AuditEntry.seq)))


def entry_dict(e: AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "details": json.loads(e.details),
            "prev_hash": e.prev_hash, "hash": e.entry_hash}
