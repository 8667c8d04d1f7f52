#!/usr/bin/env python3
"""Scale check on a realistic wide table: the customer simulator (src/synthroom/demo/customers.py)
at 1M and 10M rows, through the real command.

    .venv/bin/python bench/scale_customers.py [--sizes 1000000,10000000] [--epsilon 1] [--format parquet]

For each size: the table is written once to bench/out/customers_<n>.<format> (seed 0, 50 rows per
customer), then ``synthroom synthesize`` fits and samples as many rows as the DP estimate says,
writing Parquet. Measured: wall time and the peak resident memory of the whole process tree (the
sum of RSS over the command and every descendant, sampled every 0.1 s from /proc), CPU time and
the load average at the end (the timings mean little on a busy machine). Targets: 1M
rows under 3 minutes and 2 GiB, 10M under 10 minutes and 4 GiB. Results: one JSON line per size,
and bench/out/scale_customers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SYNTHROOM = Path(sys.executable).with_name("synthroom")
TARGETS = {1_000_000: (180, 2048), 10_000_000: (600, 4096)}  # seconds, MiB


def tree_rss_kib(root: int) -> int:
    """Sum of VmRSS over ``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        pid, ppid = int(entry), int(fields["PPid"])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_measured(cmd: list[str], log: Path) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds (user + system, of the command and its children:
    on a shared machine the steadier figure), peak process-tree RSS (MiB), exit code."""
    peak = [0]
    t0 = time.time()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss_kib(proc.pid))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        done.set()
        sampler.join()
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    return {
        "returncode": rc,
        "wall_s": round(time.time() - t0, 1),
        "cpu_s": round(cpu, 1),
        "peak_mib": round(peak[0] / 1024),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }


def table(n: int, fmt: str) -> tuple[Path, Path]:
    """The simulated table and its schema, written once."""
    import yaml

    from synthroom.demo import CUSTOMER_TABLE_SCHEMA, write_customer_table

    OUT.mkdir(exist_ok=True)
    path, schema = OUT / f"customers_{n}.{fmt}", OUT / "customers_schema.yaml"
    if not path.exists():
        write_customer_table(path, rows=n, seed=0)
    schema.write_text(yaml.safe_dump(CUSTOMER_TABLE_SCHEMA, sort_keys=False))
    return path, schema


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--seed", type=int, default=None, help="the command's --seed (default: none, as a release)")
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        data, schema = table(n, args.format)
        cmd = [
            str(SYNTHROOM),
            "synthesize",
            str(data),
            "--schema",
            str(schema),
            "--epsilon",
            str(args.epsilon),
            "-o",
            str(OUT / f"customers_{n}_synthetic.parquet"),
            "-q",
        ]
        cmd += ["--seed", str(args.seed)] if args.seed is not None else []
        rec = {
            "rows": n,
            "epsilon": args.epsilon,
            "format": args.format,
            "commit": commit.strip(),
            **run_measured(cmd, OUT / f"customers_{n}.log"),
        }
        limit_s, limit_mib = TARGETS.get(n, (None, None))
        if limit_s is not None:
            rec["within_targets"] = rec["returncode"] == 0 and rec["wall_s"] < limit_s and rec["peak_mib"] < limit_mib
        print(json.dumps(rec), flush=True)
        results.append(rec)
    (OUT / "scale_customers.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
