#!/usr/bin/env python3
"""Synthroom's benchmarks (not part of the test suite). Each writes JSON under bench/out/.

    python bench/run.py adult   [--epsilons 0.1,1,10]   # time, peak memory, evaluate.py scores
    python bench/run.py scale   [--sizes 1000000,10000000]  # fit time/memory from Parquet, sample 1M
    python bench/run.py compare [--epsilons 1,10] [--generators ...]  # shared compare.py, one run
    python bench/run.py wide    [--epsilons 1]      # 74 columns, 50-value categoricals, missing values
    python bench/run.py evaluation                  # `synthroom evaluate` on 50k x 15 real and synthetic rows
    python bench/run.py adult-gate [--epsilons 0.1,1,10] [--runs 5] [--rows 2000] [--delta D]  # the reference JSON, gate on

Every run of our command goes through the `synthroom` CLI under `/usr/bin/time -v`, so wall time
and peak memory are those of the whole process. The yardstick (../shared/bench) is called, never
copied: evaluate.py scores, compare.py runs the peers beside us.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"
ADULT = SHARED / "data" / "adult"
OUT = HERE / "out"
VENV_PEERS = Path(os.environ.get("VENV_PEERS", Path.home() / ".cache" / "synthroom-bench" / "peers"))
SYNTHROOM = Path(sys.executable).with_name("synthroom")


def timed(cmd: list[str], log: Path) -> dict:
    """Run ``cmd`` under /usr/bin/time -v; return wall seconds, CPU seconds (user + sys), the load
    average when it ended, peak RSS (MiB) and exit code."""
    tfile = log.with_suffix(".time.txt")
    t0 = time.time()
    with open(log, "w") as fh:
        rc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(tfile)] + cmd, stdout=fh, stderr=subprocess.STDOUT
        ).returncode
    text = tfile.read_text() if tfile.exists() else ""
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    cpu = [float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text)]
    return {
        "returncode": rc,
        "wall_s": round(time.time() - t0, 1),
        "cpu_s": round(sum(cpu), 1) if cpu else None,  # user + sys: comparable on a shared machine
        "load_avg_1min": round(os.getloadavg()[0], 1),
        "peak_mib": round(int(rss.group(1)) / 1024) if rss else None,
        "command": shlex.join(cmd),
    }


def evaluator() -> str:
    """The yardstick's interpreter: the peers' venv when set up, else this one (evaluate.py needs
    only numpy, pandas and scikit-learn)."""
    peers = VENV_PEERS / "bin" / "python"
    return str(peers) if peers.exists() else sys.executable


def seeded_synthesize(train: Path, schema: Path, eps: float, out: Path, seed: int) -> list[str]:
    """Our command on one table at one epsilon, seeded, quiet: what ``adult`` and ``wide`` time."""
    cmd = [SYNTHROOM, "synthesize", train, "--schema", schema, "--epsilon", eps, "-o", out, "-q", "--seed", seed]
    return [str(part) for part in cmd]


def run_evaluate(train: Path, holdout: Path, synthetic: Path, schema: Path, out: Path) -> dict:
    """The yardstick's evaluate.py on one synthetic table; its whole metrics JSON. Its models run
    on one OpenMP thread unless OMP_NUM_THREADS says otherwise: on a shared 2-core machine, the
    default threads made one scoring take about 2 minutes instead of about 1 second."""
    subprocess.run(
        [
            evaluator(),
            str(SHARED / "bench" / "evaluate.py"),
            "--train",
            str(train),
            "--holdout",
            str(holdout),
            "--synthetic",
            str(synthetic),
            "--schema",
            str(schema),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
    )
    return json.loads(out.read_text())


def evaluate(train: Path, holdout: Path, synthetic: Path, schema: Path, out: Path) -> dict:
    """The classification figures RESULTS.md reports for Adult."""
    m = run_evaluate(train, holdout, synthetic, schema, out)
    f, u, p = m["fidelity"], m["utility"], m["privacy"]
    return {
        "tstr_auc": u["tstr"].get("roc_auc"),
        "trtr_auc": u["trtr"].get("roc_auc"),
        "tvd_2way": f["tvd_2way_mean"],
        "fidelity": f["fidelity_score"],
        "kl_mean": f["kl_mean"],
        "mia_auc": p["mia_auc"],
        "exact_copy_train": p["exact_copy_rate_train"],
    }


def adult(args) -> list[dict]:
    rows = []
    for eps in [float(e) for e in args.epsilons.split(",")]:
        syn = OUT / f"adult_eps{eps:g}.csv"
        rec = {
            "epsilon": eps,
            **timed(
                seeded_synthesize(ADULT / "train.csv", ADULT / "schema.json", eps, syn, args.seed),
                OUT / f"adult_eps{eps:g}.log",
            ),
        }
        rec.update(
            evaluate(
                ADULT / "train.csv",
                ADULT / "test.csv",
                syn,
                ADULT / "schema.json",
                OUT / f"adult_eps{eps:g}.metrics.json",
            )
        )
        print(json.dumps(rec), flush=True)
        rows.append(rec)
    return rows


def make_big(n: int) -> Path:
    """Adult resampled (with replacement, seeded) to ``n`` rows, as Parquet; built once."""
    path = OUT / f"adult_{n}.parquet"
    if not path.exists():
        import duckdb

        con = duckdb.connect()
        con.execute("SELECT setseed(0.42)")
        con.execute(
            f"CREATE TABLE t AS SELECT *, row_number() OVER () - 1 AS k FROM read_csv('{ADULT / 'train.csv'}', header = true)"
        )
        n_train = con.execute("SELECT count(*) FROM t").fetchone()[0]
        con.execute(
            f"COPY (SELECT t.* EXCLUDE (k) FROM (SELECT floor(random() * {n_train})::BIGINT AS k FROM range({n})) s "
            f"JOIN t USING (k)) TO '{path}.tmp' (FORMAT parquet)"
        )
        os.replace(f"{path}.tmp", path)
    return path


def scale(args) -> list[dict]:
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        data = make_big(n)
        model = OUT / f"scale_{n}.npz"
        fit = timed(
            [
                str(SYNTHROOM),
                "synthesize",
                str(data),
                "--schema",
                str(ADULT / "schema.json"),
                "--epsilon",
                "1",
                "--rows",
                "1000",
                "-o",
                str(OUT / f"scale_{n}.csv"),
                "-q",
                "--seed",
                "0",
                "--save-model",
                str(model),
            ],
            OUT / f"scale_{n}.log",
        )
        sample = timed(
            [
                str(SYNTHROOM),
                "sample",
                str(model),
                "--rows",
                "1000000",
                "-o",
                str(OUT / f"scale_{n}_sample.parquet"),
                "--seed",
                "1",
            ],
            OUT / f"scale_{n}_sample.log",
        )
        rec = {
            "rows": n,
            "fit_wall_s": fit["wall_s"],
            "fit_peak_mib": fit["peak_mib"],
            "sample_1m_wall_s": sample["wall_s"],
            "sample_peak_mib": sample["peak_mib"],
            "returncodes": [fit["returncode"], sample["returncode"]],
        }
        print(json.dumps(rec), flush=True)
        rows.append(rec)
    return rows


def simulate_wide(n: int, seed: int):
    """A seeded wide table unlike Adult: 74 columns (30 numerical driven by 5 latent factors, 30
    categorical with 50 skewed values each tied to the same factors, 10 numerical with 40% missing,
    3 binary) and a regression target that depends on all four kinds. Returns (frame, schema)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, 5))
    cols, schema = {}, []
    load = np.random.default_rng(1).normal(size=(5, 30))  # fixed loadings: train and holdout alike
    num = factors @ load + rng.normal(size=(n, 30))
    for j in range(30):
        cols[f"num_{j:02d}"] = np.round(np.exp(num[:, j] / 3) * 100, 2) if j % 3 == 0 else np.round(num[:, j], 3)
        schema.append({"name": f"num_{j:02d}", "type": "numerical"})
    cuts = np.quantile(np.random.default_rng(2).normal(size=100_000) * 1.6, np.linspace(0, 1, 51)[1:-1] ** 1.7)
    for j in range(30):
        latent = factors[:, j % 5] + rng.normal(scale=0.8, size=n)
        cols[f"cat_{j:02d}"] = np.array([f"c{j:02d}_v{k:02d}" for k in range(50)])[np.searchsorted(cuts, latent)]
        schema.append({"name": f"cat_{j:02d}", "type": "categorical"})
    for j in range(10):
        value = np.round(factors[:, (j + 2) % 5] * 10 + rng.normal(scale=5, size=n), 1)
        cols[f"sparse_{j}"] = np.where(rng.random(n) < 0.4, np.nan, value)
        schema.append({"name": f"sparse_{j}", "type": "numerical"})
    for j in range(3):
        cols[f"flag_{j}"] = np.where(factors[:, j] + rng.normal(size=n) > 0.5, "yes", "no")
        schema.append({"name": f"flag_{j}", "type": "categorical"})
    target = (
        factors @ np.array([2.0, -1.5, 1.0, 0.5, 0.0])
        + 0.8 * (cols["flag_0"] == "yes")
        + 0.05 * np.nan_to_num(cols["sparse_3"])
        + rng.normal(scale=0.7, size=n)
    )
    cols["target"] = np.round(target, 3)
    schema.append({"name": "target", "type": "numerical"})
    return pd.DataFrame(cols), {"name": "wide", "target": "target", "task": "regression", "columns": schema}


