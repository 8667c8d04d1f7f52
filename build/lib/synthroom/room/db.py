"""The metadata database: SQLAlchemy engine, short write transactions and snapshot reads.

Two kinds of transaction, so that no request waits on another member's slow request:

* ``Database.transaction()`` changes state. On SQLite it runs as ``BEGIN IMMEDIATE``: writers
  are serialised from the start of the transaction, so a read-then-write (the audit chain's next
  entry, a budget check, a job claim) cannot interleave with another writer's. Write
  transactions are kept short: nothing CPU-heavy (template checks, synthesis, evaluation) runs
  inside one.
* ``Database.read()`` only looks. On SQLite it is a deferred ``BEGIN`` with ``PRAGMA
  query_only``: with WAL journaling it reads one consistent snapshot and never waits for a
  writer, and a writer never waits for it. On PostgreSQL it is ``REPEATABLE READ, READ ONLY``
  (one snapshot). A read that tries to write fails instead of silently taking the write lock.

WAL journaling also keeps committed state on disk when the process is killed. Any other URL
works through SQLAlchemy; budget reservations and job claims are single conditional UPDATEs.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


READ_OPTION = "synthroom_read"  # execution option marking a read-only (snapshot) transaction
SQLITE_BUSY_TIMEOUT = 60  # seconds a writer waits for another writer's (short) transaction


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False})

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
        if connection.get_execution_options().get(READ_OPTION):
            connection.exec_driver_sql("PRAGMA query_only=ON")
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("PRAGMA query_only=OFF")
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _server_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # pragma: no cover - exercised by the PostgreSQL runs
        if connection.get_execution_options().get(READ_OPTION) and connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    return engine


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with its schema at the newest migration (SQLite: WAL, IMMEDIATE
    writes, deferred reads); see :mod:`.migrations`."""
    from .migrations import upgrade

    engine = _sqlite_engine(url) if _is_sqlite(url) else _server_engine(url)
    upgrade(engine)
    return engine


class Database:
    """Sessions on one engine: ``with db.transaction() as s:`` commits once, or rolls back;
    ``with db.read() as s:`` reads one snapshot and holds no write lock."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql``, ...: what claims and locks may use."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction: keep it short (no CPU-heavy work inside)."""
        with self._session() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """One read-only snapshot transaction: never waits for a writer, never blocks one."""
        with self._session(read=True) as session:
            yield session

    @contextmanager
    def _session(self, read: bool = False) -> Iterator[Session]:
        session = self._factory()
        try:
            with session.begin():
                if read:  # the connection's options are set before its BEGIN (see the begin events)
                    session.connection(execution_options={READ_OPTION: True})
                yield session
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
