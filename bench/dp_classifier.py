#!/usr/bin/env python3
"""What a DP classifier trained directly on the small tables reaches: a yardstick for issue 17's lift.

    python bench/dp_classifier.py [--sizes 1000,2000,5000] [--tables narrow,credit,survey,wide]
                                  [--epsilon 1] [--draws 20] [--oracle] [--share 1]

A model trained on synthetic rows is itself an (epsilon, delta)-DP classifier of the real rows
(post-processing), so the lift a DP classifier keeps at a table's size is a yardstick for what a
synthesizer at that epsilon can hand on (not a bound: a better DP learner may keep more). This
fits the textbook one: L2-regularised logistic regression with Gaussian output perturbation
(Chaudhuri, Monteleoni and Sarwate 2011: rows scaled to norm at most 1, the bias a regularised
feature; for add/remove neighbours, with the regulariser fixed at n lambda / 2 for the public row
count n, the minimiser moves by at most 1 / (n lambda)), at the zCDP rho of (epsilon,
delta = 1e-9), the whole budget on the classifier and nothing on the features' distribution. It
is scored like bench/small_tables.py: ROC AUC on 5,000 fresh rows of the same simulator, and the
share of TRTR's lift over chance it keeps (TRTR: evaluate.py's histogram gradient boosting
trained on the real rows).

It is optimistic on purpose: the row count is taken as public, the features' scaling and the
categories come from the real rows without noise, and lambda is the best of a grid *on the
scoring rows*; each lambda's AUC is the mean over ``--draws`` noise draws. The table also gives
the median over the lambda grid, the lift of a lambda chosen without the scoring rows (a guess
from the grid). Writes ``bench/out/dp_classifier.json`` and prints a table.

``--share S`` gives the classifier only ``S`` of the budget's rho, as a synthesizer has for the
target's ties after learning every column's domain (ours: about 0.7 in the small regime, with the
target's classes declared), so the comparison is at the same noise (output
``dp_classifier_share{S}.json``).

``--oracle`` is more optimistic still: the classifier sees only the features the simulator made
the target depend on (``synthroom.demo.small.informative_columns``), as if an oracle had chosen
them for free, so its noise is spread over 6-8 features instead of 10-60 (output
``dp_classifier_oracle.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import OUT, SHARED  # noqa: E402

sys.path.insert(0, str(SHARED / "bench"))  # the yardstick's evaluate.py

from synthroom.demo.small import CLASSES, SMALL_TABLES, TARGET, informative_columns, small_table  # noqa: E402
from synthroom.privacy.accountant import DEFAULT_DELTA, rho_from_epsilon  # noqa: E402

LAMBDAS = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
DELTA = DEFAULT_DELTA  # the product's


def features(frame: pd.DataFrame, ref: pd.DataFrame) -> np.ndarray:
    """Numeric columns standardised on ``ref`` (log for money-like ones) and clipped to 3 stds,
    a missing flag each, categories one-hot; then every row scaled to norm at most 1 with a bias
    feature of 1/2."""
    out = []
    for c in ref.columns:
        if c == TARGET:
            continue
        if pd.api.types.is_numeric_dtype(ref[c]):
            x, r = frame[c].astype(float), ref[c].astype(float)
            if (r.dropna() > 0).all() and r.max() > 100:
                x, r = np.log1p(x), np.log1p(r)
            out.append((((x - r.mean()) / r.std()).clip(-3, 3) / 3).fillna(0).to_numpy())
            out.append(frame[c].isna().to_numpy(float))
        else:
            out += [(frame[c] == v).to_numpy(float) for v in ref[c].dropna().unique()]
    x = np.column_stack(out)
    x = x / np.maximum(1.0, np.linalg.norm(x, axis=1, keepdims=True)) * np.sqrt(0.75)
    return np.column_stack([x, np.full(len(x), 0.5)])


def dp_auc(x, y, x_fresh, y_fresh, lam: float, rho: float, draws: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    n = len(y)
    w = LogisticRegression(C=1.0 / (lam * n), fit_intercept=False, max_iter=5000).fit(x, y).coef_.ravel()
    sigma = 1.0 / (n * lam) / np.sqrt(2.0 * rho)
    rng = np.random.default_rng(0)
    return float(np.mean([roc_auc_score(y_fresh, x_fresh @ (w + rng.normal(0, sigma, w.size))) for _ in range(draws)]))


def trtr(train: pd.DataFrame, fresh: pd.DataFrame, schema: dict) -> float:
    import evaluate as ev

    paths = {k: OUT / f"dpc_{k}.csv" for k in ("train", "fresh")}
    train.to_csv(paths["train"], index=False)
    fresh.to_csv(paths["fresh"], index=False)
    (OUT / "dpc_schema.json").write_text(json.dumps(schema))
    es = ev.load_schema(str(OUT / "dpc_schema.json"))
    tr, fr = ev.load_table(paths["train"], es, "train"), ev.load_table(paths["fresh"], es, "holdout")
    encode, native = ev._features(es, tr)
    return float(ev._fit_score(es, encode, native, tr, fr)["roc_auc"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,2000,5000")
    ap.add_argument("--tables", default=",".join(t.name for t in SMALL_TABLES))
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--oracle", action="store_true", help="only the features the target depends on (simulator-known)")
    ap.add_argument("--share", type=float, default=1.0, help="the classifier's share of the budget's rho (0 to 1]")
    args = ap.parse_args()
    if not 0 < args.share <= 1:
        ap.error(f"--share must be in (0, 1], not {args.share:g}")
    OUT.mkdir(parents=True, exist_ok=True)
    rho = args.share * rho_from_epsilon(args.epsilon, DELTA)
    records = []
    print("| table | rows | TRTR AUC | DP-LR AUC (best lambda) | lambda | lift kept | median over lambdas |")
    print("|---|---|---|---|---|---|---|")
    for spec in [s for s in SMALL_TABLES if s.name in args.tables.split(",")]:
        for rows in map(int, args.sizes.split(",")):
            train, schema = small_table(spec, rows, seed=rows)
            fresh, _ = small_table(spec, 5_000, seed=10_000 + rows)
            kept = informative_columns(spec) + [TARGET] if args.oracle else list(train.columns)
            x, x_fresh = features(train[kept], train[kept]), features(fresh[kept], train[kept])
            y, y_fresh = (train[TARGET] == CLASSES[1]).to_numpy(int), (fresh[TARGET] == CLASSES[1]).to_numpy(int)
            aucs = {lam: dp_auc(x, y, x_fresh, y_fresh, lam, rho, args.draws) for lam in LAMBDAS}
            best = max(aucs, key=aucs.get)
            real = trtr(train, fresh, schema)
            rec = {
                "table": spec.name,
                "rows": rows,
                "epsilon": args.epsilon,
                "trtr_auc": real,
                "dp_lr_auc": aucs[best],
                "lambda": best,
                "oracle": args.oracle,
                "share": args.share,
                "lift_kept": (aucs[best] - 0.5) / (real - 0.5),
                "lift_kept_median_lambda": (float(np.median(list(aucs.values()))) - 0.5) / (real - 0.5),
                "by_lambda": aucs,
            }
            records.append(rec)
            print(
                f"| {spec.name} | {rows:,} | {real:.3f} | {aucs[best]:.3f} | {best:g} | {rec['lift_kept']:.2f} "
                f"| {rec['lift_kept_median_lambda']:.2f} |",
                flush=True,
            )
    name = "dp_classifier" + ("_oracle" if args.oracle else "") + (f"_share{args.share:g}" if args.share < 1 else "")
    (OUT / f"{name}.json").write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