def wide(args) -> list[dict]:
    """Fit on 20,000 simulated wide rows, score against 20,000 fresh rows from the simulator."""
    train, schema = simulate_wide(20_000, seed=11)
    holdout, _ = simulate_wide(20_000, seed=12)
    paths = {"train": OUT / "wide_train.csv", "holdout": OUT / "wide_holdout.csv", "schema": OUT / "wide_schema.json"}
    train.to_csv(paths["train"], index=False)
    holdout.to_csv(paths["holdout"], index=False)
    paths["schema"].write_text(json.dumps(schema, indent=2))
    rows = []
    for eps in [float(e) for e in args.epsilons.split(",")]:
        syn = OUT / f"wide_eps{eps:g}.csv"
        rec = {
            "epsilon": eps,
            **timed(
                seeded_synthesize(paths["train"], paths["schema"], eps, syn, args.seed),
                OUT / f"wide_eps{eps:g}.log",
            ),
        }
        if rec["returncode"] == 0:
            m = run_evaluate(
                paths["train"], paths["holdout"], syn, paths["schema"], OUT / f"wide_eps{eps:g}.metrics.json"
            )
            rec.update(
                {
                    "tstr": m["utility"]["tstr"],
                    "trtr": m["utility"]["trtr"],
                    "tvd_1way": m["fidelity"].get("tvd_1way_mean"),
                    "tvd_2way": m["fidelity"]["tvd_2way_mean"],
                    "mia_auc": m["privacy"]["mia_auc"],
                }
            )
        print(json.dumps(rec), flush=True)
        rows.append(rec)
    return rows


