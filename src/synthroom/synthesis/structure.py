"""Which marginals to measure, and measuring them: a target-centred, AIM-style selection.

The workload favours the predictive column: every selected clique contains it when the clique
fits under the capacity cap. Three stages share the budget left after discretisation:

1. *Anchor* (``ANCHOR_SHARE``): the 2-way marginal of every feature with the target (or the
   feature's 1-way marginal when the pair would break the cap), with Gaussian noise.
2. *Select* (``SELECT_SHARE``): a maximum spanning tree over the features, grown one edge at a
   time (Kruskal) with the exponential mechanism. A candidate edge (x, y) stands for the clique
   (x, y, target); its score is how far the true marginal is from what the anchors predict
   (a naive-Bayes model: x and y independent given the target), in L1, minus the noise the
   measurement would add (sqrt(2/pi) * sigma * cells, as in AIM, so huge cliques that noise
   would swamp lose; weighed at ``TREE_NOISE_WEIGHT`` for the tree, since the anchors already
   pin part of each clique). L1 distance to a fixed table has sensitivity 1.
3. *Measure* (the rest): each selected clique with Gaussian noise.

Capacity cap (the "model capacity reduction" that limits memorisation): no clique may have more
than ``max_clique_cells`` cells, and all measured cliques together at most ``max_model_cells``.
The result is a tree-augmented naive Bayes structure whose junction tree has the selected
triples as its cliques, so estimation and sampling stay cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Callable

import numpy as np

from ..engine import CountingSource
from ..privacy import ZCDPAccountant
from ..privacy.noise import Noise
from ..privacy.mechanisms import exponential_choice, gaussian_counts, sigma_for

ANCHOR_SHARE = 0.3
SELECT_SHARE = 0.15
# The weight of a candidate's noise penalty when the spanning tree is chosen (see clique_scores):
# each tree clique (x, y, target) is estimated together with the anchors that already fix its
# (x, target) and (y, target) tables, so the model's error on it is well below its raw
# measurement noise. At AIM's full weight the tree avoided every wide informative pair (Adult at
# epsilon 1: occupation x hours-per-week, 420 cells, the worst pair at 2-way TVD 0.146) for
# small ones; at half it joins them (bench/RESULTS.md, "Adult behind the gate").
TREE_NOISE_WEIGHT = 0.5


@dataclass
class Measurement:
    """A noisy marginal: counts over ``clique`` (shaped by the column sizes), noise std ``sigma``;
    with ``cells``, only those cells of a 1-way marginal, in that order (a category selection's
    counts of the values it kept: ``selection.selection_measurements``); with ``groups``, the
    marginal summed over groups of each column's codes (column i's code j in group
    ``groups[i][j]``; shaped by the group counts: ``coarse.coarse_round``)."""

    clique: tuple[str, ...]
    noisy: np.ndarray
    sigma: float
    cells: tuple[int, ...] | None = None
    groups: tuple[tuple[int, ...], ...] | None = None


def measure_cliques(
    source: CountingSource,
    accountant: ZCDPAccountant,
    noise: Noise,
    cliques: list[tuple[str, ...]],
    rho_each: float,
    label: str,
) -> list[Measurement]:
    """Each clique's exact marginal with Gaussian noise, ``rho_each`` charged per clique (the
    ledger's step: ``label`` and the clique's columns)."""
    out = []
    for clique, exact in zip(cliques, source.marginals(cliques)):
        noisy, sigma = gaussian_counts(accountant, noise, exact, rho_each, step=f"{label} {'x'.join(clique)}")
        out.append(Measurement(tuple(clique), noisy, sigma))
    return out


def clique_cells(sizes: dict[str, int], clique: tuple[str, ...]) -> int:
    """The number of cells of the clique's marginal (the product of its columns' sizes)."""
    return int(math.prod(sizes[c] for c in clique))


class _Forest:
    """Union-find over the features, for Kruskal's spanning tree."""

    def __init__(self, items):
        self.parent = {x: x for x in items}

    def find(self, x):
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b):
        self.parent[self.find(a)] = self.find(b)


