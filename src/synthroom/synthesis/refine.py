"""A second, AIM-style round for large budgets: add the cliques the first model explains worst.

The first model is a tree over the features with the target in every clique, so given the
target the features form a tree-structured Markov chain and any (x, y, target) marginal of the
model follows in closed form by chaining the cliques' conditional tables along the tree path
(no new compilation, no data access). Each candidate (x, y, target) that is not a tree edge is
scored, as in AIM, by the L1 distance between its true marginal and the model's prediction
minus the noise its measurement would add; the exponential mechanism picks them one at a time,
under the same model-size cap (junction-tree cells), and they are measured with Gaussian noise.

It only runs when the budget is large relative to the noise (``n / sigma`` of a measured cell at
least ``MIN_SIGNAL``, both DP quantities): with little budget, the split would cost more than the
extra cliques bring.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations
from typing import Callable

import numpy as np

from ..engine import CountingSource
from ..privacy import ZCDPAccountant
from ..privacy.noise import Noise
from ..privacy.mechanisms import exponential_choice, sigma_for
from .structure import Measurement, clique_cells, measure_cliques, clique_scores

SHARE = 0.25  # of the marginal budget, reserved for this round when it runs
SELECT_SHARE = 0.2  # of this round's budget, for the exponential mechanism
MIN_SIGNAL = 3000.0


def should_refine(n_estimate: float, sigma: float) -> bool:
    """Whether a refinement round pays off, from DP estimates only."""
    return n_estimate / sigma >= MIN_SIGNAL


def tree_predictor(model, tree: list[tuple[str, str, str]], sizes: dict[str, int], target: str) -> Callable:
    """Model marginal of any (x, y, target), chained along the feature tree given the target.

    A feature in no tree clique with the target (its selected edge was a 2-way clique, as for a
    400-value column whose 3-way cliques break the cap) is independent of the others given the
    target here; its own (x, target) table is the model's projection."""
    adjacency: dict[str, list[str]] = defaultdict(list)
    cond: dict[tuple[str, str], np.ndarray] = {}  # (a, b) -> P(b | a, t), shape (a, b, t)
    single: dict[str, np.ndarray] = {}  # a -> counts (a, t)
    from .model import jax_settings

    for a, b, _ in tree:
        with jax_settings():
            joint = np.asarray(model.project((a, b, target)).datavector(flatten=False))
        adjacency[a].append(b)
        adjacency[b].append(a)
        cond[(a, b)] = joint / np.maximum(joint.sum(axis=1, keepdims=True), 1e-12)
        flipped = joint.transpose(1, 0, 2)
        cond[(b, a)] = flipped / np.maximum(flipped.sum(axis=1, keepdims=True), 1e-12)
        single[a], single[b] = joint.sum(axis=1), joint.sum(axis=0)
    cache: dict[str, dict[str, np.ndarray]] = {}

    def counts(a: str) -> np.ndarray:  # the model's (a, target) table
        if a not in single:
            with jax_settings():
                single[a] = np.asarray(model.project((a, target)).datavector(flatten=False))
        return single[a]

    def joints_from(x: str) -> dict[str, np.ndarray]:
        if x not in cache:
            out = {x: np.einsum("xt,xy->xyt", counts(x), np.eye(sizes[x]))}
            stack = [x]
            while stack:
                v = stack.pop()
                for w in adjacency[v]:
                    if w not in out:
                        out[w] = np.einsum("xvt,vwt->xwt", out[v], cond[(v, w)])
                        stack.append(w)
            cache[x] = out
        return cache[x]

    def predict(clique: tuple[str, str, str]) -> np.ndarray:
        x, y = clique[0], clique[1]
        joint = joints_from(x).get(y)
        if joint is None:  # not joined by the tree: independent given the target
            p_t = np.maximum(counts(x).sum(axis=0), 1e-12)
            joint = np.einsum("xt,yt->xyt", counts(x), counts(y)) / p_t
        return joint

    return predict


def refine(
    source: CountingSource,
    model,
    measurements: list[Measurement],
    sizes: dict[str, int],
    target: str,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
    max_clique_cells: int,
    max_model_cells: int,
    progress: Callable[[str], None] = lambda _msg: None,
) -> list[Measurement]:
    """Spend exactly ``rho`` on extra cliques; returns their measurements."""
    from .model import model_cells

    tree = [m.clique for m in measurements if len(m.clique) == 3 and m.clique[2] == target]
    features = [c for c in sizes if c != target]
    edges = {frozenset(c[:2]) for c in tree}
    candidates: list[tuple[str, ...]] = [
        (x, y, target)
        for x, y in combinations(features, 2)
        if frozenset((x, y)) not in edges and clique_cells(sizes, (x, y, target)) <= max_clique_cells
    ]
    if not tree or not candidates:  # nothing to add: measure the tree once more
        again: list[tuple[str, ...]] = [*tree] if tree else [m.clique for m in measurements]
        return measure_cliques(source, accountant, noise, again, rho / len(again), "marginal")

    n_picks = min(len(candidates), max(1, len(features) // 3))
    rho_select = SELECT_SHARE * rho
    sigma_next = sigma_for((rho - rho_select) / n_picks, accountant.unit_cap)
    predict = tree_predictor(model, tree, sizes, target)
    progress(f"scoring {len(candidates)} cliques against the first model")
    scores = clique_scores(source, candidates, predict, sizes, sigma_next)

    current = [m.clique for m in measurements]
    eps_each = math.sqrt(8 * rho_select / n_picks)
    chosen: list[tuple[str, ...]] = []
    open_ = list(range(len(candidates)))
    for step in range(n_picks):
        open_ = [
            i
            for i in open_
            if candidates[i] not in chosen and model_cells(sizes, current + chosen + [candidates[i]]) <= max_model_cells
        ]
        if not open_:
            break
        pick = open_[
            exponential_choice(
                accountant, noise, scores[open_], eps_each, sensitivity=1.0, step=f"refine: select clique {step + 1}"
            )
        ]
        chosen.append(candidates[pick])
    if not chosen:
        chosen = [*tree]
    progress(f"measuring {len(chosen)} more cliques")
    return measure_cliques(source, accountant, noise, chosen, accountant.rho_remaining / len(chosen), "marginal")
