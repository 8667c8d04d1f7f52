"""Escape attempts: a member tries to read beyond the allowed columns of the configured tables.

Three members' worth of files: ``mallory`` (the attacker, with its own data folder and table),
``victim`` (a table whose hidden column ``ssn`` holds :data:`SECRET` values, in a file of its own
folder). Every attempt is either refused when the template or table is checked (the exact message
is asserted) or contained when it runs (the result holds only allowed values). Nothing a member is
shown (messages, results) may contain the victim's secret or another member's file path.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from roomkit import ADMIN, database_url
from synthroom.errors import FAILURE_CATEGORIES, InputError, SourceChanged, TemplateRuntimeError
from synthroom.room import Actor, Forbidden, NotFound, Room
from synthroom.room.models import ConfiguredTable
from synthroom.room.service import source_of, table_columns
from synthroom.sql import TableColumns, check_template, run_template

SECRET = "SSN-987-65-4321"
TABLES = {
    "people": TableColumns(("user_id", "age", "segment"), ("user_id", "age", "segment"), "user_id"),
    "victim": TableColumns(("user_id", "age", "ssn"), ("user_id", "age"), "user_id"),
}


class Escape:
    """A room with an attacker, a victim and their files."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.room = Room(database_url(folder), folder / "artifacts", admin_key=ADMIN)
        self.dirs, self.actors = {}, {}
        for name in ("mallory", "victim"):
            self.dirs[name] = folder / "data" / name
            self.dirs[name].mkdir(parents=True)
            created = self.room.create_member(ADMIN, name, [str(self.dirs[name])])
            self.actors[name] = Actor(created["id"], name)
        self.secret_csv = self.dirs["victim"] / "secret.csv"
        victim_rows = pd.DataFrame({"user_id": [1, 2, 3], "age": [31, 42, 53], "ssn": [SECRET] * 3})
        victim_rows.to_csv(self.secret_csv, index=False)
        self.mine = self.dirs["mallory"] / "mine.csv"
        own_rows = pd.DataFrame({"user_id": [1, 2, 3], "age": [20, 30, 40], "segment": ["a", "b", "c"]})
        own_rows.to_csv(self.mine, index=False)
        self.victim_table = self.room.configure_table(
            self.actors["victim"],
            "victim",
            "csv",
            str(self.secret_csv),
            ["user_id", "age"],
            epsilon_budget=1,
            unit_column="user_id",
        )

    def configure(self, path, kind="csv", columns=("user_id", "age"), **options) -> dict:
        return self.room.configure_table(
            self.actors["mallory"],
            "t",
            kind,
            str(path),
            list(columns),
            epsilon_budget=1,
            unit_column="user_id",
            **options,
        )

    def run(self, sql: str, tables: dict[str, int]) -> pd.DataFrame:
        """Check and run ``sql`` over the configured tables ``{association name: table id}``."""
        with self.room.transaction() as s:
            rows = {name: s.get(ConfiguredTable, tid) for name, tid in tables.items()}
            columns = {n: table_columns(t) for n, t in rows.items()}
            sources = [source_of(n, t) for n, t in rows.items()]
        return run_template(check_template(sql, columns), sources, cap=10, seed=0).frame


@pytest.fixture()
def esc(tmp_path):
    return Escape(tmp_path)


def _shown(value) -> str:
    return value.to_csv() if isinstance(value, pd.DataFrame) else str(value)


def _assert_clean(value, esc: Escape) -> None:
    text = _shown(value)
    assert SECRET not in text and str(esc.dirs["victim"]) not in text and "artifacts" not in text


