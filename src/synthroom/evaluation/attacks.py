"""Membership-inference attacks and copy rates, on the distance of :mod:`.distance`.

Both attacks score *members* (real training rows, which the synthesizer saw) against an equal
number of *non-members* (real holdout rows, which it did not) and report the ROC AUC of that
score: 0.5 means the synthetic rows tell an attacker nothing about who was in the training data,
1 means every member is exposed. Ties count one half.

* DCR-v1: score = -(distance to the closest synthetic row).
* DENSITY-RATIO-v1 (in the spirit of DOMIAS, van Breugel et al. 2023): score = log of the ratio
  of two nearest-neighbour density estimates at the row, the synthetic rows' over real reference
  rows' (holdout rows that are not candidates). With the 1-nearest-neighbour estimate
  p(x) ~ 1 / (n r(x)^d) the log ratio is d (log r_ref(x) - log r_syn(x)) plus a constant, so the
  AUC does not depend on the unknown dimension d. Unlike DCR it discounts rows that are merely
  in a dense region: a row is suspicious when the synthetic rows crowd it *more* than real data do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .distance import nearest_distances
from .result import Attack
from .tables import Tables

MAX_CANDIDATES = 10_000  # members (and as many non-members) per attack
MAX_COPY_SAMPLE = 2_000  # synthetic / holdout rows whose near copies are counted
HISTOGRAM_BINS = 30
LOG_OFFSET = 1e-3  # added to distances before the log (an exact copy has distance 0)


@dataclass
class Candidates:
    """Who is scored: training rows (members), holdout rows (non-members), and the holdout rows
    kept aside as the density attack's real reference."""

    members: np.ndarray  # indices into the training rows
    non_members: np.ndarray  # indices into the holdout rows (DCR)
    density_count: int  # the density attack scores members[:n] against non_members[:n]
    reference: np.ndarray  # holdout indices disjoint from non_members[:density_count]


