"""Configured tables on the cluster: Spark tables by name and cluster paths (issue 16).

Members are adversaries: a member may configure only the cluster paths and Spark tables the
operator granted *it* (``data_roots``: ``hdfs://``/``s3a://``/``file://`` prefixes and
``spark-table:db.name`` or ``db.*``). The grant tests need no Spark (the grant is checked before
anything is read); the rest run a real local Spark session (``-m spark``), with ``file://``
folders standing in for HDFS/S3 and tables of the session's catalog for the metastore.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from roomkit import ADMIN, database_url, two_party
from synthroom.demo.adtech import (
    AUDIENCE_COLUMNS,
    CONVERSIONS_COLUMNS,
    DEMO_CLASSIFICATION,
    DEMO_TEMPLATE,
    simulate_audience,
)
from synthroom.errors import InputError
from synthroom.pipeline import synthesize_with_gate
from synthroom.room import Actor, Room, inference, metering, training
from synthroom.room.errors import Forbidden
from synthroom.room.jobs import run_job, start_job
from synthroom.room.models import ConfiguredTable, Member


def _room(tmp_path, **settings) -> Room:
    return Room(database_url(tmp_path), tmp_path / "artifacts", admin_key=ADMIN, **settings)


def _member(room: Room, name: str, roots: list[str]) -> Actor:
    return Actor(room.create_member(ADMIN, name, roots)["id"], name)


def _configure(room: Room, actor: Actor, kind: str, path: str = "", table: str | None = None, **rule):
    return room.configure_table(
        actor,
        "t",
        kind,
        path,
        rule.pop("allowed_columns", ["a"]),
        epsilon_budget=1.0,
        source_table=table,
        **rule,
    )


# -- grants (no Spark) ---------------------------------------------------------------------------
def test_grants_are_stored_normalised(tmp_path):
    room = _room(tmp_path)
    created = room.create_member(
        ADMIN,
        "alice",
        ["S3A://Bucket-1/alice/", "hdfs://NameNode:8020/data/alice", "spark-table:Sales.*", "spark-table:crm.people"],
    )
    assert created["data_roots"] == [
        "s3a://bucket-1/alice",
        "hdfs://namenode:8020/data/alice",
        "spark-table:sales.*",
        "spark-table:crm.people",
    ]


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("s3a://b/alice/*", "every folder name must be plain"),
        ("s3a://b/{alice,bob}", "every folder name must be plain"),
        ("hdfs://nn/data/../bob", "every folder name must be plain"),
        ("s3a://user:pw@b/alice", "must not hold user info"),
        ("s3a://b/alice?x=1", "must not hold user info"),
        ("s3a://b/%61lice", "must not hold user info"),
        ("ftp://b/alice", "the scheme must be one of"),
        ("file://host/data", "a file:// URI has no host"),
        ("s3a://b//alice", "every folder name must be plain"),
        ("file:///", "every folder name must be plain"),
        ("spark-table:global_temp.*", "holds temporary views"),
        ("spark-table:spark_catalog.db.t", "must be database.table"),
        ("spark-table:`db`.t", "must be database.table"),
        ("spark-table:t", "must be database.table"),
    ],
)
def test_a_grant_that_is_not_plainly_one_location_is_refused(tmp_path, root, message):
    with pytest.raises(InputError, match=message):
        _room(tmp_path).create_member(ADMIN, "alice", [root])


def test_the_snapshot_root_setting_is_a_plain_cluster_folder(tmp_path):
    from pydantic import ValidationError

    from synthroom.room.settings import Settings

    assert Settings(spark_snapshot_root="S3A://Room/snaps/").spark_snapshot_root == "s3a://room/snaps"
    with pytest.raises(ValidationError, match="every folder name must be plain"):
        Settings(spark_snapshot_root="hdfs://nn/room/../other")


def test_a_grant_reaching_the_rooms_spark_snapshots_is_refused(tmp_path):
    room = _room(tmp_path, spark_snapshot_root="s3a://room/snapshots")
    for root in ("s3a://room/snapshots/x", "s3a://room", "s3a://room/snapshots/"):
        with pytest.raises(InputError, match="overlaps the room's Spark snapshot folder"):
            room.create_member(ADMIN, "m", [root])
    room.create_member(ADMIN, "ok", ["s3a://room/snapshots2"])  # a sibling, not the folder
    local = _room(tmp_path / "local")  # default: spark-data in the artifacts folder
    inside = (tmp_path / "local" / "artifacts" / "data").as_uri()
    for root, shown in ((str(tmp_path / "local"), (tmp_path / "local").as_uri()), (inside, inside)):
        with pytest.raises(InputError) as caught:  # a local or file:// grant on the room's storage
            local.create_member(ADMIN, "m", [root])
        assert str(caught.value) == f"data root {shown!r} overlaps the room's artifacts folder"
    shared = _room(tmp_path / "shared", spark_snapshot_root=(tmp_path / "shared" / "spark").as_uri())
    with pytest.raises(InputError, match="overlaps the room's Spark snapshot folder"):
        shared.create_member(ADMIN, "m", [str(tmp_path / "shared" / "spark" / "x")])


@pytest.mark.parametrize(
    "source",
    [
        "s3a://bucket/prefix2/x.parquet",  # prefix confusion: prefix2 is not under prefix
        "s3a://bucket/prefix",  # the granted folder itself is no file below it
        "s3a://bucket/PREFIX/x.parquet",  # case: another folder on S3
        "s3a://other/prefix/x.parquet",  # another bucket
        "s3a://bucket.evil/prefix/x.parquet",
        "hdfs://bucket/prefix/x.parquet",  # another scheme
        "s3a://bucket/bob/x.parquet",  # bob's grant, not alice's
    ],
)
def test_a_member_cannot_configure_a_cluster_path_outside_its_grant(tmp_path, source):
    room = _room(tmp_path)
    alice = _member(room, "alice", ["s3a://bucket/prefix"])
    _member(room, "bob", ["s3a://bucket/bob"])
    with pytest.raises(Forbidden) as caught:
        _configure(room, alice, "spark_parquet", source)
    assert str(caught.value) == f"{source!r} is outside 'alice''s cluster data paths"


@pytest.mark.parametrize(
    "source",
    [
        "s3a://bucket/prefix/../bob/x.parquet",
        "s3a://bucket/prefix/./x.parquet",
        "s3a://bucket/prefix//x.parquet",
        "s3a://bucket/prefix/%2e%2e/bob",
        "s3a://bucket/prefix/*",
        "s3a://bucket/prefix/{a,../bob}",
        "s3a://bucket/prefix/x?versionId=1",
        "/srv/data/alice/x.parquet",  # not a URI: a local path is not a cluster source
    ],
)
def test_path_tricks_are_refused_before_anything_is_read(tmp_path, source):
    room = _room(tmp_path)
    alice = _member(room, "alice", ["s3a://bucket/prefix"])
    with pytest.raises(InputError, match="data source"):
        _configure(room, alice, "spark_parquet", source)


def test_a_local_folder_grant_is_no_cluster_grant(tmp_path):
    """A local grant is for the room's own reader (which refuses symlinks); Spark follows them."""
    data = tmp_path / "data"
    data.mkdir()
    room = _room(tmp_path)
    alice = _member(room, "alice", [str(data)])
    with pytest.raises(Forbidden, match="outside 'alice''s cluster data paths"):
        _configure(room, alice, "spark_parquet", f"file://{data}/x.parquet")