# -- 1. refused when the template is checked ---------------------------------------------------------------
V = "/srv/room/data/victim/secret.csv"
CHECK_REFUSALS = [
    # files
    (f"SELECT * FROM read_csv('{V}')", "table function READ_CSV"),
    (f"SELECT * FROM read_csv_auto('{V}')", "table function READ_CSV"),
    (f"SELECT user_id, read_text('{V}') AS t FROM people", "function read_text() is not allowed"),
    (f"SELECT * FROM read_text('{V}')", "table function READ_TEXT"),
    (f"SELECT * FROM read_blob('{V}')", "table function READ_BLOB"),
    (f"SELECT * FROM read_parquet('{V}')", "table function READ_PARQUET"),
    (f"SELECT * FROM read_json('{V}')", "table function READ_JSON"),
    ("SELECT * FROM glob('/srv/room/data/*/*')", "table function GLOB"),
    ("SELECT user_id, unnest(glob('/srv/*')) AS f FROM people", "function glob() is not allowed"),
    (f"SELECT * FROM '{V}'", f"unknown table '{V}'"),
    (f"SELECT p.age FROM people p JOIN '{V}' v ON p.user_id = v.user_id", f"unknown table '{V}'"),
    (f"COPY people TO '{V}'", "only SELECT is allowed; found COPY"),
    (f"ATTACH '{V}' AS v", "only SELECT is allowed; found ATTACH"),
    ("EXPORT DATABASE '/tmp/dump'", "the SQL does not parse"),
    (f"SELECT * FROM parquet_metadata('{V}')", "table function PARQUET_METADATA"),
    (f"SELECT * FROM sniff_csv('{V}')", "table function SNIFF_CSV"),
    (f"SELECT * FROM sqlite_scan('{V}', 't')", "table function SQLITE_SCAN"),
    # network
    ("SELECT * FROM read_csv('http://attacker.example/x.csv')", "table function READ_CSV"),
    ("SELECT p.age FROM people p, read_parquet('s3://bucket/x.parquet') r", "table function READ_PARQUET"),
    ("INSTALL httpfs", "only SELECT is allowed; found INSTALL"),
    ("LOAD httpfs", "only SELECT is allowed; found LOAD"),
    # settings, environment and catalog
    ("SET enable_external_access = true", "only SELECT is allowed; found SET"),
    ("SELECT user_id, current_setting('allowed_paths') AS s FROM people", "function current_setting() is not allowed"),
    ("PRAGMA database_list", "only SELECT is allowed; found PRAGMA"),
    ("SELECT user_id, getenv('HOME') AS h FROM people", "function getenv() is not allowed"),
    ("SELECT * FROM duckdb_settings()", "table function DUCKDB_SETTINGS"),
    ("SELECT user_id, current_database() AS d FROM people", "function current_database() is not allowed"),
    ("SELECT * FROM duckdb_secrets()", "table function DUCKDB_SECRETS"),
    ("SELECT * FROM sql_auto_complete('SELECT * FROM read_')", "table function SQL_AUTO_COMPLETE"),
    ("CALL pragma_version()", "only SELECT is allowed"),
    # query strings run as SQL
    (f"SELECT * FROM query('SELECT * FROM read_csv(''{V}'')')", "table function QUERY"),
    ("SELECT * FROM query_table('victim')", "table function QUERY_TABLE"),
    # multiple statements and comments
    (f"SELECT age FROM people; ATTACH '{V}' AS v", "a template is exactly one SELECT statement, not 2 statements"),
    (f"SELECT age FROM people -- harmless\n; COPY people TO '{V}'", "not 2 statements"),
    (f"SELECT age FROM people /* ; */ ; SELECT * FROM read_csv('{V}')", "not 2 statements"),
    (f"/* SELECT age FROM people */ SELECT * FROM read_csv('{V}')", "table function READ_CSV"),
    # unicode and case in names
    (f"SELECT user_id, ReAd_TeXt('{V}') AS t FROM people", "function read_text() is not allowed"),
    (f"SELECT user_id, \"read_text\"('{V}') AS t FROM people", "function read_text() is not allowed"),
    (f"SELECT * FROM READ_CSV('{V}')", "table function READ_CSV"),
    # reserved names and hidden columns
    ("SELECT age AS __synthroom_unit FROM people", "the name '__synthroom_unit' is reserved"),
    ("SELECT age, __synthroom_row FROM people", "the name '__synthroom_row' is reserved"),
    ("SELECT ssn FROM victim", "column 'ssn' of table 'victim' may not be used (allowed: user_id, age)"),
    ("SELECT * FROM victim", "column 'ssn' of table 'victim' may not be used"),
    ("SELECT user_id FROM victim WHERE ssn LIKE 'SSN-9%'", "column 'ssn' of table 'victim' may not be used"),
    ("SELECT age FROM synthroom_src.main.victim", "qualified table name"),
    ("SELECT age FROM synthroom_aggregated", "unknown table 'synthroom_aggregated'"),
    # CTEs, subqueries, set operations
    (f"WITH x AS (SELECT * FROM read_csv('{V}')) SELECT * FROM x", "WITH (common table expressions) is not allowed"),
    ("WITH v AS (SELECT user_id, age FROM victim) SELECT age FROM v", "WITH (common table expressions) is not allowed"),
    (f"SELECT age FROM people WHERE user_id IN (SELECT user_id FROM read_csv('{V}'))", "table function READ_CSV"),
    (
        "SELECT p.age, (SELECT max(v.age) FROM victim v) AS m FROM people p",
        "table 'victim' must be read in the outermost FROM/JOIN",
    ),
    (f"SELECT age FROM people UNION ALL SELECT ssn FROM read_csv('{V}')", "only SELECT is allowed; found UNION"),
    # lambdas and list functions
    (
        f"SELECT user_id, list_transform(['{V}'], f -> read_text(f)) AS t FROM people",
        "function read_text() is not allowed",
    ),
    ("SELECT user_id, list_apply(glob('/srv/*'), f -> f) AS t FROM people", "function glob() is not allowed"),
    # failing on a chosen value, timing
    ("SELECT CASE WHEN user_id = 2 THEN error('present') END AS x, age FROM people", "function error() is not allowed"),
    (
        "SELECT age, sleep_ms(CASE WHEN user_id = 2 THEN 10000 ELSE 0 END) AS s FROM people",
        "function sleep_ms() is not allowed",
    ),
]


