#!/usr/bin/env python3
"""How much of Adult's 2-way TVD learning the categories costs at a small epsilon (issue 12).

    python bench/category_split.py [--epsilon 0.1] [--delta 1e-9] [--shares 0,0.2,0.3,0.45,0.6]
                                   [--seeds 1-3] [--bound-only]

A category value that partition selection does not release is never sampled, so for every pair
of columns evaluate.py's TVD is at least the real rows' share in the joint cells that name such a
value: the mean of that share over all pairs is a **lower bound from folding alone**. With
selection on a share ``s`` of rho (one Gaussian threshold per categorical column, as
``mechanisms.threshold_for`` sets it at the run's delta, a value passing with the probability its
count gives), the bound is computed for an even split of ``s`` over the categorical columns and
for a greedy split (40 steps, each to the column that lowers the bound most); the table gives the
better of the two.

The **measured split** then fits our synthesizer with every category list declared (nothing to
learn, nothing folds) on ``1 - s`` of rho, and folds each categorical column's synthetic values as
a selection on ``s`` of rho (greedy split) would: noisy counts of the fit rows' true counts,
seeded. Both use Adult's train.csv less a seeded 3,000 rows (about the release gate's holdout) and
score on compare.py's half of test.csv, like ``bench/run.py adult-gate``. Our product's own
two-stage selection is not simulated here; ``adult-gate`` measures it.

Writes ``bench/out/category_split.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import ADULT, OUT, SHARED, half_test  # noqa: E402

sys.path.insert(0, str(SHARED / "bench"))  # the yardstick's evaluate.py

from synthroom.privacy.accountant import DEFAULT_DELTA, epsilon_from_rho, rho_from_epsilon  # noqa: E402
from synthroom.privacy.mechanisms import sigma_for, threshold_for  # noqa: E402

HOLDOUT_ROWS = 3_000
GREEDY_STEPS = 40


def selection_threshold(rho: float, delta: float) -> tuple[float, float]:
    """A Gaussian partition selection's noise std on ``rho`` and its threshold at ``delta``."""
    sigma = sigma_for(rho)
    return sigma, threshold_for(sigma, delta)


def pass_probabilities(counts: pd.Series, rho: float, delta: float) -> dict[str, float]:
    """Each value's chance to clear a Gaussian partition selection on ``rho`` at ``delta``
    (``Phi((count - tau) / sigma)``; a value of no rows never passes)."""
    sigma, tau = selection_threshold(rho, delta)
    return {v: 0.5 * math.erfc((tau - n) / (sigma * math.sqrt(2.0))) for v, n in counts.items()}


def folding_bound(frame: pd.DataFrame, keep: dict[str, np.ndarray]) -> float:
    """The mean over all column pairs of the real rows' share in cells naming a folded value:
    ``keep[c]`` is each row's chance that column ``c``'s value is released (1 for other columns)."""
    shares = [
        float(np.mean(1.0 - keep.get(a, 1.0) * keep.get(b, 1.0))) if a in keep or b in keep else 0.0
        for a, b in itertools.combinations(frame.columns, 2)
    ]
    return float(np.mean(shares))


class Selection:
    """Partition selection over ``cats`` of ``frame`` at ``delta_col`` per column (as a fit splits
    its threshold delta), on a per-column rho."""

    def __init__(self, frame: pd.DataFrame, cats: list[str], delta_col: float):
        self.frame, self.cats, self.delta_col = frame, cats, delta_col
        self.counts = {c: frame[c].value_counts() for c in cats}

    def bound(self, rhos: dict[str, float]) -> float:
        keep = {}
        for c in self.cats:
            probs = pass_probabilities(self.counts[c], rhos[c], self.delta_col)
            keep[c] = self.frame[c].map(probs).fillna(1.0).to_numpy()
        return folding_bound(self.frame, keep)

    def even(self, rho: float) -> dict[str, float]:
        return {c: rho / len(self.cats) for c in self.cats}

    def greedy(self, rho: float) -> dict[str, float]:
        rhos = {c: rho * 1e-9 for c in self.cats}
        step = rho / GREEDY_STEPS
        for _ in range(GREEDY_STEPS):
            best = min(self.cats, key=lambda c: self.bound({**rhos, c: rhos[c] + step}))
            rhos[best] += step
        return rhos

    def fold(self, synthetic: pd.DataFrame, rhos: dict[str, float], rng: np.random.Generator) -> None:
        """Replace, in place, each value a noisy selection on ``rhos`` does not release by ``other``."""
        for c in self.cats:
            sigma, tau = selection_threshold(rhos[c], self.delta_col)
            counts = self.counts[c]
            kept = set(counts.index[counts.to_numpy() + rng.normal(0.0, sigma, len(counts)) > tau])
            synthetic[c] = synthetic[c].astype(object).where(synthetic[c].astype(str).isin(kept), "other")


def seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def shares(text: str) -> list[float]:
    out = [float(s) for s in text.split(",")]
    if any(not 0.0 <= s < 1.0 for s in out):
        raise argparse.ArgumentTypeError(f"each share must be in [0, 1), not {text!r}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epsilon", type=float, default=0.1)
    ap.add_argument("--delta", type=float, default=DEFAULT_DELTA)
    ap.add_argument("--shares", type=shares, default=shares("0,0.2,0.3,0.45,0.6"))
    ap.add_argument("--seeds", type=seeds, default=seeds("1-3"))
    ap.add_argument("--bound-only", action="store_true", help="the folding bound alone (no fits)")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    import evaluate as ev

    meta = json.loads((ADULT / "schema.json").read_text())
    real = pd.read_csv(ADULT / "train.csv", dtype=str, keep_default_na=False)
    held = np.random.default_rng(12345).permutation(len(real))[:HOLDOUT_ROWS]
    fit_rows = real.drop(real.index[held]).reset_index(drop=True)
    fit_path = OUT / "category_split_train.csv"
    fit_rows.to_csv(fit_path, index=False)
    cats = [c["name"] for c in meta["columns"] if c["type"] == "categorical" and c["name"] != meta["target"]]
    # a fit that learns categories keeps half of delta for the conversion and splits the other half
    # over those columns, half for each of the two selection stages (docs/privacy.md)
    rho = rho_from_epsilon(args.epsilon, args.delta / 2)
    selection = Selection(fit_rows, cats, args.delta / 2 / len(cats) / 2)
    records, greedy = [], {}
    for s in [s for s in args.shares if s > 0] + [1.0]:
        greedy[s] = selection.greedy(s * rho)
        bounds = {"bound_even": selection.bound(selection.even(s * rho)), "bound_greedy": selection.bound(greedy[s])}
        records.append({"share": s, **bounds})
        print(json.dumps(records[-1]), flush=True)
    if not args.bound_only:
        records += measured_split(args, meta, fit_rows, fit_path, selection, greedy, rho, ev)
    (OUT / "category_split.json").write_text(json.dumps(records, indent=2))
    print(table(records))


def measured_split(
    args, meta: dict, fit_rows: pd.DataFrame, fit_path: Path, selection: Selection, greedy: dict, rho: float, ev
):
    """Each share's seeded fits with the category lists declared on the rest of rho, folded as a
    selection on the share would fold them (``greedy``: each share's split, from the bound),
    scored by evaluate.py."""
    from synthroom.synthesis.synthesizer import Synthesizer

    declared = {
        "target": meta["target"],
        "columns": [
            {**c, **({"categories": sorted(fit_rows[c["name"]].unique())} if c["type"] == "categorical" else {})}
            for c in meta["columns"]
        ],
    }
    schema = ev.load_schema(str(ADULT / "schema.json"))
    train = ev.load_table(str(fit_path), schema, "train")
    test = ev.load_table(str(half_test()), schema, "holdout")
    binner = ev.Binner(train, schema)
    out = []
    for s in args.shares:
        rhos = greedy.get(s)  # none at share 0: nothing to learn, nothing folds
        eps_rest = epsilon_from_rho((1 - s) * rho, args.delta)  # nothing learned: all of delta converts
        for seed in args.seeds:
            synthetic = Synthesizer(declared, epsilon=eps_rest, delta=args.delta, seed=seed).fit(fit_path).sample(None)
            if rhos is not None:
                selection.fold(synthetic, rhos, np.random.default_rng([seed, 1]))
            path = OUT / f"category_split_{s:g}_{seed}.csv"
            synthetic.to_csv(path, index=False)
            syn = ev.load_table(str(path), schema, "synthetic")
            tvd = ev.fidelity(binner, binner.codes(test), binner.codes(syn))["tvd_2way_mean"]
            auc = ev.utility(schema, train, test, syn)["tstr"].get("roc_auc")
            out.append({"share": s, "seed": seed, "epsilon_rest": eps_rest, "tvd_2way": tvd, "tstr_auc": auc})
            print(json.dumps(out[-1]), flush=True)
    return out


def table(records: list[dict]) -> str:
    lines = ["| share of rho for selection | folding bound (better split) | measured 2-way TVD, each seed | mean |"]
    lines.append("|---|---|---|---|")
    bounds = {r["share"]: min(r["bound_even"], r["bound_greedy"]) for r in records if "bound_even" in r}
    measured: dict[float, list[float]] = {}
    for r in records:
        if "tvd_2way" in r:
            measured.setdefault(r["share"], []).append(r["tvd_2way"])
    for s in sorted(set(bounds) | set(measured)):
        tvds = measured.get(s, [])
        each = " / ".join(f"{t:.3f}" for t in tvds) or "-"
        mean = f"{np.mean(tvds):.3f}" if tvds else "-"
        lines.append(f"| {s:g} | {bounds.get(s, 0.0):.3f} | {each} | {mean} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
