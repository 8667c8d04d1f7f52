"""Bins shared by every fidelity figure, fixed by the real training rows alone.

* categorical: one bin per training category (the ``MAX_CATEGORIES`` most frequent; rarer and
  unseen values share one ``(other)`` bin);
* numerical / datetime: cut at the training column's quantiles 1/20, ..., 19/20 (inverted-CDF
  definition, so every cut is a training value); a value holding
  at least 1/20 of the training rows (a point mass such as "0" or "40 hours") gets a bin of its
  own; values beyond the training range fall in the first/last bin;
* missing values are their own ``(missing)`` bin in every column.

Bins empty in all three tables are dropped (they would add nothing but smoothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .tables import Tables

N_QUANTILE_BINS = 20
MAX_CATEGORIES = 200
MISSING_LABEL = "(missing)"
OTHER_LABEL = "(other)"


@dataclass
class ColumnBins:
    """One column's bin labels and each table's bin code per row (0 .. len(labels) - 1)."""

    name: str
    kind: str
    labels: list[str]
    codes: dict[str, np.ndarray]  # train / holdout / synthetic -> int64 codes

    @property
    def size(self) -> int:
        return len(self.labels)

    def shares(self, key: str) -> np.ndarray:
        """Share of the table's rows in each bin."""
        counts = np.bincount(self.codes[key], minlength=self.size)
        return counts / max(counts.sum(), 1)


def bin_columns(tables: Tables) -> list[ColumnBins]:
    """Every schema column binned on the training rows, in schema order."""
    out = []
    for name, kind in tables.kinds.items():
        columns = {key: df[name].to_numpy() for key, df in tables.items()}
        if kind == "categorical":
            labels, codes = _categorical_bins(columns)
        else:
            labels, codes = _numeric_bins(columns, kind)
        out.append(_drop_empty(ColumnBins(name, kind, labels, codes)))
    return out


def _categorical_bins(columns: dict[str, np.ndarray]) -> tuple[list[str], dict[str, np.ndarray]]:
    train = pd.Series(columns["train"], dtype=object)
    ranked = train.value_counts(dropna=True, sort=False).sort_index(kind="stable")
    ranked = ranked.sort_values(ascending=False, kind="stable")
    kept = [str(v) for v in ranked.index[:MAX_CATEGORIES]]
    other, missing = len(kept), len(kept) + 1
    codes = {}
    for key, values in columns.items():
        code = pd.Index(kept, dtype=object).get_indexer(values).astype(np.int64)
        code[code < 0] = other
        code[pd.isna(values)] = missing
        codes[key] = code
    return kept + [OTHER_LABEL, MISSING_LABEL], codes


def numeric_cuts(train: np.ndarray) -> np.ndarray:
    """Sorted cut points: bin ``i`` holds the values in ``[cuts[i-1], cuts[i])``."""
    present = train[~np.isnan(train)]
    if present.size == 0:
        return np.empty(0)
    quantiles = np.quantile(present, np.arange(1, N_QUANTILE_BINS) / N_QUANTILE_BINS, method="inverted_cdf")
    values, counts = np.unique(present, return_counts=True)
    atoms = values[counts >= present.size / N_QUANTILE_BINS]
    return np.unique(np.concatenate([quantiles, atoms, np.nextafter(atoms, np.inf)]))


def _numeric_bins(columns: dict[str, np.ndarray], kind: str) -> tuple[list[str], dict[str, np.ndarray]]:
    cuts = numeric_cuts(columns["train"])
    missing = len(cuts) + 1
    codes = {}
    for key, values in columns.items():
        code = np.searchsorted(cuts, values, side="right").astype(np.int64)
        code[np.isnan(values)] = missing
        codes[key] = code
    fmt = _date_label if kind == "datetime" else _number_label
    labels = [_interval_label(cuts, i, fmt) for i in range(len(cuts) + 1)]
    return labels + [MISSING_LABEL], codes


def _interval_label(cuts: np.ndarray, i: int, fmt) -> str:
    if len(cuts) == 0:
        return "all values"
    if i == 0:
        return f"< {fmt(cuts[0])}"
    if i == len(cuts):
        return f">= {fmt(cuts[-1])}"
    lo, hi = cuts[i - 1], cuts[i]
    if hi == np.nextafter(lo, np.inf):
        return f"= {fmt(lo)}"
    return f"[{fmt(lo)}, {fmt(hi)})"


def _number_label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


def _date_label(value: float) -> str:
    stamp = pd.Timestamp(value, unit="s")
    return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat(sep=" ")


def _drop_empty(bins: ColumnBins) -> ColumnBins:
    used = np.zeros(bins.size, dtype=bool)
    for code in bins.codes.values():
        used[np.unique(code)] = True
    if used.all():
        return bins
    new_index = np.cumsum(used) - 1
    return ColumnBins(
        bins.name,
        bins.kind,
        [label for label, keep in zip(bins.labels, used) if keep],
        {key: new_index[code] for key, code in bins.codes.items()},
    )
