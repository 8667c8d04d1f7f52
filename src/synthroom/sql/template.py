"""Checking an analysis template: one SELECT over the collaboration's tables, nothing else.

A template is parsed with ``sqlglot`` (DuckDB dialect) and accepted only if

* it is exactly one ``SELECT`` (no other statement kind, no ``UNION``, no ``SELECT ... INTO``);
* it reads only associated tables, by their association name, each directly in the outermost
  ``FROM``/``JOIN`` (not in a subquery or CTE), and no table function or file (``read_csv``,
  ``'file.csv'``, ``range``...);
* it calls no function that reads files, settings or the catalog (``read_text``, ``getenv``,
  ``current_setting``, ``duckdb_*``...);
* every column it reads is among the table's allowed columns;
* its output columns are exactly the column classification's;
* each output row belongs to one privacy unit (what makes the executor's cap on rows per unit a
  bound on one person's influence): several tables must all have a privacy-unit column and be
  joined on equal units; an aggregating template must group by a unit column; window
  functions, ``DISTINCT``, ``LIMIT``/``OFFSET``, ``QUALIFY``, sampling and ``PIVOT`` (which mix
  rows of different units) are refused, and so are whole-row references and ``COLUMNS(...)``.

The result, :class:`CheckedTemplate`, carries the normalised SQL with one hidden column added,
the row's privacy unit, which the sandboxed executor uses to cap rows per unit and then drops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

from ..errors import InputError

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to Command" warnings

DIALECT = "duckdb"
UNIT_COLUMN = "__synthroom_unit"  # hidden output column: the row's privacy unit
ROW_COLUMN = "__synthroom_row"  # row number the executor adds to tables without a unit column
_RESERVED_PREFIX = "__synthroom"

_DENIED_FUNCTIONS = {"columns", "unpack"}  # DuckDB star expressions: they would select every loaded column
# Functions that read files, the environment, settings or the catalog (prefix match, lower case).
# The executor's sandbox blocks file access as well; this gives the clear message up front.
_DENIED_FUNCTION_PREFIXES = (
    "read_", "glob", "getenv", "current_setting", "sniff_", "parquet_", "duckdb_", "pragma_",
    "query", "sqlite_", "postgres_", "mysql_", "iceberg_", "delta_", "json_execute", "load",
    "install", "export", "import", "system", "which_secret", "setseed", "checkpoint",
    "force_checkpoint", "enable_", "disable_", "current_database", "current_schema",
)


@dataclass(frozen=True)
class TableColumns:
    """What the checker knows of one associated table."""

    columns: tuple[str, ...]  # every column of the source (allowed or not)
    allowed: tuple[str, ...]  # the columns templates may read
    unit: str | None = None  # privacy-unit column, if the table has one


@dataclass(frozen=True)
class CheckedTemplate:
    """A template that passed every check."""

    sql: str  # normalised, fully qualified SELECT as written (no hidden column)
    executable_sql: str  # the same with the hidden privacy-unit column ``UNIT_COLUMN`` added
    output_columns: tuple[str, ...]
    tables: tuple[str, ...]  # association names read (sorted, unique)
    aggregating: bool
    notes: tuple[str, ...] = field(default=())


def _fail(message: str) -> None:
    raise InputError(f"template rejected: {message}")


def _parse_one(sql: str) -> exp.Expression:
    if not isinstance(sql, str) or not sql.strip():
        _fail("the SQL is empty")
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as exc:
        _fail(f"the SQL does not parse: {str(exc).splitlines()[0]}")
    if len(statements) != 1:
        _fail(f"a template is exactly one SELECT statement, not {len(statements)} statements")
    root = statements[0]
    if not isinstance(root, exp.Select):
        kind = root.key.upper() if not isinstance(root, exp.Command) else str(root.this).upper()
        _fail(f"only SELECT is allowed; found {kind}")
    return root


def _check_nodes(root: exp.Expression) -> None:
    """Statement kinds, table functions, denied functions, reserved names anywhere in the tree."""
    for node in root.walk():
        if isinstance(node, (exp.DDL, exp.DML, exp.Command, exp.Pragma, exp.Set, exp.Copy,
                             exp.Attach, exp.Detach, exp.Install, exp.Use, exp.Describe)):
            _fail(f"only SELECT is allowed; found {node.key.upper()} inside the query")
        if isinstance(node, exp.Into):
            _fail("SELECT ... INTO is not allowed")
        if isinstance(node, exp.SetOperation):
            _fail(f"{node.key.upper()} is not allowed: a template is a single SELECT")
        if isinstance(node, exp.Window):
            _fail("window functions are not allowed: they mix rows of different privacy units")
        if isinstance(node, (exp.Limit, exp.Offset, exp.Fetch)):
            _fail("LIMIT/OFFSET are not allowed: which rows survive would depend on other units' rows")
        if isinstance(node, exp.TableSample):
            _fail("sampling (USING SAMPLE / TABLESAMPLE) is not allowed: which rows are kept would depend on other units' rows")
        if isinstance(node, exp.Pivot):  # UNPIVOT too
            _fail("PIVOT/UNPIVOT is not allowed: write the aggregates per unit instead")
        if isinstance(node, exp.With):
            _fail("WITH (common table expressions) is not allowed: read the tables directly in FROM/JOIN")
        if isinstance(node, exp.Qualify):
            _fail("QUALIFY is not allowed: it filters on window functions")
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                _fail(f"table function {node.this.sql(DIALECT)} is not allowed; read the collaboration's tables by name")
            if node.args.get("db") or node.args.get("catalog"):
                _fail(f"qualified table name {node.sql(DIALECT)} is not allowed; use the association name alone")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name.startswith(_DENIED_FUNCTION_PREFIXES) or name in _DENIED_FUNCTIONS:
                _fail(f"function {name}() is not allowed in a template")
        if isinstance(node, exp.Identifier) and str(node.this).lower().startswith(_RESERVED_PREFIX):
            _fail(f"the name {node.this!r} is reserved")


def _check_tables(root: exp.Expression, tables: dict[str, TableColumns]) -> list[exp.Table]:
    """Every table is associated and read directly by the outermost SELECT."""
    known = ", ".join(sorted(tables)) or "(none)"
    for table in root.find_all(exp.Table):
        if table.name.lower() not in tables:
            _fail(f"unknown table {table.name!r}; the collaboration's tables are {known}")
    outer = [t for t in _outer_sources(root)]
    outer_ids = {id(t) for t in outer}
    for table in root.find_all(exp.Table):
        if table.name.lower() in tables and id(table) not in outer_ids:
            _fail(f"table {table.name!r} must be read in the outermost FROM/JOIN, not in a subquery or CTE")
    if not outer:
        _fail("the template reads no table")
    return outer


def _outer_sources(root: exp.Select) -> list[exp.Table]:
    found = []
    from_ = root.args.get("from_") or root.args.get("from")
    parts = [from_.this] if from_ is not None else []
    parts += [j.this for j in root.args.get("joins") or []]
    for part in parts:
        if isinstance(part, exp.Table):
            found.append(part)
    return found


def _qualify(root: exp.Expression, tables: dict[str, TableColumns]) -> exp.Select:
    # DuckDB names are case-insensitive: sqlglot lower-cases them all, and so do our checks.
    schema = {name: {col: "VARCHAR" for col in t.columns} for name, t in tables.items()}
    try:
        return qualify(root, schema=schema, dialect=DIALECT, validate_qualify_columns=True,
                       quote_identifiers=True, identify=True)
    except SqlglotError as exc:
        _fail(str(exc).split(". Line")[0])
    raise AssertionError("unreachable")


def _check_columns(root: exp.Select, tables: dict[str, TableColumns]) -> None:
    for whole in root.find_all(exp.TableColumn):
        _fail(f"{whole.name!r} names a whole table row; name the columns instead")
    for scope in traverse_scope(root):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table) and source.name in tables:
                spec = tables[source.name]
                if column.name.lower() not in {a.lower() for a in spec.allowed}:
                    _fail(f"column {column.name!r} of table {source.name!r} may not be used "
                          f"(allowed: {', '.join(spec.allowed) or 'none'})")


def _is_aggregating(root: exp.Select) -> bool:
    if root.args.get("group"):
        return True
    return any(isinstance(e.find(exp.AggFunc), exp.AggFunc) for e in root.expressions)


def _unit_of(column: exp.Expression, aliases: dict[str, str], tables: dict[str, TableColumns]) -> str | None:
    """The alias whose unit column ``column`` is, if it is one."""
    if isinstance(column, exp.Column) and column.table in aliases:
        unit = tables[aliases[column.table]].unit
        if unit is not None and unit.lower() == column.name.lower():
            return column.table
    return None


def _unit_expression(root: exp.Select, outer: list[exp.Table], tables: dict[str, TableColumns],
                     aggregating: bool) -> str:
    """SQL of the row's privacy unit; refuses templates whose rows may mix units."""
    aliases = {t.alias_or_name: t.name for t in outer}
    if len(outer) == 1 and tables[outer[0].name].unit is None:
        if aggregating:
            _fail(f"table {outer[0].name!r} has no privacy-unit column, so each row is its own unit "
                  "and an aggregate would mix units; aggregate only over a table with a unit column")
        return f'CAST({exp.to_identifier(outer[0].alias_or_name, quoted=True).sql(DIALECT)}."{ROW_COLUMN}" AS VARCHAR)'
    missing = [t.name for t in outer if tables[t.name].unit is None]
    if missing:
        _fail(f"table {missing[0]!r} has no privacy-unit column, so it cannot be joined: a joined row "
              "must belong to one privacy unit")
    _check_unit_joins(root, aliases, tables)
    if aggregating:
        for key in (root.args.get("group") or exp.Group()).expressions:
            if _unit_of(key, aliases, tables):
                return f"CAST({key.sql(DIALECT)} AS VARCHAR)"
        units = ", ".join(sorted({f"{tables[n].unit!r} of {n!r}" for n in aliases.values()}))
        _fail(f"an aggregating template must GROUP BY a privacy-unit column ({units}), so that each "
              "output row belongs to one unit")
    parts = [f'CAST({exp.column(tables[name].unit, table=alias, quoted=True).sql(DIALECT)} AS VARCHAR)'
             for alias, name in aliases.items()]
    return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"


