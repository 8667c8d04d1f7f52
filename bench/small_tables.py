#!/usr/bin/env python3
"""Small tables (issue 17): the seeded simulator's tables at 1,000-5,000 rows, several runs each.

    python bench/small_tables.py [--sizes 1000,2000,5000] [--tables narrow,credit,survey,wide]
                                 [--runs 5] [--epsilon 1] [--declared] [--seed N] [--generator G]

For each table and size: the training rows (simulator seed = the size) go through our command,
``synthroom synthesize`` (nothing declared but the column kinds; ``--declared`` also declares the
target's two classes), and the synthetic rows are scored by the yardstick
``../shared/bench/evaluate.py`` against 5,000 fresh rows of the same simulator. Without
``--seed`` every run draws fresh OS entropy (the release path); ``--seed N`` makes run i use seed
N + i (tuning only). Reports, per table: whether a target class that holds at least 10% and 150
of the real rows is missing from the synthetic rows ("lost"), TSTR and TRTR (ROC AUC of a
histogram gradient boosting model scored on the fresh rows), the share of TRTR's lift over chance
that TSTR keeps ((TSTR - 0.5) / (TRTR - 0.5)), the DCR attack AUC, and the regime the fit chose.
Writes ``bench/out/small_tables.json``; prints one JSON line per run and a summary table.

``--generator G`` runs a peer of ``../shared/bench/peers.py`` (``mst``, ``aim``, ``mostly-argn``,
``dpmm-mst``, ``dpmm-aim``; its venvs: ``../shared/bench/setup.sh``) on the same rows instead of
our command, scored the same way (run i: the peer's seed ``i``, or ``N + i``); the output is then
``small_tables_G.json``. ``--declared`` does not reach the peers (they have no category list).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import OUT, SHARED, SYNTHROOM, VENV_PEERS, run_evaluate, timed  # noqa: E402

from synthroom.demo.small import CLASSES, SMALL_TABLES, TARGET, small_table  # noqa: E402

FRESH_ROWS = 5_000
MIN_SHARE, MIN_ROWS = 0.10, 150  # a class at least this large must never be lost


def score(train: Path, fresh: Path, synthetic: Path, schema: Path, out: Path) -> dict:
    m = run_evaluate(train, fresh, synthetic, schema, out)
    u, p = m["utility"], m["privacy"]
    return {
        "tstr_auc": u["tstr"].get("roc_auc"),
        "trtr_auc": u["trtr"].get("roc_auc"),
        "tvd_2way": m["fidelity"]["tvd_2way_mean"],
        "mia_auc": p["mia_auc"],
    }


def must_keep(frame) -> list[str]:
    """The classes the target rule protects: at least 10% and at least 150 of the real rows."""
    counts = frame[TARGET].value_counts()
    return sorted(c for c, n in counts.items() if n >= MIN_ROWS and n / len(frame) >= MIN_SHARE)


def generator_command(args, train: Path, schema: Path, out: Path, log: Path, run: int) -> list[str]:
    """Our command (``args.generator == "synthroom"``), or a peer of the shared bench's peers.py."""
    if args.generator != "synthroom":
        cmd = [str(VENV_PEERS / "bin" / "python"), str(SHARED / "bench" / "peers.py"), "--generator", args.generator]
        cmd += ["--train", str(train), "--schema", str(schema), "--epsilon", str(args.epsilon), "--out", str(out)]
        return cmd + ["--seed", str((args.seed or 0) + run)]
    cmd = [str(SYNTHROOM), "synthesize", str(train), "--schema", str(schema), "--epsilon", str(args.epsilon)]
    cmd += ["-o", str(out), "-q", "--privacy-log", str(log)]
    cmd += ["--delta", f"{args.delta:g}"] if args.delta is not None else []
    return cmd + (["--seed", str(args.seed + run)] if args.seed is not None else [])


def variant(args) -> str:
    """What the file names add for ``--declared``, a peer and ``--delta``: "", "_declared", "_mst", "_delta1e-07"..."""
    peer = "" if args.generator == "synthroom" else f"_{args.generator}"
    return ("_declared" if args.declared else "") + peer + (f"_delta{args.delta:g}" if args.delta is not None else "")


