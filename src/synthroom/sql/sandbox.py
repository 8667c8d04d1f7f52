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

What runs on DuckDB (the staging connection, the locked-down executor, the cap's query) is
:mod:`synthroom.engine.sandbox`; this module opens the member's files and holds the policy.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..engine.sandbox import Source, describe_template, run_capped, write_snapshot
from .template import UNIT_COLUMN, CheckedTemplate

LOCAL_SOURCE_KINDS = ("csv", "parquet", "duckdb")  # a file below a granted folder, read by the room
# On the cluster (a granted path, or a granted catalog table), snapshotted and read by Spark only:
# see synthroom.engine.spark_snapshots and synthroom.room.grants.
SPARK_SOURCE_KINDS = ("spark_parquet", "spark_csv", "spark_table")
SOURCE_KINDS = LOCAL_SOURCE_KINDS + SPARK_SOURCE_KINDS
_COPY_CHUNK = 1 << 20


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
# The types an owner may declare for a CSV column (``column_types``), instead of the sniffed one.
DECLARABLE_TYPES = ("BIGINT", "DOUBLE", "VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP")


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
    if kind not in LOCAL_SOURCE_KINDS:
        raise InputError(f"data source kind {kind!r} is not one of {', '.join(LOCAL_SOURCE_KINDS)}")
    column_types = check_column_types(kind, column_types)
    token = secrets.token_hex(16)
    staged, target = folder / f".staging-{token}", folder / f"{token}.parquet"
    try:
        _copy_fd(fd, staged)
        columns, types = write_snapshot(kind, staged, target, keep, shown=shown, table=table, column_types=column_types)
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
    if kind not in ("csv", "spark_csv"):
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


# -- the executor --------------------------------------------------------------------------------
# Argument types an aggregate can fail on: 128-bit and arbitrary-precision integers and wide
# decimals overflow its sum; the averaging ones fail on the largest dates.
_WIDE_TYPES = ("HUGEINT", "UHUGEINT", "BIGNUM", "VARINT")
_DATE_AVERAGING = frozenset({"avg", "mean", "median", "quantile", "quantile_cont", "percentile_cont", "mad"})


def output_types(template: CheckedTemplate, sources: list[Source]) -> dict[str, str]:
    """The DuckDB type of each output column (runs the template over empty tables).

    Also refuses an aggregate over argument types it can fail on (a sum of HUGEINT values can
    overflow on one unit's rows): types are fixed by the snapshots, so this holds at run time."""
    rows, arguments = describe_template(template.executable_sql, template.aggregate_arguments_sql, sources)
    for name, sql_type in rows:
        if sql_type.upper().startswith("INTERVAL"):
            raise InputError(
                f"template rejected: output column {name!r} is an INTERVAL, which a data frame cannot "
                "hold for every value; give a number (e.g. date_diff('day', a, b)) instead"
            )
    for sql_type, name in zip(arguments, template.aggregate_names):
        if _can_fail(name, sql_type):
            raise InputError(
                f"template rejected: {name}() over {sql_type} values can fail on some rows; "
                "cast its argument to DOUBLE (or BIGINT, or TIMESTAMP for dates)"
            )
    return {name: sql_type for name, sql_type in rows if name != UNIT_COLUMN}


def _can_fail(aggregate: str, sql_type: str) -> bool:
    sql_type = sql_type.upper()
    if sql_type.startswith(_WIDE_TYPES) or (sql_type == "DATE" and aggregate in _DATE_AVERAGING):
        return True
    if sql_type.startswith("DECIMAL("):
        return int(sql_type[len("DECIMAL(") :].split(",")[0]) > 18
    return False


def run_template(template: CheckedTemplate, sources: list[Source], cap: int, seed: int) -> Execution:
    """Run the template in the sandbox and keep at most ``cap`` rows per privacy unit.

    A failure while running over the real rows raises :class:`TemplateRuntimeError`, whose
    message (which may quote values) is for the operator's log only."""
    if cap < 1:
        raise InputError(f"the cap on rows per privacy unit must be at least 1, not {cap}")
    frame, before, units = run_capped(template.executable_sql, template.output_columns, sources, cap, seed)
    ids = frame.pop(UNIT_COLUMN)  # a row number is no person's id: then each row is its own unit
    return Execution(
        frame=frame,
        rows_before_cap=before,
        rows_after_cap=len(frame),
        units=units,
        unit_ids=ids if all(s.unit for s in sources) else None,
    )
