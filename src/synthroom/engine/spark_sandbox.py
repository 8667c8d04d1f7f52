"""Clean-room templates on Spark: the same checked template, in Spark SQL, over nothing else.

The DuckDB executor (:mod:`.sandbox`, under the policy of :mod:`synthroom.sql.sandbox`) is the
model; this is its Spark twin, with the same inputs (a :class:`~synthroom.sql.template.CheckedTemplate`
and the configured tables' :class:`~.sandbox.Source`) and the same cap on rows per privacy unit.

**The text that runs.** A template is checked once, in the DuckDB dialect, by
:func:`synthroom.sql.check_template` (one flat SELECT, associated tables only, allowed columns,
no file/catalog/volatile/raising function, per-unit rows). Its executable form is then
transpiled by sqlglot to Spark SQL and checked *again* on the Spark side
(:func:`spark_sql`), because Spark has functions DuckDB has not and that a DuckDB name could be
rendered as:

* every function call must be on :data:`SPARK_FUNCTIONS`, an allow-list of deterministic
  scalar and aggregate functions (no ``reflect``/``java_method``/``try_reflect``, no
  ``input_file_name``, no ``read_files``, no catalog, session or user functions, no UDF, no
  generator, no lambda, no random or id function, no ``raise_error``/``assert_true``), read two
  ways: on sqlglot's syntax tree of the Spark text and on its tokens (a backquoted or qualified
  name before ``(`` is a call too, and a qualified one is refused outright);
* the only tables are the association names, unqualified (a ``parquet.`/path``` file query or
  ``catalog.db.table`` is refused), and the only statement is one SELECT (no ``SET``,
  ``CREATE FUNCTION``, ``ADD JAR``, ``TRANSFORM ... USING``).

**The session a template runs in.** Each run gets a new Spark session of its own
(``newSession()``: its own temporary views and SQL settings) with direct file queries switched
off (``spark.sql.runSQLOnFiles=false``) and ANSI mode off (a value that does not parse or
overflows is NULL, as DuckDB's ``TRY`` makes it). Only the configured tables are registered in
it, as temporary views under their association names, which shadow any catalog table of the
same name; each holds only the allowed columns (and the unit), its rows with a NULL unit
dropped. A snapshot is read once from its verified bytes (SHA-256 as recorded, else
:class:`~synthroom.errors.SourceChanged`) and shipped to the executors as Arrow, exactly as the
DuckDB executor loads it.

**The cap.** Rows are ranked within their unit by ``xxhash64`` of the row's content and the
job's secret seed; rows past ``cap`` and rows with no unit are dropped. The capped result stays
on the cluster (a :class:`SparkExecution`): the job goes on to the Spark split and counting
(:mod:`synthroom.engine.spark_split`); no row comes back to the driver except the evaluation's
bounded samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from ..errors import InputError, SourceChanged, TemplateRuntimeError
from .sandbox import Source, verified_snapshot
from .spark import duckdb_type, spark_errors
from ..sql.template import ROW_COLUMN, UNIT_COLUMN, CheckedTemplate

SESSION_SQL_CONF = {
    "spark.sql.runSQLOnFiles": "false",  # no parquet.`/path` queries
    "spark.sql.ansi.enabled": "false",  # a bad value is NULL, never an error (DuckDB's TRY)
    "spark.sql.session.timeZone": "UTC",
}

# Deterministic functions a template may call on Spark, as Spark spells them (lower case).
SPARK_FUNCTIONS = frozenset(
    """
    count sum avg mean min max stddev stddev_samp stddev_pop std variance var_samp var_pop
    bool_and bool_or every some count_if median percentile corr covar_pop covar_samp max_by min_by
    abs ceil ceiling floor round bround sqrt cbrt exp expm1 ln log log10 log2 log1p pow power mod
    pmod sign signum greatest least sin cos tan asin acos atan atan2 sinh cosh tanh degrees
    radians pi e isnan isnull isnotnull nanvl nvl nvl2 ifnull nullif coalesce if cast try_cast
    date_format to_date to_timestamp to_timestamp_ntz date_add date_sub datediff date_diff
    months_between add_months year month day dayofmonth dayofweek dayofyear weekofyear weekday
    hour minute second quarter last_day trunc date_trunc unix_seconds unix_millis unix_micros
    unix_date timestamp_seconds timestamp_millis timestamp_micros date_from_unix_date make_date
    extract date_part datepart lower upper lcase ucase length char_length character_length trim
    ltrim rtrim btrim substr substring left right concat concat_ws replace regexp_replace
    regexp_extract rlike like ilike startswith endswith contains instr locate position lpad rpad
    reverse initcap split_part translate ascii chr char md5 sha1 sha2 hash xxhash64 crc32 hex
    unhex format_number width_bucket div bit_length octet_length try_add try_subtract
    try_multiply try_divide try_element_at element_at array map_from_arrays equal_null positive
    negative
    """.split()
)
# Called out by name in the message (all are off the allow-list anyway).
DENIED_SPARK_FUNCTIONS = frozenset(
    """
    reflect java_method try_reflect input_file_name input_file_block_start input_file_block_length
    read_files current_catalog current_database current_schema current_user user session_user
    version spark_partition_id monotonically_increasing_id rand randn random uuid shuffle
    raise_error assert_true current_date current_timestamp current_timezone current_time now
    localtimestamp
    """.split()
)
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_STRUCTURAL = (exp.Case, exp.Interval)  # no call syntax of their own; their parts are checked
_DENIED_NODES = (exp.DDL, exp.DML, exp.Command, exp.Set, exp.Lambda, exp.Hint, exp.Lateral, exp.Unnest)
_CALL_TOKENS = (TokenType.VAR, TokenType.IDENTIFIER)
_SQL_KEYWORD_CALLS = frozenset({"cast", "try_cast", "if", "left", "right", "replace", "array"})
# Functions Spark also calls without parentheses: refused wherever they appear unquoted.
_NILADIC = frozenset(
    """current_catalog current_database current_schema current_user current_date current_timestamp
    current_timezone current_time user session_user localtimestamp now""".split()
)


def _fail(message: str) -> None:
    raise InputError(f"template rejected on Spark: {message}")


def _function_allowed(name: str) -> None:
    name = name.lower()
    if name in DENIED_SPARK_FUNCTIONS:
        _fail(f"function {name}() reaches files, the catalog, the JVM or randomness")
    if name not in SPARK_FUNCTIONS:
        _fail(f"function {name}() is not among the Spark functions a template may call")


def spark_sql(template: CheckedTemplate) -> str:
    """The template's executable SQL as Spark SQL, checked (see the module docstring);
    :class:`InputError` names what Spark would run that a template may not."""
    try:
        sql = sqlglot.transpile(template.executable_sql, read="duckdb", write="spark", comments=False)[0]
    except SqlglotError as exc:
        raise InputError(f"template rejected on Spark: it has no Spark SQL form ({str(exc).splitlines()[0]})") from None
    check_spark_sql(sql, template.tables)
    return sql


def check_spark_sql(sql: str, tables: tuple[str, ...]) -> None:
    """One SELECT over ``tables`` (by name) calling only :data:`SPARK_FUNCTIONS`."""
    try:
        statements = sqlglot.parse(sql, read="spark")
        tokens = sqlglot.tokenize(sql, read="spark")
    except SqlglotError:
        _fail("its Spark SQL does not parse")
    root = statements[0] if len(statements) == 1 else None
    if not isinstance(root, exp.Select):
        _fail("a template is exactly one SELECT statement")
        return
    allowed = {t.lower() for t in tables}
    for node in root.walk():
        if isinstance(node, _DENIED_NODES):
            _fail(f"{node.key.upper()} is not allowed")
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier) or node.args.get("db") or node.args.get("catalog"):
                _fail(f"table {node.sql('spark')} is not one of the collaboration's tables")
            if node.name.lower() not in allowed:
                _fail(f"table {node.name!r} is not one of the collaboration's tables")
        if isinstance(node, exp.Func):
            _check_call(node)
    _check_call_tokens(tokens)


def _check_call(node: exp.Func) -> None:
    text = node.sql("spark")
    match = _CALL.match(text)
    if match:
        _function_allowed(match.group(1))
    elif isinstance(node, exp.Anonymous) or not isinstance(node, _STRUCTURAL):
        _fail(f"the expression {text[:40]!r} is not allowed")


def _check_call_tokens(tokens: list) -> None:
    """Every name followed by ``(`` is an allowed function; a qualified call is refused; so is a
    function Spark calls without parentheses (``CURRENT_USER``)."""
    for token in tokens:
        bare = token.token_type != TokenType.IDENTIFIER  # not `quoted`
        if bare and (token.text.lower() in _NILADIC or token.token_type.name.startswith("CURRENT_")):
            _function_allowed(token.text)
    for i, token in enumerate(tokens[:-1]):
        if tokens[i + 1].token_type != TokenType.L_PAREN:
            continue
        name = token.text.lower()
        if token.token_type in _CALL_TOKENS or name in _SQL_KEYWORD_CALLS:
            if i > 0 and tokens[i - 1].token_type == TokenType.DOT:
                _fail(f"the qualified function call {tokens[i - 2].text}.{token.text}() is not allowed")
            if name not in _SQL_KEYWORD_CALLS:
                _function_allowed(name)


# -- running ------------------------------------------------------------------------------------
@dataclass
class SparkExecution:
    """The capped result of one template run on Spark: a DataFrame that stays on the cluster."""

    frame: Any  # Spark DataFrame: the output columns and UNIT_COLUMN
    rows_before_cap: int
    rows_after_cap: int
    units: int
    has_units: bool  # every table has a unit column (else each row is its own unit)
    session: Any = None
    cached: tuple = ()  # what the run persisted on the executors

    def close(self) -> None:
        """Drop what the run cached and its views (a worker's job process ends anyway)."""
        for frame in self.cached:
            frame.unpersist()
        if self.session is not None:
            for table in self.session.catalog.listTables():
                if table.isTemporary:
                    self.session.catalog.dropTempView(table.name)


def job_session(session):
    """A session of its own for one job: its own temporary views and locked-down SQL settings."""
    own = session.newSession()
    for key, value in SESSION_SQL_CONF.items():
        own.conf.set(key, value)
    return own


def _arrow_table(source: Source) -> pa.Table:
    """The source's allowed columns (and unit) from its verified snapshot; NULL units dropped."""
    cols = list(source.columns) + ([source.unit] if source.unit and source.unit not in source.columns else [])
    try:
        table = pq.read_table(pa.BufferReader(verified_snapshot(source)), columns=cols)
    except (pa.ArrowException, KeyError) as exc:
        raise SourceChanged(f"table {source.name!r}: its snapshot cannot be read ({type(exc).__name__})") from None
    if source.unit is None:
        return table.append_column(ROW_COLUMN, pa.array(range(1, table.num_rows + 1), pa.int64()))
    return table.filter(pa.compute.is_valid(table.column(source.unit)))


def register_sources(session, sources: list[Source], *, empty: bool = False) -> None:
    """Each source as a temporary view under its association name, and nothing else (``empty``:
    its columns without its rows)."""
    for source in sources:
        if source.cluster:
            frame = _cluster_frame(session, source)
            frame = frame.limit(0) if empty else frame
        else:
            table = _arrow_table(source)
            table = table.slice(0, 0) if empty else table
            frame = session.createDataFrame(table) if table.num_rows else session.createDataFrame([], _schema(table))
        frame.createOrReplaceTempView(source.name)


def _cluster_frame(session, source: Source):
    """A cluster source's allowed columns (and unit) from its verified snapshot folder (the
    fingerprint recomputed on the cluster), NULL units dropped, as :func:`_arrow_table` does."""
    from pyspark.sql import functions as F

    from .spark_snapshots import verified_frame

    cols = list(source.columns) + ([source.unit] if source.unit and source.unit not in source.columns else [])
    frame = verified_frame(session, source)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise SourceChanged(f"table {source.name!r}: its snapshot lacks column {missing[0]!r}")
    frame = frame.select(*[F.col(f"`{c}`") for c in cols])
    if source.unit is None:
        return frame.withColumn(ROW_COLUMN, F.monotonically_increasing_id() + 1)
    return frame.where(F.col(f"`{source.unit}`").isNotNull())


def _schema(table: pa.Table):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(table.schema)


def describe_template_spark(template: CheckedTemplate, sources: list[Source], session) -> list[tuple[str, str]]:
    """``(name, type)`` of each output column (types as the engine names them), from Spark's own
    analysis of the template's Spark SQL over the sources' empty views: a template Spark cannot
    run is refused when it is created, not charged for when a job meets it."""
    sql = spark_sql(template)
    own = job_session(session)
    try:
        register_sources(own, sources, empty=True)
        fields = own.sql(sql).schema.fields
    except spark_errors() as exc:
        raise InputError(f"template rejected on Spark: it does not run: {str(exc).splitlines()[0]}") from None
    finally:
        SparkExecution(None, 0, 0, 0, False, own).close()
    return [(f.name, duckdb_type(f.dataType.simpleString())) for f in fields]


def run_template_spark(
    template: CheckedTemplate, sources: list[Source], cap: int, seed: int, session
) -> SparkExecution:
    """Run the checked template on Spark and keep at most ``cap`` rows per privacy unit.

    ``session``: the room's Spark session (a job session of its own is made from it). A
    failure over the real rows raises :class:`TemplateRuntimeError` (for the operator's log)."""
    if cap < 1:
        raise InputError(f"the cap on rows per privacy unit must be at least 1, not {cap}")
    sql = spark_sql(template)
    own = job_session(session)
    register_sources(own, sources)
    try:
        result = own.sql(sql).persist()
        before, units = _sizes(own, result)
        capped = _capped(result, template.output_columns, cap, seed).persist()
        after = capped.count()
    except spark_errors() as exc:
        raise TemplateRuntimeError(f"the template failed to run on Spark: {str(exc).splitlines()[0]}") from None
    return SparkExecution(capped, before, after, units, all(s.unit for s in sources), own, (result, capped))


def _sizes(session, result) -> tuple[int, int]:
    from pyspark.sql import functions as F

    row = result.agg(F.count(F.lit(1)), F.countDistinct(F.col(f"`{UNIT_COLUMN}`"))).collect()[0]
    return int(row[0]), int(row[1])


def _capped(result, columns: tuple[str, ...], cap: int, seed: int):
    """At most ``cap`` rows per unit, ranked by a seeded hash of the row's content."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    unit = F.col(f"`{UNIT_COLUMN}`")
    content = [F.col(f"`{c}`") for c in columns] + [F.lit(int(seed))]
    rank = F.row_number().over(Window.partitionBy(unit).orderBy(F.xxhash64(*content), *content[:-1]))
    ranked = result.where(unit.isNotNull()).withColumn("synthroom_rank", rank)
    return ranked.where(F.col("synthroom_rank") <= int(cap)).select(*[F.col(f"`{c}`") for c in columns], unit)


__all__ = [
    "DENIED_SPARK_FUNCTIONS",
    "SPARK_FUNCTIONS",
    "SparkExecution",
    "check_spark_sql",
    "describe_template_spark",
    "job_session",
    "register_sources",
    "run_template_spark",
    "spark_sql",
]
