"""The room database's migrations (Alembic): the newest revision is exactly the models' schema,
and a database made by the release before migrations (tests/fixtures/room-v0.db, built by
make_room_v0.py with that release's code) upgrades with its collaborations, ledgers and audit
chain intact. On SQLite, and on PostgreSQL when SYNTHROOM_TEST_POSTGRES_URL names a server (the
fixture's rows are then copied into the previous release's schema there first)."""

import json
import shutil
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from roomkit import database_url
from sqlalchemy import MetaData, create_engine, func, select, text

from synthroom.room import Room, jobs
from synthroom.room.migrations import BASELINE, config, head, revision_of
from synthroom.room.models import Base, ConfiguredTable, LedgerEntry

FIXTURES = Path(__file__).parent / "fixtures"
FACTS = json.loads((FIXTURES / "room-v0.json").read_text())
AUDIT_KEY = "room-v0-fixture-audit-key"  # make_room_v0.AUDIT_KEY


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return revision_of(connection)
    finally:
        engine.dispose()


def test_the_newest_migration_is_exactly_the_models_schema(tmp_path):
    # a change to room/models.py without its migration fails here: python -m synthroom.room.migrations "what"
    engine = create_engine(database_url(tmp_path))
    try:
        with engine.begin() as connection:
            command.upgrade(config(connection), "head")  # every migration from an empty database
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
            )
    finally:
        engine.dispose()
    assert differences == []


def test_a_new_database_gets_the_tables_at_the_newest_revision_and_reopens_as_it_is(tmp_path):
    url = database_url(tmp_path)
    room = Room(url, tmp_path / "artifacts", admin_key="k", audit_key="a")
    room.create_member("k", "m", [])
    room.db.dispose()
    assert _revision(url) == head()
    Room(url, tmp_path / "artifacts", admin_key="k", audit_key="a").db.dispose()
    assert _revision(url) == head()


def _previous_release_database(folder: Path) -> str:
    """The fixture as a database of the previous release: the SQLite file itself, or its rows
    copied into that release's schema on the PostgreSQL server under test."""
    url = database_url(folder)
    if url.startswith("sqlite"):
        shutil.copyfile(FIXTURES / "room-v0.db", folder / "room.db")
        return url
    old = create_engine(f"sqlite:///{FIXTURES / 'room-v0.db'}")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(config(connection), BASELINE)  # the schema the previous release's create_all made
            connection.execute(text("DROP TABLE alembic_version"))  # which that release never had
            schema = MetaData()
            schema.reflect(connection)  # the tables as that release had them (not as the models are now)
            with old.connect() as source:
                for table in schema.sorted_tables:
                    rows = [dict(row._mapping) for row in source.execute(select(table))]
                    if rows:
                        connection.execute(table.insert(), rows)
                    if "id" in table.c:
                        connection.execute(
                            text(
                                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                f"(SELECT COALESCE(MAX(id), 1) FROM {table.name}))"
                            )
                        )
    finally:
        engine.dispose()
        old.dispose()
    return url


def test_a_database_of_the_previous_release_upgrades_with_its_collaborations_ledgers_and_audit_chain(tmp_path):
    url = _previous_release_database(tmp_path)
    assert _revision(url) is None  # made with create_all: never stamped
    room = Room(url, tmp_path / "artifacts", admin_key="k", audit_key=AUDIT_KEY)
    assert _revision(url) == head()
    advertiser = room.authenticate(FACTS["keys"]["advertiser"])
    cid = FACTS["collaboration"]
    assert [c["id"] for c in room.list_collaborations(advertiser)] == [cid]
    assert {m["name"] for m in room.get_collaboration(advertiser, cid)["members"]} == {
        "publisher",
        "advertiser",
        "analyst",
    }
    log = jobs.audit_log(room, advertiser, cid, limit=1000)
    assert log["verified"] is True and log["problem"] is None and len(log["entries"]) == FACTS["audit_entries"]
    assert room.prove_audit_head(advertiser, cid, FACTS["audit_head"])["extends"] is True
    assert {j: jobs.get_job(room, advertiser, int(j))["state"] for j in FACTS["jobs"]} == FACTS["jobs"]
    with room.read() as s:
        spent = {t.name: [t.epsilon_spent, t.delta_spent] for t in s.scalars(select(ConfiguredTable))}
        ledger = [
            [e.table_id, e.job_id, e.kind, e.epsilon, e.delta]
            for e in s.scalars(select(LedgerEntry).order_by(LedgerEntry.id))
        ]
        by_table = dict(
            s.execute(select(LedgerEntry.table_id, func.sum(LedgerEntry.epsilon)).group_by(LedgerEntry.table_id)).all()
        )
    assert spent == FACTS["tables"] and ledger == FACTS["ledger"]
    with room.read() as s:
        for table in s.scalars(select(ConfiguredTable)):
            assert table.epsilon_spent == pytest.approx(by_table[table.id], abs=1e-12)  # the ledger balances
    # the upgraded room keeps writing its chain: a new collaboration, and the old chain still verifies
    room.create_collaboration(advertiser, "after the upgrade", [], payer="advertiser")
    assert jobs.audit_log(room, advertiser, cid, limit=1000)["verified"] is True
    room.db.dispose()
    reopened = Room(url, tmp_path / "artifacts", admin_key="k", audit_key=AUDIT_KEY)  # at head: a no-op
    assert len(reopened.list_collaborations(advertiser)) == 2
    reopened.db.dispose()
