"""The type table: which storage types count as numbers, integers and times, and SQL quoting.

One place for facts every layer needs about DuckDB's type names (the engine's own vocabulary:
another backend maps its types onto these names, see :mod:`synthroom.engine.spark`): the
engine's typing, the synthesizer's output typing and integer detection, and the clean room's
check of a template's output types all ask here.
"""

from __future__ import annotations

INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                           "UINTEGER", "UBIGINT", "UHUGEINT"})
FLOAT_TYPES = frozenset({"FLOAT", "REAL", "DOUBLE"})
TIME_PREFIXES = ("TIMESTAMP", "DATE")  # a point in time (TIME, a time of day, is not one)


def base_type(stored: str) -> str:
    """The type's name without parameters, upper-cased: ``DECIMAL(18,3)`` -> ``DECIMAL``."""
    return stored.split("(")[0].strip().upper()


def is_integer(stored: str) -> bool:
    return base_type(stored) in INTEGER_TYPES


def fits_int64(stored: str) -> bool:
    """An integer type whose every value a signed 64-bit integer holds."""
    return is_integer(stored) and base_type(stored) not in ("UBIGINT", "HUGEINT", "UHUGEINT")


def is_float(stored: str) -> bool:
    return base_type(stored) in FLOAT_TYPES


def is_number(stored: str) -> bool:
    """An integer, floating-point or decimal storage type."""
    return is_integer(stored) or is_float(stored) or base_type(stored) == "DECIMAL"


def is_time(stored: str) -> bool:
    """A date or timestamp storage type (with or without time zone)."""
    return stored.upper().startswith(TIME_PREFIXES)


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB (and for Spark SQL with ANSI identifiers off: see spark.py)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a text literal for DuckDB."""
    return "'" + value.replace("'", "''") + "'"