@pytest.mark.parametrize(
    ("table", "error", "message"),
    [
        ("crm.people2", Forbidden, "is not among 'alice''s granted tables"),
        ("salesx.orders", Forbidden, "is not among 'alice''s granted tables"),
        ("bobdb.orders", Forbidden, "is not among 'alice''s granted tables"),
        ("spark_catalog.crm.people", InputError, "must be database.table"),
        ("`crm`.`people`", InputError, "must be database.table"),
        ("crm.`people`", InputError, "must be database.table"),
        ("people", InputError, "must be database.table"),
        ("global_temp.people", InputError, "holds temporary views"),
        ("session.people", InputError, "holds temporary views"),
        ("SYSTEM.session", InputError, "holds temporary views"),
        ("crm.people;drop", InputError, "must be database.table"),
        ("crm .people", InputError, "must be database.table"),
    ],
)
def test_a_member_cannot_name_a_spark_table_outside_its_grant(tmp_path, table, error, message):
    room = _room(tmp_path)
    alice = _member(room, "alice", ["spark-table:sales.*", "spark-table:crm.people"])
    _member(room, "bob", ["spark-table:bobdb.*"])
    with pytest.raises(error, match=message):
        _configure(room, alice, "spark_table", "", table)


def test_every_file_spark_would_read_lies_below_the_source():
    """The second layer: the files Spark resolved (``inputFiles``, qualified as Hadoop writes
    them) must lie at or below the granted location, by path segments."""
    from synthroom.engine.spark_snapshots import check_input_files

    check_input_files(
        ["file:/data/alice/t/part-0.parquet", "file:/data/alice/t/x=1/p.parquet"], "file:///data/alice/t", "t"
    )
    check_input_files(["s3a://b/alice/t.csv"], "s3a://b/alice/t.csv", "t")
    for outside in (
        "file:/data/alice/t2/part-0.parquet",
        "file:/data/bob/p.parquet",
        "s3a://b/alice/t/p",
        "hdfs://h/data/alice/t/p",
    ):
        with pytest.raises(InputError, match="^data source 't' reads files outside it; give a folder of plain files$"):
            check_input_files(["file:/data/alice/t/ok.parquet", outside], "file:///data/alice/t", "t")


