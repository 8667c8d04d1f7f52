"""The clean room on Spark, on a real local Spark session (no mocks; marked ``spark``).

A room (setting ``engine``) or one collaboration runs its templates on Spark: the same checked
template in Spark SQL, only the configured tables as views, the same cap, then the Spark split
and counting. A seeded room job gives the identical synthetic table on DuckDB and on Spark."""

from __future__ import annotations

import pandas as pd
import pytest

from roomkit import two_party
from synthroom.demo.adtech import _SEGMENTS as SEGMENTS
from synthroom.pipeline import synthesize_with_gate
from synthroom.room.jobs import run_job, start_job
from synthroom.room.models import ConfiguredTable
from synthroom.room.service import source_of, table_columns
from synthroom.sql import check_template, run_template
from synthroom.sql.template import UNIT_COLUMN

pytestmark = pytest.mark.spark
SECRET = "SSN-987-65-4321"


class Capture:
    """The job's synthesize step, recorded: the real synthesize_with_gate, and what it was given."""

    def __init__(self):
        self.runs: list = []
        self.data: list = []

    def __call__(self, data, *args, **kwargs):
        self.data.append(data.toPandas() if hasattr(data, "toPandas") else data)
        self.runs.append(synthesize_with_gate(data, *args, **kwargs))
        return self.runs[-1]


def _job(folder, engine: str, spark, users: int = 700) -> tuple[dict, Capture]:
    party = two_party(folder, users=users, seeded_jobs=True, engine=engine)
    job = start_job(party.room, party.advertiser, party.template["id"], seed=11)
    capture = Capture()
    return run_job(party.room, job["id"], synthesize=capture), capture


def test_a_room_job_on_spark_gives_duckdbs_synthetic_table(tmp_path, spark):
    """The demo's two-party template, seeded: the same capped rows, holdout and synthetic rows."""
    on_duckdb, duck = _job(tmp_path / "duckdb", "duckdb", spark)
    on_spark, sparked = _job(tmp_path / "spark", "spark", spark)
    assert on_duckdb["state"] == on_spark["state"] and on_spark["category"] in (None, "refused_by_gate")
    columns = [c for c in duck.data[0].columns]
    rows = {
        name: frame[columns].astype(str).sort_values(columns).reset_index(drop=True)
        for name, frame in (("duckdb", duck.data[0]), ("spark", sparked.data[0][columns]))
    }
    pd.testing.assert_frame_equal(rows["duckdb"], rows["spark"])  # the template and the cap
    assert list(sparked.data[0].columns) == [*columns, UNIT_COLUMN]  # the unit stays on the cluster's rows
    runs = {"duckdb": duck.runs[0], "spark": sparked.runs[0]}
    assert runs["duckdb"].report.notes[0] == runs["spark"].report.notes[0]  # the holdout: same units, same sizes
    pd.testing.assert_frame_equal(
        runs["duckdb"].synthesizer.sample(500, seed=3), runs["spark"].synthesizer.sample(500, seed=3)
    )
    assert runs["spark"].synthesizer.privacy_report() == runs["duckdb"].synthesizer.privacy_report()


def test_a_spark_job_sees_only_the_allowed_columns_and_leaves_no_view(tmp_path, spark):
    """The job's own session holds the configured tables' allowed columns only; the shared session
    sees none of its views, and a direct file query is off in it."""
    from pyspark.errors import AnalysisException

    from synthroom.engine.spark_sandbox import job_session, register_sources, run_template_spark

    party = two_party(tmp_path, users=200, engine="spark")
    audience = tmp_path / "data/publisher/audience.csv"
    frame = pd.read_csv(audience)
    frame["email"] = SECRET
    frame.to_csv(audience, index=False)
    party.room.refresh_table(party.publisher, party.audience)
    with party.room.read() as s:
        rows = {
            n: s.get(ConfiguredTable, t) for n, t in (("audience", party.audience), ("conversions", party.conversions))
        }
        columns = {n: table_columns(t) for n, t in rows.items()}
        sources = [source_of(n, t) for n, t in rows.items()]
    own = job_session(spark)
    register_sources(own, sources)
    assert own.table("audience").columns == ["user_id", "age", "region", "device", "segment", "weekly_visits"]
    assert SECRET not in own.table("audience").toPandas().to_string()
    with pytest.raises(AnalysisException):
        own.sql(f"SELECT * FROM csv.`{audience}`").collect()
    assert not spark.catalog.tableExists("audience")
    checked = check_template("SELECT a.age, a.segment FROM audience a", columns)
    run = run_template_spark(checked, sources, cap=1, seed=5, session=spark)
    assert run.rows_before_cap == run.rows_after_cap == run.units == 200 and run.has_units
    assert not spark.catalog.tableExists("audience")