def evaluation(args) -> list[dict]:
    """Time `synthroom evaluate` (every measure, anonymeter's sidecar included when it is set
    up) on 50,000 real training rows (Adult resampled, seeded), the 16,281 real test rows as
    holdout and 50,000 synthetic rows, 15 columns each."""
    train = make_big(50_000)
    syn = OUT / "evaluation_synthetic.parquet"
    made = timed(
        [
            str(SYNTHROOM),
            "synthesize",
            str(ADULT / "train.csv"),
            "--schema",
            str(ADULT / "schema.json"),
            "--epsilon",
            "1",
            "--rows",
            "50000",
            "-o",
            str(syn),
            "-q",
            "--seed",
            str(args.seed),
        ],
        OUT / "evaluation_synthesize.log",
    )
    assert made["returncode"] == 0, made
    rec = timed(
        [
            str(SYNTHROOM),
            "evaluate",
            "--train",
            str(train),
            "--holdout",
            str(ADULT / "test.csv"),
            "--synthetic",
            str(syn),
            "--schema",
            str(ADULT / "schema.json"),
            "--report",
            str(OUT / "evaluation_report.html"),
            "-q",
        ],
        OUT / "evaluation.log",
    )
    report = json.loads((OUT / "evaluation_report.json").read_text())
    rec.update(
        {
            "rows_train": 50_000,
            "rows_holdout": 16_281,
            "rows_synthetic": 50_000,
            "attacks": [a["attackVersion"] for a in report["membershipInferenceAttackScores"]],
            "notes": report.get("notes", []),
        }
    )
    print(json.dumps(rec), flush=True)
    return [rec]