# -- on Spark ------------------------------------------------------------------------------------
class Capture:
    """The job's synthesize step, recorded: the real synthesize_with_gate."""

    def __init__(self):
        self.runs: list = []

    def __call__(self, data, *args, **kwargs):
        self.runs.append(synthesize_with_gate(data, *args, **kwargs))
        return self.runs[-1]


def _grant(room: Room, actor: Actor, *roots: str) -> None:
    """The operator widens a member's grant (there is no route for it: edited as the operator)."""
    with room.transaction() as s:
        member = s.get(Member, actor.id)
        member.data_roots = json.dumps(json.loads(member.data_roots) + list(roots))


def _swap_conversions(party, kind: str, path: str = "", table: str | None = None) -> dict:
    """The advertiser's conversions, configured again as a cluster source, in place of the local
    one; the demo template again (a new version), approved by both owners."""
    room, adv, pub = party.room, party.advertiser, party.publisher
    configured = room.configure_table(
        adv,
        "conversions on the cluster",
        kind,
        path,
        CONVERSIONS_COLUMNS,
        epsilon_budget=3.0,
        unit_column="user_id",
        unit_cap=3,
        source_table=table,
        allowed_receivers=["advertiser", "analyst"],
        share_full_report=True,
    )
    room.dissociate(adv, party.collab, "conversions")
    room.associate(adv, party.collab, configured["id"], "conversions")
    template = room.create_template(
        adv,
        party.collab,
        "converters",
        DEMO_TEMPLATE,
        epsilon=1.0,
        classification=DEMO_CLASSIFICATION,
        max_mia_score=0.8,
    )
    for actor in (pub, adv):
        template = room.approve_template(actor, template["id"], template["hash"])
    return {"table": configured, "template": template}


def _seeded_run(party, template_id: int) -> tuple[dict, Capture]:
    job = start_job(party.room, party.advertiser, template_id, seed=11)
    capture = Capture()
    return run_job(party.room, job["id"], synthesize=capture), capture