def select_and_measure(
    source: CountingSource,
    sizes: dict[str, int],
    target: str,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
    max_clique_cells: int,
    max_model_cells: int,
    progress: Callable[[str], None] = lambda _msg: None,
    *,
    anchor_share: float = ANCHOR_SHARE,
    select_share: float = SELECT_SHARE,
    max_edges: int | None = None,
    focus: int = 0,
    focus_share: float = 0.0,
) -> list[Measurement]:
    """Spend exactly ``rho`` on anchors, selection and measurement; return every measurement.

    ``anchor_share``/``select_share``: of ``rho``, for the anchors and for choosing cliques;
    ``max_edges``: the most cliques to choose (None: a spanning tree; 0: anchors only, which then
    get all of ``rho``); ``focus``/``focus_share``: see :func:`measure_anchors`. Public
    parameters (the size regime's, see :mod:`.regime`)."""
    spent_before = accountant.rho_spent
    features = [c for c in sizes if c != target]
    if not features:
        return measure_cliques(source, accountant, noise, [(target,)], rho, "marginal")

    anchors: list[tuple[str, ...]] = [
        (x, target) if clique_cells(sizes, (x, target)) <= max_clique_cells else (x,) for x in features
    ]
    if any(len(a) == 1 for a in anchors):
        anchors.append((target,))
    candidates = _candidates(features, target, sizes, max_clique_cells)
    anchor_args = (source, accountant, noise, anchors, target, focus, focus_share)
    if not candidates or max_edges == 0:
        return measure_anchors(*anchor_args, rho)

    rho_anchor = anchor_share * rho
    rho_select = select_share * rho
    rho_measure = rho - rho_anchor - rho_select
    progress(f"measuring {len(anchors)} marginals with the target")
    measurements = measure_anchors(*anchor_args, rho_anchor)
    focused = {m.clique[0] for m in measurements[len(anchors) :]}
    if len(focused) >= 2:  # the features most tied to the target: cliques among them only
        candidates = [c for c in candidates if c[0] in focused and c[1] in focused]

    n_edges = min(len(features) - 1, len(candidates), len(features) if max_edges is None else max_edges)
    sigma_next = sigma_for(rho_measure / n_edges, accountant.unit_cap)  # the noise one clique will get
    predicted = _naive_bayes(measurements, sizes, target)
    progress(f"scoring {len(candidates)} candidate cliques")
    weight = TREE_NOISE_WEIGHT if max_edges is None else 1.0  # the small regime's few cliques: AIM's own
    scores = clique_scores(source, candidates, predicted, sizes, sigma_next, noise_weight=weight)

    used_cells = sum(clique_cells(sizes, m.clique) for m in measurements)
    chosen = _spanning_cliques(
        accountant,
        noise,
        features,
        candidates,
        scores,
        sizes,
        used_cells,
        max_model_cells,
        n_edges,
        math.sqrt(8 * rho_select / n_edges),
    )
    if not chosen:  # no clique fits the caps: spend the rest on the anchors once more
        chosen = anchors
    progress(f"measuring {len(chosen)} selected cliques")
    rho_left = rho - (accountant.rho_spent - spent_before)
    measurements += measure_cliques(source, accountant, noise, chosen, rho_left / len(chosen), "marginal")
    return measurements


def measure_anchors(
    source: CountingSource,
    accountant: ZCDPAccountant,
    noise: Noise,
    anchors: list[tuple[str, ...]],
    target: str,
    focus: int,
    focus_share: float,
    rho: float,
) -> list[Measurement]:
    """Measure every anchor at an even share of ``rho``; with ``focus`` > 0, only
    ``1 - focus_share`` of it, and the rest measures again the ``focus`` (feature, target) anchors
    that the first noisy measurements show most tied to the target (:func:`dependence`: reading
    DP outputs is post-processing, so the choice costs nothing; the estimator combines both
    measurements of an anchor by their noise). On a small table most features barely move the
    target, and the few that do then get several times the budget each."""
    pairs = [a for a in anchors if len(a) == 2]
    if focus <= 0 or focus_share <= 0 or len(pairs) <= focus:
        return measure_cliques(source, accountant, noise, anchors, rho / len(anchors), "marginal")
    first = measure_cliques(source, accountant, noise, anchors, (1 - focus_share) * rho / len(anchors), "marginal")
    scored = sorted((m for m in first if len(m.clique) == 2), key=dependence, reverse=True)
    again = [m.clique for m in scored[:focus]]
    return first + measure_cliques(source, accountant, noise, again, focus_share * rho / len(again), "marginal (again)")


def dependence(m: Measurement) -> float:
    """How far a noisy (feature, target) table is from independence, in rows, net of noise: the L1
    distance between it (clipped at 0) and the product of its margins, minus the distance noise
    alone would give (``sqrt(2/pi) sigma`` per cell). Post-processing of one DP measurement.

    A table of one row or one column (a feature with one bin: capital gains whose nonzero values
    never cleared the threshold) is the other column's marginal and cannot show a tie: minus
    infinity, so it never takes a slot of the second round of anchors from a real, weakly tied
    feature (net of noise it scored -0.8 sigma per cell, above a 15-cell table's real tie)."""
    if min(np.shape(m.noisy)) < 2:
        return -math.inf
    t = np.maximum(m.noisy, 0.0)
    total = max(float(t.sum()), 1.0)
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / total
    return float(np.abs(t - expected).sum()) - math.sqrt(2 / math.pi) * m.sigma * t.size


