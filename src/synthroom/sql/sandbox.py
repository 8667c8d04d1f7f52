"""Member data in, template results out: snapshots of the sources and the locked-down executor.

**Snapshots (configure time).** A member's source (CSV, Parquet, or a base table of a DuckDB
database) is read once, when its table is configured or refreshed by its owner, and only its
allowed columns are written to a Parquet snapshot in the room's own data folder (0700, files
0600). The member's file is opened component by component with ``O_NOFOLLOW`` below the granted
data folder (a symlink anywhere in the member's part of the path is refused), copied through that
file descriptor into a private staging file, and read by a DuckDB connection that may touch only
that staging copy (``enable_external_access=false`` with ``allowed_paths``, configuration
locked): a view, macro or generated column inside a member's database can reach nothing but the
member's own copied file, and is refused anyway (only base tables without generated columns are
accepted). CSV values are read as text and converted to the types sniffed at configure time under
``TRY``: a value that does not parse becomes missing instead of failing the load.

**Runs (job time).** Jobs never open the member's file again. Each snapshot is opened with
``O_NOFOLLOW``, read into memory and compared with the SHA-256 recorded when it was written (a
missing, swapped or altered snapshot fails the job with :class:`~synthroom.errors.SourceChanged`),
then handed to DuckDB as an Arrow table: the connection is locked down (no file or network
access, no extensions, configuration locked) *before* any data is loaded, and the template runs
there, naming only the association tables.

The privacy-unit cap is applied to the template's result: rows are ranked within their unit by
a seeded hash of the row's content (independent of other units' rows), rows beyond ``cap`` are
dropped, and rows with no unit are dropped. Base rows with a NULL unit are dropped on loading.

Error messages a member can see never quote row values or server paths other than the one the
member gave; DuckDB's own text goes to the operator's log (logger ``synthroom.sql``).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..engine.types import quote_ident as _q
from ..engine.types import quote_literal as _lit
from ..errors import InputError, SourceChanged, TemplateRuntimeError
from .template import ROW_COLUMN, UNIT_COLUMN, CheckedTemplate

SOURCE_KINDS = ("csv", "parquet", "duckdb")
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
_LOCKED = ("enable_external_access = false", "lock_configuration = true")
_SOURCE_DB = "synthroom_src"
_COPY_CHUNK = 1 << 20
log = logging.getLogger("synthroom.sql")


@dataclass(frozen=True)
class Source:
    """One associated table as the executor loads it: its snapshot and what may be read of it."""

    name: str  # the association name templates use
    path: str  # the snapshot (Parquet, in the room's data folder)
    sha256: str  # the snapshot's SHA-256, recorded when it was written
    columns: tuple[str, ...] = ()  # the allowed columns (the only ones loaded)
    unit: str | None = None  # privacy-unit column


@dataclass(frozen=True)
class Snapshot:
    """What configuring (or refreshing) a table wrote: the snapshot and the source's columns."""

    path: str
    sha256: str
    columns: tuple[str, ...]  # every column of the source, allowed or not (names only)
    types: dict[str, str]  # DuckDB type of each kept column


@dataclass(frozen=True)
class Execution:
    """The capped result of one template run, with what the cap did."""

    frame: pd.DataFrame
    rows_before_cap: int
    rows_after_cap: int
    units: int
    unit_ids: pd.Series | None = None  # each row's privacy unit (None: the tables have none; a row is its own)


