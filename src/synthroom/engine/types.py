"""The type table: which storage types count as numbers, integers and times, and SQL quoting.

One place for facts every layer needs about DuckDB's type names (the engine's own vocabulary:
another backend maps its types onto these names, see :mod:`synthroom.engine.spark`): the
engine's typing, the synthesizer's output typing and integer detection, and the clean room's
check of a template's output types all ask here.
"""

from __future__ import annotations

import math

INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)
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


_INTEGER_RANGES = {
    "TINYINT": (-(2**7), 2**7 - 1),
    "SMALLINT": (-(2**15), 2**15 - 1),
    "INTEGER": (-(2**31), 2**31 - 1),
    "UTINYINT": (0, 2**8 - 1),
    "USMALLINT": (0, 2**16 - 1),
    "UINTEGER": (0, 2**32 - 1),
    "UBIGINT": (0, 2**64 - 1),
    "UHUGEINT": (0, 2**64 - 1),
}
INT64_RANGE = (-(2**63), 2**63 - 1)


def integer_range(stored: str) -> tuple[int, int]:
    """The values a synthetic integer column may take: its storage type's range, cut to 64 bits
    (the widest integers pandas holds); int64's for a column of any other type declared integer."""
    return _INTEGER_RANGES.get(base_type(stored), INT64_RANGE)


def integer_float_range(stored: str) -> tuple[float, float]:
    """:func:`integer_range` as the floats nearest to its ends from inside (``2**63 - 1`` is no
    float: its nearest, ``2**63``, would overflow int64), for clipping float values."""
    lo, hi = integer_range(stored)
    lo_f, hi_f = float(lo), float(hi)
    return (math.nextafter(lo_f, 0.0) if lo_f < lo else lo_f, math.nextafter(hi_f, 0.0) if hi_f > hi else hi_f)


def integer_dtype(stored: str) -> str:
    """The pandas (nullable) dtype of a synthetic integer column: ``UInt64`` when its storage type
    holds values above int64's, else ``Int64``."""
    return "UInt64" if integer_range(stored)[1] > INT64_RANGE[1] else "Int64"


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