def _spanning_cliques(
    accountant: ZCDPAccountant,
    noise: Noise,
    features: list[str],
    candidates: list[tuple[str, ...]],
    scores: np.ndarray,
    sizes: dict[str, int],
    used_cells: int,
    max_model_cells: int,
    n_edges: int,
    eps_each: float,
) -> list[tuple[str, ...]]:
    """Up to ``n_edges`` cliques forming a forest over the features (Kruskal), each picked by the
    exponential mechanism at ``eps_each`` among those that close no cycle and fit the model cap."""
    forest = _Forest(features)
    chosen: list[tuple[str, ...]] = []
    for step in range(n_edges):
        open_ = [
            i
            for i, c in enumerate(candidates)
            if forest.find(c[0]) != forest.find(c[1]) and used_cells + clique_cells(sizes, c) <= max_model_cells
        ]
        if not open_:
            # Nothing fits any more: the unspent selection budget moves to measurement.
            break
        pick = open_[
            exponential_choice(
                accountant, noise, scores[open_], eps_each, sensitivity=1.0, step=f"select clique {step + 1}"
            )
        ]
        clique = candidates[pick]
        chosen.append(clique)
        forest.union(clique[0], clique[1])
        used_cells += clique_cells(sizes, clique)
    return chosen


def clique_scores(
    source: CountingSource,
    candidates: list[tuple[str, ...]],
    predict: Callable,
    sizes: dict[str, int],
    sigma_next: float,
    *,
    noise_weight: float = 1.0,
) -> np.ndarray:
    """AIM's quality score of each candidate clique: the L1 distance between its true marginal and
    ``predict(clique)`` (a table fixed before this data is read), minus ``noise_weight`` times the
    noise its measurement would add (``sqrt(2/pi) * sigma_next`` per cell; the weight is public).
    One row moves each score by at most 1."""
    per_cell = noise_weight * math.sqrt(2 / math.pi) * sigma_next
    penalty = np.array([per_cell * clique_cells(sizes, c) for c in candidates])
    # One call for all candidates: a backend may count many cliques in one pass over the rows.
    errors = np.array([np.abs(table - predict(c)).sum() for c, table in zip(candidates, source.marginals(candidates))])
    return errors - penalty


def anticipated_noise(
    rho: float,
    n_columns: int,
    unit_cap: int = 1,
    *,
    anchor_share: float = ANCHOR_SHARE,
    select_share: float = SELECT_SHARE,
    max_edges: int | None = None,
    focus: int = 0,
    focus_share: float = 0.0,
) -> float:
    """Noise std of one selected clique's measurement, given ``rho`` for all marginals and the
    most rows one person holds (the noise grows with it: see ``mechanisms.person_sensitivity``).
    With no clique to select (``max_edges`` 0), that of one anchor: with a second round
    (``focus``/``focus_share``, :func:`measure_anchors`) that of the first round, the only one
    every anchor gets (which anchors are measured again is read from the data later)."""
    if max_edges == 0:
        anchors = max(1, n_columns - 1)
        again = focus > 0 and focus_share > 0 and anchors > focus
        return sigma_for((1 - focus_share if again else 1.0) * rho / anchors, unit_cap)
    n_edges = max(1, n_columns - 2 if max_edges is None else min(max_edges, n_columns - 2))
    return sigma_for((1 - anchor_share - select_share) * rho / n_edges, unit_cap)


def _candidates(features, target, sizes, cap) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for x, y in combinations(features, 2):
        pair: tuple[tuple[str, ...], ...] = ((x, y, target), (x, y))
        for clique in pair:
            if clique_cells(sizes, clique) <= cap:
                out.append(clique)
                break
    return out


def combined(measurements: list[Measurement]) -> list[Measurement]:
    """One measurement per clique: those of the same clique (an anchor measured again) averaged
    with inverse-variance weights, whose noise std is ``(sum sigma^-2)^-1/2`` (post-processing)."""
    groups: dict[tuple[str, ...], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault(m.clique, []).append(m)
    out = []
    for clique, ms in groups.items():
        if len(ms) == 1:
            out.append(ms[0])
            continue
        weights = np.array([m.sigma**-2 for m in ms])
        noisy = sum(w * m.noisy for w, m in zip(weights, ms)) / weights.sum()
        out.append(Measurement(clique, noisy, float(weights.sum() ** -0.5)))
    return out


def _naive_bayes(anchors: list[Measurement], sizes: dict[str, int], target: str):
    """Predict a clique's counts from the noisy anchors, as if features were independent given the
    target (an anchor measured twice: both measurements, by :func:`combined`)."""
    anchors = combined(anchors)
    tables = {m.clique: np.maximum(m.noisy, 0) for m in anchors}
    totals = [m.noisy.sum() for m in anchors]
    n = max(1.0, float(np.median(totals)))
    if (target,) in tables:
        p_t = tables[(target,)] + 1e-9
    else:
        p_t = np.mean([t.sum(axis=0) for c, t in tables.items() if len(c) == 2], axis=0) + 1e-9
    p_t = p_t / p_t.sum()

    def cond(x: str) -> np.ndarray:  # P(x | t), shape (|x|, |t|)
        if (x, target) in tables:
            t = tables[(x, target)] + 1e-9
            return t / t.sum(axis=0, keepdims=True)
        p = tables[(x,)] + 1e-9
        return np.repeat((p / p.sum())[:, None], sizes[target], axis=1)

    def predict(clique: tuple[str, ...]) -> np.ndarray:
        x, y = clique[0], clique[1]
        joint = np.einsum("xt,yt,t->xyt", cond(x), cond(y), p_t) * n
        return joint if len(clique) == 3 else joint.sum(axis=2)

    return predict
