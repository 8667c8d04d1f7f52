"""Declared rules and conditional sampling on the customer simulator (bench/README.md, RESULTS.md).

Fits one model (epsilon 1, seeded: an experiment) on simulated customers with four rules, draws
the same number of rows with and without enforcing them, and reports each rule's violation rate
in the real rows, the model's own rows and the enforced rows, the fidelity of both samples
against the real rows (the evaluation's fidelityScore, 2-way TVD, TSTR AUC against a fresh real
holdout) and the time of plain, rule-enforcing, conditioned (churned = yes) and balanced sampling.

    .venv/bin/python bench/rules.py [--rows 20000] [--epsilon 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from synthroom import Synthesizer
from synthroom.demo import CUSTOMER_TABLE_SCHEMA, simulate_customer_table
from synthroom.demo.customers import CITY_HIERARCHY
from synthroom.evaluation import evaluate

RULES = [
    "signup_date <= last_login",
    {"columns": ["state", "region"], "allowed": sorted([list(p) for p in set(CITY_HIERARCHY.values())])},
    {"column": "monthly_spend", "min": 0, "step": 0.01},
    {"column": "age", "min": 18, "max": 90},
]


def scores(report) -> dict:
    return {
        "fidelity": round(report.fidelity.score, 4),
        "tvd_2way": round(report.fidelity.tvd_2way, 4),
        "tstr_auc": round(report.utility.tstr.get("auc", float("nan")), 4),
        "rules_real_train": {r.rule: round(r.train, 4) for r in report.rules},
        "rules_synthetic": {r.rule: round(r.synthetic, 4) for r in report.rules},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    schema = {**CUSTOMER_TABLE_SCHEMA, "rules": RULES}
    real = simulate_customer_table(rows=args.rows, seed=args.seed)
    holdout = simulate_customer_table(rows=args.rows, seed=args.seed + 1000)
    t = time.perf_counter()
    synth = Synthesizer(schema, epsilon=args.epsilon, seed=args.seed).fit(real)
    out: dict = {"rows": args.rows, "epsilon": args.epsilon, "fit_s": round(time.perf_counter() - t, 1)}
    samples = {}
    for name, kwargs in (
        ("model alone", {"rules": False}),
        ("rules enforced", {}),
        ("churned=yes", {"where": {"churned": "yes"}}),
        ("balance churned", {"balance": "churned"}),
    ):
        t = time.perf_counter()
        samples[name] = synth.sample(args.rows, seed=args.seed, **kwargs)
        out[f"sample_s[{name}]"] = round(time.perf_counter() - t, 2)
        reports = [r for r in synth.rule_reports_ if r is not None]
        out[f"redrawn_share[{name}]"] = round(sum(r.drawn for r in reports) / args.rows - 1, 4) if reports else 0.0
        out[f"copied[{name}]"] = sum(r.copied for r in reports)
    for name in ("model alone", "rules enforced"):
        report = evaluate(real, holdout, samples[name], synth.schema, anonymeter=False, max_rows=args.rows)
        out[name] = scores(report)
    for name in ("churned=yes", "balance churned"):
        out[f"churned shares[{name}]"] = samples[name]["churned"].value_counts(normalize=True).round(4).to_dict()
    print(json.dumps(out, indent=2))
    Path("bench/out").mkdir(parents=True, exist_ok=True)
    Path("bench/out/rules.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
