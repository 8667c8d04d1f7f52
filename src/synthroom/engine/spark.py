"""The counting interface on Apache Spark (``pip install 'synthroom[spark]'``).

The same queries as on DuckDB (:mod:`synthroom.engine.counting`, rendered in the Spark
:data:`~synthroom.engine.dialect.SPARK` dialect) run where the data lives; only the group-by
counts come back to the driver, never a row. The counts are exact integers and every value is
typed by the engine's own grammar, so the same data, settings and seed give the identical
synthetic table on both engines (tests/test_engine_spark.py, bench/spark_parity.py).

What a table can be: a Parquet file or folder, a CSV file (``.csv``, ``.csv.gz``, ``.tsv``,
``.txt``; every column read as text, as on DuckDB) at any path the cluster can read (local,
``hdfs://``, ``s3a://`` with the usual Hadoop connectors configured by the user), a Spark table
or view by name, a Spark DataFrame, or a pandas DataFrame (shipped from the driver).

Sessions: :func:`spark_session` starts (or reuses) one, local unless a master URL is given,
with UTC as its time zone and ANSI mode off (typing never fails on a value; see the dialect).
A CSV field holding a line break (quoted) is not supported on Spark (its CSV reader splits
files by line): use Parquet for such data.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from ..errors import EngineFailure, InputError
from .counting import CountingSource, check_names
from .dialect import SPARK

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
_BATCH = 32  # cliques counted in one pass (GROUPING SETS)
_TYPES = {
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "timestamp_ntz": "TIMESTAMP",
    "binary": "BLOB",
}
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",  # dates and timestamps count as UTC seconds, as on DuckDB
    "spark.sql.ansi.enabled": "false",  # a value that does not parse is missing, never an error
    # The encoded table's 15-column stage generates a ~29 KB method; HotSpot never JIT-compiles a
    # method over 8,000 bytes, so it ran interpreted (~90 us a row). Over this limit Spark uses
    # expression-level code instead, which compiles (the counts are the same either way).
    "spark.sql.codegen.hugeMethodLimit": "8000",
}
LOCAL_CONF = {  # a local session is frugal by default; a cluster's own settings are left alone
    "spark.driver.memory": os.environ.get("SYNTHROOM_SPARK_DRIVER_MEMORY", "1g"),
    "spark.sql.shuffle.partitions": os.environ.get("SYNTHROOM_SPARK_SHUFFLE_PARTITIONS", "4"),
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.pyspark.python": sys.executable,  # the executors' Python: this one (synthroom installed)
}


def _pyspark():
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("the Spark engine needs pyspark: pip install 'synthroom[spark]' (and Java 17)") from None
    return SparkSession


def spark_session(master: str | None = None):
    """The active Spark session, else a new one on ``master`` (default ``local[*]``)."""
    session_cls = _pyspark()
    active = session_cls.getActiveSession()
    if active is not None and master is None:
        return _configured(active)
    local = (master or "local").startswith("local")
    if local:  # the workers run this Python (synthroom installed)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = session_cls.builder.appName("synthroom").master(master or "local[*]")
    for key, value in {**(LOCAL_CONF if local else {}), **SESSION_CONF}.items():
        builder = builder.config(key, value)
    with engine_failures("starting"):
        session = builder.getOrCreate()
    # a local session's failed tasks reach the user as one EngineFailure line, not a JVM log
    session.sparkContext.setLogLevel("FATAL" if local else "ERROR")
    return _configured(session)


def _configured(session):
    for key, value in SESSION_CONF.items():
        session.conf.set(key, value)
    return session


def spark_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a failed Spark call raises in Python (for ``except``; pyspark imported here)."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JError)


def first_line(exc: BaseException) -> str:
    """A Spark error's first line (at most 200 characters), for a one-line message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


