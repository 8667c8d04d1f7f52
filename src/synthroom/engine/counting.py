"""The counting interface, implemented on DuckDB over a file or an in-memory table.

Files are scanned in place (Parquet directly; CSV is parsed once into a DuckDB temporary table),
so a 10-million-row file never becomes a pandas DataFrame. Only counts leave this module:

* :meth:`CountingSource.category_counts` -- exact count of each distinct value of a column;
* :meth:`CountingSource.grid_counts` -- exact counts of a numeric column on a public grid;
* :meth:`CountingSource.marginals` -- exact contingency tables of encoded columns.

The caller (the synthesis core) must noise them through :mod:`synthroom.privacy.mechanisms`
before they influence anything it outputs. Two non-DP facts are also answered, for input
validation only: whether the table is empty, and the column names and storage types (public
metadata: what the file or DataFrame declares; a CSV declares none, so every CSV column's storage
type is ``VARCHAR`` and nothing is sniffed from its content).

Typing is this module's: :func:`typed_sql` turns a column of any storage type into the value
its kind needs (numerical: a number, datetime: a timestamp), and a value that does not parse
(or is infinite) becomes missing, so whether a table can be read never depends on one row.
The pipeline's split uses the same function.
"""

from __future__ import annotations

import csv
import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import duckdb
import numpy as np
import pandas as pd

from ..errors import InputError, absent_columns, named_columns
from .dialect import DUCKDB, Dialect
from .grid import Grid
from .types import is_float, is_number, is_time, quote_ident, quote_literal

_ENC = "synthroom_encoded"


@dataclass(frozen=True)
class CategoryCoding:
    """How a categorical column becomes codes: kept values -> 0..k-1, else ``other``.

    With no ``other`` code, a value not kept (and missing, without a missing code) is counted in
    ``fold_code`` (a kept value's code, chosen from DP outputs: see selection.drop_empty_other),
    or in no cell when that is None too."""

    values: tuple[str, ...]  # kept non-missing values, in code order
    missing_code: int | None  # code for a missing value, or None (then missing -> other)
    other_code: int | None  # code for every value not kept, or None (no other value)
    size: int
    fold_code: int | None = None  # without an other code: where a value not kept is counted


@dataclass(frozen=True)
class Pieces:
    """Cells of a grid cut into equal pieces: cell ``c`` into ``nsub[c]`` pieces of width
    ``step[c]`` from ``origin[c]`` (``nsub[c] == 0``: not cut, not counted). Pieces are numbered
    flat, cell by cell in value order."""

    origin: tuple[float, ...]
    step: tuple[float, ...]
    nsub: tuple[int, ...]

    @property
    def offsets(self) -> np.ndarray:
        """Flat index of each cell's first piece."""
        return np.concatenate([[0], np.cumsum(self.nsub)[:-1]]).astype(np.int64)

    @property
    def count(self) -> int:
        return int(sum(self.nsub))


@dataclass(frozen=True)
class NumericCoding:
    """How a numeric column becomes codes: grid cell, then piece, then a bin by lookup."""

    grid: Grid
    pieces: Pieces
    piece_to_bin: tuple[int, ...]  # one entry per piece
    cell_to_bin: tuple[int, ...]  # one entry per grid cell, used for cells that are not cut
    clip: tuple[float, float] | None  # public bounds applied before the grid
    size: int


