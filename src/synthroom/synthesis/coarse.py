"""Coarse pairs: a few more 2-way marginals, measured at low resolution, for the pairs the tree misses.

The first round (:mod:`.structure`) measures every (feature, target) pair and a spanning tree of
(x, y, target) cliques; every other pair of features is reached only through the tree, and on a
table whose features depend on each other in many ways (Adult: age, education, occupation,
relationship, marital status, hours per week) those pairs carry most of the model's error. Measuring
them at full resolution, as a second AIM round does (:mod:`.refine`), needs a second estimate (twice
the CPU) and spreads the budget over many cells. Here, in the same fit and before the one estimate:

1. *Groups* (post-processing of the anchors): each column's codes fall into at most ``groups``
   groups of about equal noisy mass, numeric bins in their order, categories sorted by their
   noisy share of the target's last class (values that relate alike to the target go together).
2. *Select* (``SELECT_SHARE`` of this round's rho): up to ``pairs`` feature pairs that no measured
   clique holds, one at a time with the exponential mechanism. A pair's score is the L1 distance
   between its true grouped table and what the noisy first-round tables predict for it (chained
   along the tree given the target; post-processing of DP outputs, fixed before this data is read),
   minus the noise its measurement would add (AIM's penalty); one row moves it by at most 1. A pair
   fits when the model's junction tree with it alone stays under ``max_cells`` cells; once a pick
   would take the tree with the pairs before it over that, the round stops there (both checks
   read only DP outputs and public sizes; a check per candidate and step cost seconds of CPU).
3. *Measure* (the rest): each chosen pair's grouped table with Gaussian noise (one row is in one
   group cell: sensitivity 1). The estimator reads it as a linear query of the pair's marginal
   (:class:`.model.GroupsQuery`), so the model keeps every column's full resolution.

With a few dozen cells per pair, the noise per cell is small against the counts, and only the
pairs that the tree explains worst are added, so the junction tree stays small.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations
from typing import Callable

import numpy as np

from ..engine import CountingSource
from ..privacy import ZCDPAccountant
from ..privacy.mechanisms import exponential_choice, gaussian_counts, sigma_for
from ..privacy.noise import Noise
from .structure import Measurement, combined, measure_cliques

SHARE = 0.15  # of the marginal budget, for this round (the standard regime, when no second round runs)
SELECT_SHARE = 0.25  # of this round's budget, for the exponential mechanism
PAIRS = 8  # the most pairs chosen
GROUPS = 6  # the most groups per column
MAX_CELLS = 100_000  # the most cells of the junction tree with the chosen pairs


def coarse_round(
    source: CountingSource,
    measurements: list[Measurement],
    sizes: dict[str, int],
    ordered: dict[str, int | None],
    target: str,
    accountant: ZCDPAccountant,
    noise: Noise,
    rho: float,
    *,
    pairs: int = PAIRS,
    groups: int = GROUPS,
    max_cells: int = MAX_CELLS,
) -> list[Measurement]:
    """Spend exactly ``rho`` on coarse pairs (see the module); returns their measurements.

    ``ordered``: the numeric columns (their bins keep their order when grouped), each with its
    missing-value bin (a group of its own) or None. Public parameters: ``pairs``, ``groups``,
    ``max_cells``. With no pair that fits, the tree's cliques are measured again instead."""
    held = {frozenset(p) for m in measurements for p in combinations(m.clique, 2)}
    features = [c for c in sizes if c != target]
    candidates = [(x, y) for x, y in combinations(features, 2) if frozenset((x, y)) not in held]
    fits = _fits(sizes, [m.clique for m in measurements], max_cells)
    candidates = [c for c in candidates if fits([c])]
    if not candidates:
        tree: list[tuple[str, ...]] = [m.clique for m in measurements if len(m.clique) == 3]
        tree = tree or [m.clique for m in measurements]
        return measure_cliques(source, accountant, noise, tree, rho / len(tree), "marginal (again)")
    coding = {c: column_groups(measurements, c, sizes[c], target, groups, ordered) for c in features}
    n_picks = min(pairs, len(candidates))
    sigma_next = sigma_for((1 - SELECT_SHARE) * rho / n_picks, accountant.unit_cap)
    predict = chain_predictor(measurements, sizes, target)
    exact = [group_table(t, coding[x], coding[y]) for (x, y), t in zip(candidates, source.marginals(candidates))]
    predicted = [group_table(predict(x, y), coding[x], coding[y]) for x, y in candidates]
    penalty = [math.sqrt(2 / math.pi) * sigma_next * e.size for e in exact]
    scores = np.array([np.abs(e - p).sum() - q for e, p, q in zip(exact, predicted, penalty)])
    eps_each = math.sqrt(8 * SELECT_SHARE * rho / n_picks)
    chosen: list[int] = []
    for step in range(n_picks):
        open_ = [i for i in range(len(candidates)) if i not in chosen]
        pick = open_[
            exponential_choice(
                accountant, noise, scores[open_], eps_each, sensitivity=1.0, step=f"coarse pair {step + 1}"
            )
        ]
        if chosen and not fits([candidates[j] for j in chosen + [pick]]):
            break  # the junction tree would outgrow the cap: no more pairs (the rest measures)
        chosen.append(pick)
    rho_each = (rho - SELECT_SHARE * rho * (step + 1) / n_picks) / len(chosen)
    out = []
    for i in chosen:
        (x, y), table = candidates[i], exact[i]
        noisy, sigma = gaussian_counts(accountant, noise, table, rho_each, step=f"coarse marginal {x}x{y}")
        out.append(Measurement((x, y), noisy, sigma, groups=(coding[x], coding[y])))
    return out