@pytest.mark.spark
def test_a_spark_table_source_gives_the_snapshot_paths_synthetic_table(tmp_path, spark):
    """Parity: the same conversions as a local Parquet snapshot and as a Spark table of the
    catalog, in a seeded job on Spark, give the identical synthetic table."""
    local = two_party(tmp_path / "local", users=400, seeded_jobs=True, engine="spark")
    on_local, local_capture = _seeded_run(local, local.template["id"])
    party = two_party(tmp_path / "cluster", users=400, seeded_jobs=True, engine="spark")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS advdb LOCATION '{(tmp_path / 'warehouse').as_uri()}'")
    try:
        spark.read.parquet(_snapshot_path(party, party.conversions)).write.saveAsTable("advdb.conversions")
        _grant(party.room, party.advertiser, "spark-table:advdb.*")
        swapped = _swap_conversions(party, "spark_table", table="AdvDB.Conversions")
        assert swapped["table"]["source_table"] == "advdb.conversions"
        assert swapped["table"]["snapshot_sha256"].isalnum() and len(swapped["table"]["snapshot_sha256"]) == 64
        on_cluster, cluster_capture = _seeded_run(party, swapped["template"]["id"])
    finally:
        spark.sql("DROP DATABASE IF EXISTS advdb CASCADE")
    assert on_local["state"] == on_cluster["state"] and on_cluster["category"] in (None, "refused_by_gate")
    runs = (local_capture.runs[0], cluster_capture.runs[0])
    assert runs[0].report.notes[0] == runs[1].report.notes[0]  # the holdout: same units, same sizes
    pd.testing.assert_frame_equal(runs[0].synthesizer.sample(500, seed=3), runs[1].synthesizer.sample(500, seed=3))
    assert runs[1].synthesizer.privacy_report() == runs[0].synthesizer.privacy_report()


def _snapshot_path(party, table_id: int) -> str:
    """Where the room keeps a table's snapshot (a local one: Parquet written by DuckDB)."""
    with party.room.read() as s:
        return s.get(ConfiguredTable, table_id).snapshot_path


def _cluster_party(tmp_path, **options):
    """Two parties on Spark whose conversions are a granted file:// cluster folder."""
    party = two_party(tmp_path, users=300, seeded_jobs=True, engine="spark", **options)
    folder = tmp_path / "cluster" / "advertiser" / "conversions"
    folder.mkdir(parents=True)
    shutil.copyfile(_snapshot_path(party, party.conversions), folder / "part-0.parquet")
    _grant(party.room, party.advertiser, (tmp_path / "cluster" / "advertiser").as_uri())
    return party, folder


@pytest.mark.spark
def test_a_changed_cluster_snapshot_fails_the_job_as_source_changed(tmp_path, spark):
    """The member's later changes do nothing until refresh; a snapshot changed behind the room's
    back fails the job with source_changed (refunded), and the fingerprint is checked on Spark."""
    party, folder = _cluster_party(tmp_path)
    swapped = _swap_conversions(party, "spark_parquet", folder.as_uri())
    snapshot = swapped["table"]["snapshot_sha256"]
    (folder / "part-0.parquet").unlink()  # the member's own change: nothing until it refreshes
    first = _seeded_run(party, swapped["template"]["id"])[0]
    assert first["state"] in ("succeeded", "failed") and first["category"] in (None, "refused_by_gate")
    with party.room.read() as s:
        path = s.get(ConfiguredTable, swapped["table"]["id"]).snapshot_path
    assert path.startswith((tmp_path / "artifacts" / "spark-data").as_uri() + "/")
    rows = spark.read.parquet(path)
    rows.limit(5).write.mode("append").parquet(path)  # five rows more, behind the room's back
    second = _seeded_run(party, swapped["template"]["id"])[0]
    assert (second["state"], second["category"]) == ("failed", "source_changed")
    assert party.room.get_table(party.advertiser, swapped["table"]["id"])["snapshot_sha256"] == snapshot