_LOST_TASK = re.compile(r"^.*most recent failure: Lost task .*?\): ")
_HINTS = {  # a cause's mark -> what to try ({memory}: the local session's heap)
    "OutOfMemoryError": "give Spark more memory: SYNTHROOM_SPARK_DRIVER_MEMORY for a local session (now "
    "{memory}; 4g held 100M rows x 15 columns), spark.executor.memory on a cluster",
    "JAVA_GATEWAY_EXITED": "Spark needs Java 17: install it, or point JAVA_HOME at it",
}


def failure_cause(exc: BaseException) -> str:
    """A failed Spark call's cause in one line (at most 400 characters): the failed task's own
    error, not Py4J's "An error occurred while calling o50.collectToPython" nor the Java stack,
    with the root cause (the last "Caused by") when it adds something."""
    lines = [line.strip() for line in str(exc).splitlines()]
    heads = [
        line.lstrip(": ")
        for line in lines
        if line and not line.startswith(("at ", "...", "Caused by", "An error occurred while calling"))
    ]
    head = _LOST_TASK.sub("", heads[0] if heads else type(exc).__name__)
    head = re.sub(r"\s*SQLSTATE: \w+$", "", re.sub(r"^org\.apache\.spark\.SparkException: ", "", head))
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    if causes and causes[-1] not in head:
        head = f"{head} (caused by {causes[-1]})"
    return head[:400]


def engine_failure(doing: str, exc: BaseException) -> EngineFailure:
    """The one-line :class:`EngineFailure` for a Spark error raised while ``doing`` something."""
    text = str(exc)
    hints = [hint.format(memory=LOCAL_CONF["spark.driver.memory"]) for mark, hint in _HINTS.items() if mark in text]
    cause = failure_cause(exc)
    return EngineFailure(
        f"Spark failed while {doing}: {cause.rstrip('.') if hints else cause}" + "".join(f"; {h}" for h in hints)
    )


@contextmanager
def engine_failures(doing: str) -> Iterator[None]:
    """Turn the Spark errors raised inside into one-line :class:`EngineFailure` (the CLI's exit 4)."""
    try:
        yield
    except spark_errors() as exc:
        raise engine_failure(doing, exc) from exc


def duckdb_type(spark_type: str) -> str:
    """A Spark type's name in the engine's type table (DuckDB's names): ``int`` -> ``INTEGER``."""
    name = spark_type.lower()
    if name.startswith("decimal"):
        return name.upper()
    return _TYPES.get(name, name.upper())


def read_frame(session, data: Any):
    """A Spark DataFrame of ``data``: a path (Parquet or CSV), a table name, or a DataFrame."""
    if isinstance(data, pd.DataFrame):
        return session.createDataFrame(data)
    if hasattr(data, "sparkSession"):  # already a Spark DataFrame
        return data
    text = os.fspath(data)
    lower = text.lower().rstrip("/")
    local = "://" not in text
    if local and (lower.endswith(".parquet") or lower.endswith(CSV_SUFFIXES)) and not Path(text).exists():
        raise InputError(f"input file {text!r} does not exist")
    from pyspark.errors import AnalysisException

    try:
        return _read_path_or_table(session, text, lower, local)
    except AnalysisException as exc:  # a path or table Spark cannot resolve or read: the input's fault
        raise InputError(f"Spark cannot read {text!r}: {failure_cause(exc)}") from None


def _read_path_or_table(session, text: str, lower: str, local: bool):
    if lower.endswith(".parquet") or (local and Path(text).is_dir()):
        return session.read.parquet(text)
    if lower.endswith(CSV_SUFFIXES):
        sep = "\t" if lower.endswith(".tsv") else ","
        # every column as text; "" inside quotes is a quote; empty fields are missing (DuckDB's reading)
        frame = session.read.csv(
            text,
            header=True,
            inferSchema=False,
            sep=sep,
            quote='"',
            escape='"',
            encoding="UTF-8",
            multiLine=False,
            mode="PERMISSIVE",
        )
        return frame.persist(_storage_level())  # parsed once, as DuckDB does, not once per count
    if session.catalog.tableExists(text):
        return session.table(text)
    raise InputError(f"input {text!r} is neither a .parquet or .csv path nor a Spark table")


