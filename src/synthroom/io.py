"""Writing tables: CSV or Parquet by extension, atomically (no half-written file on failure)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from .errors import InputError

OUTPUT_EXTENSIONS = (".csv", ".parquet")


def check_output_path(path: str | Path) -> Path:
    """Fail early (before any work) on an output path we could not write."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_EXTENSIONS:
        raise InputError(f"output file {str(path)!r}: unknown extension {path.suffix!r} (use .csv or .parquet)")
    if not path.parent.exists():
        raise InputError(f"output folder {str(path.parent)!r} does not exist")
    return path


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to ``path`` via a temporary file in the same folder, then rename."""
    path = check_output_path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix.lower() == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_batches(batches: Iterable[pd.DataFrame], path: str | Path) -> int:
    """Write row batches (same columns) to ``path`` as one table, atomically; returns the rows.

    What a large sample needs: the rows never exist as one DataFrame of Python objects. CSV is
    appended batch by batch; Parquet batches are kept as Arrow tables (typed: a date column is
    ``date32``, text is one buffer) and written once, after a column whose batches came out with
    different types (an integer-coded category whose ``other`` label appeared in one batch only)
    is given one type: text. Returns the number of rows written."""
    path = check_output_path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    rows = 0
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            tables = [pa.Table.from_pandas(df, preserve_index=False) for df in batches]
            table = pa.concat_tables(_one_type_per_column(tables))
            pq.write_table(table, tmp)
            rows = table.num_rows
        else:
            for i, df in enumerate(batches):
                df.to_csv(tmp, index=False, header=i == 0, mode="w" if i == 0 else "a")
                rows += len(df)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rows


def _one_type_per_column(tables: list) -> list:
    """``tables`` cast to one schema: each column's single non-null type, else text."""
    import pyarrow as pa

    fields = []
    for i, name in enumerate(tables[0].schema.names):
        types = list(dict.fromkeys(t.schema.field(i).type for t in tables if t.schema.field(i).type != pa.null()))
        fields.append(pa.field(name, types[0] if len(types) == 1 else pa.string() if types else pa.null()))
    schema = pa.schema(fields)
    return [t if t.schema.equals(schema) else t.cast(schema) for t in tables]
