"""Templates on Spark, checked before they run (no Spark session needed: sqlglot only).

A template passes DuckDB's checks (synthroom.sql.template) and is then transpiled to Spark SQL
and checked again (synthroom.engine.spark_sandbox): Spark has functions that reach the JVM, files,
the catalog or the session, and a DuckDB name may be rendered as one. Every attempt here is
refused with its exact message, by one layer or the other."""

from __future__ import annotations

import pytest

from roomkit import ADMIN, database_url
from synthroom.engine.spark_sandbox import DENIED_SPARK_FUNCTIONS, SPARK_FUNCTIONS, check_spark_sql, spark_sql
from synthroom.errors import InputError
from synthroom.room import Actor, Room
from synthroom.sql import TableColumns, check_template

TABLES = {
    "people": TableColumns(("user_id", "age", "segment"), ("user_id", "age", "segment"), "user_id"),
    "victim": TableColumns(("user_id", "age", "ssn"), ("user_id", "age"), "user_id"),
}
V = "/srv/room/data/victim/secret.csv"
JVM = "reaches files, the catalog, the JVM or randomness"

# Templates DuckDB's checks accept (DuckDB has no such function, or a harmless one): Spark's refuse.
SPARK_REFUSALS = [
    ("SELECT user_id, reflect('java.lang.System', 'getenv', 'HOME') AS x FROM people", f"function reflect() {JVM}"),
    (
        "SELECT user_id, java_method('java.lang.Runtime', 'getRuntime') AS x FROM people",
        f"function java_method() {JVM}",
    ),
    ("SELECT user_id, try_reflect('java.lang.System', 'getenv', 'HOME') AS x FROM people", f"try_reflect() {JVM}"),
    ("SELECT user_id, input_file_name() AS x FROM people", f"function input_file_name() {JVM}"),
    ("SELECT user_id, input_file_block_start() AS x FROM people", f"function input_file_block_start() {JVM}"),
    ("SELECT user_id, current_user() AS x FROM people", f"function current_user() {JVM}"),
    ("SELECT user_id, current_catalog() AS x FROM people", f"function current_catalog() {JVM}"),
    ("SELECT user_id, version() AS x FROM people", f"function version() {JVM}"),
    ("SELECT user_id, spark_partition_id() AS x FROM people", f"function spark_partition_id() {JVM}"),
    ("SELECT user_id, monotonically_increasing_id() AS x FROM people", f"monotonically_increasing_id() {JVM}"),
    ("SELECT user_id, raise_error('present') AS x FROM people", f"function raise_error() {JVM}"),
    ("SELECT user_id, \"reflect\"('java.lang.System', 'getenv', 'HOME') AS x FROM people", "`REFLECT`("),
    ("SELECT user_id, system.builtin.reflect('java.lang.System', 'getenv') AS x FROM people", f"reflect() {JVM}"),
    ("SELECT user_id, xpath_string('<a/>', '/a') AS x FROM people", "function xpath_string() is not among"),
    ("SELECT user_id, from_json(segment, 'a INT') AS x FROM people", "function from_json() is not among"),
    ("SELECT user_id, levenshtein(segment, 'a') AS x FROM people", "function levenshtein() is not among"),
    ("SELECT user_id, aggregate([age], 0, (a, x) -> a + x) AS x FROM people", "function aggregate() is not among"),
]
# Refused already by the DuckDB-dialect checks (one SELECT, association names only).
DUCKDB_REFUSALS = [
    (f"SELECT * FROM parquet.`{V}`", "the SQL does not parse"),
    (f"SELECT p.age FROM people p JOIN csv.`{V}` v ON p.user_id = v.user_id", "the SQL does not parse"),
    ("SELECT age FROM spark_catalog.default.victim", "qualified table name"),
    ("SELECT age FROM default.victim", "qualified table name"),
    ("SET spark.sql.runSQLOnFiles = true", "only SELECT is allowed; found SET"),
    ("CREATE TEMPORARY FUNCTION f AS 'com.evil.F'", "only SELECT is allowed; found CREATE"),
    ("CREATE FUNCTION f AS 'com.evil.F' USING JAR '/tmp/evil.jar'", "only SELECT is allowed; found CREATE"),
    ("ADD JAR /tmp/evil.jar", "the SQL does not parse"),
    ("SELECT TRANSFORM(age) USING 'sh -c id' AS (x) FROM people", "the SQL does not parse"),
    ("SELECT user_id, `reflect`('java.lang.System', 'getenv', 'HOME') AS x FROM people", "the SQL does not parse"),
    (f"SELECT user_id, read_files('{V}') AS x FROM people", "function read_files() is not allowed"),
    ("SELECT user_id, current_database() AS x FROM people", "function current_database() is not allowed"),
    ("SELECT user_id, uuid() AS x FROM people", "function uuid() is not allowed: a template must be deterministic"),
    ("SELECT user_id, rand() AS x FROM people", "a template must be deterministic"),
    ("SELECT age FROM people UNION ALL SELECT age FROM victim", "found UNION"),
]


