"""Templates (checked with sqlglot) and the sandboxed DuckDB executor of the clean room."""

from .sandbox import SOURCE_KINDS, Execution, Source, describe_source, output_types, run_template
from .template import CheckedTemplate, TableColumns, check_template

__all__ = [
    "SOURCE_KINDS",
    "CheckedTemplate",
    "Execution",
    "Source",
    "TableColumns",
    "check_template",
    "describe_source",
    "output_types",
    "run_template",
]
