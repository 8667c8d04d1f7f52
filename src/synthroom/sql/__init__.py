"""Templates (checked with sqlglot), source snapshots and the sandboxed DuckDB executor of the clean room."""

from .sandbox import (
    DECLARABLE_TYPES,
    SOURCE_KINDS,
    SPARK_SOURCE_KINDS,
    Execution,
    Snapshot,
    Source,
    check_column_types,
    data_folder,
    open_below,
    output_types,
    run_template,
    snapshot_file,
    snapshot_source,
)
from .template import CheckedTemplate, TableColumns, check_template

__all__ = [
    "DECLARABLE_TYPES",
    "SOURCE_KINDS",
    "SPARK_SOURCE_KINDS",
    "CheckedTemplate",
    "Execution",
    "Snapshot",
    "Source",
    "TableColumns",
    "check_column_types",
    "check_template",
    "data_folder",
    "open_below",
    "output_types",
    "run_template",
    "snapshot_file",
    "snapshot_source",
]
