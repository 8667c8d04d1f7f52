"""Fidelity: how closely the synthetic rows reproduce the real training rows' distributions,
each figure beside its ceiling (the real holdout rows against the same training rows).

* per column: KL(P_train || Q) on the bins of :mod:`.binning`, both sides smoothed as
  ``(share + EPS) / (1 + K * EPS)``, EPS = 1e-6, K bins; score ``exp(-KL)``;
  ``fidelityScore`` is the mean score over columns;
* 2-way: total-variation distance ``0.5 * sum |P - Q|`` of each column pair's joint bin shares
  (unsmoothed), averaged over all pairs;
* associations (see :mod:`.association`): mean |real - synthetic| over column pairs.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from .association import association_matrix, mean_abs_difference
from .binning import ColumnBins
from .result import ColumnFidelity, Fidelity
from .tables import Tables

EPS = 1e-6


def smoothed(shares: np.ndarray) -> np.ndarray:
    return (shares + EPS) / (1.0 + shares.size * EPS)


def kl_divergence(p_shares: np.ndarray, q_shares: np.ndarray) -> float:
    """KL(P || Q) in nats on smoothed shares (0 for identical shares)."""
    p, q = smoothed(p_shares), smoothed(q_shares)
    return float(max((p * np.log(p / q)).sum(), 0.0))


def column_fidelity(bins: ColumnBins) -> ColumnFidelity:
    real, synthetic, holdout = bins.shares("train"), bins.shares("synthetic"), bins.shares("holdout")
    kl = kl_divergence(real, synthetic)
    return ColumnFidelity(
        name=bins.name,
        kind=bins.kind,
        kl=kl,
        kl_ceiling=kl_divergence(real, holdout),
        score=float(np.exp(-kl)),
        bins=bins.labels,
        real=real.tolist(),
        synthetic=synthetic.tolist(),
        holdout=holdout.tolist(),
    )


def mean_tvd_2way(bins: list[ColumnBins], key: str) -> float:
    """Mean over column pairs of the TVD between the training rows' and table ``key``'s joint
    bin shares; 0 when there is a single column."""
    distances = []
    for a, b in combinations(bins, 2):
        size = a.size * b.size
        real = np.bincount(a.codes["train"] * b.size + b.codes["train"], minlength=size)
        other = np.bincount(a.codes[key] * b.size + b.codes[key], minlength=size)
        distances.append(0.5 * np.abs(real / real.sum() - other / other.sum()).sum())
    return float(np.mean(distances)) if distances else 0.0


def measure_fidelity(tables: Tables, bins: list[ColumnBins]) -> Fidelity:
    columns = [column_fidelity(b) for b in bins]
    numeric = [b.name for b in bins if b.kind != "categorical"]
    matrices = {
        key: association_matrix(bins, {name: df[name].to_numpy(dtype=float) for name in numeric}, key)
        for key, df in tables.items()
    }
    return Fidelity(
        score=float(np.mean([c.score for c in columns])),
        score_ceiling=float(np.mean([np.exp(-c.kl_ceiling) for c in columns])),
        columns=columns,
        tvd_2way=mean_tvd_2way(bins, "synthetic"),
        tvd_2way_ceiling=mean_tvd_2way(bins, "holdout"),
        association_names=[b.name for b in bins],
        association_real=matrices["train"].tolist(),
        association_synthetic=matrices["synthetic"].tolist(),
        association_diff_mean=mean_abs_difference(matrices["train"], matrices["synthetic"]),
        association_diff_ceiling=mean_abs_difference(matrices["train"], matrices["holdout"]),
        association_holdout=matrices["holdout"].tolist(),
    )
