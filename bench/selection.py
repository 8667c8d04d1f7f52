"""Category selection at epsilon 1 (issues 12 and 17): how much folds into ``other``.

    python bench/selection.py zipf   [--rows 20000] [--runs 3]   # a 400-value Zipf city column
    python bench/selection.py wide   [--runs 1]                  # the 74-column table's 50-value columns
    python bench/selection.py target [--runs 200]                # rare target classes at 1,000-5,000 rows

``zipf``: a customer-like table (our own seeded generator, :func:`customers_like`: a 400-value
city column with Zipf(0.9) frequencies, its state (50) and region (4) by a fixed public map,
age, income, plan, and a churn target), fitted at epsilon 1 with nothing declared, and again with
the city list declared; the share of synthetic rows in ``other`` beside the real share of values
the selection did not keep. ``wide``: ``simulate_wide`` of ``bench/run.py`` (30 categorical
columns of 50 skewed values among 74), fitted at epsilon 1; the 1-way TVD of the 50-value columns
and of all columns against fresh rows. ``target``: the predictive column's selection alone (the
mechanism the fit runs first), many times, on tables of 1,000 to 5,000 rows whose rare class holds
exactly max(150, 10%) of the rows: how often a class is lost. Results: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def customers_like(n: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """A seeded customer table with a 400-value Zipf(0.9) city column (2% missing), its public hierarchy
    (city -> state -> region by a fixed map), age, income, plan and a churn target."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 401) ** 0.9
    city = rng.choice(400, n, p=weights / weights.sum())
    state = (city * 7) % 50
    age = np.clip(rng.normal(45, 14, n), 18, 95).round()
    plan = np.where(rng.random(n) < 0.2 + 0.004 * (age - 18), "premium", rng.choice(["basic", "standard"], n))
    income = np.round(np.exp(rng.normal(10.5, 0.5, n)) * (1 + 0.3 * (plan == "premium")), 2)
    churn = rng.random(n) < 0.1 + 0.15 * (plan == "basic") + 0.05 * (state % 4 == 0)
    df = pd.DataFrame(
        {
            "city": np.where(rng.random(n) < 0.02, None, [f"city_{c:03d}" for c in city]),
            "state": [f"state_{s:02d}" for s in state],
            "region": [f"region_{s % 4}" for s in state],
            "age": age,
            "income": income,
            "plan": plan,
            "churned": np.where(churn, "yes", "no"),
        }
    )
    schema = {
        "target": "churned",
        "columns": [
            {"name": "city", "type": "categorical"},
            {"name": "state", "type": "categorical"},
            {"name": "region", "type": "categorical"},
            {"name": "age", "type": "numerical"},
            {"name": "income", "type": "numerical"},
            {"name": "plan", "type": "categorical"},
            {"name": "churned", "type": "categorical"},
        ],
    }
    return df, schema


def _other_share(synth, column: str, out: pd.DataFrame) -> float:
    label = synth.columns_[column].other_label
    return float((out[column] == label).mean())


def _tables(rows: int, run: int):
    """Our Zipf(0.9) table, and the project's customer simulator (``demo/customers.py``: Zipf(1.1)
    over 400 cities, 13 columns) with one row per customer."""
    from synthroom.demo.customers import CUSTOMER_TABLE_SCHEMA, simulate_customer_table

    yield "zipf(0.9) 7 columns", *customers_like(rows, seed=100 + run)
    yield (
        "demo customers 13 columns",
        simulate_customer_table(rows=rows, customers=rows, seed=run),
        CUSTOMER_TABLE_SCHEMA,
    )


def zipf(args) -> list[dict]:
    from synthroom import Synthesizer
    from synthroom.demo.customers import CITIES  # the public city list (CITY_HIERARCHY's keys)

    rows = []
    for run, (table, df, schema) in ((r, t) for r in range(args.runs) for t in _tables(args.rows, r)):
        declared = {
            **schema,
            "columns": [
                {**c, "categories": list(CITIES) if table.startswith("demo") else [f"city_{i:03d}" for i in range(400)]}
                if c["name"] == "city"
                else c
                for c in schema["columns"]
            ],
        }
        for label, sch in (("nothing declared", schema), ("city list declared", declared)):
            t = time.perf_counter()
            synth = Synthesizer(sch, epsilon=args.epsilon).fit(df)
            out = synth.sample()
            kept = set(synth.columns_["city"].coding.values)
            rec = {
                "table": f"{table}, {args.rows} rows",
                "case": label,
                "run": run,
                "epsilon": args.epsilon,
                "kept_values": len(kept),
                "real_share_folded": float((df["city"].notna() & ~df["city"].isin(kept)).mean()),
                "synthetic_share_other": _other_share(synth, "city", out),
                "real_share_missing": float(df["city"].isna().mean()),
                "synthetic_share_missing": float(out["city"].isna().mean()),
                "city_rho_share": _rho_share(synth, "'city'"),
                "warnings": synth.warnings_,
                "seconds": round(time.perf_counter() - t, 1),
            }
            print(json.dumps(rec), flush=True)
            rows.append(rec)
    return rows


