"""The few spellings in which DuckDB and Spark SQL differ, for the counting queries.

Every counting query is written once (``counting.py``, ``grid.py``) and rendered in a
:class:`Dialect`. The counts must be exactly equal on both engines (the same data, settings and
seed give the identical synthetic table), so what a value *is* is decided here, not left to
each engine's parser:

* number literals are IEEE doubles in both (Spark reads ``0.5`` as a DECIMAL, so its literals
  carry a ``D``); infinities are spelled so that both parse them;
* text becomes a number only if it matches :data:`NUMBER_TEXT` (DuckDB would also read
  ``1_000``, Spark ``1.5d`` or ``0x1p3``), and a timestamp only if it matches
  :data:`TIMESTAMP_TEXT` (``YYYY-MM-DD``, optionally a time of day; no time zone, no year 10000,
  no ``24:00``); anything else is missing, on both engines;
* a timestamp is counted as its seconds since 1970-01-01 (UTC, as a double: microseconds / 1e6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .types import quote_ident, quote_literal

# No backslashes: Spark unescapes them inside SQL text literals.
NUMBER_TEXT = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
TIMESTAMP_TEXT = (
    r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"([ T]([01]?[0-9]|2[0-3]):[0-5]?[0-9](:[0-5]?[0-9]([.][0-9]{1,9})?)?)?$"
)


@dataclass(frozen=True)
class Dialect:
    """How one engine spells the counting queries' few non-portable pieces."""

    name: str

    @property
    def spark(self) -> bool:
        return self.name == "spark"

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`" if self.spark else quote_ident(name)

    def number(self, x: float) -> str:
        """A double literal, exactly ``x``."""
        x = float(x)
        if math.isinf(x):
            return ("CAST('{}Infinity' AS DOUBLE)" if self.spark else "CAST('{}inf' AS DOUBLE)").format(
                "-" if x < 0 else ""
            )
        return repr(x) + ("D" if self.spark else "")

    def literal(self, text: str) -> str:
        """A text literal (Spark reads ``''`` as two adjacent literals, so it escapes instead)."""
        if self.spark:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return quote_literal(text)

    def lookup(self, keys: list[str], value: str) -> str:
        """The position (0-based) of text ``value`` among ``keys``, else NULL: a hash probe."""
        names = ",".join(self.literal(k) for k in keys)
        codes = self.int_array(range(len(keys)))
        if self.spark:
            return f"try_element_at(map_from_arrays(array({names}), {codes}), {value})"
        return f"element_at(MAP([{names}], {codes}), {value})[1]"

    def int_array(self, values) -> str:
        body = ",".join(str(int(v)) for v in values)
        return f"array({body})" if self.spark else f"[{body}]"

    def float_array(self, values) -> str:
        body = ",".join(self.number(v) for v in values)
        return f"array({body})" if self.spark else f"[{body}]"

    def at(self, array: str, index: str) -> str:
        """Element ``index`` (1-based) of ``array``; NULL when out of range."""
        return f"try_element_at({array}, CAST({index} AS INT))" if self.spark else f"list_extract({array}, {index})"

    def text(self, x: str) -> str:
        return f"CAST({x} AS {'STRING' if self.spark else 'VARCHAR'})"

    def finite_double(self, x: str) -> str:
        """``x`` (a double) where it is finite, else NULL."""
        if self.spark:
            return f"CASE WHEN NOT isnan({x}) AND abs({x}) < CAST('Infinity' AS DOUBLE) THEN {x} END"
        return f"CASE WHEN isfinite({x}) THEN {x} END"

    def finite_time(self, x: str) -> str:
        """A date or timestamp where it is finite (Spark has no infinite ones)."""
        return x if self.spark else f"CASE WHEN isfinite({x}) THEN {x} END"

    def parse(self, x: str, target: str) -> str:
        """Text ``x`` as a DOUBLE or TIMESTAMP when it matches the grammar, else NULL."""
        trimmed = f"trim({self.text(x)})"
        grammar = NUMBER_TEXT if target == "DOUBLE" else TIMESTAMP_TEXT
        if self.spark:
            cast = "DOUBLE" if target == "DOUBLE" else "TIMESTAMP_NTZ"
            value = f"CASE WHEN {trimmed} RLIKE '{grammar}' THEN try_cast({trimmed} AS {cast}) END"
            return value if target == "DOUBLE" else self.finite_time(value)
        value = f"CASE WHEN regexp_full_match({trimmed}, '{grammar}') THEN TRY_CAST({trimmed} AS {target}) END"
        return self.finite_double(value) if target == "DOUBLE" else self.finite_time(value)

    def epoch(self, x: str) -> str:
        """Seconds since 1970-01-01 of a date or timestamp, as a double."""
        if self.spark:
            return f"(CAST(unix_micros(CAST({x} AS TIMESTAMP)) AS DOUBLE) / 1000000.0D)"
        return f"epoch(CAST({x} AS TIMESTAMP))"

    def inline(self, layers: "list[dict[str, str]]", expr: str) -> str:
        """``expr`` with each layer's column (see ``counting.layered_sql``) replaced by its
        expression, last layer first: one expression that computes each as often as it is named."""
        for layer in reversed(layers):
            for name, value in layer.items():
                expr = expr.replace(self.ident(name), f"({value})")
        return expr

    def is_nan(self, x: str) -> str:
        return f"isnan({x})"


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")
