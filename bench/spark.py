"""The Spark engine: parity with DuckDB, and the scale curve (see bench/README.md).

    .venv/bin/python bench/spark.py parity [--table adult|joined]   # seeded fit + sample on both engines, SHA-256
    nice -n 5 .venv/bin/python bench/spark.py scale --rows 1000000,10000000,100000000 [--engines duckdb,spark]
    .venv/bin/python bench/spark.py cluster      # the local-cluster test's wall and CPU time (JVMs included)
    .venv/bin/python bench/spark.py estimate [--rows 1e10 --cores 64,256]   # the scale model, from the curve
    nice -n 5 .venv/bin/python bench/spark.py passrate [--pieces] [--grouping-sets] [--engine duckdb]  # pass rates

Each measured fit runs in a fresh child process, so its figures are its own: wall and CPU
seconds of the Python driver (RUSAGE_SELF) and, for Spark local, of its JVM (driver and
executors in one process: /proc/<pid>/stat just before the session stops, its children
included); peak RSS of the Python driver (ru_maxrss) and, separately, of the JVM (VmHWM); the
counting passes over the raw rows and over the encoded table with the seconds spent in each.
The scale table is bench/wide15.py's (15 columns, a Parquet folder written in 1M-row chunks).
Results go to ``bench/out/spark_*.json`` (the scale points also, one per line as each ends, to
``bench/out/spark_scale.jsonl``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ADULT = HERE.parent.parent / "shared" / "data" / "adult"
_TICKS = os.sysconf("SC_CLK_TCK")


class PassLog:
    """Counting passes and their seconds, split into scans of the raw table and of the encoded one
    (bench instrumentation: wraps the counting sources' query methods in this process only)."""

    def __init__(self) -> None:
        self.figures = {"raw": [0, 0.0], "encoded": [0, 0.0], "encode": [0, 0.0]}

    def timed(self, kind_of, method):
        log = self.figures

        def wrapper(source, *args, **kwargs):
            start = time.perf_counter()
            try:
                return method(source, *args, **kwargs)
            finally:
                kind = kind_of(source, *args)
                log[kind][0] += len(args[0]) if kind == "encoded" and not isinstance(args[0], str) else 1
                log[kind][1] += time.perf_counter() - start

        return wrapper

    def install(self, engine: str) -> None:
        if engine.startswith("spark"):
            from synthroom.engine.spark import SparkCountingSource as Spark

            # GROUPING SETS over the cached encoded view count as encoded; the first one also caches it
            def spark_kind(source, sql):
                return "encoded" if getattr(source, "_enc", None) and source._enc in sql else "raw"

            Spark._fetch = self.timed(spark_kind, Spark._fetch)  # type: ignore[method-assign]
            return
        from synthroom.engine import CountingSource as Duck

        Duck._fetch = self.timed(lambda s, sql: "raw", Duck._fetch)  # type: ignore[method-assign]
        Duck.marginals = self.timed(lambda s, cliques: "encoded", Duck.marginals)  # type: ignore[method-assign]
        Duck.encode = self.timed(lambda s, codings: "encode", Duck.encode)  # type: ignore[method-assign]

    def summary(self) -> dict:
        return {kind: {"passes": n, "seconds": round(s, 1)} for kind, (n, s) in self.figures.items() if n}


def jvm_figures(session) -> dict:
    """CPU seconds (user + system, its reaped children included) and peak RSS (VmHWM) of the
    local session's JVM, from /proc; read just before the session stops."""
    pid = session.sparkContext._gateway.proc.pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = sum(int(x) for x in fields[11:15]) / _TICKS  # utime, stime, cutime, cstime
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {"jvm_cpu_s": round(cpu, 1), "jvm_peak_rss_mib": round(int(status["VmHWM"].split()[0]) / 1024)}


def one(engine: str, path: str, schema: dict, rows: int | None, seed: int, unit_cap: int = 1) -> dict:
    """Fit (and sample ``rows``) on one engine in this process; timings, passes and peak memory."""
    from synthroom import Synthesizer

    log = PassLog()
    log.install(engine)
    counting = engine
    if engine.startswith("spark"):
        from synthroom.engine.spark import spark_session

        counting = spark_session(engine.partition(":")[2] or "local[2]")
    start = time.perf_counter()
    synth = Synthesizer(schema, epsilon=1.0, seed=seed, unit_cap=unit_cap, engine=counting).fit(path)
    fit = time.perf_counter() - start
    result = {
        "engine": engine,
        "fit_s": round(fit, 1),
        "timings": {k: round(v, 1) for k, v in synth.timings_.items()},
        "passes": synth.counting_passes_,
        "pass_log": log.summary(),
    }
    if rows:
        result["sha256"] = hashlib.sha256(synth.sample(rows).to_csv(index=False).encode()).hexdigest()
    if engine.startswith("spark"):
        result.update(jvm_figures(counting))
        counting.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["python_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
    result["python_peak_rss_mib"] = round(usage.ru_maxrss / 1024)
    return result


def _child(engine: str, path: Path, schema: dict, rows: int | None, seed: int, unit_cap: int = 1) -> dict:
    code = "import json,sys; sys.path.insert(0, %r); from spark import one; print(json.dumps(one(%r, %r, %s)))" % (
        str(HERE),
        engine,
        str(path),
        "json.loads(sys.argv[1]), %r, %d, %d" % (rows, seed, unit_cap),
    )
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(schema)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    wall = round(time.perf_counter() - start, 1)
    return {**result, "process_wall_s": wall, "load_avg_1m": [round(load, 1), round(os.getloadavg()[0], 1)]}


def joined_table() -> tuple[Path, dict, int]:
    """The demo's joined table (its template run on its seeded audience and conversions, 5,000
    users), written once as Parquet; its classification; its unit cap (the conversions' 5)."""
    import duckdb

    from synthroom.demo.adtech import DEMO_CLASSIFICATION, DEMO_TEMPLATE, simulate_audience, simulate_conversions

    path = OUT / "demo_joined.parquet"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        audience = simulate_audience(5000, seed=0)
        conversions = simulate_conversions(audience, seed=0)  # noqa: F841  (read by DuckDB by name)
        con = duckdb.connect()
        con.register("audience", audience)
        con.register("conversions", conversions)
        con.execute(f"COPY (SELECT * FROM ({DEMO_TEMPLATE}) ORDER BY ALL) TO '{path}' (FORMAT parquet)")
    return path, DEMO_CLASSIFICATION, 5


def parity(args) -> None:
    if args.table == "joined":
        path, schema, cap = joined_table()
        what = "the demo's joined table (5,000 users, its template), unit cap 5"
    else:
        path, schema, cap = ADULT / "train.csv", json.loads((ADULT / "schema.json").read_text()), 1
        what = "adult train.csv (32,561 rows, 15 columns)"
    runs = [_child(e, path, schema, args.sample, args.seed, cap) for e in ("duckdb", "spark")]
    report = {
        "data": f"{what}, epsilon 1, seed {args.seed}, {args.sample} rows sampled",
        "commit": _commit(),
        "runs": runs,
        "identical": runs[0]["sha256"] == runs[1]["sha256"],
    }
    _write(f"spark_parity_{args.table}.json", report)


def scale(args) -> None:
    sys.path.insert(0, str(HERE))
    from wide15 import WIDE_SCHEMA, write_wide

    results = []
    for rows in (int(r) for r in args.rows.split(",")):
        start = time.perf_counter()
        path = write_wide(OUT / f"wide15_{rows}.parquet", rows=rows, seed=0)
        print(f"table {path}: {time.perf_counter() - start:.0f} s", flush=True)
        for engine in args.engines.split(","):
            result = {"rows": rows, "commit": _commit(), **_child(engine, path, WIDE_SCHEMA, None, args.seed)}
            results.append(result)
            with open(OUT / "spark_scale.jsonl", "a") as fh:
                fh.write(json.dumps(result) + "\n")
            print(json.dumps(result), flush=True)
    _write("spark_scale.json", {"table": "bench/wide15.py, 15 columns, Parquet folder", "results": results})


def cluster(args) -> None:
    """Time the multi-process test (``local-cluster``): wall, and CPU seconds of the whole process
    tree, the JVMs included (this process adopts orphaned descendants and reaps them all)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    test = "tests/test_engine_spark.py::test_a_multi_process_cluster_counts_exactly"
    load, start = os.getloadavg()[0], time.perf_counter()
    rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test], cwd=HERE.parent)
    while True:  # the JVMs outlive pytest by a moment
        try:
            os.wait()
        except ChildProcessError:
            break
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    _write(
        "spark_cluster_test.json",
        {
            "test": test,
            "commit": _commit(),
            "returncode": rc,
            "wall_s": round(time.perf_counter() - start, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "load_avg_1m": [round(load, 1), round(os.getloadavg()[0], 1)],
        },
    )


def two_raw_passes(source) -> None:
    from synthroom.engine.grid import LOG_GRID

    source.category_counts("city")
    source.grid_counts("income", LOG_GRID)


def _cpu_s(session) -> float:
    """CPU seconds used so far by what counts: the local session's JVM, or this process (DuckDB's
    threads run in it) when ``session`` is None."""
    if session is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    return jvm_figures(session)["jvm_cpu_s"]


def _cpu_timed(session, work, *args) -> dict:
    cpu0, start = _cpu_s(session), time.perf_counter()
    work(*args)
    return {"cpu_s": round(_cpu_s(session) - cpu0, 2), "wall_s": round(time.perf_counter() - start, 2)}


def _grouping_sets_rate(session, source, repeat: int) -> list[dict]:
    """One GROUPING SETS pass of 28 cliques (the 7 categorical columns and each pair of them) over
    the cached encoded table; its first run (which also fills the cache) is left out."""
    from itertools import combinations

    from synthroom.engine.counting import CategoryCoding

    names = ["region", "state", "city", "plan", "channel", "device", "churned"]
    codings = {}
    for name in names:
        values = [v for v in source.category_counts(name)[0] if v is not None]
        codings[name] = CategoryCoding(tuple(values), len(values), len(values) + 1, len(values) + 2)
    source.encode(codings)
    cliques = [(n,) for n in names] + list(combinations(names, 2))
    source.marginals(cliques)  # fills the cache
    return [_cpu_timed(session, source.marginals, cliques) for _ in range(repeat)]


def _piece_rate(session, source, repeat: int) -> list[dict]:
    """One pass counting ``income`` on the pieces of its kept log-grid cells (the numeric
    domain's second stage, as the fit cuts them; every non-empty cell kept)."""
    import numpy as np

    from synthroom.schema import ColumnSpec
    from synthroom.synthesis import discretize

    grid, bounds = discretize.grid_and_clip(ColumnSpec("income", "numerical"))
    cells = source.grid_counts("income", grid, bounds)
    kept = np.setdiff1d(np.flatnonzero(cells), [grid.missing])
    pieces = discretize._pieces(grid, kept, integer=False)[0]
    return [_cpu_timed(session, source.piece_counts, "income", grid, bounds, pieces) for _ in range(repeat)]


def passrate(args) -> None:
    """Spark's scan rate per core, apart from its fixed cost per job: in one warm local session,
    the same raw counting passes on the 1M and 10M tables, the JVM's CPU seconds of each (from
    /proc); the difference between the sizes is what the rows cost. ``--engine duckdb``: the same
    passes on DuckDB (2 threads), this process's CPU seconds."""
    sys.path.insert(0, str(HERE))
    from wide15 import WIDE_SCHEMA

    from synthroom.engine import CountingSource
    from synthroom.engine.spark import SparkCountingSource, spark_session

    session = spark_session("local[2]") if args.engine == "spark" else None
    kinds = {c["name"]: "datetime" if c["type"] == "date" else c["type"] for c in WIDE_SCHEMA["columns"]}
    out: dict = {"commit": _commit(), "engine": args.engine, "load_avg_1m": [round(os.getloadavg()[0], 1)], "sizes": {}}
    for rows in (int(r) for r in args.rows.split(",")):
        path = str(OUT / f"wide15_{rows}.parquet")
        if session is None:
            source = CountingSource.open(path, kinds, threads=2)
        else:
            source = SparkCountingSource.open(path, kinds, session=session)
        source.category_counts("city")  # warm-up: this size's files opened, the code compiled
        figures = [_cpu_timed(session, two_raw_passes, source) for _ in range(args.repeat)]
        out["sizes"][rows] = {"two_passes": figures}
        if args.grouping_sets:
            out["sizes"][rows]["grouping_sets_pass"] = _grouping_sets_rate(session, source, args.repeat)
        if args.pieces:
            out["sizes"][rows]["piece_pass"] = _piece_rate(session, source, args.repeat)
        source.close()
        print(rows, out["sizes"][rows], flush=True)
    out["load_avg_1m"].append(round(os.getloadavg()[0], 1))
    if session is not None:
        session.stop()
    name = "spark_passrate_gs" if args.grouping_sets else "spark_passrate_pieces" if args.pieces else "spark_passrate"
    _write(name + ("" if args.engine == "spark" else f"_{args.engine}") + ".json", out)


def _slope(sizes: dict, key: str, per: int, skip: int) -> tuple[float, float]:
    """CPU seconds per row and fixed seconds of one pass, from ``passrate``'s figures at two sizes
    (medians of the repeats after the first ``skip``; ``per`` passes in one figure)."""
    import statistics

    points = sorted((int(n), statistics.median(f["cpu_s"] for f in v[key][skip:]) / per) for n, v in sizes.items())
    (n0, c0), (n1, c1) = points[0], points[-1]
    per_row = (c1 - c0) / (n1 - n0)
    return per_row, c0 - per_row * n0


def _passrate_sizes(key: str) -> dict | None:
    """The per-size figures of the newest ``passrate`` output (plain, ``--pieces`` or
    ``--grouping-sets``) that holds ``key``; None when none does."""
    found = []
    for path in (OUT / f"spark_passrate{suffix}.json" for suffix in ("", "_pieces", "_gs")):
        if path.exists():
            sizes = json.loads(path.read_text())["sizes"]
            if all(key in figures for figures in sizes.values()):
                found.append((path.stat().st_mtime, sizes))
    return max(found, key=lambda item: item[0])[1] if found else None


def _piece_passes() -> int:
    """The fit's numeric piece passes on the scale table: one per numerical, date or datetime column."""
    sys.path.insert(0, str(HERE))
    from wide15 import WIDE_SCHEMA

    return sum(c["type"] != "categorical" for c in WIDE_SCHEMA["columns"])


def estimate(args) -> None:
    """The fit time for ``--rows`` on ``--cores`` cores, from measured figures: Spark's CPU seconds
    per row and fixed seconds of a pass (``passrate``: the slope between its two sizes), the
    passes of a Spark fit and the driver's own CPU seconds (``scale``: the largest Spark point;
    the driver's work, DP selection and estimation, does not grow with rows).

        time(N, cores) = sum over passes (N * seconds_per_row / cores + t_pass) + t_driver

    The raw passes: the numeric piece passes at their own measured rate (``passrate --pieces``;
    without it, at the raw rate), the others at the category/grid rate. The encoded passes:
    "uniform", at the raw passes' rate; "per_clique" (an upper figure), each clique of a GROUPING
    SETS pass costs a raw pass (DuckDB's count of cliques at that size); "measured" (with
    ``passrate --grouping-sets``), at the measured rate of a 28-clique GROUPING SETS pass."""
    raw_row, raw_fixed = _slope(_passrate_sizes("two_passes") or {}, "two_passes", 2, 1)
    piece_sizes = _passrate_sizes("piece_pass")
    piece_row, piece_fixed = _slope(piece_sizes, "piece_pass", 1, 0) if piece_sizes else (raw_row, raw_fixed)
    points = [json.loads(line) for line in open(OUT / "spark_scale.jsonl")]
    spark = max((p for p in points if p["engine"] == "spark"), key=lambda p: p["rows"])
    n_raw, n_enc = spark["pass_log"]["raw"]["passes"], spark["pass_log"]["encoded"]["passes"]
    n_piece = _piece_passes()
    out: dict = {"rows": args.rows, "raw": {"rows_per_core_s": round(1 / raw_row), "t_pass_s": round(raw_fixed, 2)}}
    out["piece"] = {"rows_per_core_s": round(1 / piece_row), "t_pass_s": round(piece_fixed, 2)}
    out |= {"passes": {"raw": n_raw, "of_them_piece": n_piece, "encoded": n_enc}, "t_driver_s": spark["python_cpu_s"]}
    duck = [p for p in points if p["engine"] == "duckdb" and p["rows"] == spark["rows"]][0]
    n_cliques = duck["pass_log"]["encoded"]["passes"]  # DuckDB: one pass per clique
    models = {
        "uniform": (raw_row, raw_fixed),
        "per_clique": (raw_row * n_cliques / n_enc, raw_fixed * n_cliques / n_enc),
    }
    gs_sizes = _passrate_sizes("grouping_sets_pass")
    if gs_sizes:
        models["measured"] = _slope(gs_sizes, "grouping_sets_pass", 1, 0)
        out["grouping_sets"] = {
            "rows_per_core_s": round(1 / models["measured"][0]),
            "t_pass_s": round(models["measured"][1], 2),
        }
    raw_scan_row = (n_raw - n_piece) * raw_row + n_piece * piece_row
    raw_fixed_all = (n_raw - n_piece) * raw_fixed + n_piece * piece_fixed
    for name, (enc_row, enc_fixed) in models.items():
        for cores in (int(c) for c in args.cores.split(",")):
            scan = (raw_scan_row + n_enc * enc_row) * args.rows / cores
            total = scan + raw_fixed_all + n_enc * enc_fixed + spark["python_cpu_s"]
            out[f"{name}_{cores}_cores"] = {"scan_s": round(scan), "total_s": round(total)}
    _write("spark_estimate.json", out)


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()


def _write(name: str, report: dict) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / name).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parity")
    p.add_argument("--table", choices=["adult", "joined"], default="adult")
    p.add_argument("--sample", type=int, default=32_561, help="rows sampled and hashed")
    p.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("scale")
    s.add_argument("--rows", default="1000000,10000000,100000000")
    s.add_argument("--engines", default="duckdb,spark")
    s.add_argument("--seed", type=int, default=0)
    sub.add_parser("cluster")
    r = sub.add_parser("passrate")
    r.add_argument("--rows", default="1000000,10000000")
    r.add_argument("--repeat", type=int, default=3)
    r.add_argument("--grouping-sets", action="store_true", help="also time a 28-clique GROUPING SETS pass")
    r.add_argument("--pieces", action="store_true", help="also time a numeric column's piece pass")
    r.add_argument("--engine", choices=["spark", "duckdb"], default="spark")
    e = sub.add_parser("estimate")
    e.add_argument("--rows", type=float, default=1e10)
    e.add_argument("--cores", default="64,256")
    args = parser.parse_args()
    {"parity": parity, "scale": scale, "cluster": cluster, "estimate": estimate, "passrate": passrate}[args.command](
        args
    )


if __name__ == "__main__":
    main()
