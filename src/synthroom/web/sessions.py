"""The console's sign-in sessions: kept in the server's memory, never in the browser.

A member signs in once with its API key; the server checks it with the same
:meth:`~synthroom.room.Room.authenticate` the API uses, keeps only the member (id and name; the
operator's session keeps the admin key it signed in with, which the server holds anyway) and hands the
browser a random session token in an HttpOnly, SameSite=Strict cookie. The key itself is never stored,
never put in a URL and never written back into a page. The server keeps only a SHA-256 of each token, so a memory
dump does not hand out live sessions. Each session has its own CSRF token that every POST must
carry (:meth:`Session.check_csrf`). Sessions end on sign-out, after ``idle`` seconds without a
request and ``lifetime`` seconds after sign-in, whichever comes first; a restart of the server
signs everyone out. At most ``per_member`` sessions per member (the operator counts as one) are
kept, its oldest dropped beyond, so that a member (an adversary of the others) signing in again
and again cannot push other members' sessions out; at most ``capacity`` in all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from ..room import Actor, Forbidden

COOKIE = "synthroom_session"
IDLE_SECONDS = 30 * 60
LIFETIME_SECONDS = 12 * 3600
CAPACITY = 10_000
PER_MEMBER = 20  # one member signing in again and again evicts its own sessions, never another's


class SignedOut(Exception):
    """No valid session: the browser is sent to the sign-in page."""


@dataclass
class Session:
    """One signed-in browser: the member (None for the operator, who keeps the admin key it
    signed in with: the server holds that key anyway), its CSRF token, its flash messages (shown
    once on the next page) and when it was created and last used."""

    actor: Actor | None
    csrf: str
    created: float
    seen: float
    admin_key: str | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def operator(self) -> bool:
        return self.actor is None

    def check_csrf(self, token: str | None) -> None:
        """The request carries this session's CSRF token, else Forbidden (nothing is done)."""
        if not token or not hmac.compare_digest(token.encode(), self.csrf.encode()):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")

    def flash(self, message: str, kind: str = "ok") -> None:
        self.flashes.append((kind, message))

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        return taken


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    """Sessions by token digest, with idle and absolute expiry (``clock`` for tests)."""

    def __init__(
        self,
        *,
        idle: float = IDLE_SECONDS,
        lifetime: float = LIFETIME_SECONDS,
        capacity: int = CAPACITY,
        per_member: int = PER_MEMBER,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.idle, self.lifetime, self.capacity, self.clock = idle, lifetime, capacity, clock
        self.per_member = per_member
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, actor: Actor | None, *, admin_key: str | None = None) -> tuple[str, Session]:
        """A new session for ``actor`` (None: the operator, with ``admin_key``); returns the
        cookie's token."""
        token, now = secrets.token_urlsafe(32), self.clock()
        session = Session(actor, secrets.token_urlsafe(32), now, now, admin_key=admin_key)
        with self._lock:
            self._expire(now)
            mine = [k for k, s in self._sessions.items() if s.actor == actor]
            for key in mine[: max(0, len(mine) - self.per_member + 1)]:
                del self._sessions[key]
            self._sessions[_digest(token)] = session
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)
        return token, session

    def get(self, token: str | None) -> Session:
        """The live session of ``token`` (its idle clock restarts), else :class:`SignedOut`."""
        if not token:
            raise SignedOut("not signed in")
        now, key = self.clock(), _digest(token)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                raise SignedOut("not signed in")
            if now - session.seen > self.idle or now - session.created > self.lifetime:
                del self._sessions[key]
                raise SignedOut("the session expired: sign in again")
            session.seen = now
            return session

    def _expire(self, now: float) -> None:
        """Forget the sessions past their idle time or lifetime (under the lock)."""
        late = [k for k, s in self._sessions.items() if now - s.seen > self.idle or now - s.created > self.lifetime]
        for key in late:
            del self._sessions[key]

    def drop(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def __len__(self) -> int:
        return len(self._sessions)