@pytest.mark.parametrize("sql, message", CHECK_REFUSALS)
def test_refused_when_checked(sql, message):
    with pytest.raises(InputError) as info:
        check_template(sql, TABLES)
    assert str(info.value).startswith("template rejected: ") and message in str(info.value)
    assert SECRET not in str(info.value)


def test_the_escape_list_is_long_enough():
    assert len(CHECK_REFUSALS) + len(CONFIGURE_REFUSALS) + len(RUNTIME_CONTAINED) >= 40


# -- 2. refused when a table is configured -----------------------------------------------------------------
def _symlink_to_victim(esc):
    link = esc.dirs["mallory"] / "link.csv"
    link.symlink_to(esc.secret_csv)
    return link


def _symlinked_folder(esc):
    (esc.dirs["mallory"] / "sub").symlink_to(esc.dirs["victim"], target_is_directory=True)
    return esc.dirs["mallory"] / "sub" / "secret.csv"


def _database(esc, statements):
    path = esc.dirs["mallory"] / "crm.duckdb"
    with duckdb.connect(str(path)) as con:
        for sql in statements:
            con.execute(sql.replace("{V}", str(esc.secret_csv)))
    return path


def _view_named_as_table(esc):
    return _database(
        esc, ["CREATE VIEW people AS SELECT 1 AS user_id, 30 AS age, content AS ssn FROM read_text('{V}')"]
    )


def _table_is_a_view_over_csv(esc):
    return _database(esc, ["CREATE VIEW people AS SELECT * FROM read_csv('{V}')"])


def _generated_column(esc):
    return _database(
        esc,
        [
            "CREATE TABLE people (user_id INTEGER, age AS (length(current_setting('home_directory'))))",
            "INSERT INTO people VALUES (1)",
        ],
    )