def test_the_cap_on_spark_keeps_at_most_cap_rows_per_unit(tmp_path, spark):
    """Conversions hold up to 3 rows per user: the cap keeps 2 of each, as DuckDB does."""
    from synthroom.engine.spark_sandbox import run_template_spark

    party = two_party(tmp_path, users=300)
    with party.room.read() as s:
        table = s.get(ConfiguredTable, party.conversions)
        columns, sources = {"conversions": table_columns(table)}, [source_of("conversions", table)]
    checked = check_template("SELECT c.campaign, c.order_value FROM conversions c", columns)
    duck = run_template(checked, sources, cap=2, seed=7)
    on_spark = run_template_spark(checked, sources, cap=2, seed=7, session=spark)
    assert (on_spark.rows_before_cap, on_spark.units) == (duck.rows_before_cap, duck.units)
    assert on_spark.rows_after_cap == duck.rows_after_cap < duck.rows_before_cap
    per_unit = on_spark.frame.groupBy(f"`{UNIT_COLUMN}`").count().toPandas()["count"]
    assert per_unit.max() == 2


def _audience_file(folder, users: int = 600):
    from synthroom.demo.adtech import simulate_audience

    path = folder / "audience.csv"
    simulate_audience(users, seed=4).to_csv(path, index=False)  # user_id and email: ignored below
    schema = {
        "target": "segment",
        "ignore": ["user_id", "email"],
        "columns": [
            {"name": "age", "type": "numerical", "min": 18, "max": 80},
            {"name": "region", "type": "categorical"},
            {"name": "device", "type": "categorical"},
            {"name": "weekly_visits", "type": "numerical", "min": 0, "max": 40},
            {"name": "segment", "type": "categorical", "categories": list(SEGMENTS)},
        ],
    }
    return path, schema


def test_the_gate_on_spark_splits_and_fits_as_on_duckdb_with_ignored_columns(tmp_path, spark):
    """A file with ignored columns, seeded: the same DP-sized holdout, the same fitted model."""
    path, schema = _audience_file(tmp_path)
    runs = {
        engine: synthesize_with_gate(str(path), schema, epsilon=1.0, seed=2, engine=engine)
        for engine in ("duckdb", spark)
    }
    duck, on_spark = runs["duckdb"], runs[spark]
    assert duck.report.notes[0] == on_spark.report.notes[0] and "held out" in duck.report.notes[0]
    assert len(on_spark.holdout) == len(duck.holdout) > 0 and "email" not in on_spark.holdout.columns
    pd.testing.assert_frame_equal(duck.synthesizer.sample(300, seed=1), on_spark.synthesizer.sample(300, seed=1))
    assert on_spark.released == duck.released


def test_synthesize_on_spark_writes_the_report_behind_the_gate(tmp_path, spark):
    import yaml
    from typer.testing import CliRunner

    from synthroom.cli.app import app

    path, schema = _audience_file(tmp_path)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(schema))
    out, report = tmp_path / "syn.csv", tmp_path / "report.html"
    args = ["synthesize", path, "-s", tmp_path / "s.yaml", "-o", out, "--engine", "spark", "--report", report]
    result = CliRunner().invoke(app, [str(a) for a in [*args, "--seed", "0", "-q"]])
    assert result.exit_code in (0, 3), result.output  # released, or refused by the gate: both with a report
    assert report.exists() and report.with_suffix(".json").exists()
    assert out.exists() == (result.exit_code == 0)


def test_a_spark_job_runs_in_the_workers_limited_process(tmp_path, spark):
    """What a server's worker does: the job (and its Spark driver JVM) in a child process under
    the job limits; an unseeded job, released or refused by the gate, never an internal error."""
    from synthroom.room.limits import JobLimits

    party = two_party(tmp_path, users=400, engine="spark")
    job = start_job(party.room, party.advertiser, party.template["id"])
    done = run_job(party.room, job["id"], limits=JobLimits(seconds=900))
    assert done["state"] == "succeeded" or done["category"] == "refused_by_gate", done
    assert done["rows_synthetic"] > 0 and not done["reproducible"]


def test_a_template_spark_cannot_run_is_refused_when_it_is_created(tmp_path, spark):
    """Spark analyses the template over the tables' empty views when it is created (as DuckDB
    does for its output types): a template that would fail on every job is never approved."""
    from synthroom.errors import InputError

    party = two_party(tmp_path, users=100, engine="spark")  # the demo template passed this check
    with pytest.raises(InputError) as info:
        party.room.create_template(
            party.advertiser,
            party.collab,
            "mixed",
            "SELECT a.age, greatest(a.age, a.segment) AS g FROM audience a",
            epsilon=1,
            classification={
                "target": "g",
                "columns": [{"name": "age", "type": "numerical"}, {"name": "g", "type": "categorical"}],
            },
        )
    assert str(info.value).startswith(
        'template rejected on Spark: it does not run: [DATATYPE_MISMATCH.DATA_DIFF_TYPES] Cannot resolve "greatest'
    )
    assert [t["name"] for t in party.room.list_templates(party.advertiser, party.collab)] == ["converters"]