def _storage_level():
    from pyspark import StorageLevel

    return StorageLevel.MEMORY_AND_DISK


class SparkCountingSource(CountingSource):
    """A table on Spark that the synthesis core may count, and nothing else."""

    def __init__(self, session, frame, kinds: dict[str, str]):
        self._spark = session
        self._con = None  # type: ignore[assignment]  # no DuckDB connection: Spark runs the queries
        self.passes = 0
        self._dialect = SPARK
        self._kinds = kinds
        self._encoded: list[str] | None = None
        self._views: list[str] = []
        self._cached = None
        self._input = frame if frame.is_cached else None  # a CSV parsed by read_frame
        self._rel = self._view(frame)
        self._rel_types = {f.name: duckdb_type(f.dataType.simpleString()) for f in frame.schema.fields}

    @classmethod
    def open(
        cls, data: Any, kinds: dict[str, str], threads: int | None = None, ignore: Sequence[str] = (), session=None
    ) -> "SparkCountingSource":
        """Open ``data`` on ``session`` (default: :func:`spark_session`; a given one gets the same
        SQL settings, :data:`SESSION_CONF`); the same checks as DuckDB's.
        ``ignore``: columns the input may hold that are never read (left out before any count)."""
        session = _configured(session) if session is not None else spark_session()
        is_frame = isinstance(data, pd.DataFrame)
        if is_frame:  # checked before shipping it to the cluster (the ignored columns are not shipped)
            check_names([str(c) for c in data.columns], kinds, "the DataFrame", ignore)
            data = data[list(kinds)]
        with engine_failures("reading the input"):
            frame = read_frame(session, data)
            where = (
                "the Spark DataFrame" if hasattr(data, "sparkSession") else "the DataFrame" if is_frame else str(data)
            )
            check_names(list(frame.columns), kinds, where, ignore)
            if ignore:
                frame = frame.select(*[SPARK.ident(c) for c in kinds])
            source = cls(session, frame, kinds)
        source._validate(empty_is_error=not is_frame)
        return source

    def _view(self, frame) -> str:
        name = f"synthroom_{uuid.uuid4().hex}"
        frame.createOrReplaceTempView(name)
        self._views.append(name)
        return name

    def _fetch(self, sql: str) -> list[tuple]:
        self.passes += 1
        with engine_failures("counting"):
            return [tuple(row) for row in self._spark.sql(sql).collect()]

    def encode(self, codings) -> None:
        """The encoded table, cached on the executors (memory, then disk), for marginals."""
        with engine_failures("encoding the table"):
            frame = self._spark.sql(self.encoded_sql(codings))
            self._cached = frame.persist(_storage_level())
            self._enc = self._view(self._cached)
        self._encoded = list(codings)
        self._sizes = {name: coding.size for name, coding in codings.items()}

    def marginals(self, cliques: Sequence[tuple[str, ...]]) -> list[np.ndarray]:
        """Exact contingency tables, up to ``_BATCH`` distinct cliques per pass (GROUPING SETS)."""
        if self._encoded is None:
            raise RuntimeError("encode() must be called before marginals()")
        keys = list(dict.fromkeys(tuple(sorted(c)) for c in cliques))
        tables: dict[tuple[str, ...], np.ndarray] = {}
        for start in range(0, len(keys), _BATCH):
            tables.update(self._grouping_sets(keys[start : start + _BATCH]))
        out = []
        for clique in cliques:
            key = tuple(sorted(clique))
            out.append(np.transpose(tables[key], [key.index(c) for c in clique]))
        return out

    def _grouping_sets(self, keys: list[tuple[str, ...]]) -> dict[tuple[str, ...], np.ndarray]:
        columns = list(dict.fromkeys(c for key in keys for c in key))
        ident = SPARK.ident
        sets = ", ".join("(" + ", ".join(ident(c) for c in key) + ")" for key in keys)
        rows = self._fetch(
            f"SELECT {', '.join(ident(c) for c in columns)}, grouping_id() AS g, count(*) AS n "
            f"FROM {self._enc} GROUP BY GROUPING SETS ({sets})"
        )
        width = len(columns)
        by_gid = {sum(1 << (width - 1 - i) for i, c in enumerate(columns) if c not in key): key for key in keys}
        cells: dict[tuple[str, ...], list[tuple]] = {key: [] for key in keys}
        for row in rows:
            cells[by_gid[row[width]]].append(row)
        out = {}
        for key, found in cells.items():
            idx = tuple(np.array([r[columns.index(c)] for r in found], dtype=np.int64) for c in key)
            out[key] = self._dense_table(key, idx, [r[width + 1] for r in found])
        return out

    def close(self) -> None:
        """Drop the cached encoded table and the temporary views; the session stays (it is shared)."""
        for frame in (self._cached, self._input):
            if frame is not None:
                frame.unpersist()
        self._cached = self._input = None
        for name in self._views:
            self._spark.catalog.dropTempView(name)
        self._views = []


