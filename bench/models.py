"""What the synthetic data costs a model: train on DP synthetic rows, score on real rows, against
the same built-in trainer fitted on the real rows (bench/RESULTS.md, "Models on synthetic rows").

    .venv/bin/python bench/models.py [--runs 3] [--epsilon 1] [--out bench/out/models.json]

Adult: the synthesizer is fitted on train.csv (epsilon, delta 1e-9), samples as many rows, and
each trainer (room/estimators.py, defaults) is fitted on the synthetic rows and on train.csv;
both are scored on test.csv. Demo: the demo's joined table (the template's output, 5,000 users,
seed 0) split 80/20 by a seeded permutation; the same comparison on the 20%. Each run draws the
synthesizer's noise afresh (seed = run number: a bench, not a release).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from synthroom import Synthesizer, load_schema
from synthroom.demo.adtech import DEMO_CLASSIFICATION, DEMO_TEMPLATE, simulate_audience, simulate_conversions
from synthroom.room.estimators import features_of, fit_builtin, metrics, one_thread, prepare, target_values, task_of
from synthroom.schema import parse_schema

ADULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "adult"
TRAINERS = ("gbm", "logistic", "auto")


def demo_table(users: int = 5000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo's joined rows (its template run by DuckDB on the simulator's tables), split 80/20."""
    audience = simulate_audience(users, seed=0)
    conversions = simulate_conversions(audience, seed=0)
    con = duckdb.connect()
    con.register("audience", audience)
    con.register("conversions", conversions)
    joined = con.execute(DEMO_TEMPLATE).df()
    order = np.random.default_rng(0).permutation(len(joined))
    cut = len(joined) // 5
    return joined.iloc[order[cut:]].reset_index(drop=True), joined.iloc[order[:cut]].reset_index(drop=True)


def score(frame: pd.DataFrame, test: pd.DataFrame, schema, trainer: str) -> dict[str, float]:
    model, info = fit_builtin(frame, schema, trainer)
    test = test[test[schema.target].notna()]
    with one_thread():
        out = metrics(task_of(schema), model, prepare(test, features_of(schema)), target_values(test, schema))
    return {**{k: round(v, 4) for k, v in out.items()}, "chosen": info["trainer"]}


def compare(name: str, train: pd.DataFrame, test: pd.DataFrame, schema, epsilon: float, runs: int) -> dict:
    real = {t: score(train, test, schema, t) for t in TRAINERS}
    synthetic: dict[str, list] = {t: [] for t in TRAINERS}
    for run in range(runs):
        start = time.perf_counter()
        synth = Synthesizer(schema, epsilon=epsilon, seed=run).fit(train)
        rows = synth.sample(len(train))
        for t in TRAINERS:
            synthetic[t].append(score(rows, test, schema, t))
        print(f"{name} run {run}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return {"rows_train": len(train), "rows_test": len(test), "epsilon": epsilon, "real": real, "synthetic": synthetic}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/models.json"))
    args = parser.parse_args()
    adult = load_schema(ADULT / "schema.json")
    results = {
        "adult": compare(
            "adult", pd.read_csv(ADULT / "train.csv"), pd.read_csv(ADULT / "test.csv"), adult, args.epsilon, args.runs
        )
    }
    train, test = demo_table()
    results["demo"] = compare("demo", train, test, parse_schema(DEMO_CLASSIFICATION), args.epsilon, args.runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    for name, r in results.items():
        for t in TRAINERS:
            key = "auc"
            synth = [s[key] for s in r["synthetic"][t]]
            print(
                f"{name:6s} {t:9s} real->real AUC {r['real'][t][key]:.3f}  synthetic->real AUC "
                f"{np.mean(synth):.3f} (min {min(synth):.3f}, max {max(synth):.3f})"
            )


if __name__ == "__main__":
    main()