# -- opening a member's file ---------------------------------------------------------------------
def open_below(root: str | Path, relative: tuple[str, ...], shown: str) -> int:
    """A read-only descriptor of the regular file ``root/relative...``, following no symlink.

    ``root`` is a data folder the operator granted (trusted); every component below it, the file
    included, is opened with ``O_NOFOLLOW`` relative to its parent's descriptor, so a symlink
    swapped in anywhere along the member's part of the path is refused, not followed. ``shown`` is
    the path as the member gave it: the only path an error message names."""
    if not relative or any(part in ("", ".", "..") for part in relative):
        raise InputError(f"data source {shown!r} must name a file inside one of your data folders")
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        raise InputError(f"data source {shown!r}: its data folder cannot be opened") from None
    try:
        for i, part in enumerate(relative):
            last = i == len(relative) - 1
            try:
                # O_NONBLOCK: a FIFO put in the file's place must not block the server on open
                child = os.open(part, flags | (os.O_NONBLOCK if last else os.O_DIRECTORY), dir_fd=fd)
            except OSError as exc:
                raise InputError(f"data source {shown!r} {_open_problem(exc)}") from None
            os.close(fd)
            fd = child
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"data source {shown!r} is not a regular file")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_problem(exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "is or goes through a symbolic link (or a non-folder); give the real path of the file"
    if exc.errno == errno.ENOENT:
        return "does not exist"
    if exc.errno == errno.EACCES:
        return "cannot be read by the server"
    return "cannot be opened"


def _copy_fd(fd: int, target: Path) -> None:
    """Copy an open file into a new private (0600) file that must not exist yet."""
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(out, "wb") as sink:
        while chunk := os.read(fd, _COPY_CHUNK):
            sink.write(chunk)


def data_folder(artifacts: str | Path) -> Path:
    """The room's folder for snapshots (created 0700)."""
    folder = Path(artifacts) / "data"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


# -- snapshots -----------------------------------------------------------------------------------
def _staging_connection(allowed: list[Path]) -> duckdb.DuckDBPyConnection:
    """A connection that may open exactly the ``allowed`` files and nothing else."""
    con = duckdb.connect(":memory:", config=_CONFIG)
    paths = ", ".join(_lit(str(p)) for p in allowed)
    con.execute(f"SET allowed_paths = [{paths}]")
    for setting in _LOCKED:
        con.execute(f"SET {setting}")
    return con


# The types an owner may declare for a CSV column (``column_types``), instead of the sniffed one.
DECLARABLE_TYPES = ("BIGINT", "DOUBLE", "VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP")


def _csv_relation(
    con: duckdb.DuckDBPyConnection, staged: Path, declared: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """The CSV's rows with the owner's ``declared`` types, else the sniffed ones; values that do
    not parse become NULL."""
    # header = true, skip = 0: the sniffer may otherwise take a late odd line for the header (and
    # name the columns after a row's values)
    options = "header = true, skip = 0"
    sniff = con.execute(
        f"SELECT Columns, DateFormat, TimestampFormat FROM sniff_csv({_lit(str(staged))}, {options})"
    ).fetchone()
    columns, date_format, stamp_format = sniff
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
    base = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' AND table_name = ?",
        [_SOURCE_DB, table],
    ).fetchone()[0]
    if not base:
        view = con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE database_name = ? AND view_name = ?", [_SOURCE_DB, table]
        ).fetchone()[0]
        what = "is a view; only base tables are read" if view else "is not a base table of its main schema"
        raise InputError(f"table {table!r} of data source {shown!r} {what}")
    generated = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
        "AND table_name = ? AND is_generated",
        [_SOURCE_DB, table],
    ).fetchone()[0]
    if generated:
        raise InputError(
            f"table {table!r} of data source {shown!r} has generated columns, which run code when "
            "read; store their values in plain columns instead"
        )
    return f"{_SOURCE_DB}.main.{_q(table)}"