def _check_unit_joins(root: exp.Select, aliases: dict[str, str], tables: dict[str, TableColumns]) -> None:
    """All outer tables are linked by equalities of their unit columns (ON or WHERE conjuncts)."""
    if len(aliases) == 1:
        return
    parent = {a: a for a in aliases}

    def find(a: str) -> str:
        while parent[a] != a:
            a = parent[a]
        return a

    conditions = [j.args.get("on") for j in root.args.get("joins") or []]
    where = root.args.get("where")
    conditions.append(where.this if where is not None else None)
    for cond in conditions:
        if cond is None:
            continue
        for part in cond.flatten() if isinstance(cond, exp.And) else [cond]:
            if isinstance(part, exp.EQ):
                left, right = _unit_of(part.left, aliases, tables), _unit_of(part.right, aliases, tables)
                if left and right:
                    parent[find(left)] = find(right)
    roots = {find(a) for a in aliases}
    if len(roots) > 1:
        names = ", ".join(f"{aliases[a]}.{tables[aliases[a]].unit}" for a in aliases)
        _fail(f"the tables must be joined on equal privacy units ({names}), so that each joined row "
              "belongs to one unit")


def check_template(sql: str, tables: dict[str, TableColumns], output_columns: list[str] | None = None) -> CheckedTemplate:
    """Check ``sql`` against the associated ``tables``; ``output_columns`` (the classification's
    column names), when given, must equal the template's output columns as a set."""
    root = _parse_one(sql)
    _check_nodes(root)
    if root.args.get("distinct"):
        _fail("SELECT DISTINCT is not allowed: it merges rows of different privacy units")
    _check_tables(root, tables)
    qualified = _qualify(root, tables)
    _check_columns(qualified, tables)
    outer = _outer_sources(qualified)
    names = list(qualified.named_selects)
    if len({n.lower() for n in names}) != len(names) or any(n == "" for n in names):
        _fail(f"every output column needs a distinct name; the template gives {', '.join(map(repr, names))}")
    if output_columns is not None:
        spelled = {c.lower(): c for c in output_columns}
        missing = [c for c in output_columns if c.lower() not in {n.lower() for n in names}]
        extra = [c for c in names if c.lower() not in spelled]
        if missing or extra:
            parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"not classified {', '.join(map(repr, extra))}"] if extra else [])
            _fail(f"the output columns do not match the column classification: {'; '.join(parts)}")
        for projection in qualified.expressions:  # output columns spelled as the classification spells them
            projection.set("alias", exp.to_identifier(spelled[projection.alias_or_name.lower()], quoted=True))
        names = list(qualified.named_selects)
    aggregating = _is_aggregating(qualified)
    unit_sql = _unit_expression(qualified, outer, tables, aggregating)
    executable = qualified.copy()
    executable.select(f'{unit_sql} AS "{UNIT_COLUMN}"', dialect=DIALECT, copy=False)
    return CheckedTemplate(
        sql=qualified.sql(DIALECT),
        executable_sql=executable.sql(DIALECT),
        output_columns=tuple(names),
        tables=tuple(sorted({t.name for t in outer})),
        aggregating=aggregating,
    )


__all__ = ["CheckedTemplate", "TableColumns", "check_template", "UNIT_COLUMN", "ROW_COLUMN"]
