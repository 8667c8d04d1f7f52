"""Writing tables: CSV or Parquet by extension, atomically (no half-written file on failure)."""

from __future__ import annotations

import os
from pathlib import Path

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
