"""The audit log: append-only, tamper-evident, and keyed with a secret outside the database.

Each entry's hash covers its scope, sequence number, time, actor, action, details and the
previous entry's hash, so editing, removing or reordering any entry breaks every later link;
anyone can recompute these SHA-256 links from a listing. Each entry also carries the server's
HMAC-SHA256 of its hash under the audit key (a file in the data folder or an environment
variable, never the database): whoever can write the database but not read the key cannot
rewrite the chain with recomputed hashes, because the MACs would not match.

Removing the last entries (and the head row with them) leaves a valid, shorter chain; that is
what signed heads are for: a member exports :func:`signed_head` (scope, seq, hash and the
server's HMAC over them) and later asks :func:`prove_extends` whether the current chain still
holds that entry at that position.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Iterable
from weakref import WeakKeyDictionary

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .models import AuditEntry, AuditHead, utcnow

GENESIS = "0" * 64
ROOM_SCOPE = "room"
_KEYS: "WeakKeyDictionary[Engine, bytes]" = WeakKeyDictionary()


def bind_key(engine: Engine, key: str | bytes) -> None:
    """Use ``key`` for every chain written or checked through ``engine`` (the :class:`Room` binds
    its audit key once, so no caller passes the secret around)."""
    _KEYS[engine] = key.encode() if isinstance(key, str) else bytes(key)


def _key_of(session: Session) -> bytes:
    bind = session.get_bind()
    key = _KEYS.get(bind.engine)  # an Engine's .engine is itself, a Connection's its engine
    if key is None:
        raise RuntimeError("no audit key is bound to this database: open it through Room, which binds one")
    return key


def _mac(key: bytes, kind: str, payload: str) -> str:
    """HMAC-SHA256; ``kind`` separates entry MACs from head signatures."""
    return hmac.new(key, f"{kind}|{payload}".encode(), hashlib.sha256).hexdigest()


def entry_mac(key: bytes, entry_hash_: str) -> str:
    return _mac(key, "entry", entry_hash_)


def head_signature(key: bytes, scope: str, seq: int, hash_: str) -> str:
    return _mac(key, "head", _canonical([scope, seq, hash_]))


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
    digest = entry_hash(scope, seq, at, actor, action, text, prev)
    entry = AuditEntry(
        scope=scope,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        details=text,
        prev_hash=prev,
        entry_hash=digest,
        mac=entry_mac(_key_of(session), digest),
    )
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


def verify_chain(entries: Iterable[AuditEntry], key: bytes | None = None) -> ChainCheck:
    """Recompute every hash and link of one scope's entries (in sequence order), and with the
    server's ``key`` every entry's MAC (without it: what a member can check from a listing)."""
    prev, count = GENESIS, 0
    for expected_seq, e in enumerate(sorted(entries, key=lambda e: e.seq), start=1):
        count += 1
        if e.seq != expected_seq:
            return ChainCheck(False, count, prev, f"entry {expected_seq} is missing (found {e.seq})")
        if e.prev_hash != prev:
            return ChainCheck(False, count, prev, f"entry {e.seq} does not link to entry {e.seq - 1}")
        if entry_hash(e.scope, e.seq, e.at, e.actor, e.action, e.details, e.prev_hash) != e.entry_hash:
            return ChainCheck(False, count, prev, f"entry {e.seq} ({e.action}) was altered: its hash does not match")
        if key is not None and not hmac.compare_digest(entry_mac(key, e.entry_hash), e.mac or ""):
            return ChainCheck(
                False,
                count,
                prev,
                f"entry {e.seq} ({e.action}) was not written by this server: "
                "its MAC does not match (the chain was rewritten)",
            )
        prev = e.entry_hash
    return ChainCheck(True, count, prev)


def verify_scope(session: Session, scope: str, entries: list[AuditEntry]) -> ChainCheck:
    """:func:`verify_chain`, and the chain must end where its head row says (removing the last
    entries leaves a valid but shorter chain; the head row catches it)."""
    check = verify_chain(entries, _key_of(session))
    head = session.get(AuditHead, scope)
    if check.ok and head is not None and (head.seq != check.entries or head.entry_hash != check.head):
        return ChainCheck(
            False,
            check.entries,
            check.head,
            f"the chain ends at entry {check.entries} but its head records entry {head.seq}",
        )
    return check


def read_chain(session: Session, scope: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.scope == scope).order_by(AuditEntry.seq)))


def entry_dict(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "details": json.loads(e.details),
        "prev_hash": e.prev_hash,
        "hash": e.entry_hash,
    }


def signed_head(session: Session, scope: str) -> dict[str, Any]:
    """The chain's current head, signed by the server: keep it, and later ask
    :func:`prove_extends` whether the chain still holds it (catches removed last entries too)."""
    head = session.get(AuditHead, scope)
    seq, digest = (head.seq, head.entry_hash) if head is not None else (0, GENESIS)
    return {
        "scope": scope,
        "seq": seq,
        "hash": digest,
        "signature": head_signature(_key_of(session), scope, seq, digest),
    }


def prove_extends(session: Session, scope: str, head: dict[str, Any]) -> dict[str, Any]:
    """Whether the current chain of ``scope`` verifies and still holds ``head`` (a head this
    server signed) at its position: ``extends``, the first ``problem`` in words, and the current
    signed head."""
    key = _key_of(session)
    entries = read_chain(session, scope)
    current = signed_head(session, scope)
    problem = _head_problem(key, scope, head)
    if problem is None:
        check = verify_scope(session, scope, entries)
        problem = None if check.ok else f"the current chain does not verify: {check.problem}"
    if problem is None and head["seq"] > len(entries):
        problem = (
            f"the chain now ends at entry {len(entries)}, before the exported head's entry {head['seq']}: "
            "entries were removed"
        )
    if problem is None and head["seq"] > 0 and entries[head["seq"] - 1].entry_hash != head["hash"]:
        problem = f"entry {head['seq']} is not the one in the exported head: the chain was rewritten"
    return {"extends": problem is None, "problem": problem, "head": current}


def _head_problem(key: bytes, scope: str, head: dict[str, Any]) -> str | None:
    """Why ``head`` is not a head this server signed for ``scope`` (None if it is)."""
    if head.get("scope") != scope:
        return f"the exported head is for {head.get('scope')!r}, not {scope!r}"
    seq, digest, signature = head.get("seq"), head.get("hash"), head.get("signature")
    if (
        isinstance(seq, bool)
        or not isinstance(seq, int)
        or not isinstance(digest, str)
        or not isinstance(signature, str)
    ):
        return "the exported head needs scope, seq (a whole number), hash and signature"
    if not hmac.compare_digest(head_signature(key, scope, seq, digest), signature):
        return "the exported head's signature does not match: this server did not sign it, or it was altered"
    return None