def _view_shadowing_in_main_with_table_elsewhere(esc):
    return _database(
        esc,
        [
            "CREATE SCHEMA other",
            "CREATE TABLE other.people (user_id INTEGER, age INTEGER)",
            "CREATE VIEW main.people AS SELECT user_id, age FROM read_csv('{V}')",
        ],
    )


def _fifo(esc):
    path = esc.dirs["mallory"] / "pipe.csv"
    os.mkfifo(path)
    return path


CONFIGURE_REFUSALS = [
    (lambda esc: esc.secret_csv, "csv", {}, Forbidden, "is outside 'mallory''s data folders"),
    (
        lambda esc: esc.dirs["mallory"] / ".." / "victim" / "secret.csv",
        "csv",
        {},
        Forbidden,
        "is outside 'mallory''s data folders",
    ),
    (_symlink_to_victim, "csv", {}, InputError, "is or goes through a symbolic link"),
    (_symlinked_folder, "csv", {}, InputError, "is or goes through a symbolic link"),
    (lambda esc: "data/mallory/mine.csv", "csv", {}, InputError, "must be an absolute path"),
    (lambda esc: str(esc.mine) + "\x00.csv", "csv", {}, InputError, "must be an absolute path"),
    (_fifo, "csv", {}, InputError, "is not a regular file"),
    (
        _view_named_as_table,
        "duckdb",
        {"source_table": "people"},
        InputError,
        "table 'people' of data source",
    ),
    (
        _table_is_a_view_over_csv,
        "duckdb",
        {"source_table": "people"},
        InputError,
        "is a view; only base tables are read",
    ),
    (_generated_column, "duckdb", {"source_table": "people"}, InputError, "has generated columns"),
    (
        _view_shadowing_in_main_with_table_elsewhere,
        "duckdb",
        {"source_table": "people"},
        InputError,
        "is a view; only base tables are read",
    ),
]


@pytest.mark.parametrize("make_path, kind, options, error, message", CONFIGURE_REFUSALS)
def test_refused_when_configured(esc, make_path, kind, options, error, message):
    path = make_path(esc)
    with pytest.raises(error) as info:
        esc.configure(path, kind=kind, **options)
    assert message in str(info.value)
    shown = str(info.value).replace(repr(str(path)), "")  # the path the member gave may be named, nothing else
    assert SECRET not in shown and str(esc.folder) not in shown
    assert not list((esc.folder / "artifacts" / "data").glob(".staging-*"))  # no copy left behind


def test_configure_time_messages_quote_no_row_and_no_server_path(esc):
    # DuckDB's sniffer would take this odd last line (holding a secret) for the header
    bad = esc.dirs["mallory"] / "bad.csv"
    bad.write_text("user_id,age\n" + "".join(f"{i},{i}\n" for i in range(100)) + f"7,8,{SECRET},x\n")
    with pytest.raises(InputError) as info:
        esc.configure(bad)
    assert str(info.value) == "column 'user_id' is not in bad.csv (its columns: user_id,age)"
    broken = esc.dirs["mallory"] / "broken.parquet"
    broken.write_text(f"PAR1 {SECRET}")
    with pytest.raises(InputError) as info:
        esc.configure(broken, kind="parquet")
    assert str(info.value) == (
        f"data source '{broken}' cannot be read as a parquet source (the operator's log has the detail)"
    )


def test_a_database_with_macros_gives_only_its_base_table(esc):
    path = _database(
        esc,
        [
            "CREATE MACRO m(x) AS x || (SELECT string_agg(ssn) FROM read_csv('{V}'))",
            "CREATE MACRO tm() AS TABLE SELECT * FROM read_text('{V}')",
            "CREATE TABLE people AS SELECT * FROM (VALUES (1, 20), (2, 30)) t(user_id, age)",
        ],
    )
    table = esc.configure(path, kind="duckdb", source_table="people")
    frame = esc.run("SELECT user_id, age FROM people", {"people": table["id"]})
    assert sorted(frame.age) == [20, 30]
    _assert_clean(frame, esc)
    with pytest.raises(TemplateRuntimeError) as ran:  # the macros were not copied: they do not exist here
        esc.run("SELECT user_id, m(age) AS x FROM people", {"people": table["id"]})
    assert "Scalar Function with name m does not exist" in str(ran.value)
    _assert_clean(ran.value, esc)


