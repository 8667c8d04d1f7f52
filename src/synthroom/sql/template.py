"""Checking an analysis template: one SELECT over the collaboration's tables, nothing else.

A template is parsed with ``sqlglot`` (DuckDB dialect) and accepted only if

* it is exactly one ``SELECT`` (no other statement kind, no ``UNION``, no ``SELECT ... INTO``);
* it reads only associated tables, by their association name, each directly in the outermost
  ``FROM``/``JOIN`` (not in a subquery or CTE), and no table function or file (``read_csv``,
  ``'file.csv'``, ``range``...);
* it calls no function that reads files, settings or the catalog (``read_text``, ``getenv``,
  ``current_setting``, ``duckdb_*``...);
* every column it reads is among the table's allowed columns;
* it calls no function that raises on a chosen value (``error``, ``assert_true``...) and no
  volatile function (``random``, ``sleep_ms``, ``nextval``...): a template is deterministic, and
  whether it fails must not depend on any one person's row;
* it reads no subquery (a template is one flat SELECT);
* its size is bounded: at most :data:`MAX_TEMPLATE_CHARS` characters, :data:`MAX_NESTING`
  nested parentheses, :data:`MAX_NODES` syntax-tree nodes and :data:`MAX_DEPTH` tree levels
  (so the check's own time is bounded: it refuses a 20,000-term ``OR`` in milliseconds);
* its output columns are exactly the column classification's;
* each output row belongs to one privacy unit (what makes the executor's cap on rows per unit a
  bound on one person's influence): several tables must all have a privacy-unit column and be
  joined on equal units; an aggregating template must group by a unit column; window
  functions, ``DISTINCT``, ``LIMIT``/``OFFSET``, ``QUALIFY``, sampling and ``PIVOT`` (which mix
  rows of different units) are refused, and so are whole-row references and ``COLUMNS(...)``.

The result, :class:`CheckedTemplate`, carries the normalised SQL as written (what owners
approve) and the executable SQL the sandbox runs: the same query with one hidden column added
(the row's privacy unit, which the executor uses to cap rows per unit and then drops), every
``CAST`` turned into ``TRY_CAST``, and every per-row expression that could raise on a value
(overflow, a bad argument) wrapped in DuckDB's ``TRY(...)``, so that such a value gives NULL on
that row instead of failing the job. ``ORDER BY`` is dropped (the executor orders rows itself).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NoReturn


import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokens import TokenType
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

from ..engine.sandbox import ROW_COLUMN, UNIT_COLUMN, function_catalog
from ..errors import InputError

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to Command" warnings

DIALECT = "duckdb"
_RESERVED_PREFIX = "__synthroom"

MAX_TEMPLATE_CHARS = 20_000  # characters of template SQL
MAX_NESTING = 24  # nested parentheses (the parser recurses once per level)
MAX_NODES = 5_000  # syntax-tree nodes after parsing
MAX_DEPTH = 200  # syntax-tree levels (a chain of 200 ORs is 200 levels; use IN (...) for lists)

_DENIED_FUNCTIONS = {"columns", "unpack"}  # DuckDB star expressions: they would select every loaded column
# Functions that read files, the environment, settings or the catalog (prefix match, lower case).
# The executor's sandbox blocks file access as well; this gives the clear message up front.
_DENIED_FUNCTION_PREFIXES = (
    "read_",
    "glob",
    "getenv",
    "current_setting",
    "sniff_",
    "parquet_",
    "duckdb_",
    "pragma_",
    "query",
    "sqlite_",
    "postgres_",
    "mysql_",
    "iceberg_",
    "delta_",
    "json_execute",
    "load",
    "install",
    "export",
    "import",
    "system",
    "which_secret",
    "setseed",
    "checkpoint",
    "force_checkpoint",
    "enable_",
    "disable_",
    "current_database",
    "current_schema",
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
    # A query giving the argument of every aggregate (but count) over the same rows, and the
    # aggregates' names: the executor refuses argument types an aggregate can fail on
    # (:func:`synthroom.sql.sandbox.output_types`). None when the template does not aggregate.
    aggregate_arguments_sql: str | None = None
    aggregate_names: tuple[str, ...] = ()


def _fail(message: str) -> NoReturn:
    raise InputError(f"template rejected: {message}")


def _parse_one(sql: str) -> exp.Select:
    if not isinstance(sql, str) or not sql.strip():
        _fail("the SQL is empty")
    if len(sql) > MAX_TEMPLATE_CHARS:
        _fail(f"the SQL has {len(sql):,} characters; a template has at most {MAX_TEMPLATE_CHARS:,}")
    tokens = _check_tokens(sql)
    try:
        dialect = Dialect.get_or_raise(DIALECT)
        statements = [s for s in dialect.parser().parse(tokens, sql) if s is not None]
    except (ParseError, TokenError) as exc:
        _fail(f"the SQL does not parse: {str(exc).splitlines()[0]}")
    if len(statements) != 1:
        _fail(f"a template is exactly one SELECT statement, not {len(statements)} statements")
    root = statements[0]
    if not isinstance(root, exp.Select):
        kind = root.key.upper() if not isinstance(root, exp.Command) else str(root.this).upper()
        _fail(f"only SELECT is allowed; found {kind}")
    _check_size(root)
    return root


def _check_normalised_size(sql: str) -> None:
    """The stored SQL (names qualified and quoted) is checked again when a job runs: it must pass
    the same limits, or an approved template would fail later for its size."""
    try:
        if len(sql) > MAX_TEMPLATE_CHARS:
            _fail(f"the SQL has {len(sql):,} characters; a template has at most {MAX_TEMPLATE_CHARS:,}")
        _check_size(sqlglot.parse_one(sql, read=DIALECT))
    except InputError as exc:
        reason = str(exc).removeprefix("template rejected: ")
        _fail(f"once its names are qualified and quoted (the form that is stored and approved), {reason}")


def _check_tokens(sql: str) -> list:
    """Before parsing (which recurses per nesting level): token count and parenthesis depth."""
    try:
        tokens = sqlglot.tokenize(sql, read=DIALECT)
    except TokenError as exc:
        _fail(f"the SQL does not parse: {str(exc).splitlines()[0]}")
    if len(tokens) > 2 * MAX_NODES:
        _fail(f"the SQL has {len(tokens):,} tokens; a template has at most {2 * MAX_NODES:,}")
    depth = 0
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
            if depth > MAX_NESTING:
                _fail(f"the SQL nests parentheses more than {MAX_NESTING} deep")
        elif token.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE):
            depth -= 1
    return tokens


def _check_size(root: exp.Expr) -> None:
    """At most MAX_NODES nodes and MAX_DEPTH levels (iterative: deep trees cannot recurse here).

    The checks that follow (sqlglot's qualify and scope analysis) walk up from every column to
    its ancestors, so their time grows with nodes x depth: both are capped."""
    nodes, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            _fail(f"the SQL is too large: more than {MAX_NODES:,} syntax-tree nodes")
        if depth > MAX_DEPTH:
            _fail(
                f"the SQL is nested more than {MAX_DEPTH} levels deep (a long chain of OR/AND/+ counts one level "
                "per term: use IN (...) for lists of values)"
            )
        stack.extend((child, depth + 1) for child in node.iter_expressions())


# Aggregates DuckDB 2.0.1 raises in on some values of a plain type (found by running every
# aggregate over extreme values: infinities, the largest dates and integers).
_RAISING_AGGREGATES = frozenset({"kurtosis", "kurtosis_pop", "skewness", "mad", "decimal_average"})


def _function_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _is_aggregate(node: exp.Expr) -> bool:
    return isinstance(node, exp.AggFunc) or (
        isinstance(node, exp.Anonymous) and node.name.lower() in function_catalog()["aggregate"]
    )


def _check_function(node: exp.Func) -> None:
    name = _function_name(node)
    if name.startswith(_DENIED_FUNCTION_PREFIXES) or name in _DENIED_FUNCTIONS:
        _fail(f"function {name}() is not allowed in a template")
    known = function_catalog()
    if name in known["raising"]:
        _fail(
            f"function {name}() is not allowed: it fails on chosen values, and whether a job fails must not "
            "depend on any one person's row"
        )
    if name in _RAISING_AGGREGATES:
        _fail(f"function {name}() is not allowed: it fails on some values (e.g. infinite ones)")
    if isinstance(node, (exp.Rand, exp.Uuid)) or name in known["volatile"]:
        _fail(f"function {name}() is not allowed: a template must be deterministic")


def _check_nodes(root: exp.Expr) -> None:
    """Statement kinds, table functions, denied functions, reserved names anywhere in the tree."""
    for node in root.walk():
        if isinstance(
            node,
            (
                exp.DDL,
                exp.DML,
                exp.Command,
                exp.Pragma,
                exp.Set,
                exp.Copy,
                exp.Attach,
                exp.Detach,
                exp.Install,
                exp.Use,
                exp.Describe,
            ),
        ):
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
            _fail(
                "sampling (USING SAMPLE / TABLESAMPLE) is not allowed: which rows are kept would depend on other "
                "units' rows"
            )
        if isinstance(node, exp.Pivot):  # UNPIVOT too
            _fail("PIVOT/UNPIVOT is not allowed: write the aggregates per unit instead")
        if isinstance(node, exp.With):
            _fail("WITH (common table expressions) is not allowed: read the tables directly in FROM/JOIN")
        if isinstance(node, exp.Qualify):
            _fail("QUALIFY is not allowed: it filters on window functions")
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                _fail(
                    f"table function {node.this.sql(DIALECT)} is not allowed; read the collaboration's tables by name"
                )
            if node.args.get("db") or node.args.get("catalog"):
                _fail(f"qualified table name {node.sql(DIALECT)} is not allowed; use the association name alone")
        if isinstance(node, exp.Func):
            _check_function(node)
        if isinstance(node, exp.Identifier) and str(node.this).lower().startswith(_RESERVED_PREFIX):
            _fail(f"the name {node.this!r} is reserved")


def _check_tables(root: exp.Select, tables: dict[str, TableColumns]) -> list[exp.Table]:
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


def _qualify(root: exp.Select, tables: dict[str, TableColumns]) -> exp.Select:
    # DuckDB names are case-insensitive: sqlglot lower-cases them all, and so do our checks.
    schema: dict[str, object] = {name: {col: "VARCHAR" for col in t.columns} for name, t in tables.items()}
    try:
        qualified = qualify(
            root, schema=schema, dialect=DIALECT, validate_qualify_columns=True, quote_identifiers=True, identify=True
        )
    except SqlglotError as exc:
        _fail(str(exc).split(". Line")[0])
    if not isinstance(qualified, exp.Select):  # qualify rewrites names: a SELECT stays one
        raise AssertionError(f"qualify turned a SELECT into {type(qualified).__name__}")
    return qualified


def _check_columns(root: exp.Select, tables: dict[str, TableColumns]) -> None:
    for whole in root.find_all(exp.TableColumn):
        _fail(f"{whole.name!r} names a whole table row; name the columns instead")
    for scope in traverse_scope(root):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table) and source.name in tables:
                spec = tables[source.name]
                if column.name.lower() not in {a.lower() for a in spec.allowed}:
                    _fail(
                        f"column {column.name!r} of table {source.name!r} may not be used "
                        f"(allowed: {', '.join(spec.allowed) or 'none'})"
                    )


def _is_aggregating(root: exp.Select) -> bool:
    if root.args.get("group"):
        return True
    return any(_is_aggregate(n) for e in root.expressions for n in e.walk())


def _check_no_subquery(root: exp.Select) -> None:
    for select in root.find_all(exp.Select):
        if select is not root:
            _fail("subqueries are not allowed: a template is one SELECT over the tables")


# -- the executable form: failures on a value become NULL -------------------------------------------
_CANNOT_FAIL = (exp.Column, exp.Literal, exp.Null, exp.Boolean, exp.Star, exp.Identifier, exp.Try, exp.Paren)
_BARRIERS = (exp.Explode, exp.Unnest)  # set-returning: TRY cannot hold them; their arguments are guarded


def _tainted(roots: list[exp.Expr], keys: list[exp.Expr]) -> set[int]:
    """Ids of the nodes that contain an aggregate, a set-returning function or a group key:
    TRY cannot wrap them (DuckDB refuses aggregates inside TRY, and a wrapped group key would no
    longer match its GROUP BY entry), so the guard descends into them instead."""
    marked: set[int] = set()
    for root in roots:
        for node in root.walk():
            if _is_aggregate(node) or isinstance(node, _BARRIERS) or _is_key(node, keys):
                up: exp.Expr | None = node
                while up is not None and id(up) not in marked:
                    marked.add(id(up))
                    up = up.parent
    return marked


def _is_key(node: exp.Expr, keys: list[exp.Expr]) -> bool:
    return any(node.key == k.key and node == k for k in keys)


def _wrap(node: exp.Expr) -> exp.Try:
    """Put ``node`` under TRY(...) where it stands (in place, no copy)."""
    wrapper = exp.Try()
    node.replace(wrapper)
    wrapper.set("this", node)
    return wrapper


def _guard(node: exp.Expr, tainted: set[int], keys: list[exp.Expr]) -> None:
    """Wrap, in place, every maximal subtree of ``node`` that could raise on a value in TRY(...)."""
    if _is_key(node, keys):
        _wrap(node)
        return
    if id(node) not in tainted:
        if isinstance(node, _CANNOT_FAIL):
            return
        if isinstance(node, exp.Condition):  # a value, not a type, an ORDER BY or a FILTER clause
            _wrap(node)
            return
    for child in list(node.iter_expressions()):
        _guard(child, tainted, keys)


def _guard_condition(condition: exp.Expr, keys: list[exp.Expr]) -> None:
    """Each conjunct guarded on its own; a plain column = column equality stays as it is (it
    cannot fail, and the join planner needs it bare to hash-join)."""
    parts = list(condition.flatten()) if isinstance(condition, exp.And) else [condition]
    tainted = _tainted(parts, keys)
    for part in parts:
        if not (isinstance(part, exp.EQ) and isinstance(part.left, exp.Column) and isinstance(part.right, exp.Column)):
            _guard(part, tainted, keys)


def _executable(qualified: exp.Select) -> "_Split":
    """The query the sandbox runs: casts never fail, per-row expressions cannot raise, no ORDER BY."""
    executable = qualified.copy()
    for cast in list(executable.find_all(exp.Cast)):
        if type(cast) is exp.Cast:
            cast.replace(exp.TryCast(**cast.args))
    executable.set("order", None)
    group = executable.args.get("group")
    keys = [k.copy() for k in group.expressions if not isinstance(k, exp.Column)] if group else []
    for key in list(group.expressions) if group else []:
        if not isinstance(key, exp.Column):
            _wrap(key)
    targets = [p.this if isinstance(p, exp.Alias) else p for p in executable.expressions]
    tainted = _tainted(targets, keys)
    for target in targets:
        _guard(target, tainted, keys)
    for join in executable.args.get("joins") or []:
        if join.args.get("on") is not None:
            _guard_condition(join.args["on"], keys)
    for clause in ("where", "having"):
        part = executable.args.get(clause)
        if part is not None:
            _guard_condition(part.this, keys)
    return _split_aggregation(executable) if group else _Split(executable, None, ())


_AGGREGATED = "synthroom_aggregated"


_WRAPPERS = (exp.Filter, exp.IgnoreNulls, exp.RespectNulls, exp.WithinGroup)


def _aggregate_call(node: exp.Expr) -> exp.Func | None:
    """The aggregate call ``node`` is, seen through FILTER, IGNORE NULLS and WITHIN GROUP."""
    while isinstance(node, _WRAPPERS):
        node = node.this
    return node if isinstance(node, exp.Func) and _is_aggregate(node) else None


@dataclass(frozen=True)
class _Split:
    query: exp.Select
    arguments: exp.Select | None  # each aggregate's arguments over the same rows
    names: tuple[str, ...]


def _split_aggregation(grouped: exp.Select) -> _Split:
    """Aggregate in an inner query, compute on the aggregates in an outer one, under TRY.

    DuckDB refuses aggregates inside TRY, so ``sum(x) * 1000`` could still overflow on one
    unit's rows. The inner query computes each group key and each aggregate once; the outer
    query evaluates the template's expressions over them, each wrapped in TRY, and HAVING
    becomes its (guarded) WHERE. Group keys keep their names ``__synthroom_k<i>``."""
    keys = list(grouped.args["group"].expressions)
    aggregates: list[exp.Expr] = []

    def lift(node: exp.Expr) -> exp.Expr:
        if _aggregate_call(node) is not None:
            for i, seen in enumerate(aggregates):
                if seen == node:
                    return exp.column(f"{_RESERVED_PREFIX}_a{i}", quoted=True)
            aggregates.append(node.copy())
            return exp.column(f"{_RESERVED_PREFIX}_a{len(aggregates) - 1}", quoted=True)
        for i, key in enumerate(keys):
            if node.key == key.key and node == key:
                return exp.column(f"{_RESERVED_PREFIX}_k{i}", quoted=True)
        return node

    def outer(node: exp.Expr) -> exp.Expr:
        lifted = node.transform(lift)
        return lifted if isinstance(lifted, _CANNOT_FAIL) else exp.Try(this=lifted)

    projections = [
        exp.alias_(outer(p.this if isinstance(p, exp.Alias) else p), p.alias_or_name, quoted=True)
        for p in grouped.expressions
    ]
    having = grouped.args.get("having")
    condition = outer(having.this) if having is not None else None
    inner = grouped.copy()
    inner.set("having", None)
    inner.set(
        "expressions",
        [exp.alias_(k.copy(), f"{_RESERVED_PREFIX}_k{i}", quoted=True) for i, k in enumerate(keys)]
        + [exp.alias_(a, f"{_RESERVED_PREFIX}_a{i}", quoted=True) for i, a in enumerate(aggregates)],
    )
    query = exp.select(*projections).from_(exp.alias_(exp.Subquery(this=inner), _AGGREGATED, quoted=True))
    if condition is not None:
        query.where(condition, copy=False)
    return _Split(query, *_aggregate_arguments(inner, aggregates))


def _aggregate_arguments(inner: exp.Select, aggregates: list[exp.Expr]) -> tuple[exp.Select | None, tuple]:
    """A SELECT of every aggregate's value arguments over the inner query's rows (no grouping)."""
    names: list[str] = []
    values: list[exp.Expr] = []
    for aggregate in aggregates:
        call = _aggregate_call(aggregate)
        if call is None:  # every lifted node is an aggregate call (see _split_aggregation)
            raise AssertionError(f"not an aggregate call: {aggregate.sql(DIALECT)}")
        if isinstance(call, exp.Count):
            continue
        for value in call.iter_expressions():
            if not isinstance(value, (exp.Star, exp.Literal, exp.Order, exp.Ordered, exp.Null)):
                names.append(_function_name(call))
                values.append(exp.alias_(value.copy(), f"{_RESERVED_PREFIX}_p{len(values)}", quoted=True))
    if not values:
        return None, ()
    probe = inner.copy()
    probe.set("group", None)
    probe.set("expressions", values)
    return probe, tuple(names)


def _unit_in_executable(unit_sql: str, qualified: exp.Select) -> str:
    """The unit expression over the executable query (an aggregating one names its keys)."""
    group = qualified.args.get("group")
    if not group:
        return unit_sql
    for i, key in enumerate(group.expressions):
        unit_sql = unit_sql.replace(
            f"CAST({key.sql(DIALECT)} AS VARCHAR)", f'CAST("{_RESERVED_PREFIX}_k{i}" AS VARCHAR)'
        )
    return unit_sql


def _unit_of(column: exp.Expr, aliases: dict[str, str], tables: dict[str, TableColumns]) -> str | None:
    """The alias whose unit column ``column`` is, if it is one."""
    if isinstance(column, exp.Column) and column.table in aliases:
        unit = tables[aliases[column.table]].unit
        if unit is not None and unit.lower() == column.name.lower():
            return column.table
    return None


def _unit_expression(
    root: exp.Select, outer: list[exp.Table], tables: dict[str, TableColumns], aggregating: bool
) -> str:
    """SQL of the row's privacy unit; refuses templates whose rows may mix units."""
    aliases = {t.alias_or_name: t.name for t in outer}
    if len(outer) == 1 and tables[outer[0].name].unit is None:
        if aggregating:
            _fail(
                f"table {outer[0].name!r} has no privacy-unit column, so each row is its own unit "
                "and an aggregate would mix units; aggregate only over a table with a unit column"
            )
        return f'CAST({exp.to_identifier(outer[0].alias_or_name, quoted=True).sql(DIALECT)}."{ROW_COLUMN}" AS VARCHAR)'
    missing = [t.name for t in outer if tables[t.name].unit is None]
    if missing:
        _fail(
            f"table {missing[0]!r} has no privacy-unit column, so it cannot be joined: a joined row "
            "must belong to one privacy unit"
        )
    _check_unit_joins(root, aliases, tables)
    if aggregating:
        for key in (root.args.get("group") or exp.Group()).expressions:
            if _unit_of(key, aliases, tables):
                return f"CAST({key.sql(DIALECT)} AS VARCHAR)"
        units = ", ".join(sorted({f"{tables[n].unit!r} of {n!r}" for n in aliases.values()}))
        _fail(
            f"an aggregating template must GROUP BY a privacy-unit column ({units}), so that each "
            "output row belongs to one unit"
        )
    unit_of = {alias: tables[name].unit for alias, name in aliases.items()}  # none is None (checked above)
    parts = [
        f"CAST({exp.column(unit, table=alias, quoted=True).sql(DIALECT)} AS VARCHAR)"
        for alias, unit in unit_of.items()
        if unit is not None
    ]
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
        _fail(
            f"the tables must be joined on equal privacy units ({names}), so that each joined row belongs to one unit"
        )


def check_template(
    sql: str, tables: dict[str, TableColumns], output_columns: list[str] | None = None
) -> CheckedTemplate:
    """Check ``sql`` against the associated ``tables``; ``output_columns`` (the classification's
    column names), when given, must equal the template's output columns as a set."""
    try:
        return _check(sql, tables, output_columns)
    except RecursionError:
        _fail("the SQL is nested too deeply; simplify its expressions")


def _check(sql: str, tables: dict[str, TableColumns], output_columns: list[str] | None) -> CheckedTemplate:
    root = _parse_one(sql)
    _check_nodes(root)
    if root.args.get("distinct"):
        _fail("SELECT DISTINCT is not allowed: it merges rows of different privacy units")
    _check_tables(root, tables)
    _check_no_subquery(root)
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
                [f"not classified {', '.join(map(repr, extra))}"] if extra else []
            )
            _fail(f"the output columns do not match the column classification: {'; '.join(parts)}")
        for projection in qualified.expressions:  # output columns spelled as the classification spells them
            projection.set("alias", exp.to_identifier(spelled[projection.alias_or_name.lower()], quoted=True))
        names = list(qualified.named_selects)
    aggregating = _is_aggregating(qualified)
    unit_sql = _unit_expression(qualified, outer, tables, aggregating)
    split = _executable(qualified)
    split.query.select(f'{_unit_in_executable(unit_sql, qualified)} AS "{UNIT_COLUMN}"', dialect=DIALECT, copy=False)
    normalised = qualified.sql(DIALECT)
    _check_normalised_size(normalised)
    return CheckedTemplate(
        sql=normalised,
        executable_sql=split.query.sql(DIALECT),
        output_columns=tuple(names),
        tables=tuple(sorted({t.name for t in outer})),
        aggregating=aggregating,
        aggregate_arguments_sql=None if split.arguments is None else split.arguments.sql(DIALECT),
        aggregate_names=split.names,
    )