def draw_candidates(rows: dict[str, int], seed: int) -> Candidates:
    rng = np.random.default_rng([seed, 1])
    n_train, n_holdout = rows["train"], rows["holdout"]
    m = min(n_train, n_holdout, MAX_CANDIDATES)
    holdout_order = rng.permutation(n_holdout)
    half = min(n_holdout // 2, m)
    return Candidates(
        members=rng.permutation(n_train)[:m],
        non_members=holdout_order[:m],
        density_count=half,
        reference=holdout_order[half:],
    )


def membership_auc(member_scores: np.ndarray, non_member_scores: np.ndarray) -> float:
    truth = np.r_[np.ones(member_scores.size), np.zeros(non_member_scores.size)]
    return float(roc_auc_score(truth, np.r_[member_scores, non_member_scores]))


def dcr_attack(encoded: dict[str, np.ndarray], cand: Candidates) -> tuple[Attack, dict[str, np.ndarray]]:
    """The DCR attack; also returns the candidates' distances to the synthetic rows for reuse."""
    synthetic = encoded["synthetic"]
    d_members = nearest_distances(encoded["train"][cand.members], synthetic)
    d_non = nearest_distances(encoded["holdout"][cand.non_members], synthetic)
    attack = Attack(
        attack_version="DCR-v1",
        score=membership_auc(-d_members, -d_non),
        description=(
            "Distance to closest record: how much closer training rows lie to the synthetic rows "
            "than holdout rows do (ROC AUC; 0.5 = no signal, 1 = every training row exposed)"
        ),
        details={
            "members": int(d_members.size),
            "non_members": int(d_non.size),
            "median_dcr_members": float(np.median(d_members)),
            "median_dcr_non_members": float(np.median(d_non)),
            "share_zero_members": float((d_members == 0).mean()),
            "share_zero_non_members": float((d_non == 0).mean()),
            "histogram": distance_histograms(d_members, d_non),
        },
    )
    return attack, {"members": d_members, "non_members": d_non}


def distance_histograms(members: np.ndarray, non_members: np.ndarray) -> dict[str, list]:
    """Counts of both distance sets on the same edges (0 .. 99th percentile of both; larger
    distances are counted in the last bin)."""
    top = float(np.quantile(np.r_[members, non_members], 0.99))
    edges = np.linspace(0.0, top if top > 0 else 1.0, HISTOGRAM_BINS + 1)
    return {
        "bin_edges": edges.tolist(),
        "members": np.histogram(np.minimum(members, edges[-1]), bins=edges)[0].tolist(),
        "non_members": np.histogram(np.minimum(non_members, edges[-1]), bins=edges)[0].tolist(),
    }


def density_ratio_attack(
    encoded: dict[str, np.ndarray], cand: Candidates, to_synthetic: dict[str, np.ndarray]
) -> Attack:
    n = cand.density_count
    reference = encoded["holdout"][cand.reference]
    members = encoded["train"][cand.members[:n]]
    non_members = encoded["holdout"][cand.non_members[:n]]

    def log_ratio(to_syn: np.ndarray, rows: np.ndarray) -> np.ndarray:
        to_ref = nearest_distances(rows, reference)
        return np.log(to_ref + LOG_OFFSET) - np.log(to_syn + LOG_OFFSET)

    s_members = log_ratio(to_synthetic["members"][:n], members)
    s_non = log_ratio(to_synthetic["non_members"][:n], non_members)
    return Attack(
        attack_version="DENSITY-RATIO-v1",
        score=membership_auc(s_members, s_non),
        description=(
            "Density ratio (DOMIAS-style): do the synthetic rows crowd training rows more than real "
            "reference rows do? 1-nearest-neighbour densities of synthetic over real holdout rows "
            "(ROC AUC; 0.5 = no signal)"
        ),
        details={
            "members": int(n),
            "non_members": int(n),
            "reference_rows": int(cand.reference.size),
            "median_log_ratio_members": float(np.median(s_members)),
            "median_log_ratio_non_members": float(np.median(s_non)),
        },
    )


def copy_rates(tables: Tables, encoded: dict[str, np.ndarray], seed: int) -> dict[str, float]:
    """Exact and near copies of real rows among the synthetic rows, beside what fresh real rows
    (the holdout) show against the training rows.

    exact: share of synthetic rows equal on every column (missing == missing) to at least one
    training (holdout) row. near: share of (at most ``MAX_COPY_SAMPLE`` sampled) synthetic rows
    within ``near_copy_threshold`` of a training (holdout) row, the threshold being the 1st
    percentile of the holdout rows' distances to their closest training row."""
    hashes = {key: pd.util.hash_pandas_object(df, index=False).to_numpy() for key, df in tables.items()}
    rng = np.random.default_rng([seed, 2])

    def sample(key: str) -> np.ndarray:
        rows = encoded[key]
        return rows[rng.permutation(len(rows))[:MAX_COPY_SAMPLE]]

    holdout_to_train = nearest_distances(sample("holdout"), encoded["train"])
    threshold = float(np.quantile(holdout_to_train, 0.01))
    synthetic = sample("synthetic")
    return {
        "exact_copy_rate_train": float(np.isin(hashes["synthetic"], hashes["train"]).mean()),
        "exact_copy_rate_holdout": float(np.isin(hashes["synthetic"], hashes["holdout"]).mean()),
        "exact_copy_rate_ceiling": float(np.isin(hashes["holdout"], hashes["train"]).mean()),
        "near_copy_threshold": threshold,
        "near_copy_rate_train": float((nearest_distances(synthetic, encoded["train"]) <= threshold).mean()),
        "near_copy_rate_holdout": float((nearest_distances(synthetic, encoded["holdout"]) <= threshold).mean()),
        "near_copy_rate_ceiling": float((holdout_to_train <= threshold).mean()),
    }
