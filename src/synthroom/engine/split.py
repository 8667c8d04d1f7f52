"""The release gate's holdout split on DuckDB, and the evaluation's bounded reads of a file.

:func:`split_table` is the DuckDB twin of :func:`.spark_split.split_spark`: each privacy unit
goes to the holdout when the first 64 bits of HMAC-SHA256(key, unit id), as a fraction of 2**64,
are below the share (the policy, the key and the DP sizing of the share are the caller's:
:mod:`synthroom.pipeline`). A unit id is the given unit's text, else the row's content: each
schema column's value as the engine counts it, as text, in a JSON list (so a row has the same id
in a CSV and in a Parquet file, and on Spark).

Everything happens inside DuckDB (a file is never loaded into pandas): the rows are typed as the
counting source types them (:func:`.counting.typed_sql`: a CSV's types come from the schema, never
from its content; a value that does not parse is missing), the training part of a file is copied
to a Parquet file that the synthesizer fits on, and at most ``max_rows`` rows of each part (those
with the lowest keyed hash: a random sample) come back as DataFrames for the evaluation.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import duckdb
import numpy as np
import pandas as pd

from ..errors import InputError, absent_columns
from .counting import check_names, one_row, open_file, stored_types, typed_sql, value_sql
from .types import quote_ident, quote_literal

_RID = "__synthroom_row"  # row-number column added while splitting (never written out)
_UNIT = "__synthroom_unit"  # the given units, while splitting (never written out)
_DRAW = "synthroom_draw"  # the unit's keyed hash, as an unsigned 64-bit number


@dataclass
class KeyedSplit:
    """The two parts: what the synthesizer fits on, and bounded samples of both for the evaluation."""

    fit_data: "str | pd.DataFrame"  # the training part: a Parquet path (file input) or a DataFrame
    train: pd.DataFrame  # at most max_rows training rows, those with the lowest draws
    holdout: pd.DataFrame  # likewise for the holdout
    n_train: int
    n_holdout: int


def hmac_pads(key: bytes) -> tuple[str, str]:
    """HMAC-SHA256's (RFC 2104) inner and outer padded keys, as hex: both engines' SQL hashes
    ``outer || sha256(inner || message)`` with them."""
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\x00")
    inner, outer = (bytes(b ^ pad for b in block).hex() for pad in (0x36, 0x5C))
    return inner, outer


def hmac_sql(key: bytes, message: str) -> str:
    """SQL for HMAC-SHA256 (RFC 2104) of the BLOB expression ``message`` under ``key``: 64 hex digits."""
    inner, outer = hmac_pads(key)
    return f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || {message})))"


def _draw_sql(key: bytes, unit: str) -> str:
    """The unit's keyed hash as a number in [0, 2**64): the HMAC's first 64 bits."""
    return f"CAST('0x' || substr({hmac_sql(key, f'encode({unit})')}, 1, 16) AS UBIGINT)"


def cut(share: float) -> int:
    """A unit is held out when its draw is below this: a ``share`` of all 64-bit numbers."""
    return int(share * 2**64)


def _holdout_sql(share: float) -> str:
    """The condition for a row of ``synthroom_split`` to be in the holdout."""
    return f"({_DRAW} < {cut(share)}::UBIGINT)"


def _unit_sql(con: duckdb.DuckDBPyConnection, rows: str, kinds: dict[str, str], units: bool) -> str:
    """A row's unit id as text: the given unit, else the row's content, each value as the engine
    counts it (so a row has the same id in a CSV and in a Parquet file), as a JSON list."""
    if units:
        return f"CAST({quote_ident(_UNIT)} AS VARCHAR)"
    stored = stored_types(con, rows)
    values = ", ".join(f"CAST({value_sql(n, kind, stored[n])} AS VARCHAR)" for n, kind in kinds.items())
    return f"to_json(list_value({values}))"


@contextmanager
def _connection() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(config={"threads": min(os.cpu_count() or 2, 4)})
    try:
        yield con
    finally:
        con.close()


def _open_rows(
    con: duckdb.DuckDBPyConnection,
    data: "str | Path | pd.DataFrame",
    kinds: dict[str, str],
    strict: bool,
    units: np.ndarray | None = None,
    ignore: tuple[str, ...] = (),
) -> str:
    """Open the input in DuckDB; returns a relation holding its columns as stored (a CSV's as text),
    a stable row number ``_RID`` and, with ``units``, ``_UNIT``. ``strict``: the input has exactly
    the schema's columns (as the synthesizer requires); otherwise extra columns are ignored."""
    if isinstance(data, pd.DataFrame):
        _check_columns([str(c) for c in data.columns], kinds, "the DataFrame", strict, ignore)
        frame = data[list(kinds)].copy()
        frame[_RID] = np.arange(len(frame), dtype=np.int64)
        if units is not None:
            frame[_UNIT] = units
        con.register("synthroom_frame", frame)
        return "synthroom_frame"
    return open_file(
        con,
        data,
        lambda names, where: _check_columns(names, kinds, where, strict, ignore),
        row_number=_RID,
        columns=list(kinds),
    )


def _check_columns(
    names: list[str], kinds: dict[str, str], where: str, strict: bool, ignore: tuple[str, ...] = ()
) -> None:
    if strict:
        check_names(names, kinds, where, ignore)
        return
    missing = [k for k in kinds if k not in names]
    if missing:
        raise absent_columns(missing, where)
    twice = [k for k in kinds if names.count(k) > 1]
    if twice:
        raise InputError(f"column {twice[0]!r} appears twice in {where}")


def _typed_columns(con: duckdb.DuckDBPyConnection, rows: str, kinds: dict[str, str]) -> str:
    """SELECT list typing each schema column as the engine does (a CSV's from the schema alone)."""
    stored = stored_types(con, rows)
    return ", ".join(f"{typed_sql(n, kind, stored[n])} AS {quote_ident(n)}" for n, kind in kinds.items())


def check_units(units: "pd.Series | np.ndarray | list | None", data: Any) -> np.ndarray | None:
    """The privacy units given with ``data`` as text, one per row (None: none given); refused
    unless ``data`` is a DataFrame and every row has one."""
    if units is None:
        return None
    if not isinstance(data, pd.DataFrame):
        raise InputError("units can only be given with a DataFrame (one per row)")
    values = pd.Series(np.asarray(units, dtype=object))
    if len(values) != len(data):
        raise InputError(f"units has {len(values):,} values for {len(data):,} rows: give one privacy unit per row")
    if values.isna().any():
        raise InputError("units holds a missing value: every row needs its privacy unit")
    return values.astype(str).to_numpy(dtype=object)


def split_table(
    data: "str | Path | pd.DataFrame",
    kinds: dict[str, str],
    plan: Any,
    key: bytes,
    workdir: Path,
    *,
    units: np.ndarray | None,
    ignore: tuple[str, ...],
    max_rows: int,
) -> KeyedSplit:
    """Split a CSV/Parquet file or a DataFrame (``units``: from :func:`check_units`) by the
    keyed hash; ``plan``: a :class:`~synthroom.pipeline.HoldoutPlan` (which measures the share
    from the exact row count, with DP), or a fixed share. A file's typed training part goes to
    ``workdir/train.parquet``; a DataFrame's stays a DataFrame (which may be empty)."""
    frame = isinstance(data, pd.DataFrame)
    columns = ", ".join(quote_ident(n) for n in kinds)
    try:
        with _connection() as con:
            rows = _open_rows(con, data, kinds, strict=True, units=units, ignore=ignore)
            con.execute(
                f"CREATE TEMP TABLE synthroom_split AS SELECT {_typed_columns(con, rows, kinds)}, "
                f"{_draw_sql(key, _unit_sql(con, rows, kinds, units is not None))} AS {_DRAW}, "
                f"{quote_ident(_RID)} FROM {rows}"
            )
            if hasattr(plan, "measure"):  # a DP count of the rows decides the share
                plan = plan.measure(one_row(con, "SELECT count(*) FROM synthroom_split")[0])
            holdout = _holdout_sql(float(plan))
            n_train, n_holdout = one_row(
                con,
                f"SELECT count(*) FILTER (WHERE NOT {holdout}), count(*) FILTER (WHERE {holdout}) FROM synthroom_split",
            )
            if n_train + n_holdout == 0 and not frame:  # a user's empty file (an empty DataFrame is no error)
                raise InputError("the table has no rows")
            part = {"train": f"NOT {holdout}", "holdout": holdout}
            fit_data = _training_part(con, columns, part["train"], None if frame else workdir / "train.parquet")
            # The draw is a keyed hash, so the lowest draws of each part are a random sample of it.
            samples = {
                name: con.execute(
                    f"SELECT {columns} FROM synthroom_split WHERE {where} "
                    f"ORDER BY {_DRAW}, {quote_ident(_RID)} LIMIT {int(max_rows)}"
                ).df()
                for name, where in part.items()
            }
    except duckdb.Error as exc:
        raise InputError(f"the input does not parse: {str(exc).splitlines()[0]}") from None
    return KeyedSplit(fit_data, samples["train"], samples["holdout"], n_train, n_holdout)


def _training_part(con: duckdb.DuckDBPyConnection, columns: str, where: str, path: Path | None) -> "str | pd.DataFrame":
    """The training rows, in input order: copied to the Parquet file ``path``, or (None: the input
    was a DataFrame, already in memory) as a DataFrame, whose emptiness the engine accepts."""
    train_sql = f"SELECT {columns} FROM synthroom_split WHERE {where} ORDER BY {quote_ident(_RID)}"
    if path is None:
        return con.execute(train_sql).df()
    con.execute(f"COPY ({train_sql}) TO {quote_literal(str(path))} (FORMAT parquet)")
    return str(path)


def unit_draws(df: pd.DataFrame, key: bytes, units: np.ndarray | None) -> np.ndarray:
    """Each row's draw (unsigned 64-bit), in row order: of its unit's id (``units``: one per row,
    already checked), else of the row's content, every column as a category."""
    names = [str(c) for c in df.columns]
    with _connection() as con:
        kinds = {n: "categorical" for n in names}
        rows = _open_rows(con, df.set_axis(names, axis=1), kinds, strict=True, units=units)
        unit = _unit_sql(con, rows, kinds, units is not None)
        return con.execute(
            f"SELECT {_draw_sql(key, unit)} AS {_DRAW} FROM {rows} ORDER BY {quote_ident(_RID)}"
        ).fetchnumpy()[_DRAW]


def read_rows(path: str | Path, kinds: dict[str, str], max_rows: int, seed: int) -> tuple[pd.DataFrame, int]:
    """The ``kinds`` columns of a CSV/Parquet file as stored (a CSV's as text), other columns
    ignored: at most ``max_rows`` rows (a sample by a seeded hash of the row number when the file
    holds more), without loading the whole file; and the file's row count."""
    with _connection() as con:
        rows = _open_rows(con, path, kinds, strict=False)
        try:
            n = one_row(con, f"SELECT count(*) FROM {rows}")[0]
            rank = f"hash({quote_ident(_RID)}, {int(seed)}::BIGINT)"
            order = f"{rank}, {quote_ident(_RID)}" if n > max_rows else quote_ident(_RID)
            columns = ", ".join(quote_ident(c) for c in kinds)
            df = con.execute(f"SELECT {columns} FROM {rows} ORDER BY {order} LIMIT {int(max_rows)}").df()
        except duckdb.Error as exc:
            raise InputError(f"input file {str(path)!r} does not parse: {str(exc).splitlines()[0]}") from None
    return df, n


__all__ = ["KeyedSplit", "check_units", "cut", "hmac_pads", "hmac_sql", "read_rows", "split_table", "unit_draws"]