@pytest.mark.spark
def test_a_duckdb_collaboration_refuses_a_spark_source(tmp_path, spark):
    party, folder = _cluster_party(tmp_path)
    configured = party.room.configure_table(
        party.advertiser, "on the cluster", "spark_parquet", folder.as_uri(), ["user_id"], epsilon_budget=1.0
    )
    assert configured["columns"] == CONVERSIONS_COLUMNS
    duck = party.room.create_collaboration(party.advertiser, "duck", [], payer="advertiser", engine="duckdb")
    with pytest.raises(InputError) as caught:
        party.room.associate(party.advertiser, duck["id"], configured["id"], "conv")
    assert str(caught.value) == (
        f"table 'on the cluster' is a Spark source (spark_parquet); collaboration {duck['id']} runs its "
        "templates on duckdb: only a collaboration on Spark can use it"
    )


@pytest.mark.spark
def test_a_symlink_in_a_file_cluster_source_is_refused(tmp_path, spark):
    """Spark follows symlinks: one in the member's folder (to another member's data) is refused."""
    party, folder = _cluster_party(tmp_path)
    (folder / "other.parquet").symlink_to(tmp_path / "data/publisher/audience.csv")
    with pytest.raises(InputError, match="holds a symbolic link"):
        party.room.configure_table(
            party.advertiser, "linked", "spark_parquet", folder.as_uri(), ["user_id"], epsilon_budget=1.0
        )
    link = folder.parent / "link"
    link.symlink_to(tmp_path / "data" / "publisher")
    with pytest.raises(InputError, match="goes through a symbolic link"):
        party.room.configure_table(
            party.advertiser, "linked", "spark_csv", f"{link.as_uri()}/audience.csv", ["user_id"], epsilon_budget=1.0
        )


@pytest.mark.spark
def test_a_view_is_not_a_table(tmp_path, spark):
    """A view inside a granted database could select any other table: refused."""
    room = _room(tmp_path)
    alice = _member(room, "alice", ["spark-table:viewdb.*"])
    spark.sql(f"CREATE DATABASE IF NOT EXISTS viewdb LOCATION '{(tmp_path / 'wh').as_uri()}'")
    try:
        spark.sql("CREATE VIEW viewdb.v AS SELECT 1 AS a")
        with pytest.raises(InputError, match="Spark table 'viewdb.v' is a view; configure a base table"):
            _configure(room, alice, "spark_table", "", "viewdb.v")
        with pytest.raises(InputError, match="Spark table 'viewdb.nope' does not exist"):
            _configure(room, alice, "spark_table", "", "viewdb.nope")
    finally:
        spark.sql("DROP DATABASE IF EXISTS viewdb CASCADE")


@pytest.mark.spark
def test_refresh_takes_the_members_change_and_deletes_the_old_snapshot(tmp_path, spark):
    party, folder = _cluster_party(tmp_path)
    configured = party.room.configure_table(
        party.advertiser, "conv", "spark_parquet", folder.as_uri(), ["user_id", "campaign"], epsilon_budget=1.0
    )
    with party.room.read() as s:
        old = s.get(ConfiguredTable, configured["id"]).snapshot_path
    rows = spark.read.parquet(str(folder)).limit(10).collect()
    spark.createDataFrame(rows).coalesce(1).write.mode("overwrite").parquet(str(tmp_path / "ten"))
    shutil.rmtree(folder)
    shutil.copytree(tmp_path / "ten", folder)
    refreshed = party.room.refresh_table(party.advertiser, configured["id"])
    assert refreshed["snapshot_sha256"] != configured["snapshot_sha256"]
    with party.room.read() as s:
        new = s.get(ConfiguredTable, configured["id"]).snapshot_path
    assert spark.read.parquet(new).count() == 10
    assert not (tmp_path / "artifacts" / "spark-data" / old.rsplit("/", 1)[1]).exists()