def _rho_share(synth, name: str) -> float:
    report = synth.privacy_report()
    return (
        sum(c["rho"] for c in report["charges"] if name in c["step"] and "categories" in c["step"])
        / report["rho_budget"]
    )


def _tvd(real: pd.Series, synthetic: pd.Series) -> float:
    """0.5 * sum |p - q| over the real values (missing included), every other synthetic value in
    one unseen bin (evaluate.py's 1-way TVD for a categorical column)."""
    p = real.fillna("\0missing").value_counts(normalize=True)
    q = synthetic.fillna("\0missing").value_counts(normalize=True)
    unseen = q[~q.index.isin(p.index)].sum()
    return 0.5 * (float((p - q.reindex(p.index, fill_value=0.0)).abs().sum()) + float(unseen))


def wide(args) -> list[dict]:
    """simulate_wide (bench/run.py) at 20,000 rows, epsilon 1: the 30 categorical columns of 50
    values, their mean 1-way TVD against the training rows and how much of them is 'other'."""
    sys.path.insert(0, str(HERE))
    from run import simulate_wide
    from synthroom import Synthesizer

    rows = []
    for run in range(args.runs):
        train, schema = simulate_wide(20_000, seed=11)
        t = time.perf_counter()
        synth = Synthesizer(schema, epsilon=args.epsilon, seed=None if args.secure else run).fit(train)
        out = synth.sample()
        cats = [c["name"] for c in schema["columns"] if c["name"].startswith("cat_")]
        rec = {
            "table": "wide 20000 x 74",
            "run": run,
            "epsilon": args.epsilon,
            "tvd_1way_50_value_columns": float(np.mean([_tvd(train[c], out[c]) for c in cats])),
            "synthetic_share_other": float(np.mean([_other_share(synth, c, out) for c in cats])),
            "kept_values_mean": float(np.mean([len(synth.columns_[c].coding.values) for c in cats])),
            "second_selection_rho_share": _rho_share(synth, "rarer categories"),
            "fold_warnings": sum("of the synthetic rows are" in w for w in synth.warnings_),
            "seconds": round(time.perf_counter() - t, 1),
        }
        print(json.dumps(rec), flush=True)
        rows.append(rec)
    return rows


def target(args) -> list[dict]:
    """The fit's first step (row count, then the predictive column's selection) on loan tables of
    1,000 to 5,000 rows whose rare class holds exactly max(150, 10%) of them, ``runs`` times each."""
    from synthroom.engine import CountingSource
    from synthroom.privacy import ZCDPAccountant
    from synthroom.privacy.noise import noise_for
    from synthroom.schema import parse_schema
    from synthroom.synthesis.selection import count_rows, first_domains

    schema = parse_schema(
        {
            "target": "approved",
            "columns": [
                {"name": "income", "type": "numerical"},
                {"name": "purpose", "type": "categorical"},
                {"name": "approved", "type": "categorical"},
            ],
        }
    )
    rows = []
    for n in (1_000, 1_500, 2_000, 3_000, 5_000):
        rare = max(150, n // 10)
        rng = np.random.default_rng(n)
        df = pd.DataFrame(
            {
                "income": rng.normal(50, 15, n),
                "purpose": rng.choice(["car", "home", "edu"], n),
                "approved": rng.permutation(["yes"] * rare + ["no"] * (n - rare)),
            }
        )
        source = CountingSource.open(df, {c.name: c.kind for c in schema.columns})
        lost, shares = 0, []
        for run in range(args.runs):
            acc = ZCDPAccountant(args.epsilon, 1e-9, 5e-10)
            noise = noise_for(None if args.secure else run)
            count = count_rows(n, acc, noise)
            columns = first_domains(source, schema, acc, noise, 0.25 * acc.rho_budget / 3, 5e-10 / 2, count)
            lost += set(columns["approved"].coding.values) != {"no", "yes"}
            shares.append(acc.charges[1].rho / acc.rho_budget)
        source.close()
        rec = {
            "rows": n,
            "rare_class_rows": rare,
            "epsilon": args.epsilon,
            "runs": args.runs,
            "lost": lost,
            "target_rho_share_mean": float(np.mean(shares)),
        }
        print(json.dumps(rec), flush=True)
        rows.append(rec)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["zipf", "wide", "target"])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--secure", action="store_true", help="OpenDP's secure noise instead of seeded runs")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    runs = {"zipf": 3, "wide": 1, "target": 200}[args.what]
    args.runs = args.runs or runs
    res = {"zipf": zipf, "wide": wide, "target": target}[args.what](args)
    (OUT / f"selection_{args.what}.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    sys.exit(main())