def half_test() -> Path:
    """compare.py's scoring half of test.csv (seed 0, 8,140 rows), written once."""
    import numpy as np
    import pandas as pd

    path = OUT / "adult_test_half.csv"
    if not path.exists():
        test = pd.read_csv(ADULT / "test.csv", dtype=str, keep_default_na=False)
        idx = np.random.default_rng(0).permutation(len(test))
        test.iloc[np.sort(idx[: len(test) // 2])].to_csv(path, index=False)
    return path


def reference_json(epsilon: float) -> Path:
    """Adult's classification in the reference product's JSON, with maxMembershipInferenceAttackScore
    0.6 (so the release gate runs)."""
    schema = json.loads((ADULT / "schema.json").read_text())
    doc = {
        "epsilon": epsilon,
        "maxMembershipInferenceAttackScore": 0.6,
        "columnClassification": {
            "columnMapping": [
                {
                    "columnName": c["name"],
                    "columnType": c["type"].upper(),
                    "isPredictiveValue": c["name"] == schema["target"],
                }
                for c in schema["columns"]
            ]
        },
    }
    path = OUT / f"adult_reference_eps{epsilon:g}.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def adult_train(rows: int | None) -> Path:
    """Adult's train.csv, or a seeded subsample of ``rows`` of it (issue 17's Adult at 2,000 rows)."""
    if rows is None:
        return ADULT / "train.csv"
    import pandas as pd

    path = OUT / f"adult_train_{rows}.csv"
    if not path.exists():
        pd.read_csv(ADULT / "train.csv", dtype=str, keep_default_na=False).sample(n=rows, random_state=0).to_csv(
            path, index=False
        )
    return path


def adult_gate(args) -> list[dict]:
    """Adult through our command with the reference product's JSON (the gate on), ``--runs`` fresh-
    entropy runs per epsilon, each scored by evaluate.py on half of test.csv (``--rows``: fit on a
    seeded subsample of train.csv instead, scored the same way)."""
    rows, hold = [], half_test()
    train = adult_train(args.rows)
    tag = gate_tag(args)
    for eps in [float(e) for e in args.epsilons.split(",")]:
        for run in range(args.runs):
            name = f"{tag}_eps{eps:g}_run{run}"
            syn, report = OUT / f"{name}.csv", OUT / f"{name}.html"
            rec = {
                "epsilon": eps,
                "run": run,
                "train_rows": args.rows or 32_561,
                "delta": args.delta,
                **timed(
                    [
                        str(SYNTHROOM),
                        "synthesize",
                        str(train),
                        "--schema",
                        str(reference_json(eps)),
                        "--epsilon",
                        str(eps),
                        "-o",
                        str(syn),
                        "-q",
                        "--report",
                        str(report),
                        *(["--delta", f"{args.delta:g}"] if args.delta is not None else []),
                    ],
                    OUT / f"{name}.log",
                ),
            }
            meta = json.loads(report.with_suffix(".json").read_text()) if report.with_suffix(".json").exists() else {}
            rec["released"] = meta.get("released")
            rec["holdout_note"] = next((n for n in meta.get("notes", []) if n.startswith("holdout:")), None)
            rec["regime"] = (meta.get("privacy") or {}).get("regime", {}).get("name")
            if rec["returncode"] == 0:
                rec.update(evaluate(train, hold, syn, ADULT / "schema.json", OUT / f"{name}.metrics.json"))
            print(json.dumps(rec), flush=True)
            rows.append(rec)
    return rows


def gate_tag(args) -> str:
    """adult-gate's file-name stem: ``adult_gate``, plus ``_<rows>`` and ``_delta<d>`` when given."""
    return (
        "adult_gate"
        + (f"_{args.rows}" if args.rows else "")
        + (f"_delta{args.delta:g}" if args.delta is not None else "")
    )


def compare(args) -> None:
    cmd = f"{SYNTHROOM} synthesize {{train}} --schema {ADULT / 'schema.json'} --epsilon {{epsilon}} --rows {{rows}} -o {{out}} -q"
    subprocess.run(
        [
            str(VENV_PEERS / "bin" / "python"),
            str(SHARED / "bench" / "compare.py"),
            "--data",
            str(ADULT),
            "--epsilon",
            args.epsilons,
            "--generators",
            args.generators,
            "--peer-args",
            "--epochs 20",
            "--cmd",
            cmd,
            "--out",
            str(OUT / "compare.json"),
        ],
        check=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["adult", "adult-gate", "scale", "compare", "wide", "evaluation"])
    ap.add_argument("--epsilons", default=None)
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--generators", default="candidate,aim,mst,mostly-argn,dpctgan")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=5, help="adult-gate: fresh-entropy runs per epsilon")
    ap.add_argument("--rows", type=int, default=None, help="adult-gate: fit on this many train.csv rows (seeded)")
    ap.add_argument("--delta", type=float, default=None, help="adult-gate: our command's --delta (default: its own)")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.what == "adult":
        args.epsilons = args.epsilons or "0.1,1,10"
        res = adult(args)
    elif args.what == "adult-gate":
        args.epsilons = args.epsilons or "0.1,1,10"
        res = adult_gate(args)
        (OUT / f"{gate_tag(args)}.json").write_text(json.dumps(res, indent=2))
        return
    elif args.what == "scale":
        res = scale(args)
    elif args.what == "evaluation":
        res = evaluation(args)
    elif args.what == "wide":
        args.epsilons = args.epsilons or "1"
        res = wide(args)
    else:
        args.epsilons = args.epsilons or "1,10"
        compare(args)
        return
    (OUT / f"{args.what}.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