def snapshot_source(
    kind: str,
    fd: int,
    shown: str,
    keep: list[str],
    folder: Path,
    *,
    table: str | None = None,
    column_types: dict[str, str] | None = None,
) -> Snapshot:
    """Copy the open member file ``fd`` and write the ``keep`` columns of it to a new snapshot.

    ``shown`` is the path as the member gave it (messages name it, and its file name). Raises
    :class:`InputError` for a file that is not a readable source of ``kind``, a column missing
    from it, or a DuckDB table that is not a plain base table. ``column_types`` (CSV only) are the
    owner's declared types, which the sniffer's guesses from the rows never override."""
    if kind not in SOURCE_KINDS:
        raise InputError(f"data source kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
    column_types = check_column_types(kind, column_types)
    token = secrets.token_hex(16)
    staged, target = folder / f".staging-{token}", folder / f"{token}.parquet"
    allowed = [staged, Path(f"{staged}.wal"), target]
    try:
        _copy_fd(fd, staged)
        con = _staging_connection(allowed)
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
                raise InputError(
                    f"column {missing[0]!r} is not in {Path(shown).name} (its columns: {', '.join(columns)})"
                )
            select = ", ".join(_q(c) for c in dict.fromkeys(keep))
            con.execute(f"COPY (SELECT {select} FROM {rel}) TO {_lit(str(target))} (FORMAT parquet)")
            types = {r[0]: r[1] for r in described if r[0] in keep}
        except duckdb.Error as exc:
            log.warning("data source %s (%s) cannot be read: %s", shown, kind, exc)
            raise InputError(
                f"data source {shown!r} cannot be read as a {kind} source (the operator's log has the detail)"
            ) from None
        finally:
            con.close()
        os.chmod(target, 0o600)
        return Snapshot(str(target), _sha256_file(target), columns, types)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        staged.unlink(missing_ok=True)
        Path(f"{staged}.wal").unlink(missing_ok=True)


def check_column_types(kind: str, column_types: dict[str, str] | None) -> dict[str, str]:
    """The declared CSV column types, upper-cased; refuses them for other kinds and unknown types."""
    if not column_types:
        return {}
    if kind != "csv":
        raise InputError(f"column_types are for CSV sources; a {kind} source declares its own types")
    declared = {}
    for name, sql_type in column_types.items():
        if not isinstance(sql_type, str) or sql_type.upper() not in DECLARABLE_TYPES:
            raise InputError(
                f"column_types: {sql_type!r} for column {name!r} is not one of {', '.join(DECLARABLE_TYPES)}"
            )
        declared[name] = sql_type.upper()
    return declared


def snapshot_file(
    kind: str, path: str | Path, keep: list[str], folder: str | Path, *, table: str | None = None
) -> Snapshot:
    """Snapshot a file the caller trusts (tests, benchmarks) into ``folder``, with the same
    checks as the room's (which opens a member's file below its data folder instead)."""
    path = Path(path)
    fd = open_below(path.parent, (path.name,), str(path))
    try:
        return snapshot_source(kind, fd, str(path), keep, data_folder(folder), table=table)
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verified_snapshot(source: Source) -> bytes:
    """The snapshot's bytes, if it is still the file recorded; else :class:`SourceChanged`."""
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


# Argument types an aggregate can fail on: 128-bit and arbitrary-precision integers and wide
# decimals overflow its sum; the averaging ones fail on the largest dates.
_WIDE_TYPES = ("HUGEINT", "UHUGEINT", "BIGNUM", "VARINT")
_DATE_AVERAGING = frozenset({"avg", "mean", "median", "quantile", "quantile_cont", "percentile_cont", "mad"})


def output_types(template: CheckedTemplate, sources: list[Source]) -> dict[str, str]:
    """The DuckDB type of each output column (runs the template over empty tables).

    Also refuses an aggregate over argument types it can fail on (a sum of HUGEINT values can
    overflow on one unit's rows): types are fixed by the snapshots, so this holds at run time."""
    con = open_sandbox(sources, limit_zero=True)
    try:
        rows = con.execute(f"DESCRIBE {template.executable_sql}").fetchall()
        arguments = (
            con.execute(f"DESCRIBE {template.aggregate_arguments_sql}").fetchall()
            if template.aggregate_arguments_sql
            else []
        )
    except duckdb.Error as exc:
        raise InputError(f"template rejected: it does not run: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    for name, sql_type, *_ in rows:
        if sql_type.upper().startswith("INTERVAL"):
            raise InputError(
                f"template rejected: output column {name!r} is an INTERVAL, which a data frame cannot "
                "hold for every value; give a number (e.g. date_diff('day', a, b)) instead"
            )
    for (_, sql_type, *_), name in zip(arguments, template.aggregate_names):
        if _can_fail(name, sql_type):
            raise InputError(
                f"template rejected: {name}() over {sql_type} values can fail on some rows; "
                "cast its argument to DOUBLE (or BIGINT, or TIMESTAMP for dates)"
            )
    return {r[0]: r[1] for r in rows if r[0] != UNIT_COLUMN}


def _can_fail(aggregate: str, sql_type: str) -> bool:
    sql_type = sql_type.upper()
    if sql_type.startswith(_WIDE_TYPES) or (sql_type == "DATE" and aggregate in _DATE_AVERAGING):
        return True
    if sql_type.startswith("DECIMAL("):
        return int(sql_type[len("DECIMAL(") :].split(",")[0]) > 18
    return False


def _frame_value(column: str, sql_type: str) -> str:
    """An output column as the data frame can hold every value of it: an infinite or too distant
    date or timestamp (pandas holds microseconds) becomes missing instead of failing the job."""
    if sql_type == "DATE":
        return f"CASE WHEN isfinite({_q(column)}) THEN TRY(CAST({_q(column)} AS TIMESTAMP)) END AS {_q(column)}"
    if sql_type.startswith("TIMESTAMP"):
        return f"CASE WHEN isfinite({_q(column)}) THEN {_q(column)} END AS {_q(column)}"
    return _q(column)


def run_template(template: CheckedTemplate, sources: list[Source], cap: int, seed: int) -> Execution:
    """Run the template in the sandbox and keep at most ``cap`` rows per privacy unit.

    A failure while running over the real rows raises :class:`TemplateRuntimeError`, whose
    message (which may quote values) is for the operator's log only."""
    if cap < 1:
        raise InputError(f"the cap on rows per privacy unit must be at least 1, not {cap}")
    con = open_sandbox(sources)
    unit = _q(UNIT_COLUMN)
    try:
        con.execute(f"CREATE TEMP TABLE synthroom_result AS {template.executable_sql}")
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'synthroom_result'"
            ).fetchall()
        )
        out = ", ".join(_frame_value(c, types[c]) for c in template.output_columns)
        before, units = con.execute(f"SELECT count(*), count(DISTINCT {unit}) FROM synthroom_result").fetchone()
        frame = con.execute(
            f"SELECT {out}, {unit} FROM (SELECT *, row_number() OVER (PARTITION BY {unit} ORDER BY "
            f"hash(r, {int(seed)})) AS synthroom_rank FROM synthroom_result AS r WHERE {unit} IS NOT NULL) "
            f"WHERE synthroom_rank <= {int(cap)} ORDER BY {unit}, synthroom_rank"
        ).df()
    except duckdb.Error as exc:
        raise TemplateRuntimeError(f"the template failed to run: {exc}") from None
    finally:
        con.close()
    ids = frame.pop(UNIT_COLUMN)  # a row number is no person's id: then each row is its own unit
    return Execution(
        frame=frame,
        rows_before_cap=int(before),
        rows_after_cap=len(frame),
        units=int(units),
        unit_ids=ids if all(s.unit for s in sources) else None,
    )