def test_the_cli_grants_cluster_paths_and_names_a_spark_table(tmp_path, monkeypatch):
    """``member-create --data-root`` keeps URIs and table grants as given (a Path would mangle
    ``s3a://``); ``table-create --spark-table`` sends a spark_table source through the API, and
    a table outside the grant is refused there (exit 5), as a ``..`` path is (exit 2)."""
    import warnings

    from typer.testing import CliRunner

    from synthroom import client as client_module
    from synthroom.api import create_app
    from synthroom.cli import room as room_cli
    from synthroom.cli.app import app as cli

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    room = _room(tmp_path)
    http = TestClient(create_app(room))
    monkeypatch.setattr(client_module.httpx, "Client", lambda **_kw: http)
    monkeypatch.setenv("SYNTHROOM_CONFIG", str(tmp_path / "room.json"))
    monkeypatch.setenv("SYNTHROOM_ADMIN_KEY", ADMIN)
    runner = CliRunner()

    def run(*args: str):
        room_cli._state.clear()  # one client per invocation (the key differs)
        return runner.invoke(cli, ["room", "--server", "http://testserver", *args])

    created = run("member-create", "alice", "--data-root", "s3a://Bucket/alice/", "--data-root", "spark-table:crm.*")
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)["api_key"]
    with room.read() as s:
        assert json.loads(s.get(Member, 1).data_roots) == ["s3a://bucket/alice", "spark-table:crm.*"]
    common = ["--allow", "a", "--budget", "1"]
    other = run("--key", key, "table-create", "t", "--spark-table", "sales.orders", *common)
    assert other.exit_code == 5 and "Spark table 'sales.orders' is not among 'alice''s granted tables" in other.stderr
    dotted = run("--key", key, "table-create", "t", "--source", "s3a://bucket/alice/../bob/x", *common)
    assert dotted.exit_code == 2 and "every folder name must be plain" in dotted.stderr


@pytest.mark.spark
def test_a_streaming_sink_log_cannot_point_spark_at_another_members_files(tmp_path, spark):
    """Spark reads a folder holding ``_spark_metadata`` as a streaming sink: the files its log
    lists, wherever they are. A member's log naming the publisher's snapshot is refused."""
    party, folder = _cluster_party(tmp_path)
    victim = _snapshot_path(party, party.audience)
    log = folder / "_spark_metadata"
    log.mkdir()
    size = (tmp_path / "victim.parquet").write_bytes(open(victim, "rb").read())
    entry = {
        "path": (tmp_path / "victim.parquet").as_uri(),
        "size": size,
        "isDir": False,
        "modificationTime": 0,
        "blockReplication": 1,
        "blockSize": size,
        "action": "add",
    }
    (log / "0").write_text("v1\n" + json.dumps(entry) + "\n")
    with pytest.raises(InputError, match=r"holds a streaming sink log \(_spark_metadata\)"):
        party.room.configure_table(
            party.advertiser, "sink", "spark_parquet", folder.as_uri(), ["user_id"], epsilon_budget=1.0
        )


@pytest.mark.spark
def test_a_csv_on_the_cluster_is_text_unless_declared(tmp_path, spark):
    """spark_csv reads every value as text, then casts the owner's declared types (a value that
    does not parse becomes missing, as a local CSV's TRY makes it); nothing is inferred from rows."""
    party, folder = _cluster_party(tmp_path)
    csv = folder.parent / "people.csv"
    csv.write_text("user_id,age,city\n1,34,Oslo\n2,abc,Rome\n3,51,Oslo\n")
    configured = party.room.configure_table(
        party.advertiser,
        "people",
        "spark_csv",
        csv.as_uri(),
        ["user_id", "age", "city"],
        epsilon_budget=1.0,
        column_types={"age": "bigint"},
    )
    path = _snapshot_path(party, configured["id"])
    rows = spark.read.parquet(path)
    assert rows.dtypes == [("user_id", "string"), ("age", "bigint"), ("city", "string")]
    assert sorted((r.user_id, r.age) for r in rows.collect()) == [("1", 34), ("2", None), ("3", 51)]
    with pytest.raises(InputError, match="column_types: 'INT' for column 'age' is not one of"):
        party.room.configure_table(
            party.advertiser, "p", "spark_csv", csv.as_uri(), ["age"], epsilon_budget=1.0, column_types={"age": "INT"}
        )


