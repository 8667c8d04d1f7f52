"""The Spark engine: parity with DuckDB, and the scale curve (see bench/README.md).

    .venv/bin/python bench/spark.py parity             # Adult: seeded fit + sample on both engines, SHA-256 of the CSVs
    .venv/bin/python bench/spark.py scale --rows 1000000,10000000 [--engines duckdb,spark]

Each measured fit runs in a fresh child process, so its peak memory (ru_maxrss, the driver's
Python process; for Spark also the local JVM, a child of it) is its own. Results go to
``bench/out/spark_*.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ADULT = HERE.parent.parent / "shared" / "data" / "adult"


def one(engine: str, path: str, schema: dict, rows: int | None, seed: int) -> dict:
    """Fit (and sample ``rows``) on one engine in this process; timings, passes and peak memory."""
    from synthroom import Synthesizer

    counting = engine
    if engine.startswith("spark"):
        from synthroom.engine.spark import spark_session

        counting = spark_session(engine.partition(":")[2] or "local[2]")
    start = time.perf_counter()
    synth = Synthesizer(schema, epsilon=1.0, seed=seed, engine=counting).fit(path)
    fit = time.perf_counter() - start
    result = {
        "engine": engine,
        "fit_s": round(fit, 1),
        "timings": {k: round(v, 1) for k, v in synth.timings_.items()},
        "passes": synth.counting_passes_,
    }
    if rows:
        result["sha256"] = hashlib.sha256(synth.sample(rows).to_csv(index=False).encode()).hexdigest()
    if engine.startswith("spark"):
        counting.stop()
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["peak_child_rss_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    return result


def _child(engine: str, path: Path, schema: dict, rows: int | None, seed: int) -> dict:
    code = (
        "import json,sys; sys.path.insert(0, %r); from spark import one; "
        "print(json.dumps(one(%r, %r, json.loads(sys.argv[1]), %r, %d)))" % (str(HERE), engine, str(path), rows, seed)
    )
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(schema)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parity(args) -> None:
    schema = json.loads((ADULT / "schema.json").read_text())
    runs = [_child(e, ADULT / "train.csv", schema, 32_561, args.seed) for e in ("duckdb", "spark")]
    report = {
        "data": "adult train.csv (32,561 rows, 15 columns), epsilon 1, seed %d" % args.seed,
        "runs": runs,
        "identical": runs[0]["sha256"] == runs[1]["sha256"],
    }
    _write("spark_parity.json", report)


def scale(args) -> None:
    from synthroom.demo.customers import CUSTOMER_TABLE_SCHEMA, write_customer_table

    results = []
    for rows in (int(r) for r in args.rows.split(",")):
        path = OUT / f"customers_{rows}.parquet"
        if not path.exists():
            write_customer_table(path, rows=rows, seed=0)
        for engine in args.engines.split(","):
            result = _child(engine, path, CUSTOMER_TABLE_SCHEMA, None, args.seed)
            results.append({"rows": rows, **result})
            print(json.dumps(results[-1]), flush=True)
    _write("spark_scale.json", {"table": "demo.customers simulator, Parquet", "results": results})


def _write(name: str, report: dict) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / name).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parity")
    p.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("scale")
    s.add_argument("--rows", default="1000000,10000000")
    s.add_argument("--engines", default="duckdb,spark")
    s.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    {"parity": parity, "scale": scale}[args.command](args)


if __name__ == "__main__":
    main()
