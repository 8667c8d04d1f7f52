"""The sandboxed executor: runs a checked template in a fresh, locked-down in-memory DuckDB.

The executor itself loads each associated source (only its allowed columns, plus the unit
column) into an in-memory table named after the association, *then* locks the connection down:
no file or network access (``enable_external_access=false``), no extension installing or
autoloading, no configuration changes (``lock_configuration=true``). Only then does the
template's SQL run, and it can only name the association tables.

The privacy-unit cap is applied to the template's result: rows are ranked within their unit by
a seeded hash of the row's content (independent of other units' rows), rows beyond ``cap`` are
dropped, and rows with no unit are dropped. Base rows with a NULL unit are dropped on loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ..errors import InputError
from .template import ROW_COLUMN, UNIT_COLUMN, CheckedTemplate

SOURCE_KINDS = ("csv", "parquet", "duckdb")
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


@dataclass(frozen=True)
class Source:
    """One associated table's data source, as the executor loads it."""

    name: str  # the association name templates use
    kind: str  # csv | parquet | duckdb
    path: str
    table: str | None = None  # the table inside a DuckDB database
    columns: tuple[str, ...] = ()  # the allowed columns (the only ones loaded)
    unit: str | None = None  # privacy-unit column


@dataclass(frozen=True)
class Execution:
    """The capped result of one template run, with what the cap did."""

    frame: pd.DataFrame
    rows_before_cap: int
    rows_after_cap: int
    units: int
    unit_ids: pd.Series | None = None  # each row's privacy unit (None: the tables have none; a row is its own)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _relation(con: duckdb.DuckDBPyConnection, kind: str, path: str, table: str | None) -> str:
    """SQL naming the source's rows (attaches a DuckDB database read-only)."""
    if kind not in SOURCE_KINDS:
        raise InputError(f"data source kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
    if not Path(path).is_file():
        raise InputError(f"data source {path!r} does not exist")
    if kind == "csv":
        return f"read_csv({_lit(path)}, header = true)"
    if kind == "parquet":
        return f"read_parquet({_lit(path)})"
    if not table:
        raise InputError(f"a DuckDB data source needs a table name ({path!r})")
    con.execute(f"ATTACH {_lit(path)} AS synthroom_src (READ_ONLY)")
    return f"synthroom_src.{_q(table)}"


def describe_source(kind: str, path: str, table: str | None = None) -> list[tuple[str, str]]:
    """The source's columns and DuckDB types (reads the header/metadata, not the rows)."""
    con = duckdb.connect(":memory:", config=_CONFIG)
    try:
        rel = _relation(con, kind, path, table)
        return [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
    except duckdb.Error as exc:
        raise InputError(f"data source {path!r} cannot be read: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _load(con: duckdb.DuckDBPyConnection, source: Source, limit_zero: bool) -> None:
    rel = _relation(con, source.kind, source.path, source.table)
    cols = list(source.columns) + ([source.unit] if source.unit and source.unit not in source.columns else [])
    select = ", ".join(_q(c) for c in cols)
    if source.unit is None:
        select += f", row_number() OVER () AS {_q(ROW_COLUMN)}"
    where = f" WHERE {_q(source.unit)} IS NOT NULL" if source.unit else ""
    limit = " LIMIT 0" if limit_zero else ""
    try:
        con.execute(f"CREATE TABLE {_q(source.name)} AS SELECT {select} FROM {rel}{where}{limit}")
    except duckdb.Error as exc:
        raise InputError(f"table {source.name!r} cannot be loaded from {source.path!r}: {str(exc).splitlines()[0]}") from None
    if source.kind == "duckdb":
        con.execute("DETACH synthroom_src")


def _lock_down(con: duckdb.DuckDBPyConnection) -> None:
    for setting in ("enable_external_access = false", "autoinstall_known_extensions = false",
                    "autoload_known_extensions = false", "lock_configuration = true"):
        con.execute(f"SET {setting}")


def open_sandbox(sources: list[Source], limit_zero: bool = False) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory connection holding exactly ``sources``, locked down."""
    con = duckdb.connect(":memory:", config=_CONFIG)
    try:
        for source in sources:
            _load(con, source, limit_zero)
        _lock_down(con)
    except BaseException:
        con.close()
        raise
    return con


def output_types(template: CheckedTemplate, sources: list[Source]) -> dict[str, str]:
    """The DuckDB type of each output column (runs the template over empty tables)."""
    con = open_sandbox(sources, limit_zero=True)
    try:
        rows = con.execute(f"DESCRIBE {template.sql}").fetchall()
    except duckdb.Error as exc:
        raise InputError(f"template rejected: it does not run: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return {r[0]: r[1] for r in rows}


def run_template(template: CheckedTemplate, sources: list[Source], cap: int, seed: int) -> Execution:
    """Run the template in the sandbox and keep at most ``cap`` rows per privacy unit."""
    if cap < 1:
        raise InputError(f"the cap on rows per privacy unit must be at least 1, not {cap}")
    con = open_sandbox(sources)
    unit = _q(UNIT_COLUMN)
    out = ", ".join(_q(c) for c in template.output_columns)
    try:
        con.execute(f"CREATE TEMP TABLE synthroom_result AS {template.executable_sql}")
        before, units = con.execute(
            f"SELECT count(*), count(DISTINCT {unit}) FROM synthroom_result").fetchone()
        frame = con.execute(
            f"SELECT {out}, {unit} FROM (SELECT *, row_number() OVER (PARTITION BY {unit} ORDER BY "
            f"hash(r, {int(seed)})) AS synthroom_rank FROM synthroom_result AS r WHERE {unit} IS NOT NULL) "
            f"WHERE synthroom_rank <= {int(cap)} ORDER BY {unit}, synthroom_rank"
        ).df()
    except duckdb.Error as exc:
        raise InputError(f"the template failed to run: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    ids = frame.pop(UNIT_COLUMN)  # a row number is no person's id: then each row is its own unit
    return Execution(frame=frame, rows_before_cap=int(before), rows_after_cap=len(frame), units=int(units),
                     unit_ids=ids if all(s.unit for s in sources) else None)