@pytest.mark.spark
def test_the_fingerprint_ignores_row_order_and_sees_one_changed_value(spark):
    from pyspark.sql import functions as F

    from synthroom.engine.spark_snapshots import fingerprint

    rows = spark.createDataFrame(
        [(i, f"v{i % 7}", None if i % 5 else 1.5) for i in range(200)], "a long, b string, c double"
    )
    same = rows.orderBy(F.desc("a")).repartition(3)
    assert fingerprint(same) == fingerprint(rows)
    changed = rows.withColumn("b", F.when(F.col("a") == 17, F.lit("v0")).otherwise(F.col("b")))
    moved_null = rows.withColumn("c", F.when(F.col("a") == 5, F.lit(None)).otherwise(F.col("c")))
    duplicated = rows.union(rows.where("a = 3")).where("a != 4")  # same row count, one row twice
    assert len({fingerprint(f) for f in (rows, changed, moved_null, duplicated)}) == 4


@pytest.mark.spark
def test_a_duckdb_job_meeting_a_cluster_table_fails_before_reading_a_row(tmp_path, spark):
    """The room restarted with engine duckdb after a Spark collaboration (no engine of its own)
    took a cluster table: its job fails source_changed (refunded), no row read."""
    party, folder = _cluster_party(tmp_path)
    swapped = _swap_conversions(party, "spark_parquet", folder.as_uri())
    restarted = Room(database_url(tmp_path), tmp_path / "artifacts", admin_key=ADMIN, seeded_jobs=True)
    job = start_job(restarted, party.advertiser, swapped["template"]["id"], seed=11)
    done = run_job(restarted, job["id"], synthesize=Capture())
    assert (done["state"], done["category"]) == ("failed", "source_changed")
    assert restarted.get_table(party.advertiser, swapped["table"]["id"])["epsilon_spent"] == 0


@pytest.mark.spark
def test_a_refresh_with_other_column_types_is_refused_and_leaves_no_snapshot(tmp_path, spark):
    party, folder = _cluster_party(tmp_path)
    configured = party.room.configure_table(
        party.advertiser, "conv", "spark_parquet", folder.as_uri(), ["user_id", "order_value"], epsilon_budget=1.0
    )
    snapshots = tmp_path / "artifacts" / "spark-data"
    before = sorted(p.name for p in snapshots.iterdir())
    rows = spark.read.parquet(str(folder)).selectExpr("user_id", "cast(order_value AS string) AS order_value")
    rows.coalesce(1).write.parquet(str(tmp_path / "text"))
    shutil.rmtree(folder)
    shutil.copytree(tmp_path / "text", folder)
    with pytest.raises(InputError, match=f"table {configured['id']}'s source now gives other column types"):
        party.room.refresh_table(party.advertiser, configured["id"])
    assert sorted(p.name for p in snapshots.iterdir()) == before
    assert party.room.get_table(party.advertiser, configured["id"])["snapshot_sha256"] == configured["snapshot_sha256"]


# -- inference over a cluster table --------------------------------------------------------------
INFERENCE_POLICY = {"inference_runners": ["publisher"], "inference_receivers": ["advertiser"]}