# -- 3. contained when it runs -----------------------------------------------------------------------------
def _swap_for_symlink(esc, path):
    path.unlink()
    path.symlink_to(esc.secret_csv)


def _replace_file(esc, path):
    replacement = path.with_suffix(".new")
    pd.DataFrame({"user_id": [1, 2, 3], "age": [99, 99, 99], "segment": [SECRET] * 3}).to_csv(replacement, index=False)
    os.replace(replacement, path)


def _rewrite_in_place(esc, path):
    before = os.stat(path)
    with open(path, "r+") as f:  # same inode, and the times put back
        text = f.read()
        f.seek(0)
        f.write(text.replace("a", "X"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


RUNTIME_CONTAINED = [
    ("symlink swapped in after configuration", _swap_for_symlink),
    ("file replaced by another file after configuration", _replace_file),
    ("file rewritten in place with its times restored", _rewrite_in_place),
    ("file deleted after configuration", lambda esc, path: path.unlink()),
]


@pytest.mark.parametrize("what, change", RUNTIME_CONTAINED)
def test_source_changes_after_configuration_change_nothing(esc, what, change):
    table = esc.configure(esc.mine, columns=("user_id", "age", "segment"))
    change(esc, esc.mine)
    frame = esc.run("SELECT user_id, age, segment FROM people", {"people": table["id"]})
    assert frame.sort_values("user_id").age.tolist() == [20, 30, 40]  # the configured rows, from the snapshot
    assert frame.sort_values("user_id").segment.tolist() == ["a", "b", "c"]
    _assert_clean(frame, esc)


def test_a_refresh_follows_no_swapped_symlink(esc):
    table = esc.configure(esc.mine, columns=("user_id", "age", "segment"))
    _swap_for_symlink(esc, esc.mine)
    with pytest.raises(InputError, match="is or goes through a symbolic link") as info:
        esc.room.refresh_table(esc.actors["mallory"], table["id"])
    _assert_clean(info.value, esc)
    victim_id = esc.victim_table["id"]
    with pytest.raises(NotFound, match=f"no table with id {victim_id}"):  # not hers, not shared with her
        esc.room.refresh_table(esc.actors["mallory"], victim_id)


def test_a_refresh_reads_the_new_rows_and_keeps_the_types(esc):
    table = esc.configure(esc.mine, columns=("user_id", "age", "segment"))
    pd.DataFrame({"user_id": [1, 2], "age": [21, 31], "segment": ["a", "b"]}).to_csv(esc.mine, index=False)
    refreshed = esc.room.refresh_table(esc.actors["mallory"], table["id"])
    assert refreshed["snapshot_sha256"] != table["snapshot_sha256"]
    assert esc.run("SELECT age FROM people", {"people": table["id"]}).age.sort_values().tolist() == [21, 31]
    pd.DataFrame({"user_id": [1], "age": ["old"], "segment": ["a"]}).to_csv(esc.mine, index=False)
    with pytest.raises(InputError, match="now gives other column types"):
        esc.room.refresh_table(esc.actors["mallory"], table["id"])


def test_declared_csv_types_do_not_follow_the_rows(esc):
    """One person's row holding 3.5 turns a sniffed integer column into a float one (types members
    see); with the owner's declared types the neighbouring files give the same types, and the odd
    value is cast to the declared type (DuckDB rounds '3.5' to 4)."""
    rows = pd.DataFrame({"user_id": range(1, 41), "age": range(20, 60)})
    rows.to_csv(esc.mine, index=False)
    neighbour = esc.dirs["mallory"] / "neighbour.csv"
    pd.concat([rows, pd.DataFrame({"user_id": [41], "age": [3.5]})]).to_csv(neighbour, index=False)
    sniffed = [esc.configure(path) for path in (esc.mine, neighbour)]
    types = [esc.run("SELECT typeof(age) AS t FROM people", {"people": t["id"]}).t.iloc[0] for t in sniffed]
    assert types == ["BIGINT", "DOUBLE"]  # what the sniffer does: the reason to declare
    declared = [esc.configure(path, column_types={"age": "bigint"}) for path in (esc.mine, neighbour)]
    frames = [esc.run("SELECT typeof(age) AS t, age FROM people", {"people": t["id"]}) for t in declared]
    assert [f.t.iloc[0] for f in frames] == ["BIGINT", "BIGINT"]
    assert sorted(frames[1].age) == [4] + list(range(20, 60))
    refreshed = esc.room.refresh_table(esc.actors["mallory"], declared[1]["id"])  # declared types kept
    assert refreshed["snapshot_sha256"] == declared[1]["snapshot_sha256"]
    with pytest.raises(InputError, match="column_types: 'INT128' for column 'age' is not one of BIGINT, DOUBLE"):
        esc.configure(esc.mine, column_types={"age": "INT128"})
    with pytest.raises(InputError, match="column_types names 'agee', which is not a column of the file"):
        esc.configure(esc.mine, column_types={"agee": "BIGINT"})
    with pytest.raises(InputError, match="column_types are for CSV sources; a parquet source declares its own"):
        esc.configure(esc.mine, kind="parquet", column_types={"age": "BIGINT"})


@pytest.mark.parametrize("tamper", ["replace", "symlink", "delete"])
def test_a_snapshot_that_is_not_the_recorded_one_fails_the_job_as_source_changed(esc, tamper):
    table = esc.configure(esc.mine, columns=("user_id", "age", "segment"))
    with esc.room.transaction() as s:
        snapshot = Path(s.get(ConfiguredTable, table["id"]).snapshot_path)
    assert oct(snapshot.stat().st_mode & 0o777) == "0o600" and oct(snapshot.parent.stat().st_mode & 0o777) == "0o700"
    if tamper == "replace":
        pd.DataFrame({"user_id": [1], "age": [1], "segment": ["z"]}).to_parquet(snapshot)
    elif tamper == "symlink":
        snapshot.unlink()
        snapshot.symlink_to(esc.secret_csv)
    else:
        snapshot.unlink()
    with pytest.raises(SourceChanged) as info:
        esc.run("SELECT age FROM people", {"people": table["id"]})
    assert info.value.category == "source_changed" and info.value.category in FAILURE_CATEGORIES


def test_string_literals_with_quotes_and_semicolons_stay_literals(esc):
    table = esc.configure(esc.mine, columns=("user_id", "age", "segment"))
    sql = f"SELECT user_id, 'x''; ATTACH ''{esc.secret_csv}'' AS v; --' AS s FROM people"
    frame = esc.run(sql, {"people": table["id"]})
    assert set(frame.s) == {f"x'; ATTACH '{esc.secret_csv}' AS v; --"}


def test_lookalike_function_names_do_not_run(esc):
    table = esc.configure(esc.mine, columns=("user_id", "age", "segment"))
    for name in ("ｒｅａｄ_text", "read\u200b_text"):  # full-width letters, a zero-width space
        with pytest.raises(InputError) as info:
            esc.room.create_template(
                esc.actors["mallory"],
                _collaboration(esc, table),
                "t",
                f"SELECT user_id, {name}('{esc.secret_csv}') AS age FROM people",
                epsilon=1,
                classification={
                    "target": "age",
                    "columns": [{"name": "user_id", "type": "numerical"}, {"name": "age", "type": "categorical"}],
                },
            )
        _assert_clean(info.value, esc)


def _collaboration(esc, table) -> int:
    collab = esc.room.create_collaboration(esc.actors["mallory"], "c", [], payer="mallory")
    esc.room.associate(esc.actors["mallory"], collab["id"], table["id"], "people")
    return collab["id"]
