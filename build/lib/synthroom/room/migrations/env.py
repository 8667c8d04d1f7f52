"""Alembic's environment for the clean room's database: it runs on the connection that
:func:`synthroom.room.migrations.upgrade` (or the revision helper) hands it, never on a URL of
its own. ``render_as_batch`` lets a migration alter a table on SQLite too (copy and move)."""

from alembic import context

from synthroom.room.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
