#!/usr/bin/env python3
"""A date's month as a public hierarchy level (issue 12): the demo customer table's
``signup_date`` at 20,000 rows (one row per customer), epsilon 1, with ``hierarchy: month``
declared on it or not.

    .venv/bin/python bench/months.py [--rows 20000] [--epsilon 1] [--runs 3]

Two tables: the simulator's as it is (signups on any day of the month), and "billing days", the
same rows with 40% of the signups moved to the 1st of their month, 20% to the 15th and 15% to the
last day (a day-of-month shape the issue names). Each run fits on the table (simulator seed 0)
without a seed (fresh OS entropy, as a release) and samples as many rows. Measured on the
synthetic rows against fresh simulated rows (seed 1, the same transformation): the 1-way TVD of
the day of month (31 values) and of the year-month; the share of signups on the 1st, the 15th and
the last day of their month; the largest gap, over signup years, between the synthetic and the
fresh churn rate of the customers who signed up that year (a month's tie to the target, at the
year's resolution); the share of synthetic signups in a month that holds no real signup; beside
the same figures of the real table (the floor). CPU seconds of each fit + sample. Writes
bench/out/months.json and prints a markdown table of the medians.
"""

from __future__ import annotations

import copy
import json
import resource
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from synthroom import Synthesizer
from synthroom.demo import CUSTOMER_TABLE_SCHEMA

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hierarchy import arguments, customer_tables, write  # noqa: E402  (bench/hierarchy.py: the city hierarchy)

TABLES = ("as simulated", "billing days")
KEYS = ("tvd_day", "tvd_month", "on_1st", "on_15th", "on_last", "churn_gap", "empty_months")


def billing_days(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``df`` with 40% of the signups on the 1st of their month, 20% on the 15th, 15% on the last day."""
    rng = np.random.default_rng(seed)
    d = pd.to_datetime(pd.Series(df["signup_date"]))
    u = rng.random(len(d))
    start = d.dt.to_period("M").dt.start_time
    moved = np.where(u < 0.4, start, np.where(u < 0.6, start + pd.Timedelta(days=14), d))
    moved = pd.Series(moved).where(~((u >= 0.6) & (u < 0.75)), d.dt.to_period("M").dt.end_time.dt.normalize())
    return df.assign(signup_date=pd.to_datetime(moved).dt.date)


def schema_for(declared: bool) -> dict:
    d = copy.deepcopy(CUSTOMER_TABLE_SCHEMA)
    if declared:
        next(c for c in d["columns"] if c["name"] == "signup_date")["hierarchy"] = "month"
    return d


def tvd(a: pd.Series, b: pd.Series) -> float:
    pa, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
    return float(0.5 * pa.sub(pb, fill_value=0.0).abs().sum())


def measure(df: pd.DataFrame, fresh: pd.DataFrame, real: pd.DataFrame) -> dict:
    s, f = pd.to_datetime(pd.Series(df["signup_date"])), pd.to_datetime(pd.Series(fresh["signup_date"]))
    months = set(pd.to_datetime(pd.Series(real["signup_date"])).dt.to_period("M"))
    churn = (df["churned"].astype(str) == "yes").groupby(s.dt.year.to_numpy()).mean()
    fresh_churn = (fresh["churned"].astype(str) == "yes").groupby(f.dt.year.to_numpy()).mean()
    return {
        "tvd_day": round(tvd(s.dt.day, f.dt.day), 4),
        "tvd_month": round(tvd(s.dt.to_period("M"), f.dt.to_period("M")), 4),
        "on_1st": round(float((s.dt.day == 1).mean()), 4),
        "on_15th": round(float((s.dt.day == 15).mean()), 4),
        "on_last": round(float(s.dt.is_month_end.mean()), 4),
        "churn_gap": round(float(churn.sub(fresh_churn).abs().max()), 4),
        "empty_months": round(float((~s.dt.to_period("M").isin(months)).mean()), 4),
    }


def one_run(name: str, declared: bool, real: pd.DataFrame, fresh: pd.DataFrame, epsilon: float) -> dict:
    before = resource.getrusage(resource.RUSAGE_SELF)
    synth = Synthesizer(schema_for(declared), epsilon=epsilon).fit(real)
    df = synth.sample(len(real))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    variant = f"{name}, {'hierarchy: month' if declared else 'nothing declared'}"
    return {"variant": variant, **measure(df, fresh, real), "cpu_s": round(cpu, 1)}


def table(results: list[dict], floors: dict[str, dict]) -> str:
    lines = ["| variant | runs | " + " | ".join(KEYS) + " | CPU s |", "|---|---|" + "---|" * (len(KEYS) + 1)]
    for variant in dict.fromkeys(r["variant"] for r in results):
        runs = [r for r in results if r["variant"] == variant]
        med = {k: statistics.median(r[k] for r in runs) for k in [*KEYS, "cpu_s"]}
        lines.append(
            f"| {variant} | {len(runs)} | " + " | ".join(f"{med[k]:.3f}" for k in KEYS) + f" | {med['cpu_s']:.0f} |"
        )
    for name, floor in floors.items():
        lines.append(
            f"| {name}: real rows vs fresh (floor) | - | " + " | ".join(f"{floor[k]:.3f}" for k in KEYS) + " | - |"
        )
    return "\n".join(lines)


def main() -> None:
    args = arguments(__doc__)
    base, base_fresh = customer_tables(args.rows)
    tables = {
        "as simulated": (base, base_fresh),
        "billing days": (billing_days(base, 0), billing_days(base_fresh, 1)),
    }
    floors = {name: measure(real, fresh, real) for name, (real, fresh) in tables.items()}
    results = []
    for _ in range(args.runs):
        for name, (real, fresh) in tables.items():
            for declared in (False, True):
                results.append(one_run(name, declared, real, fresh, args.epsilon))
                print(json.dumps(results[-1]), flush=True)
    write("months", args, {"floors": floors, "runs": results})
    print(table(results, floors))


if __name__ == "__main__":
    main()