def one_run(spec, rows: int, run: int, args) -> dict:
    tag = f"small_{spec.name}_{rows}{variant(args)}"
    train, schema = small_table(spec, rows, seed=rows, declare_classes=args.declared)
    fresh, _ = small_table(spec, FRESH_ROWS, seed=10_000 + rows)
    paths = {k: OUT / f"{tag}_{k}" for k in ("train.csv", "fresh.csv", "schema.json")}
    train.to_csv(paths["train.csv"], index=False)
    fresh.to_csv(paths["fresh.csv"], index=False)
    paths["schema.json"].write_text(json.dumps(schema))
    syn = OUT / f"{tag}_run{run}.csv"
    log = OUT / f"{tag}_run{run}.privacy.json"
    cmd = generator_command(args, paths["train.csv"], paths["schema.json"], syn, log, run)
    rec = {
        "table": spec.name,
        "rows": rows,
        "columns": spec.columns + 1,
        "run": run,
        "declared": args.declared,
        "generator": args.generator,
        "epsilon": args.epsilon,
        **timed(cmd, OUT / f"{tag}_run{run}.log"),
    }
    if rec["returncode"] != 0:
        return rec
    import pandas as pd

    synthetic = pd.read_csv(syn)
    keep = must_keep(train)
    rec["lost"] = [c for c in keep if c not in set(synthetic[TARGET].astype(str))]
    rec["classes_synthetic"] = sorted(set(synthetic[TARGET].astype(str)))
    rec["minority_share_real"] = float((train[TARGET] == CLASSES[1]).mean())
    rec.update(
        score(paths["train.csv"], paths["fresh.csv"], syn, paths["schema.json"], OUT / f"{tag}_run{run}.metrics.json")
    )
    survived = set(CLASSES) <= set(rec["classes_synthetic"])
    rec["lift_kept"] = (
        (rec["tstr_auc"] - 0.5) / (rec["trtr_auc"] - 0.5) if survived and rec["tstr_auc"] is not None else None
    )
    privacy = json.loads(log.read_text()) if log.exists() else {}
    rec["regime"] = privacy.get("regime", {}).get("name")
    rec["too_small"] = privacy.get("regime", {}).get("too_small")
    return rec


def summarise(records: list[dict]) -> str:
    lines = [
        "| table | rows | columns | runs | classes lost (protected) | TRTR AUC | TSTR AUC min-max | lift kept min "
        "| DCR AUC max | 2-way TVD median | regime | wall s median | CPU s median |",
        "|" + "---|" * 13,
    ]
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["table"], r["rows"]), []).append(r)
    for (table, rows), rs in groups.items():
        ok = [r for r in rs if r.get("tstr_auc") is not None]
        lifts = [r["lift_kept"] for r in ok if r.get("lift_kept") is not None]
        lost = sum(bool(r.get("lost")) for r in rs)
        fmt = lambda xs, f: f(xs) if xs else float("nan")  # noqa: E731
        lines.append(
            f"| {table} | {rows:,} | {rs[0]['columns']} | {len(rs)} | {lost} | {fmt([r['trtr_auc'] for r in ok], np.median):.3f} "
            f"| {fmt([r['tstr_auc'] for r in ok], min):.3f}-{fmt([r['tstr_auc'] for r in ok], max):.3f} "
            f"| {fmt(lifts, min):.2f} | {fmt([r['mia_auc'] for r in ok], max):.3f} "
            f"| {fmt([r['tvd_2way'] for r in ok], np.median):.3f} | {rs[0].get('regime')} "
            f"| {np.median([r['wall_s'] for r in rs]):.1f} | {fmt([r['cpu_s'] for r in rs if r.get('cpu_s')], np.median):.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,2000,5000")
    ap.add_argument("--tables", default=",".join(t.name for t in SMALL_TABLES))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--declared", action="store_true", help="declare the target's two classes")
    ap.add_argument("--seed", type=int, default=None, help="seeded runs (tuning only)")
    ap.add_argument("--delta", type=float, default=None, help="our command's --delta (default: its own)")
    ap.add_argument("--generator", default="synthroom", help="synthroom (our command) or a peer of peers.py")
    args = ap.parse_args()
    if args.delta is not None and args.generator != "synthroom":
        ap.error("--delta is our command's; a peer takes its own (see ../shared/bench/peers.py)")
    OUT.mkdir(exist_ok=True)
    wanted = args.tables.split(",")
    records = []
    for spec in [t for t in SMALL_TABLES if t.name in wanted]:
        for rows in [int(s) for s in args.sizes.split(",")]:
            for run in range(args.runs):
                rec = one_run(spec, rows, run, args)
                print(json.dumps(rec), flush=True)
                records.append(rec)
    (OUT / f"small_tables{variant(args)}.json").write_text(json.dumps(records, indent=2))
    print(summarise(records))


if __name__ == "__main__":
    main()