@pytest.mark.parametrize("sql, message", SPARK_REFUSALS)
def test_refused_on_spark_after_duckdbs_checks(sql, message):
    checked = check_template(sql, TABLES)  # DuckDB's checks let it through
    with pytest.raises(InputError) as info:
        spark_sql(checked)
    assert str(info.value).startswith("template rejected on Spark: ") and message in str(info.value)


@pytest.mark.parametrize("sql, message", DUCKDB_REFUSALS)
def test_refused_by_the_shared_checks(sql, message):
    with pytest.raises(InputError) as info:
        check_template(sql, TABLES)
    assert str(info.value).startswith("template rejected: ") and message in str(info.value)


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT `reflect`('a', 'b') AS x FROM people", "the expression \"`REFLECT`('a', 'b')\" is not allowed"),
        ("SELECT people.age FROM people, parquet.`/etc/passwd`", "table parquet.`/etc/passwd` is not one of"),
        ("SELECT age FROM spark_catalog.default.people", "table spark_catalog.default.people is not one of"),
        ("SELECT age FROM victim", "table 'victim' is not one of the collaboration's tables"),
        ("SELECT TRANSFORM(age) USING 'cat' AS (x) FROM people", "function transform() is not among"),
        ("SELECT x FROM people LATERAL VIEW explode(array(1)) t AS x", "LATERAL is not allowed"),
        ("SELECT CURRENT_USER AS u FROM people", f"function current_user() {JVM}"),
        ("SELECT session_user AS u FROM people", "the expression 'SESSION_USER' is not allowed"),
        ("SELECT age FROM people; SET a = 1", "a template is exactly one SELECT statement"),
        ("SELECT builtin.java_method('a', 'b') AS x FROM people", f"function java_method() {JVM}"),
        ("SELECT filter(array(age), x -> x > 1) AS x FROM people", "function filter() is not among"),
    ],
)
def test_the_spark_layer_alone_refuses(sql, message):
    """The Spark-side check on hand-written Spark SQL: it does not rely on DuckDB's checks."""
    with pytest.raises(InputError) as info:
        check_spark_sql(sql, ("people",))
    assert message in str(info.value)


def test_the_allow_list_holds_no_denied_function():
    assert not SPARK_FUNCTIONS & DENIED_SPARK_FUNCTIONS
    assert len(SPARK_REFUSALS) + len(DUCKDB_REFUSALS) >= 30


def test_the_demo_template_transpiles_with_its_aggregates_and_unit():
    from synthroom.demo.adtech import AUDIENCE_COLUMNS, CONVERSIONS_COLUMNS, DEMO_TEMPLATE

    tables = {
        "audience": TableColumns((*AUDIENCE_COLUMNS, "email"), tuple(AUDIENCE_COLUMNS), "user_id"),
        "conversions": TableColumns(tuple(CONVERSIONS_COLUMNS), tuple(CONVERSIONS_COLUMNS), "user_id"),
    }
    sql = spark_sql(check_template(DEMO_TEMPLATE, tables))
    assert "COUNT(`c`.`user_id`)" in sql and "LEFT JOIN `conversions` AS `c`" in sql
    assert "CAST(`__synthroom_k0` AS STRING) AS `__synthroom_unit`" in sql


def test_a_spark_collaboration_refuses_at_creation_what_spark_may_not_run(tmp_path):
    """The same template: accepted in a DuckDB collaboration, refused in a Spark one (no budget,
    no job), with the Spark check's message; the room's default engine is the setting's."""
    room = Room(database_url(tmp_path), tmp_path / "artifacts", admin_key=ADMIN)
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_text("user_id,age,segment\n1,30,a\n2,40,b\n")
    me = Actor(room.create_member(ADMIN, "owner", [str(data)])["id"], "owner")
    table = room.configure_table(me, "t", "csv", str(data / "t.csv"), ["user_id", "age", "segment"], 1, "user_id")
    classification = {
        "target": "segment",
        "columns": [{"name": "d", "type": "numerical"}, {"name": "segment", "type": "categorical"}],
    }
    sql = "SELECT levenshtein(segment, 'a') AS d, segment FROM people"
    collabs = {}
    for engine in (None, "spark"):
        collab = room.create_collaboration(me, f"c-{engine}", [], payer="owner", engine=engine)
        assert collab["engine"] == engine
        room.associate(me, collab["id"], table["id"], "people")
        collabs[engine] = collab["id"]
    assert room.create_template(me, collabs[None], "ok", sql, epsilon=1, classification=classification)["version"] == 1
    with pytest.raises(InputError) as info:
        room.create_template(me, collabs["spark"], "no", sql, epsilon=1, classification=classification)
    assert str(info.value) == (
        "template rejected on Spark: function levenshtein() is not among the Spark functions a template may call"
    )
    with pytest.raises(InputError) as bad:
        room.create_collaboration(me, "c", [], payer="owner", engine="flink")
    assert str(bad.value) == "engine 'flink' is not one of duckdb, spark"


def test_the_demo_refuses_an_unknown_engine_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from synthroom.cli.app import app

    for options in (["--engine", "flink"], ["--spark-master", "local[1]"]):
        result = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path / "d"), *options])
        assert result.exit_code == 2, result.output
        assert "is not one of duckdb, spark (--spark-master needs spark)" in " ".join(result.output.split())
        assert not (tmp_path / "d").exists()
