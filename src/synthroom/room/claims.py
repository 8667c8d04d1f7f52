"""Claiming queued work (jobs, model trainings) for one worker, with a lease it keeps renewing.

Any number of worker threads and processes, in any number of server processes, may share one
database. A worker takes a queued object with one conditional UPDATE (``state = 'queued'`` ->
``'running'``, with its worker id and a lease time): when two workers race for the same row the
database applies the updates one after the other and the second finds it no longer queued. On
PostgreSQL the next queued row is picked with ``SELECT ... FOR UPDATE SKIP LOCKED`` so that
workers do not even contend for it; SQLite's IMMEDIATE write transactions serialise the pick and
the claim.

While it works, the worker's :class:`Heartbeat` pushes ``lease_until`` forward. A worker that dies
(killed, machine lost) stops renewing; once its lease has expired any other worker fails the object
(:func:`expired`), never one whose worker is alive.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .models import utcnow

log = logging.getLogger("synthroom.worker")
LEASE_SECONDS = 60.0  # a running object's worker renews its lease every third of this


def new_worker_id(label: str = "worker") -> str:
    """A worker id unique across threads, processes and machines (host, pid, label, random)."""
    return f"{socket.gethostname()}:{os.getpid()}:{label}:{secrets.token_hex(4)}"


def take(s: Session, model, object_id: int | None, worker_id: str, lease: float, **values) -> int | None:
    """Claim ``object_id`` (or the oldest queued object when None) for ``worker_id`` inside the
    caller's write transaction; returns the claimed id, or None when it is not (or no longer) queued.

    ``values`` are set with the claim (e.g. ``started_at``)."""
    if object_id is None:
        pick = select(model.id).where(model.state == "queued").order_by(model.id).limit(1)
        if s.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        object_id = s.scalar(pick)
        if object_id is None:
            return None
    claimed = s.execute(
        update(model)
        .where(model.id == object_id, model.state == "queued")
        .values(state="running", worker_id=worker_id, lease_until=utcnow() + timedelta(seconds=lease), **values)
        .execution_options(synchronize_session=False)
    )
    return object_id if getattr(claimed, "rowcount", 0) == 1 else None  # an UPDATE's CursorResult


def expired(s: Session, model, now: datetime | None = None, object_id: int | None = None) -> list[int]:
    """Ids of running objects (or just ``object_id``) whose worker's lease has run out, or that
    never had one (a server from before leases), oldest first."""
    query = select(model.id).where(
        model.state == "running", or_(model.lease_until.is_(None), model.lease_until < (now or utcnow()))
    )
    if object_id is not None:
        query = query.where(model.id == object_id)
    return list(s.scalars(query.order_by(model.id)))


def still_mine(obj, worker_id: str | None) -> bool:
    """``obj`` is still running under ``worker_id``'s claim (not recovered after a lost lease)."""
    return obj.state == "running" and (worker_id is None or obj.worker_id == worker_id)


class Heartbeat:
    """``with Heartbeat(room, Job, job_id, worker_id, lease):`` renews the claim's lease every
    ``lease / 3`` seconds from a thread, each renewal a tiny write transaction of its own. If the
    object is no longer running under this worker (its lease expired and another worker recovered
    it), ``lost`` becomes true and renewing stops."""

    def __init__(self, room, model, object_id: int, worker_id: str, lease: float):
        self.room, self.model, self.object_id, self.worker_id, self.lease = room, model, object_id, worker_id, lease
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"synthroom-heartbeat-{object_id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def renew(self) -> bool:
        """Push the lease forward once; False when the claim is gone."""
        model = self.model
        with self.room.transaction() as s:
            done = s.execute(
                update(model)
                .where(model.id == self.object_id, model.state == "running", model.worker_id == self.worker_id)
                .values(lease_until=utcnow() + timedelta(seconds=self.lease))
                .execution_options(synchronize_session=False)
            )
            return done.rowcount == 1

    def _beat(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                if not self.renew():
                    self.lost = True
                    log.warning(
                        "worker %s lost its claim on %s %s", self.worker_id, self.model.__tablename__, self.object_id
                    )
                    return
            except Exception:  # noqa: BLE001 - a database hiccup: try again at the next beat
                log.exception("renewing the lease of %s %s failed", self.model.__tablename__, self.object_id)