def _new_users_table(room: Room, party, kind: str, path: str = "", table: str | None = None) -> int:
    """The publisher's new users configured (as ``kind``) and associated for inference."""
    configured = room.configure_table(
        party.publisher,
        f"new users ({kind})",
        kind,
        path,
        AUDIENCE_COLUMNS,
        epsilon_budget=1.0,
        unit_column="user_id",
        source_table=table,
    )
    room.associate(party.publisher, party.collab, configured["id"], f"new_users_{kind}")
    return configured["id"]


def _predictions(room: Room, actor: Actor, inference_id: int, fmt: str) -> pd.DataFrame:
    path = inference.inference_result(room, actor, inference_id, fmt)
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    return frame.sort_values("user_id").reset_index(drop=True)


@pytest.mark.spark
def test_inference_over_a_spark_table_scores_its_rows_as_over_a_local_snapshot(tmp_path, spark):
    """A model scores the publisher's new users as a Spark table (on Spark, fingerprint checked)
    and as the same rows in a local snapshot: the same predictions, for the receivers only, the
    row count for the runner and the receivers only; a snapshot changed behind the room's back
    fails ``source_changed`` and leaves no predictions."""
    party = two_party(tmp_path, model_policy=INFERENCE_POLICY)  # DuckDB: the model, quickly
    job = run_job(party.room, start_job(party.room, party.advertiser, party.template["id"])["id"])
    assert job["state"] == "succeeded", job
    model = training.train_model(party.room, party.advertiser, job["id"], "gbm", params={"max_iter": 30})
    room = Room(database_url(tmp_path), tmp_path / "artifacts", admin_key=ADMIN, engine="spark")  # now on Spark
    simulate_audience(300, seed=9).to_parquet(party.folder / "data" / "publisher" / "new_users.parquet")
    local = _new_users_table(room, party, "parquet", str(party.folder / "data" / "publisher" / "new_users.parquet"))
    spark.sql(f"CREATE DATABASE IF NOT EXISTS pubdb LOCATION '{(tmp_path / 'warehouse').as_uri()}'")
    try:
        spark.read.parquet(_snapshot_path(party, local)).write.saveAsTable("pubdb.new_users")
        _grant(room, party.publisher, "spark-table:pubdb.*")
        cluster = _new_users_table(room, party, "spark_table", table="pubdb.new_users")
    finally:
        spark.sql("DROP DATABASE IF EXISTS pubdb CASCADE")
    done = [inference.start_inference(room, party.publisher, model["id"], t) for t in (local, cluster)]
    assert [(d["state"], d["rows_scored"]) for d in done] == [("succeeded", 300)] * 2, done
    for fmt in ("csv", "parquet"):
        on_local, on_cluster = (_predictions(room, party.advertiser, d["id"], fmt) for d in done)
        assert list(on_cluster.columns) == ["user_id", "prediction", "probability"] and len(on_cluster) == 300
        pd.testing.assert_frame_equal(on_cluster, on_local)
    for outsider in (party.publisher, party.analyst):  # the runner itself is no receiver here
        with pytest.raises(Forbidden, match=f"^'{outsider.name}' does not receive the predictions of inference"):
            inference.inference_result(room, outsider, done[1]["id"])
    for actor, shown in ((party.publisher, 300), (party.advertiser, 300), (party.analyst, None)):
        assert inference.get_inference(room, actor, done[1]["id"])["rows_scored"] == shown
    metered = [
        m for m in metering(room, party.advertiser, party.collab)["inference"] if m["inference_id"] == done[1]["id"]
    ]
    assert metered and metered[0]["payer"] == "advertiser" and metered[0]["rows_scored"] == 300
    snapshot = _snapshot_path(party, cluster)
    spark.read.parquet(snapshot).limit(5).write.mode("append").parquet(snapshot)  # behind the room's back
    changed = inference.start_inference(room, party.publisher, model["id"], cluster)
    assert (changed["state"], changed["category"], changed["rows_scored"]) == ("failed", "source_changed", None)
    assert not (tmp_path / "artifacts" / "inference" / str(changed["id"])).exists()
