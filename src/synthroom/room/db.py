"""The metadata database: SQLAlchemy engine and one-transaction-per-change sessions.

SQLite (the default) runs every transaction as ``BEGIN IMMEDIATE``: writers are serialised
from the start of the transaction, so a read-then-write (the audit chain's next entry, a budget
check) cannot interleave with another writer's. WAL journaling keeps committed state on disk
when the process is killed. Any other URL (e.g. PostgreSQL) works through SQLAlchemy; budget
reservations are single conditional UPDATEs there too.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .models import Base


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the schema created; SQLite gets IMMEDIATE transactions and WAL."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised via every test
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection):  # pragma: no cover - exercised via every test
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        engine = create_engine(url, pool_pre_ping=True)
    Base.metadata.create_all(engine)
    return engine


class Database:
    """Sessions on one engine: ``with db.transaction() as s:`` commits once, or rolls back."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        session = self._factory()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
