"""Check and normalise the three tables an evaluation compares: real training rows, real holdout
rows (never used for fitting) and synthetic rows.

After :func:`prepare_tables` every schema column is, in every table, either text (categorical:
an object array of ``str``, ``None`` for missing) or ``float64`` (numerical; datetime as epoch
seconds, UTC), ``NaN`` for missing. Tables above ``max_rows`` are subsampled with a seeded draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError, absent_columns
from ..schema import Schema

# Below this many holdout (or training) rows an attack's AUC is too noisy to gate on: with 200
# members against 200 non-members, the AUC of a guessing attacker has a standard error of 0.029.
MIN_ROWS = 200

TABLE_NAMES = {"train": "training", "holdout": "holdout", "synthetic": "synthetic"}


@dataclass
class Tables:
    """The three normalised tables, the kind of each column, and what was done to them."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    synthetic: pd.DataFrame
    kinds: dict[str, str]  # column -> categorical | numerical | datetime
    target: str
    notes: list[str] = field(default_factory=list)

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [("train", self.train), ("holdout", self.holdout), ("synthetic", self.synthetic)]

    @property
    def rows(self) -> dict[str, int]:
        return {key: len(df) for key, df in self.items()}


def prepare_tables(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    *,
    max_rows: int,
    seed: int,
) -> Tables:
    """Validate the three tables against ``schema``, normalise their values and subsample."""
    if int(max_rows) < MIN_ROWS:
        raise InputError(f"max_rows {max_rows!r} is below the minimum of {MIN_ROWS}")
    raw = {"train": train, "holdout": holdout, "synthetic": synthetic}
    for key, df in raw.items():
        if not isinstance(df, pd.DataFrame):
            raise InputError(f"the {TABLE_NAMES[key]} table is not a pandas DataFrame")
        missing = [name for name in schema.names if name not in df.columns]
        if missing:
            raise absent_columns(missing, f"the {TABLE_NAMES[key]} table")
    _check_sizes({key: len(df) for key, df in raw.items()})
    notes: list[str] = []
    sampled = {}
    for index, (key, df) in enumerate(raw.items()):
        if len(df) > max_rows:
            notes.append(
                f"the {TABLE_NAMES[key]} table was subsampled from {len(df):,} to {max_rows:,} rows "
                f"(seeded draw without replacement, seed {seed})"
            )
            df = df.sample(n=max_rows, random_state=np.random.default_rng([seed, index]))
        sampled[key] = df
    kinds: dict[str, str] = {c.name: c.kind for c in schema.columns}
    clean = {
        key: pd.DataFrame(
            {name: normalise_column(df[name], kind, name, TABLE_NAMES[key]) for name, kind in kinds.items()}
        )
        for key, df in sampled.items()
    }
    return Tables(**clean, kinds=kinds, target=schema.target, notes=notes)


def _check_sizes(rows: dict[str, int]) -> None:
    if rows["synthetic"] == 0:
        raise InputError("the synthetic table has no rows")
    for key in ("holdout", "train"):
        if rows[key] == 0:
            raise InputError(f"the {TABLE_NAMES[key]} table has no rows")
        if rows[key] < MIN_ROWS:
            raise InputError(
                f"the {TABLE_NAMES[key]} table has {rows[key]} rows; at least {MIN_ROWS} are needed "
                "for a meaningful membership-inference score"
            )


def normalise_column(series: pd.Series, kind: str, name: str, table: str) -> np.ndarray:
    """One column as text (categorical) or float64 (numerical, datetime as epoch seconds)."""
    if kind == "categorical":
        return as_text(series)
    if kind == "numerical":
        return _as_number(series, name, table)
    return _as_epoch_seconds(series, name, table)


def as_text(series: pd.Series) -> np.ndarray:
    """Values as strings, ``None`` for missing; integral numbers print without ``.0`` so that a
    column read as ``1`` in one file and ``1.0`` in another (because of a gap) still matches."""
    values = series.to_numpy(dtype=object, na_value=None)
    uniques = pd.unique(values)
    mapping = {u: _text(u) for u in uniques}
    return np.array([mapping[v] for v in values], dtype=object)


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def _as_number(series: pd.Series, name: str, table: str) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series):
        raise InputError(f"column {name!r} is numerical but the {table} table holds dates")
    if pd.api.types.is_bool_dtype(series):
        series = series.astype("float64")
    numbers = pd.to_numeric(series, errors="coerce")
    if not pd.api.types.is_numeric_dtype(numbers):  # e.g. nullable booleans mixed with text
        numbers = pd.to_numeric(numbers.astype(object), errors="coerce")
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    _reject_unreadable(series, values, name, "numerical", table)
    if np.isinf(values).any():
        raise InputError(f"column {name!r} is numerical but the {table} table holds an infinite value")
    return values


def _as_epoch_seconds(series: pd.Series, name: str, table: str) -> np.ndarray:
    numbers = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numbers and series.notna().any():
        raise InputError(f"column {name!r} is declared datetime but the {table} table holds numbers")
    stamps = pd.to_datetime(series, errors="coerce", utc=True)
    failed = stamps.isna() & _present(series)
    if failed.any():  # the first value's format did not fit every row: parse each on its own
        stamps = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    values = ((stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype="float64", na_value=np.nan)
    _reject_unreadable(series, values, name, "datetime", table)
    return values


def _present(series: pd.Series) -> pd.Series:
    """Not missing and, for text, not blank."""
    text = series.astype(str).str.strip() if series.dtype == object or pd.api.types.is_string_dtype(series) else None
    present = series.notna()
    return present & (text != "") if text is not None else present


def _reject_unreadable(series: pd.Series, values: np.ndarray, name: str, kind: str, table: str) -> None:
    bad = np.isnan(values) & _present(series).to_numpy()
    if bad.any():
        value = series.to_numpy(dtype=object)[np.flatnonzero(bad)[0]]
        raise InputError(f"column {name!r} is {kind} but the {table} table holds the value {value!r}")
