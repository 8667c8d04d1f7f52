"""The room database's schema migrations (Alembic), shipped inside the package so that a server
installed with pip upgrades its own database.

:func:`upgrade` runs whenever a :class:`~synthroom.room.Room` opens its database (``synthroom
serve``, ``synthroom worker``, or ``synthroom db-upgrade`` alone), in one transaction that holds
the database's write lock (SQLite) or an advisory lock (PostgreSQL), so several processes
starting at once upgrade it once:

* an empty database gets the current tables and is stamped with the newest revision;
* a database made by the release before migrations (tables, no ``alembic_version``) is stamped
  with :data:`BASELINE`, the schema that release made, then upgraded;
* any other is upgraded from its revision to the newest.

A change to :mod:`synthroom.room.models` needs a migration (a test compares the two)::

    python -m synthroom.room.migrations "what changed"   # writes versions/NNNN_what_changed.py

then read and edit the file it wrote (autogenerate misses renames and data moves).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from ..models import Base

HERE = Path(__file__).resolve().parent
BASELINE = "0001"  # the schema of the release before migrations (main at 9d4e9b6)
_PG_LOCK = 0x5359_4E54_4852_4F4D  # "SYNTHROOM": the advisory lock upgrades hold on PostgreSQL


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for these migrations, bound to ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def head() -> str:
    """The newest revision."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None
    return revision


def revision_of(connection: Connection) -> str | None:
    """The database's revision (None: never stamped)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the database at ``engine`` to the newest revision (see the module's text); returns it."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        current = revision_of(connection)
        if current == head():
            return current
        if current is None and not set(Base.metadata.tables) & set(inspect(connection).get_table_names()):
            Base.metadata.create_all(connection)
            command.stamp(config(connection), "head")
            return head()
        if current is None:
            command.stamp(config(connection), BASELINE)
        command.upgrade(config(connection), "head")
    return head()