def _fits(sizes: dict[str, int], cliques: list[tuple[str, ...]], max_cells: int) -> Callable[[list], bool]:
    """Whether the model's junction tree with the measured ``cliques`` and some more stays under
    ``max_cells`` cells (mbi's own triangulation)."""
    from .model import model_cells

    def fits(more: list) -> bool:
        return model_cells(sizes, cliques + [tuple(c) for c in more]) <= max_cells

    return fits


def column_groups(
    measurements: list[Measurement],
    column: str,
    size: int,
    target: str,
    groups: int,
    ordered: dict[str, int | None],
) -> tuple[int, ...]:
    """Code -> group for one column: about equal noisy mass per group (from its noisy (column,
    target) anchor; post-processing), numeric bins in order with the missing bin apart, categories
    sorted by their noisy share of the target's last class. A column of at most ``groups`` codes
    keeps them all."""
    anchors = combined([m for m in measurements if m.clique in ((column, target), (column,)) and m.groups is None])
    if size <= groups or not anchors:
        return tuple(range(size))
    table = np.maximum(anchors[0].noisy, 0.0).reshape(size, -1)
    mass = table.sum(axis=1) + 1e-9
    missing = ordered.get(column) if column in ordered else None
    if column in ordered:
        order = np.array([c for c in range(size) if c != missing])
    else:
        order = np.argsort(table[:, -1] / mass, kind="stable")
    share = np.cumsum(mass[order]) / mass[order].sum()
    raw = np.minimum(((share - mass[order] / mass[order].sum() / 2) * groups).astype(int), groups - 1)
    out = np.zeros(size, dtype=int)
    out[order] = np.unique(raw, return_inverse=True)[1]
    if missing is not None:
        out[missing] = out.max() + 1
    return tuple(int(g) for g in out)


def group_table(table: np.ndarray, gx: tuple[int, ...], gy: tuple[int, ...]) -> np.ndarray:
    """A 2-way (x, y) table summed over the groups of each axis."""
    out = np.zeros((max(gx) + 1, max(gy) + 1))
    np.add.at(out, (np.asarray(gx)[:, None], np.asarray(gy)[None, :]), table)
    return out


def chain_predictor(measurements: list[Measurement], sizes: dict[str, int], target: str) -> Callable:
    """The (x, y) table that the first round's noisy tables imply: features independent given the
    target except along the tree, whose (a, b, target) cliques give P(b | a, target) (clipped at 0,
    half a row added to every cell); chained along the tree path from x to y. Post-processing."""
    tables = {m.clique: np.maximum(m.noisy, 0.0) + 0.5 for m in combined(measurements) if m.groups is None}
    n = max(1.0, float(np.median([t.sum() for t in tables.values()])))
    p_t = np.mean([t.sum(axis=0) for c, t in tables.items() if len(c) == 2 and c[1] == target], axis=0)
    p_t = p_t / p_t.sum()
    adjacency: dict[str, list[str]] = defaultdict(list)
    cond: dict[tuple[str, str], np.ndarray] = {}  # (a, b) -> P(b | a, t), shape (a, b, t)
    for clique, t in tables.items():
        if len(clique) == 3 and clique[2] == target:
            a, b = clique[0], clique[1]
            adjacency[a].append(b)
            adjacency[b].append(a)
            cond[(a, b)] = t / t.sum(axis=1, keepdims=True)
            flipped = t.transpose(1, 0, 2)
            cond[(b, a)] = flipped / flipped.sum(axis=1, keepdims=True)

    def given_target(x: str) -> np.ndarray:  # the (x, target) counts, shape (x, t)
        t = tables.get((x, target))
        if t is not None:
            return t / t.sum() * n
        p = tables[(x,)] if (x,) in tables else np.ones(sizes[x])
        return np.outer(p / p.sum(), p_t) * n

    def predict(x: str, y: str) -> np.ndarray:
        joint, seen, stack = {x: np.einsum("xt,xy->xyt", given_target(x), np.eye(sizes[x]))}, {x}, [x]
        while stack and y not in joint:
            v = stack.pop()
            for w in adjacency[v]:
                if w not in seen:
                    seen.add(w)
                    joint[w] = np.einsum("xvt,vwt->xwt", joint[v], cond[(v, w)])
                    stack.append(w)
        if y in joint:
            return joint[y].sum(axis=2)
        cx, cy = given_target(x), given_target(y)
        return np.einsum("xt,yt->xy", cx, cy / np.maximum(cy.sum(axis=0), 1e-9))

    return predict
