"""Configured tables that live on the cluster: snapshots written and verified by Spark.

A ``spark_parquet``/``spark_csv`` source (a cluster path the operator granted) or a
``spark_table`` source (a catalog table the operator granted) is never read by a job. When its
owner configures or refreshes it, the room reads it on the cluster, keeps the allowed columns and
writes them, with Spark, as Parquet to a new folder under the room's Spark snapshot root (the
``spark_snapshot_root`` setting). Then it fingerprints what was *written* (:func:`fingerprint`),
on the cluster, and records the fingerprint as the table's ``snapshot_sha256``. A job on Spark
reads that folder only, recomputes the fingerprint before using a row, and fails with
:class:`~synthroom.errors.SourceChanged` when it differs (or the folder is gone). The member's
later changes to its source change nothing until it refreshes.

The fingerprint is the SHA-256 of the snapshot's schema, its row count and two sums, over every
row, of a 64-bit hash (``xxhash64``, two different seeds) of the row's values and null flags,
summed exactly as decimals: it does not depend on the order of rows or files. Only these
aggregates come back to the driver.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError, SourceChanged
from .sandbox import Source
from .spark import duckdb_type, first_line, spark_errors

# The owner's declared CSV types (DuckDB's names, as for local CSVs) as Spark types.
SPARK_DECLARED = {
    "BIGINT": "bigint",
    "DOUBLE": "double",
    "VARCHAR": "string",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp_ntz",
}
_SECOND_SEED = "synthroom-fingerprint"


def _q(name: str):
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def read_source(session, kind: str, location: str, *, shown: str, column_types: dict[str, str] | None = None):
    """The member's source as a Spark DataFrame (lazily): Parquet or CSV at a checked cluster
    location, or a catalog table by its checked ``db.name`` (a base table, never a view)."""
    try:
        if kind == "spark_table":
            return _catalog_table(session, location, shown)
        _refuse_sink_log(session, location, shown)
        if kind == "spark_parquet":
            frame = session.read.parquet(location)
        else:  # spark_csv: every value as text, then the declared types (a bad value is NULL)
            frame = session.read.option("header", "true").option("inferSchema", "false").csv(location)
            for name, sql_type in (column_types or {}).items():
                if name in frame.columns:
                    frame = frame.withColumn(name, _q(name).cast(SPARK_DECLARED[sql_type]))
        frame.schema  # noqa: B018  (resolves the files now: a missing path fails here)
        check_input_files(frame.inputFiles(), location, shown)
        return frame
    except spark_errors() as exc:
        raise InputError(f"data source {shown!r} cannot be read by Spark ({first_line(exc)})") from None


def _refuse_sink_log(session, location: str, shown: str) -> None:
    """A folder holding ``_spark_metadata`` is read by Spark as a streaming sink: the files its
    log lists, wherever they are (another member's included). Refused."""
    jvm = session.sparkContext._jvm
    log = jvm.org.apache.hadoop.fs.Path(f"{location.rstrip('/')}/_spark_metadata")
    if log.getFileSystem(session.sparkContext._jsc.hadoopConfiguration()).exists(log):
        raise InputError(
            f"data source {shown!r} holds a streaming sink log (_spark_metadata), which can name files "
            "anywhere; give a folder of plain Parquet or CSV files"
        )


def _parts(uri: str) -> tuple[str, str, list[str]]:
    split = urlsplit(uri)
    return split.scheme.lower(), split.netloc.lower(), [s for s in split.path.split("/") if s]


def check_input_files(files: list[str], location: str, shown: str) -> None:
    """Every file Spark will read lies at or below the (granted) ``location``: a second layer
    under the grant check, whatever the reader resolved (a log, a list file)."""
    scheme, host, segments = _parts(location)
    for file in files:
        f_scheme, f_host, f_segments = _parts(file)
        if (f_scheme, f_host) != (scheme, host) or f_segments[: len(segments)] != segments:
            raise InputError(f"data source {shown!r} reads files outside it; give a folder of plain files")


def _catalog_table(session, name: str, shown: str):
    """A table of Spark's catalog: it must exist and be a base table (a view inside a granted
    database could select any other table); a temporary view never qualifies."""
    if not session.catalog.tableExists(name):
        raise InputError(f"Spark table {shown!r} does not exist")
    table = session.catalog.getTable(name)
    if table.isTemporary or (table.tableType or "").upper() == "VIEW":
        raise InputError(f"Spark table {shown!r} is a view; configure a base table")
    database, plain = name.split(".")
    return session.read.table(f"`{database}`.`{plain}`")


def write_snapshot(frame, keep: list[str], root: str, *, shown: str) -> tuple[str, tuple[str, ...], dict[str, str]]:
    """Write the ``keep`` columns of ``frame`` as Parquet to a new folder under ``root``:
    ``(its URI, every column of the source, the DuckDB type of each kept column)``."""
    columns = tuple(frame.columns)
    missing = [c for c in keep if c not in columns]
    if missing:
        raise InputError(f"column {missing[0]!r} is not in {shown} (its columns: {', '.join(columns)})")
    kept = frame.select(*[_q(c) for c in keep])
    types = {f.name: duckdb_type(f.dataType.simpleString()) for f in kept.schema.fields}
    target = f"{root.rstrip('/')}/{secrets.token_hex(16)}"
    try:
        kept.write.mode("errorifexists").parquet(target)
    except spark_errors() as exc:
        delete_path(frame.sparkSession, target)
        raise InputError(f"data source {shown!r} could not be copied by Spark ({first_line(exc)})") from None
    return target, columns, types


def fingerprint(frame) -> str:
    """The order-independent fingerprint of a DataFrame's content (module docstring)."""
    from pyspark.sql import functions as F

    values = []
    for name in frame.columns:
        values += [_q(name), _q(name).isNull()]
    first = F.xxhash64(*values).cast("decimal(20,0)")
    second = F.xxhash64(F.lit(_SECOND_SEED), *values).cast("decimal(20,0)")
    row = frame.agg(F.count(F.lit(1)), F.sum(first), F.sum(second)).collect()[0]
    content = {"schema": frame.schema.simpleString(), "rows": int(row[0]), "sums": [str(row[1]), str(row[2])]}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def snapshot_fingerprint(session, path: str) -> str:
    """The fingerprint of the snapshot folder at ``path`` as it is now."""
    return fingerprint(session.read.parquet(path))


def snapshot_types(session, path: str) -> dict[str, str] | None:
    """The DuckDB type of each column of the snapshot at ``path`` (None: it cannot be read)."""
    try:
        return {f.name: duckdb_type(f.dataType.simpleString()) for f in session.read.parquet(path).schema.fields}
    except spark_errors():
        return None


def delete_path(session, path: str) -> None:
    """Delete a snapshot folder through Hadoop's FileSystem API (any scheme the cluster reads)."""
    jvm = session.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    try:
        hadoop_path.getFileSystem(session.sparkContext._jsc.hadoopConfiguration()).delete(hadoop_path, True)
    except spark_errors():
        pass  # already gone, or not ours to delete: nothing to clean up


def verified_frame(session, source: Source) -> Any:
    """The snapshot of a cluster ``source`` as a DataFrame, if it is still the one recorded."""
    try:
        frame = session.read.parquet(source.path)
        now = fingerprint(frame)
    except spark_errors():
        raise SourceChanged(f"table {source.name!r}: its snapshot cannot be read on the cluster") from None
    if now != source.sha256:
        raise SourceChanged(f"table {source.name!r}: its snapshot is not the one recorded (fingerprint differs)")
    return frame


__all__ = [
    "SPARK_DECLARED",
    "check_input_files",
    "delete_path",
    "fingerprint",
    "read_source",
    "snapshot_fingerprint",
    "snapshot_types",
    "verified_frame",
    "write_snapshot",
]