def partition_seeds(base: int | None, partitions: int) -> list[int]:
    """One independent sampling seed per partition, from ``base`` (None: fresh OS entropy)."""
    root = np.random.SeedSequence(base)
    return [int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for child in root.spawn(partitions)]


def sample_to_parquet(
    synth, rows: int | None, path: str, *, session=None, partitions: int, seed: int | None = None
) -> int:
    """Draw ``rows`` synthetic rows in ``partitions`` parallel tasks on the cluster and write them
    as a partitioned Parquet folder at ``path``; returns the number of rows.

    Sampling is post-processing of the DP model: the saved model (the same file ``--save-model``
    writes, which holds no row) is broadcast to the executors and each task draws its share with
    its own seed (``seed``, else the fit's sampling seed, else OS entropy). The driver holds the
    model only, never the rows. Executors need synthroom installed (a local session shares this
    one's)."""
    import io
    import tempfile

    import pyarrow as pa

    session = session or spark_session()
    total = synth.estimated_rows_ if rows is None else int(rows)
    if total < 1 or partitions < 1:
        raise InputError(f"rows ({total}) and partitions ({partitions}) must be at least 1")
    with tempfile.TemporaryDirectory(prefix="synthroom-model-") as folder:
        synth.save(Path(folder) / "model.npz")
        model = session.sparkContext.broadcast((Path(folder) / "model.npz").read_bytes())
    seeds = partition_seeds(synth._sample_seed if seed is None else seed, partitions)
    shares = [total // partitions + (i < total % partitions) for i in range(partitions)]
    tasks = [(i, shares[i], seeds[i]) for i in range(partitions)]  # one task per slice, so one file each
    plan = session.createDataFrame(
        session.sparkContext.parallelize(tasks, partitions), "part INT, n BIGINT, seed BIGINT"
    )
    schema_arrow = pa.Table.from_pandas(synth.sample(1, seed=0), preserve_index=False).schema

    def draw(batches):
        from synthroom.synthesis import Synthesizer

        local = Synthesizer.load(io.BytesIO(model.value))
        for batch in batches:
            for n, part_seed in zip(batch.column("n").to_pylist(), batch.column("seed").to_pylist()):
                if n:
                    table = pa.Table.from_pandas(local.sample(n, seed=part_seed), preserve_index=False)
                    yield from table.cast(schema_arrow).to_batches()

    created = "://" not in path and not Path(path).exists()
    try:
        with engine_failures("drawing the rows"):
            plan.mapInArrow(draw, _spark_schema(schema_arrow)).write.mode("errorifexists").parquet(path)
    except EngineFailure:
        if created and Path(path).exists():  # nothing half-written is left behind
            shutil.rmtree(path, ignore_errors=True)
        raise
    return total


def _spark_schema(arrow_schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow_schema)
