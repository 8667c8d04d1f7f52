"""Inference over a table on the cluster: the model scores the rows where they live.

A ``spark_parquet``/``spark_csv``/``spark_table`` source has its snapshot on the cluster
(:mod:`.spark_snapshots`); no row of it is read by the room's worker process. An inference job
over it reads the snapshot on Spark after the same fingerprint check as a job on Spark
(:func:`~.spark_snapshots.verified_frame`: a snapshot that changed fails ``source_changed``),
keeps the model's feature columns and the privacy-unit column, and scores the rows on the
executors with ``mapInPandas``: the model file is broadcast (bytes) and each Python worker loads
it with the same trusted-type check as the room (:func:`synthroom.room.estimators.load_model`),
then predicts batch by batch (``spark.sql.execution.arrow.maxRecordsPerBatch`` rows).

The predictions then come back to the room's storage, because the receivers download a file
from the room as for any inference job: :func:`prediction_batches` hands them to the driver one
partition at a time, in pandas batches of at most ``batch_rows`` rows (the driver never holds
the table). A table without a unit column numbers its rows ``1..n`` in the order Spark reads
the snapshot (a snapshot written by Spark has no order of its own: give the table an id column
to join the predictions back).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import SourceChanged
from .sandbox import Source

BATCH_ROWS = 50_000
# numpy's kind of a classifier's classes -> the Spark type of its predictions (else text)
_CLASS_TYPES = {"b": "boolean", "i": "bigint", "u": "bigint", "f": "double"}


def prediction_type(model: Any, *, classify: bool) -> str:
    """The Spark type (DDL) of the model's predictions: a regressor's are doubles, a classifier's
    its classes' type (text when it has no ``classes_`` to tell)."""
    import numpy as np

    if not classify:
        return "double"
    classes = getattr(model, "classes_", None)
    return "string" if classes is None else _CLASS_TYPES.get(np.asarray(classes).dtype.kind, "string")


def verified_rows(session, source: Source, features: list[dict[str, str]]):
    """The snapshot's feature and unit columns (lazily), after the fingerprint check; raises
    :class:`SourceChanged` when the snapshot is not the one recorded or lacks such a column."""
    from pyspark.sql import functions as F

    from .spark_snapshots import verified_frame

    names = list(dict.fromkeys([f["name"] for f in features] + ([source.unit] if source.unit else [])))
    frame = verified_frame(session, source)
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise SourceChanged(f"table {source.name!r}: its snapshot lacks column {missing[0]!r}")
    return frame.select(*[F.col("`" + c.replace("`", "``") + "`") for c in names])


def scored_frame(
    frame,
    features: list[dict[str, str]],
    model_file: bytes,
    *,
    unit: str | None,
    trusted: tuple[str, ...],
    output_type: str,
    probability: bool,
):
    """``frame``'s rows scored on the executors (lazily): the ``unit`` column (if any),
    ``prediction`` (of ``output_type``) and, with ``probability``, the predicted class's
    probability; the model file travels as a broadcast."""
    from pyspark.sql.types import DoubleType, StructField, StructType, _parse_datatype_string

    fields = [frame.schema[unit]] if unit else []
    fields.append(StructField("prediction", _parse_datatype_string(output_type), True))
    if probability:
        fields.append(StructField("probability", DoubleType(), True))
    predict = functools.partial(
        _predict_batches,
        model=frame.sparkSession.sparkContext.broadcast(model_file),
        trusted=tuple(trusted),
        features=features,
        unit=unit,
        probability=probability,
        columns=[f.name for f in fields],
    )
    return frame.mapInPandas(predict, StructType(fields))


def _predict_batches(
    batches: Iterator[pd.DataFrame],
    *,
    model,
    trusted: tuple[str, ...],
    features: list[dict[str, str]],
    unit: str | None,
    probability: bool,
    columns: list[str],
) -> Iterator[pd.DataFrame]:
    """On an executor: load the broadcast model (trusted types only), predict each batch."""
    from ..room import estimators

    with tempfile.TemporaryDirectory(prefix="synthroom-model-") as folder:
        path = Path(folder) / estimators.MODEL_FILE
        path.write_bytes(model.value)
        loaded = estimators.load_model(path, trusted=trusted)
    for frame in batches:
        out = estimators.predict_rows(loaded, frame, features, classify=probability)
        if unit:
            out.insert(0, unit, frame[unit].to_numpy())
        yield out[columns]


def write_predictions(frame, targets: list[Path], *, row_column: str | None) -> int:
    """Write the scored rows to each of ``targets`` (CSV, Parquet) from batches
    (:func:`prediction_batches`; the scores are computed once, kept on the executors); the
    number of rows. A Spark failure is raised as a plain :class:`RuntimeError` with its first
    line (a JVM exception cannot travel back from the job's child process)."""
    from ..io import write_batches
    from .spark import first_line, spark_errors

    frame = frame.persist()
    rows = 0
    try:
        for target in targets:
            rows = write_batches(prediction_batches(frame, row_column=row_column), target)
    except spark_errors() as exc:
        raise RuntimeError(f"scoring on Spark failed: {first_line(exc)}") from None
    finally:
        frame.unpersist()
    return rows


def prediction_batches(frame, *, row_column: str | None, batch_rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """The scored rows on the driver, one partition at a time, in pandas batches of at most
    ``batch_rows`` rows typed as Spark typed them; ``row_column``: number the rows ``1..n`` in
    the order read, first (a table without a unit column)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(frame.schema)
    done, rows = 0, []
    for row in frame.toLocalIterator():
        rows.append(row)
        if len(rows) == batch_rows:
            yield _batch(rows, schema, row_column, done)
            done, rows = done + len(rows), []
    if rows or not done:
        yield _batch(rows, schema, row_column, done)


def _batch(rows: list, schema, row_column: str | None, done: int) -> pd.DataFrame:
    import numpy as np
    import pyarrow as pa

    columns = {name: [row[i] for row in rows] for i, name in enumerate(schema.names)}
    out = pa.Table.from_pydict(columns, schema=schema).to_pandas()
    if row_column:
        out.insert(0, row_column, np.arange(done + 1, done + len(out) + 1))
    return out


__all__ = [
    "BATCH_ROWS",
    "prediction_batches",
    "prediction_type",
    "scored_frame",
    "verified_rows",
    "write_predictions",
]
