#!/usr/bin/env python3
"""Public hierarchies (issue 12): the demo customer table's 400-value Zipf city at 20,000 rows,
epsilon 1, with the hierarchy city -> state declared or not.

    .venv/bin/python bench/hierarchy.py [--rows 20000] [--epsilon 1] [--runs 3]

One row per customer (as bench/selection.py). Variants: nothing declared; the city list declared (public categories, no hierarchy);
``parent: state`` only; ``parent: state`` with the public (city, state) pairs. Each run fits on
the simulator's table (seed 0) without a seed (fresh OS entropy, as a release) and samples as
many rows. Measured on the synthetic rows: the share whose city is an ``other`` label; the share
whose city is ``other (S)`` with S the row's own state (the state is right, the city is
``other``); the share of rows naming a city in a state that is not its own; the 1-way TVD of city
and of state against fresh simulated rows (seed 1; missing is a value of its own), beside the
same TVD of the real table (the floor). CPU seconds of each fit + sample. Writes
bench/out/hierarchy.json and prints a markdown table of the medians.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from synthroom import Synthesizer
from synthroom.demo import CITY_HIERARCHY, CUSTOMER_TABLE_SCHEMA, simulate_customer_table

OUT = Path(__file__).resolve().parent / "out"
PAIRS = {city: state for city, (state, _) in CITY_HIERARCHY.items()}
VARIANTS = ("nothing declared", "city list declared", "parent: state", "parent: state + pairs")


def schema_for(variant: str) -> dict:
    d = copy.deepcopy(CUSTOMER_TABLE_SCHEMA)
    city = d["columns"][0]
    if variant == "city list declared":
        city["categories"] = list(PAIRS)
    if variant.startswith("parent"):
        city["parent"] = "state"
    if variant.endswith("pairs"):
        city["parents"] = PAIRS
    return d


def tvd(a: pd.Series, b: pd.Series) -> float:
    """1-way total variation distance, missing a value of its own."""
    pa = a.astype(object).where(a.notna(), "<missing>").astype(str).value_counts(normalize=True)
    pb = b.astype(object).where(b.notna(), "<missing>").astype(str).value_counts(normalize=True)
    return float(0.5 * pa.sub(pb, fill_value=0.0).abs().sum())


def measure(df: pd.DataFrame, fresh: pd.DataFrame) -> dict:
    city, state = df["city"].astype(object), df["state"].astype(object)
    text = city.where(city.notna(), "").astype(str)
    other = text.str.startswith("other")
    own = other & state.notna() & (text == "other (" + state.astype(str) + ")")
    named = city.notna() & ~other & state.notna()
    wrong = np.array([PAIRS.get(c) != s for c, s in zip(city[named], state[named])], dtype=bool)
    return {
        "other_share": round(float(other.mean()), 4),
        "other_within_right_state": round(float(own.mean()), 4),
        "city_in_wrong_state": round(float(wrong.sum() / len(df)), 4),
        "tvd_city": round(tvd(city, fresh["city"]), 4),
        "tvd_state": round(tvd(state, fresh["state"]), 4),
    }


def one_run(variant: str, real: pd.DataFrame, fresh: pd.DataFrame, epsilon: float) -> dict:
    before = resource.getrusage(resource.RUSAGE_SELF)
    synth = Synthesizer(schema_for(variant), epsilon=epsilon).fit(real)
    df = synth.sample(len(real))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    warned = [w for w in synth.warnings_ if w.startswith("column 'city'")]
    return {"variant": variant, **measure(df, fresh), "cpu_s": round(cpu, 1), "city_warning": bool(warned)}


def table(results: list[dict], floor: dict) -> str:
    keys = ["other_share", "other_within_right_state", "city_in_wrong_state", "tvd_city", "tvd_state"]
    lines = [
        "| variant | runs | " + " | ".join(keys) + " | CPU s |",
        "|---|---|" + "---|" * (len(keys) + 1),
    ]
    for variant in VARIANTS:
        runs = [r for r in results if r["variant"] == variant]
        med = {k: statistics.median(r[k] for r in runs) for k in [*keys, "cpu_s"]}
        lines.append(
            f"| {variant} | {len(runs)} | " + " | ".join(f"{med[k]:.3f}" for k in keys) + f" | {med['cpu_s']:.0f} |"
        )
    lines.append(
        f"| real rows (seed 0) vs fresh (seed 1): the floor | - | 0 | 0 | 0 | {floor['tvd_city']:.3f} | "
        f"{floor['tvd_state']:.3f} | - |"
    )
    return "\n".join(lines)


def arguments(doc: str | None) -> argparse.Namespace:
    """The options of this bench and of bench/months.py: rows, epsilon, runs."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    return ap.parse_args()


def customer_tables(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo customer table with one row per customer (seed 0), and as many fresh rows (seed 1)."""
    real = simulate_customer_table(rows=rows, customers=rows, seed=0)
    return real, simulate_customer_table(rows=rows, customers=rows, seed=1)


def write(name: str, args: argparse.Namespace, payload: dict) -> None:
    """bench/out/<name>.json: the runs with the commit and the load average; the metadata printed."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=OUT.parent)
    meta = {"rows": args.rows, "epsilon": args.epsilon, "commit": commit.stdout.strip(), "load": os.getloadavg()}
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({**meta, **payload}, indent=2))
    print(json.dumps(meta))


def main() -> None:
    args = arguments(__doc__)
    real, fresh = customer_tables(args.rows)
    floor = {"tvd_city": tvd(real["city"], fresh["city"]), "tvd_state": tvd(real["state"], fresh["state"])}
    results = []
    for _ in range(args.runs):
        for variant in VARIANTS:
            results.append(one_run(variant, real, fresh, args.epsilon))
            print(json.dumps(results[-1]), flush=True)
    write("hierarchy", args, {"floor": floor, "runs": results})
    print(table(results, floor))


if __name__ == "__main__":
    main()