def typed_sql(column: str, kind: str, stored: str, dialect: Dialect = DUCKDB) -> str:
    """SQL for ``column`` (stored as ``stored``) typed as its ``kind`` needs: categorical as
    stored; numerical as stored when the storage is numeric or a date/time, else ``DOUBLE``;
    datetime as stored when the storage is a date/time, else ``TIMESTAMP``. Text that does not
    parse (see :mod:`synthroom.engine.dialect` for what parses), blanks and infinite values
    become NULL (missing): typing never fails on a value."""
    col = dialect.ident(column)
    if kind == "categorical":
        return col
    if is_time(stored):
        return dialect.finite_time(col)
    if kind == "numerical" and is_number(stored):
        return col if not is_float(stored) else dialect.finite_double(col)
    return dialect.parse(col, "TIMESTAMP" if kind == "datetime" else "DOUBLE")


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple[Any, ...]:
    """The one row of a query that always returns one (an aggregate without GROUP BY)."""
    row = con.execute(sql, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {sql!r}")
    return row


def stored_types(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """Each column of ``relation`` and its storage type, as DuckDB names it (a CSV's: VARCHAR)."""
    return {r[0]: str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def value_sql(column: str, kind: str, stored: str, dialect: Dialect = DUCKDB) -> str:
    """A column's value as counted: VARCHAR for categorical, DOUBLE for numerical and datetime
    (epoch seconds); NULL where the value is missing or does not parse. The same value whatever
    the storage (``35`` in a CSV and in a Parquet integer column are both 35.0)."""
    typed = typed_sql(column, kind, stored, dialect)
    if kind == "categorical":
        return dialect.text(typed)
    if kind == "datetime" or is_time(stored):
        return dialect.epoch(typed)
    return f"CAST({typed} AS DOUBLE)"


class CountingSource:
    """A table the synthesis core may count, and nothing else."""

    def __init__(self, con: duckdb.DuckDBPyConnection, relation: str, kinds: dict[str, str]):
        self._con: duckdb.DuckDBPyConnection | None = con
        self.passes = 0  # counting queries run (each one scan of the rows): the scale model's unit
        self._dialect = DUCKDB
        self._rel = relation
        self._kinds = kinds
        self._encoded: list[str] | None = None
        self._rel_types = stored_types(con, relation)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        data: "str | os.PathLike | pd.DataFrame",
        kinds: dict[str, str],
        threads: int | None = None,
        ignore: "Sequence[str]" = (),
    ) -> "CountingSource":
        """Open a CSV/Parquet path or a DataFrame; ``kinds`` maps each schema column to its kind;
        the ``ignore``d columns may be in the input and are never read.

        Raises :class:`InputError` for an unreadable file, missing/unknown/duplicate columns, an
        empty file, or a datetime column whose declared type is a number.
        """
        con = duckdb.connect(config={"threads": threads or min(os.cpu_count() or 2, 4)})
        con.execute("SET preserve_insertion_order = false")
        if isinstance(data, pd.DataFrame):
            names = [str(c) for c in data.columns]
            check_names(names, kinds, "the DataFrame", ignore)
            con.register("synthroom_input", data)
            relation = "synthroom_input"
        else:
            relation = open_file(
                con, data, lambda names, where: check_names(names, kinds, where, ignore), columns=list(kinds)
            )
        source = cls(con, relation, kinds)
        source._validate(empty_is_error=not isinstance(data, pd.DataFrame))
        return source

    def _validate(self, empty_is_error: bool) -> None:
        """A datetime column whose declared storage type is a number is refused, and so is an
        empty file (a user's own input); values that do not parse are not (they count as missing,
        see :func:`typed_sql`). An empty DataFrame is not an error: the clean room's joined rows
        arrive as one, and whether they are empty can depend on one person."""
        empty = self._fetch(f"SELECT count(*) FROM (SELECT 1 FROM {self._rel} LIMIT 1) AS synthroom_one")[0][0] == 0
        if empty and empty_is_error:
            raise InputError("the table has no rows")
        for name, kind in self._kinds.items():
            if kind == "datetime" and is_number(self.storage_type(name)):
                raise InputError(f"column {name!r} is declared datetime but holds numbers")

    # -- public metadata ---------------------------------------------------------------------
    def storage_type(self, column: str) -> str:
        """The column's storage type as the file or DataFrame declares it (a CSV: ``VARCHAR``)."""
        return self._rel_types.get(column, "VARCHAR")

    def value_sql(self, column: str) -> str:
        """Value of a column for counting (see :func:`value_sql`)."""
        return value_sql(column, self._kinds[column], self.storage_type(column), self._dialect)

    # -- counts (exact; the caller must add noise) -------------------------------------------
    def category_counts(self, column: str) -> tuple[list[str | None], np.ndarray]:
        """Each distinct value of ``column`` (None for missing) and its exact count, in value order
        (code points, which is UTF-8 byte order, as both engines compare text), missing last."""
        rows = self._fetch(
            f"SELECT v, count(*) FROM (SELECT {self.value_sql(column)} AS v FROM {self._rel}) GROUP BY v"
        )
        rows.sort(key=lambda r: (r[0] is None, r[0] or ""))
        return [r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.int64)

    def grid_counts(self, column: str, grid: Grid, clip: tuple[float, float] | None = None) -> np.ndarray:
        """Exact counts of ``column`` on every cell of the public ``grid`` (after public clipping)."""
        layers = clipped_layers(self.value_sql(column), clip, "", self._dialect)
        cell_layers, cell = grid.cell_layers(self._dialect.ident("v"), "cell_", self._dialect)
        return self._dense_counts(layers + cell_layers + [{"i": cell}], "i", grid.size)

    def piece_counts(self, column: str, grid: Grid, clip: tuple[float, float] | None, pieces: Pieces) -> np.ndarray:
        """Exact counts of ``column`` on the public ``pieces`` of grid cells (flat, in order)."""
        return self._dense_counts(
            piece_layers(self.value_sql(column), clip, grid, pieces, "", self._dialect), "p", pieces.count
        )

    def _dense_counts(self, layers: list[dict[str, str]], index: str, size: int) -> np.ndarray:
        """Counts of each value of the column ``index`` of ``layers`` (see :func:`layered_sql`) in
        [0, size); a negative index (a value whose cell is not cut) is dropped here, after the
        count, not by a WHERE: Spark would push that filter down through the layers, inlining them."""
        i = self._dialect.ident(index)
        rows = self._fetch(f"SELECT {i}, count(*) FROM {layered_sql(self._rel, layers, self._dialect)} GROUP BY {i}")
        out = np.zeros(size, dtype=np.int64)
        for at, count in rows:
            if at is not None and at >= 0:
                out[int(at)] += count
        return out

    def _fetch(self, sql: str) -> list[tuple]:
        self.passes += 1
        return self._open().execute(sql).fetchall()

    def encoded_sql(self, codings: dict[str, "CategoryCoding | NumericCoding"]) -> str:
        """The query of the encoded table: one small-integer code per column (see :func:`encoded_sql`)."""
        values = {name: self.value_sql(name) for name in codings}
        return encoded_sql(self._rel, values, codings, self._dialect)

    def encode(self, codings: dict[str, "CategoryCoding | NumericCoding"]) -> None:
        """Materialise the encoded table (one small-integer code per column) for marginals."""
        self._open().execute(f"CREATE OR REPLACE TEMP TABLE {_ENC} AS {self.encoded_sql(codings)}")
        self._encoded = list(codings)
        self._sizes = {name: coding.size for name, coding in codings.items()}

    def marginals(self, cliques: Sequence[tuple[str, ...]]) -> list[np.ndarray]:
        """Exact contingency tables of the encoded table, one dense array per clique."""
        if self._encoded is None:
            raise RuntimeError("encode() must be called before marginals()")
        out = []
        for clique in cliques:
            cols = ", ".join(quote_ident(c) for c in clique)
            self.passes += 1
            res = self._open().execute(f"SELECT {cols}, count(*) FROM {_ENC} GROUP BY ALL").fetchnumpy()
            idx = tuple(np.asarray(res[c], dtype=np.int64) for c in clique)
            out.append(self._dense_table(clique, idx, res["count_star()"]))
        return out

    def _dense_table(self, clique: tuple[str, ...], idx: tuple[np.ndarray, ...], counts) -> np.ndarray:
        table = np.zeros(tuple(self._sizes[c] for c in clique), dtype=np.float64)
        np.add.at(table, idx, np.asarray(counts, dtype=np.float64))
        return table

    def _open(self) -> duckdb.DuckDBPyConnection:
        """The connection; a clear error after :meth:`close` (the fit closes it once it has counted)."""
        if self._con is None:
            raise RuntimeError("this CountingSource is closed")
        return self._con

    def close(self) -> None:
        """Release the connection (and its memory); closing twice is harmless."""
        if self._con is not None:
            self._con.close()
            self._con = None


def clipped_sql(x: str, clip: tuple[float, float] | None, dialect: Dialect = DUCKDB) -> str:
    """``x`` within public bounds (an infinite bound is none); missing stays missing (greatest and
    least skip NULLs on both engines: unguarded, a missing value would become the bound)."""
    if clip is None:
        return x
    out = x if not np.isfinite(clip[0]) else f"greatest({x}, {dialect.number(clip[0])})"
    out = out if not np.isfinite(clip[1]) else f"least({out}, {dialect.number(clip[1])})"
    return f"CASE WHEN {x} IS NULL THEN NULL ELSE {out} END"


def layered_sql(relation: str, layers: Sequence[dict[str, str]], dialect: Dialect = DUCKDB) -> str:
    """A subquery over ``relation`` computing each layer's named expressions from the columns of
    the layers before it (the first layer's from ``relation``'s), one nested SELECT per layer;
    its columns are every layer's. Each expression is written once, so it is computed once per
    row, where inlining it would repeat it at every use (the grid cell's CASE in each per-cell
    array lookup, the typed value in the cell's CASE): neither engine shares a subexpression
    between CASE branches, and Spark's optimizer keeps projections apart when merging them
    would duplicate an expression that is not cheap (CollapseProject)."""
    sql, names = relation, list[str]()
    for depth, layer in enumerate(layers):
        carried = [dialect.ident(n) for n in names if n not in layer]
        computed = [f"{expr} AS {dialect.ident(n)}" for n, expr in layer.items()]
        sql = f"(SELECT {', '.join(carried + computed)} FROM {sql} AS synthroom_l{depth})"
        names += [n for n in layer if n not in names]
    return sql


def clipped_layers(
    value: str, clip: tuple[float, float] | None, tag: str, dialect: Dialect = DUCKDB
) -> list[dict[str, str]]:
    """Layers computing a column's counted ``value`` as ``{tag}x`` and it within its public
    bounds as ``{tag}v`` (see :func:`layered_sql`)."""
    return [{f"{tag}x": value}, {f"{tag}v": clipped_sql(dialect.ident(f"{tag}x"), clip, dialect)}]


def piece_layers(
    value: str, clip: tuple[float, float] | None, grid: Grid, pieces: Pieces, tag: str, dialect: Dialect = DUCKDB
) -> list[dict[str, str]]:
    """Layers computing a numeric column's clipped value ``{tag}v``, what its grid cell needs
    (``{tag}cell_...``), the cell (1-based) ``{tag}c``, that cell's entries of the per-cell
    arrays (each looked up once) and from them its flat piece index ``{tag}p``, or -1 when the
    cell is not cut."""
    col = {n: dialect.ident(f"{tag}{n}") for n in "vcnsof"}
    cell = col["c"]
    within = (
        f"CASE WHEN {col['s']} > 0 THEN least(greatest(floor(({col['v']} - {col['o']}) / {col['s']}), 0), "
        f"{col['n']} - 1) ELSE 0 END"
    )
    cell_layers, cell_sql = grid.cell_layers(col["v"], f"{tag}cell_", dialect)
    return (
        clipped_layers(value, clip, tag, dialect)
        + cell_layers
        + [
            {f"{tag}c": f"CAST({cell_sql} AS BIGINT) + 1"},
            {
                f"{tag}n": dialect.at(dialect.int_array(pieces.nsub), cell),
                f"{tag}s": dialect.at(dialect.float_array(pieces.step), cell),
                f"{tag}o": dialect.at(dialect.float_array(pieces.origin), cell),
                f"{tag}f": dialect.at(dialect.int_array(pieces.offsets), cell),
            },
            {f"{tag}p": f"CASE WHEN {col['n']} > 0 THEN CAST({col['f']} + {within} AS BIGINT) ELSE -1 END"},
        ]
    )


def encoded_sql(
    relation: str,
    values: dict[str, str],
    codings: dict[str, "CategoryCoding | NumericCoding"],
    dialect: Dialect = DUCKDB,
) -> str:
    """The query encoding each column of ``relation`` (its counted value ``values[name]``, see
    :func:`value_sql`) as a small-integer code, each value, cell and piece computed once per row
    (:func:`layered_sql`)."""
    layers: list[dict[str, str]] = []
    outputs = []
    for k, (name, coding) in enumerate(codings.items()):
        tag = f"synthroom_{k}_"
        column_layers, code = code_layers(values[name], coding, tag, dialect)
        for depth, layer in enumerate(column_layers):
            if depth == len(layers):
                layers.append({})
            layers[depth].update(layer)
        outputs.append(f"{code} AS {dialect.ident(name)}")
    return f"SELECT {', '.join(outputs)} FROM {layered_sql(relation, layers, dialect)} AS synthroom_codes"


def code_layers(
    value: str, coding: "CategoryCoding | NumericCoding", tag: str, dialect: Dialect = DUCKDB
) -> tuple[list[dict[str, str]], str]:
    """The layers a column's code needs (see :func:`layered_sql`, names starting with ``tag``)
    and the code's SQL over their columns, from its counted ``value``."""
    code_type = _CODE_TYPE[dialect.name]
    if isinstance(coding, NumericCoding):
        piece, cell = dialect.ident(f"{tag}p"), dialect.ident(f"{tag}c")
        by_piece = dialect.at(dialect.int_array(coding.piece_to_bin), f"{piece} + 1")
        by_cell = dialect.at(dialect.int_array(coding.cell_to_bin), cell)
        code = f"CAST(CASE WHEN {piece} >= 0 THEN {by_piece} ELSE {by_cell} END AS {code_type})"
        return piece_layers(value, coding.clip, coding.grid, coding.pieces, tag, dialect), code
    x = dialect.ident(f"{tag}x")
    into = coding.other_code if coding.other_code is not None else coding.fold_code
    fallback = "NULL" if into is None else str(into)
    missing = str(coding.missing_code) if coding.missing_code is not None else fallback
    # A MAP lookup is a hash probe per row, fine for hundreds of categories.
    mapped = f"coalesce({dialect.lookup(list(coding.values), x)}, {fallback})" if coding.values else fallback
    return [{f"{tag}x": value}], f"CAST(CASE WHEN {x} IS NULL THEN {missing} ELSE {mapped} END AS {code_type})"


_CODE_TYPE = {"duckdb": "USMALLINT", "spark": "INT"}


CSV_SUFFIXES = (".csv", ".tsv", ".txt")  # each also gzip-compressed, with ".gz" after it


def file_format(path: Path) -> str | None:
    """``parquet``, ``csv`` (also ``.csv.gz``) or None, from the file's extension."""
    suffixes = [x.lower() for x in path.suffixes[-2:]]
    if suffixes[-1:] == [".parquet"]:
        return "parquet"
    if suffixes[-1:] and suffixes[-1] in CSV_SUFFIXES or suffixes[-1:] == [".gz"] and suffixes[0] in CSV_SUFFIXES:
        return "csv"
    return None


def open_file(
    con: duckdb.DuckDBPyConnection,
    path: "str | os.PathLike",
    check: Callable[[list[str], str], None],
    row_number: str | None = None,
    columns: "Sequence[str] | None" = None,
) -> str:
    """SQL naming the rows of a CSV (also gzip-compressed: ``.csv.gz``) or Parquet file (or a folder
    of Parquet files, as Spark writes them), as stored:
    a CSV is parsed once into a temporary table, every column as text (a CSV declares no types,
    and its content is never sniffed for them), only ``columns`` of it when given. ``check`` gets
    the file's column names and its path before anything is read; ``row_number`` names an added
    column holding each row's stable position."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input file {str(path)!r} does not exist")
    kind = "parquet" if path.is_dir() else file_format(path)
    files = str(path / "**" / "*.parquet") if path.is_dir() else str(path)  # a folder: its Parquet files
    try:
        if kind == "parquet":
            check([r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [files]).fetchall()], str(path))
            if row_number is None:
                return f"read_parquet({quote_literal(files)})"
            return (
                f"(SELECT *, file_row_number AS {quote_ident(row_number)} FROM "
                f"read_parquet({quote_literal(files)}, file_row_number = true))"
            )
        if kind == "csv":
            check(csv_header(path), str(path))
            wanted = "*" if columns is None else ", ".join(quote_ident(c) for c in columns)
            con.execute(
                f"CREATE TEMP TABLE synthroom_input AS SELECT {wanted} FROM read_csv({quote_literal(str(path))}, "
                "header = true, all_varchar = true)"
            )
            return (
                "synthroom_input"
                if row_number is None
                else f"(SELECT *, rowid AS {quote_ident(row_number)} FROM synthroom_input)"
            )
    except duckdb.Error as exc:
        raise InputError(f"input file {str(path)!r} does not parse: {str(exc).splitlines()[0]}") from None
    raise InputError(
        f"input file {str(path)!r}: unknown extension {''.join(path.suffixes[-2:])!r} (use .csv, .csv.gz or .parquet)"
    )


def csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError:
        raise InputError(f"input file {str(path)!r} does not parse: it is not UTF-8 text") from None
    except (OSError, EOFError) as exc:  # not gzip data, or a truncated one
        raise InputError(f"input file {str(path)!r} does not parse: {exc}") from None
    if not header:
        raise InputError(f"input file {str(path)!r} is empty (no header row)")
    return header


def check_names(names: list[str], kinds: dict[str, str], where: str, ignore: "Sequence[str]" = ()) -> None:
    """The input holds every schema column once, and nothing else but ``ignore``d columns (an ignored
    column that is not there is no fault: the gate's training part, for one, has none)."""
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise InputError(f"column {n!r} appears twice in {where}")
        seen.add(n)
    missing = [k for k in kinds if k not in seen]
    if missing:
        raise absent_columns(missing, where)
    unknown = [n for n in names if n not in kinds and n not in ignore]
    if unknown:
        them, verb = ("it", "is") if len(unknown) == 1 else ("them", "are")
        raise InputError(
            f"{named_columns(unknown)} in {where} {verb} not classified in the schema: classify {them}, or "
            f"leave {them} out with 'ignore: [{', '.join(unknown)}]' in the schema "
            f"({' '.join('--ignore ' + n for n in unknown)} on the command line)"
        )
