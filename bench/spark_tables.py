"""What a configured table on the cluster costs (issue 16; docs/engines.md "Tables on the cluster").

    nice -n 5 .venv/bin/python bench/spark_tables.py --rows 1000000,10000000

For each size of bench/wide15.py's table (a Parquet folder, under bench/out: symlink the lead's,
never regenerate a large one), in one local Spark session (local[2]) of this process, as the
room's API process runs it when a member configures a ``spark_parquet`` table:

* ``configure``: :meth:`Room.configure_table` end to end (the grant check, Spark's read of the
  allowed columns, the snapshot written as Parquet, its fingerprint over the written copy);
* ``job_check``: the pass every job on Spark makes first (:func:`verified_frame`: the
  fingerprint recomputed over the snapshot);
* ``local_configure``: the same table configured as a local ``parquet`` source (DuckDB's copy
  into the room's data folder), for comparison.

Wall seconds, and CPU seconds of the JVM (/proc, as bench/spark.py reads them) and of this
process. Results: ``bench/out/spark_tables.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spark import _commit, jvm_figures  # noqa: E402  (bench/spark.py, beside this file)

COLUMNS = 6  # the allowed columns: the first six of the 15


def _cpu(session) -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return jvm_figures(session)["jvm_cpu_s"], usage.ru_utime + usage.ru_stime


def _timed(session, work) -> tuple[object, dict]:
    (jvm0, py0), start = _cpu(session), time.perf_counter()
    value = work()
    jvm1, py1 = _cpu(session)
    return value, {
        "wall_s": round(time.perf_counter() - start, 1),
        "jvm_cpu_s": round(jvm1 - jvm0, 1),
        "python_cpu_s": round(py1 - py0, 1),
    }


def one_size(session, table: Path, work: Path) -> dict:
    """Configure ``table`` as a cluster table and as a local one; time each step."""
    import pyarrow.parquet as pq

    from synthroom.engine.spark_snapshots import verified_frame
    from synthroom.room import Actor, Room
    from synthroom.room.service import source_of
    from synthroom.room.models import ConfiguredTable

    columns = pq.read_schema(next(table.glob("*.parquet"))).names[:COLUMNS]
    room = Room(f"sqlite:///{work / 'room.db'}", work / "artifacts", admin_key="bench")
    grant = str(table.resolve().parent)
    me = Actor(room.create_member("bench", "m", [Path(grant).as_uri(), grant])["id"], "m")
    cluster, figures = _timed(
        session,
        lambda: room.configure_table(me, "c", "spark_parquet", table.resolve().as_uri(), columns, epsilon_budget=1.0),
    )
    with room.read() as s:
        source = source_of("c", s.get(ConfiguredTable, cluster["id"]))
    _, check = _timed(session, lambda: verified_frame(session, source))
    report = {"configure": figures, "job_check": check}
    files = sorted(table.glob("*.parquet"))
    if len(files) == 1:  # the local reader takes one file
        _, local = _timed(
            session,
            lambda: room.configure_table(me, "l", "parquet", str(files[0].resolve()), columns, epsilon_budget=1.0),
        )
        report["local_configure"] = local
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000")
    args = parser.parse_args()
    from synthroom.engine.spark import spark_session

    session = spark_session("local[2]")
    report: dict = {"commit": _commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "sizes": {}}
    for rows in (int(r) for r in args.rows.split(",")):
        table = HERE / "out" / f"wide15_{rows}.parquet"
        with tempfile.TemporaryDirectory() as work:
            report["sizes"][rows] = {"load_before": round(_load(), 1), **one_size(session, table, Path(work))}
        print(json.dumps({rows: report["sizes"][rows]}), flush=True)
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "spark_tables.json").write_text(json.dumps(report, indent=2))
    session.stop()


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


if __name__ == "__main__":
    main()
