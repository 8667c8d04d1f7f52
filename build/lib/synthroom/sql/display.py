"""A template's SQL as an approver reads it: formatted over several lines, identifiers quoted
only where they must be, and the tables and columns it reads.

The room stores (and hashes) the template's normalised SQL: one line, every identifier quoted.
:func:`pretty_sql` prints the same syntax tree again (sqlglot), so the formatted text means
exactly what the hashed text means; the console shows both (highlighted by
:mod:`synthroom.web.views`). Used by the console and by ``synthroom room template-show``.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.tokens import Tokenizer

DIALECT = "duckdb"
_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")


def _plain(name: str) -> bool:
    """An identifier that reads the same unquoted: lower case, no symbol, not a keyword."""
    return bool(_PLAIN.fullmatch(name)) and name.upper() not in Tokenizer.KEYWORDS


def pretty_sql(sql: str) -> str:
    """``sql`` over several indented lines, with quotes only where an identifier needs them;
    the text itself when sqlglot cannot parse it (never raises)."""
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except sqlglot.errors.ParseError:
        return sql
    for identifier in tree.find_all(exp.Identifier):
        if identifier.quoted and _plain(identifier.this):
            identifier.set("quoted", False)
    return tree.sql(dialect=DIALECT, pretty=True)


def columns_read(sql: str) -> dict[str, list[str]]:
    """Each table the query reads and the columns of it the query names, sorted:
    ``{"audience": ["age", ...], ...}``; {} when sqlglot cannot parse it."""
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except sqlglot.errors.ParseError:
        return {}
    aliases = {t.alias_or_name: t.name for t in tree.find_all(exp.Table)}
    read: dict[str, set[str]] = {name: set() for name in aliases.values()}
    for column in tree.find_all(exp.Column):
        table = aliases.get(column.table)
        if table is not None:
            read[table].add(column.name)
    return {table: sorted(names) for table, names in sorted(read.items())}