def output_literals(sql: str) -> dict[str, tuple[str, ...]]:
    """For each output column of a checked template whose expression can only give literals (a
    literal, or ``CASE``/``IF``/``COALESCE`` of literals, nested), those values as DuckDB writes
    them as text, in the order they appear (NULL left out: missing is always a category).

    The approved template's text is public to its collaboration, so these values are public facts,
    not derived from any row: the clean room declares them as the column's categories (no budget;
    see docs/privacy.md). Only string, whole-number and boolean literals of one kind per column
    are read; anything else (a column, a function, a decimal whose text depends on its type) gives
    no entry."""
    root = sqlglot.parse_one(sql, read=DIALECT)
    out: dict[str, tuple[str, ...]] = {}
    for projection in root.expressions:
        node = projection.this if isinstance(projection, exp.Alias) else projection
        values = _literal_values(node)
        if values is None:
            continue
        kinds = {kind for kind, _ in values if kind != "null"}
        texts = tuple(dict.fromkeys(text for kind, text in values if kind != "null"))
        if len(kinds) == 1 and texts:
            out[projection.alias_or_name] = texts
    return out


def _literal_values(node: exp.Expr) -> list[tuple[str, str]] | None:
    """The (kind, text) pairs ``node`` can evaluate to, or None when it is not a finite literal set."""
    if isinstance(node, exp.Paren):
        return _literal_values(node.this)
    if isinstance(node, exp.Null):
        return [("null", "")]
    if isinstance(node, exp.Boolean):
        return [("bool", "true" if node.this else "false")]
    if isinstance(node, exp.Literal):
        if node.is_string:
            return [("text", node.this)]
        return [("int", str(int(node.this)))] if node.is_int else None
    if isinstance(node, exp.Case):
        branches = [branch.args.get("true") for branch in node.args.get("ifs") or []]
        branches.append(node.args.get("default") or exp.Null())
    elif isinstance(node, exp.If):
        branches = [node.args.get("true"), node.args.get("false") or exp.Null()]
    elif isinstance(node, exp.Coalesce):
        branches = [node.this, *node.expressions]
    else:
        return None
    out: list[tuple[str, str]] = []
    for branch in branches:
        values = None if branch is None else _literal_values(branch)
        if values is None:
            return None
        out += values
    return out


__all__ = [
    "CheckedTemplate",
    "TableColumns",
    "check_template",
    "output_literals",
    "UNIT_COLUMN",
    "ROW_COLUMN",
    "MAX_TEMPLATE_CHARS",
    "MAX_NESTING",
    "MAX_NODES",
    "MAX_DEPTH",
]
