"""Pairwise association between columns, comparable across kinds (each in [0, 1]):

* categorical x categorical: Cramér's V of the contingency table (on the fidelity bins, so
  missing is a category);
* categorical x numerical: the correlation ratio eta = sqrt(between-group / total sum of squares)
  of the numbers grouped by category (rows with the number missing are left out);
* numerical x numerical: |Spearman rank correlation| over the rows where both are present.

A constant column (no variation) has association 0 with everything.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy.stats import rankdata

from .binning import ColumnBins


def association_matrix(bins: list[ColumnBins], values: dict[str, np.ndarray], key: str) -> np.ndarray:
    """Symmetric matrix over ``bins``' columns for table ``key`` (diagonal 1).

    ``values`` maps each numerical/datetime column to that table's float values."""
    n = len(bins)
    matrix = np.eye(n)
    for i, j in combinations(range(n), 2):
        a, b = bins[i], bins[j]
        if a.kind == "categorical" and b.kind == "categorical":
            v = cramers_v(a.codes[key], b.codes[key], a.size, b.size)
        elif a.kind == "categorical":
            v = correlation_ratio(a.codes[key], values[b.name])
        elif b.kind == "categorical":
            v = correlation_ratio(b.codes[key], values[a.name])
        else:
            v = abs_spearman(values[a.name], values[b.name])
        matrix[i, j] = matrix[j, i] = v
    return matrix


def cramers_v(x: np.ndarray, y: np.ndarray, kx: int, ky: int) -> float:
    table = np.bincount(x * ky + y, minlength=kx * ky).reshape(kx, ky).astype(float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, c = table.shape
    if min(r, c) < 2:
        return 0.0
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(min(chi2 / (n * (min(r, c) - 1)), 1.0)))


def correlation_ratio(groups: np.ndarray, numbers: np.ndarray) -> float:
    present = ~np.isnan(numbers)
    g, x = groups[present], numbers[present]
    if x.size < 2:
        return 0.0
    total = float(((x - x.mean()) ** 2).sum())
    if total <= 0:
        return 0.0
    counts = np.bincount(g)
    sums = np.bincount(g, weights=x)
    used = counts > 0
    between = float((sums[used] ** 2 / counts[used]).sum() - x.sum() ** 2 / x.size)
    return float(np.sqrt(np.clip(between / total, 0.0, 1.0)))


def abs_spearman(x: np.ndarray, y: np.ndarray) -> float:
    both = ~(np.isnan(x) | np.isnan(y))
    if both.sum() < 2:
        return 0.0
    rx, ry = rankdata(x[both]), rankdata(y[both])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float(min(abs((rx * ry).sum()) / denom, 1.0)) if denom > 0 else 0.0


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a - b| over the off-diagonal pairs (i < j); 0 for a single column."""
    upper = np.triu_indices(a.shape[0], k=1)
    return float(np.abs(a[upper] - b[upper]).mean()) if upper[0].size else 0.0
