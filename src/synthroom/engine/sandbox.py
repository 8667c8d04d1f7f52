"""DuckDB for the clean room's templates: the snapshot writer and the locked-down executor.

The room's policy (which member file may be opened, the template checks, the cap's meaning, what
a member may read in an error) is :mod:`synthroom.sql`'s; this module is the DuckDB side of it,
small on purpose so that another engine mirrors it (Spark: :mod:`.spark_sandbox`):

* :func:`write_snapshot`: the allowed columns of a member's staged copy (CSV, Parquet, or a base
  table of a DuckDB database) to a Parquet snapshot, on a connection that may open only the
  staged copy and the snapshot (``enable_external_access=false`` with ``allowed_paths``,
  configuration locked). CSV values are read as text and converted to the sniffed (or declared)
  types under ``TRY``: a value that does not parse becomes missing instead of failing the load.
* :func:`open_sandbox`: an in-memory connection locked down (no file or network access, no
  extensions, configuration locked) *before* any data is loaded, holding exactly the sources'
  verified snapshots (:func:`verified_snapshot`), each under its association name.
* :func:`describe_template` and :func:`run_capped`: a checked template's output types (run over
  empty tables), and its result with at most ``cap`` rows per privacy unit (rows ranked within
  their unit by a seeded hash of the row's content; rows with no unit dropped).
* :func:`function_catalog`: DuckDB's own aggregate, volatile and value-raising function names,
  which the template checker reads.

DuckDB's own error text goes to the operator's log (logger ``synthroom.sql``), never to a member.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError, SourceChanged, TemplateRuntimeError
from .counting import one_row
from .types import quote_ident as _q
from .types import quote_literal as _lit

UNIT_COLUMN = "__synthroom_unit"  # hidden output column of a template: the row's privacy unit
ROW_COLUMN = "__synthroom_row"  # row number the executor adds to tables without a unit column
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
_LOCKED = ("enable_external_access = false", "lock_configuration = true")
_SOURCE_DB = "synthroom_src"
log = logging.getLogger("synthroom.sql")


@dataclass(frozen=True)
class Source:
    """One associated table as the executor loads it: its snapshot and what may be read of it."""

    name: str  # the association name templates use
    path: str  # the snapshot (Parquet, in the room's data folder)
    sha256: str  # the snapshot's SHA-256, recorded when it was written
    columns: tuple[str, ...] = ()  # the allowed columns (the only ones loaded)
    unit: str | None = None  # privacy-unit column
    cluster: bool = False  # a Spark snapshot folder (a cluster URI, fingerprinted): jobs on Spark only


def verified_snapshot(source: Source) -> bytes:
    """The snapshot's bytes, if it is still the file recorded; else :class:`SourceChanged`."""
    if source.cluster:  # a table on the cluster: only the Spark executor reads its snapshot
        raise SourceChanged(f"table {source.name!r} is a Spark source; only a job on Spark can read it")
    try:
        fd = os.open(source.path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SourceChanged(f"table {source.name!r}: its snapshot cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SourceChanged(f"table {source.name!r}: its snapshot is not a regular file")
        data = f.read()
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise SourceChanged(f"table {source.name!r}: its snapshot is not the one recorded (SHA-256 differs)")
    return data


@functools.cache
def function_catalog() -> dict[str, frozenset[str]]:
    """Names of DuckDB's aggregate, volatile and value-raising functions (from its own catalog)."""
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute(
            "SELECT function_name, function_type, stability, macro_definition FROM duckdb_functions()"
        ).fetchall()
    finally:
        con.close()
    aggregate = {n.lower() for n, kind, _, _ in rows if kind == "aggregate"}
    volatile = {n.lower() for n, _, stability, _ in rows if stability == "VOLATILE"}
    raising = {n.lower() for n, kind, _, body in rows if kind == "macro" and body and '"error"(' in body}
    return {
        "aggregate": frozenset(aggregate),
        "volatile": frozenset(volatile - {"error"}),
        "raising": frozenset(raising | {"error"}),
    }


# -- snapshots -----------------------------------------------------------------------------------
def _staging_connection(allowed: list[Path]) -> duckdb.DuckDBPyConnection:
    """A connection that may open exactly the ``allowed`` files and nothing else."""
    con = duckdb.connect(":memory:", config=_CONFIG)
    paths = ", ".join(_lit(str(p)) for p in allowed)
    con.execute(f"SET allowed_paths = [{paths}]")
    for setting in _LOCKED:
        con.execute(f"SET {setting}")
    return con


def _csv_relation(
    con: duckdb.DuckDBPyConnection, staged: Path, declared: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """The CSV's rows with the owner's ``declared`` types, else the sniffed ones; values that do
    not parse become NULL."""
    # header = true, skip = 0: the sniffer may otherwise take a late odd line for the header (and
    # name the columns after a row's values)
    options = "header = true, skip = 0"
    columns, date_format, stamp_format = one_row(
        con, f"SELECT Columns, DateFormat, TimestampFormat FROM sniff_csv({_lit(str(staged))}, {options})"
    )
    types = {c["name"]: c["type"] for c in columns}
    unknown = sorted(set(declared or {}) - set(types))
    if unknown:
        raise InputError(
            f"column_types names {unknown[0]!r}, which is not a column of the file (its columns: {', '.join(types)})"
        )
    types.update(declared or {})
    parts = []
    for name, sql_type in types.items():
        fmt = date_format if sql_type == "DATE" else stamp_format if sql_type.startswith("TIMESTAMP") else None
        # TRY(CAST(...)), not TRY_CAST: DuckDB 2.0.1 pushes a TRY_CAST over read_csv down into the
        # reader as a strict column type, which fails on the first value that does not parse.
        value = (
            f"TRY(CAST(strptime({_q(name)}, {_lit(fmt)}) AS {sql_type}))"
            if fmt
            else f"TRY(CAST({_q(name)} AS {sql_type}))"
        )
        parts.append(f"{value} AS {_q(name)}")
    rel = f"(SELECT {', '.join(parts)} FROM read_csv({_lit(str(staged))}, {options}, all_varchar = true))"
    return rel, types


def _duckdb_relation(con: duckdb.DuckDBPyConnection, staged: Path, table: str | None, shown: str) -> str:
    """A base table of the staged database; views, generated columns and other schemas refused."""
    if not table:
        raise InputError(f"a DuckDB data source needs a table name ({shown!r})")
    con.execute(f"ATTACH {_lit(str(staged))} AS {_SOURCE_DB} (READ_ONLY)")
    base = one_row(
        con,
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' AND table_name = ?",
        [_SOURCE_DB, table],
    )[0]
    if not base:
        view = one_row(
            con, "SELECT count(*) FROM duckdb_views() WHERE database_name = ? AND view_name = ?", [_SOURCE_DB, table]
        )[0]
        what = "is a view; only base tables are read" if view else "is not a base table of its main schema"
        raise InputError(f"table {table!r} of data source {shown!r} {what}")
    generated = one_row(
        con,
        "SELECT count(*) FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
        "AND table_name = ? AND is_generated",
        [_SOURCE_DB, table],
    )[0]
    if generated:
        raise InputError(
            f"table {table!r} of data source {shown!r} has generated columns, which run code when "
            "read; store their values in plain columns instead"
        )
    return f"{_SOURCE_DB}.main.{_q(table)}"


# -- the executor --------------------------------------------------------------------------------
def _load(con: duckdb.DuckDBPyConnection, source: Source, limit_zero: bool) -> None:
    cols = list(source.columns) + ([source.unit] if source.unit and source.unit not in source.columns else [])
    try:
        arrow = pq.read_table(pa.BufferReader(verified_snapshot(source)), columns=cols)
    except (pa.ArrowException, KeyError) as exc:
        raise SourceChanged(f"table {source.name!r}: its snapshot cannot be read ({type(exc).__name__})") from None
    select = ", ".join(_q(c) for c in cols)
    if source.unit is None:
        select += f", row_number() OVER () AS {_q(ROW_COLUMN)}"
    where = f" WHERE {_q(source.unit)} IS NOT NULL" if source.unit else ""
    limit = " LIMIT 0" if limit_zero else ""
    view = f"synthroom_arrow_{secrets.token_hex(8)}"
    con.register(view, arrow)
    try:
        con.execute(f"CREATE TABLE {_q(source.name)} AS SELECT {select} FROM {view}{where}{limit}")
    finally:
        con.unregister(view)


def open_sandbox(sources: list[Source], limit_zero: bool = False) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory connection, locked down first, then holding exactly ``sources``."""
    con = duckdb.connect(":memory:", config=_CONFIG)
    try:
        for setting in _LOCKED:
            con.execute(f"SET {setting}")
        for source in sources:
            _load(con, source, limit_zero)
    except BaseException:
        con.close()
        raise
    return con


def _frame_value(column: str, sql_type: str) -> str:
    """An output column as the data frame can hold every value of it: an infinite or too distant
    date or timestamp (pandas holds microseconds) becomes missing instead of failing the job."""
    if sql_type == "DATE":
        return f"CASE WHEN isfinite({_q(column)}) THEN TRY(CAST({_q(column)} AS TIMESTAMP)) END AS {_q(column)}"
    if sql_type.startswith("TIMESTAMP"):
        return f"CASE WHEN isfinite({_q(column)}) THEN {_q(column)} END AS {_q(column)}"
    return _q(column)


def write_snapshot(
    kind: str,
    staged: Path,
    target: Path,
    keep: list[str],
    *,
    shown: str,
    table: str | None = None,
    column_types: dict[str, str] | None = None,
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Write the ``keep`` columns of the staged copy (``kind``: csv, parquet or duckdb, whose base
    ``table`` is read) to the Parquet file ``target``, on a connection that may open nothing
    else; returns every column of the source (names) and the DuckDB type of each kept one.
    ``shown``: the path as the member gave it, the only one a message names; a source DuckDB
    cannot read is an :class:`InputError` whose detail goes to the operator's log."""
    con = _staging_connection([staged, Path(f"{staged}.wal"), target])
    try:
        if kind == "csv":
            rel, _ = _csv_relation(con, staged, column_types)
        elif kind == "parquet":
            rel = f"read_parquet({_lit(str(staged))})"
        else:
            rel = _duckdb_relation(con, staged, table, shown)
        described = con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
        columns = tuple(r[0] for r in described)
        missing = [c for c in keep if c not in columns]
        if missing:
            raise InputError(f"column {missing[0]!r} is not in {Path(shown).name} (its columns: {', '.join(columns)})")
        select = ", ".join(_q(c) for c in dict.fromkeys(keep))
        con.execute(f"COPY (SELECT {select} FROM {rel}) TO {_lit(str(target))} (FORMAT parquet)")
        return columns, {r[0]: r[1] for r in described if r[0] in keep}
    except duckdb.Error as exc:
        log.warning("data source %s (%s) cannot be read: %s", shown, kind, exc)
        raise InputError(
            f"data source {shown!r} cannot be read as a {kind} source (the operator's log has the detail)"
        ) from None
    finally:
        con.close()


def describe_template(
    executable_sql: str, arguments_sql: str | None, sources: list[Source]
) -> tuple[list[tuple[str, str]], list[str]]:
    """``(name, DuckDB type)`` of each output column of ``executable_sql``, and the type of each
    column of ``arguments_sql`` (a checked template's aggregates' arguments; None: none), both
    from a run over the sources' empty tables. A template that does not run is refused."""
    con = open_sandbox(sources, limit_zero=True)
    try:
        rows = con.execute(f"DESCRIBE {executable_sql}").fetchall()
        arguments = con.execute(f"DESCRIBE {arguments_sql}").fetchall() if arguments_sql else []
    except duckdb.Error as exc:
        raise InputError(f"template rejected: it does not run: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return [(r[0], r[1]) for r in rows], [r[1] for r in arguments]


def run_capped(
    executable_sql: str, output_columns: "tuple[str, ...]", sources: list[Source], cap: int, seed: int
) -> tuple[pd.DataFrame, int, int]:
    """Run ``executable_sql`` (which outputs ``UNIT_COLUMN``) in the sandbox; keep at most ``cap``
    rows per unit, ranked by a hash of the row's content seeded by ``seed``, rows with no unit
    dropped. Returns the ``output_columns`` and ``UNIT_COLUMN`` of the kept rows, the result's
    row count and its number of distinct units, both before the cap. A failure over the real
    rows is a :class:`TemplateRuntimeError`, whose message (it may quote values) is for the
    operator's log only."""
    con = open_sandbox(sources)
    unit = _q(UNIT_COLUMN)
    try:
        con.execute(f"CREATE TEMP TABLE synthroom_result AS {executable_sql}")
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'synthroom_result'"
            ).fetchall()
        )
        out = ", ".join(_frame_value(c, types[c]) for c in output_columns)
        before, units = one_row(con, f"SELECT count(*), count(DISTINCT {unit}) FROM synthroom_result")
        frame = con.execute(
            f"SELECT {out}, {unit} FROM (SELECT *, row_number() OVER (PARTITION BY {unit} ORDER BY "
            f"hash(r, {int(seed)})) AS synthroom_rank FROM synthroom_result AS r WHERE {unit} IS NOT NULL) "
            f"WHERE synthroom_rank <= {int(cap)} ORDER BY {unit}, synthroom_rank"
        ).df()
    except duckdb.Error as exc:
        raise TemplateRuntimeError(f"the template failed to run: {exc}") from None
    finally:
        con.close()
    return frame, int(before), int(units)


def limit_every_connection(settings: dict[str, Any]) -> None:
    """Every DuckDB connection this process opens from now on starts with ``settings`` (a job's
    child process: its threads, memory and temporary-disk limits), over what the caller asks."""
    connect = duckdb.connect

    def limited_connect(database: str = ":memory:", read_only: bool = False, config: dict | None = None, **kw):
        return connect(database, read_only=read_only, config={**(config or {}), **settings}, **kw)

    duckdb.connect = limited_connect  # type: ignore[assignment]


__all__ = [
    "ROW_COLUMN",
    "UNIT_COLUMN",
    "Source",
    "describe_template",
    "function_catalog",
    "limit_every_connection",
    "open_sandbox",
    "run_capped",
    "verified_snapshot",
    "write_snapshot",
]
