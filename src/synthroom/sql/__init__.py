"""Templates (checked with sqlglot), source snapshots and the sandboxed DuckDB executor of the clean room."""

from .sandbox import (SOURCE_KINDS, Execution, Snapshot, Source, data_folder, open_below, output_types, run_template,
                      snapshot_file, snapshot_source)
from .template import CheckedTemplate, TableColumns, check_template

__all__ = [
    "SOURCE_KINDS",
    "CheckedTemplate",
    "Execution",
    "Snapshot",
    "Source",
    "TableColumns",
    "check_template",
    "data_folder",
    "open_below",
    "output_types",
    "run_template",
    "snapshot_file",
    "snapshot_source",
]
