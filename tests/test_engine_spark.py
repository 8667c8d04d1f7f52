"""The Spark backend of the counting interface, on a real local Spark session (no mocks).

The counts must be exactly DuckDB's, so a seeded fit gives the identical synthetic table on
both engines. One JVM for the whole test session (the ``spark`` fixture); skipped when pyspark
is not installed (CI installs the ``spark`` extra, see .ci/run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthroom.engine import CountingSource
from synthroom.engine.counting import CategoryCoding
from synthroom.errors import InputError
from synthroom.schema import ColumnSpec
from synthroom.synthesis import Synthesizer
from synthroom.synthesis.discretize import grid_and_clip, _pieces
from synthroom.synthesis.synthesizer import Settings

pytestmark = pytest.mark.spark


# Text that the two engines' own parsers read differently; the engine's grammar decides.
TRICKY = pd.DataFrame(
    {
        "label": ["a", "it's", "back\\slash", "", None, "ünï", "a", "A", "b,c", 'q"q', "a", "it's"],
        "amount": ["1e3", " 12 ", "0x10", "1_000", "+5", ".5", "1.5d", "inf", "nan", "", "-0", "1.0e+2"],
        "when": [
            "2020-01-01",
            "2020-1-1",
            "2020-01-01 12:00",
            "2020-01-01T12:00:00",
            "2020-01-01 12:00:00.1234567",
            "2020-01-01 12:00:00+02",
            "2020",
            "2020-01-01 24:00:00",
            "2020-02-30",
            "10000-01-01",
            "",
            "1969-12-31 23:59:59.5",
        ],
        "y": ["x", "y", "x", "y", "x", "y", "x", "y", "x", "y", "x", "y"],
    }
)
KINDS = {"label": "categorical", "amount": "numerical", "when": "datetime", "y": "categorical"}


def _counts(source: CountingSource) -> dict:
    out = {"types": {c: source.storage_type(c) for c in KINDS}}
    for name, kind in KINDS.items():
        if kind == "categorical":
            values, counts = source.category_counts(name)
            out[name] = (values, counts.tolist())
            continue
        for clip in (None, (-1.0, 50.0), (None, 50.0)):
            spec = ColumnSpec(name, kind, min=None if clip is None else clip[0], max=None if clip is None else clip[1])
            grid, bounds = grid_and_clip(spec)
            cells = source.grid_counts(name, grid, bounds)
            kept = np.setdiff1d(np.flatnonzero(cells), [grid.missing])
            pieces, _, _ = _pieces(grid, kept, integer=False)
            out[(name, clip)] = (cells.tolist(), source.piece_counts(name, grid, bounds, pieces).tolist())
    return out


def test_counts_on_tricky_text_are_exactly_duckdbs(tmp_path, spark):
    from synthroom.engine.spark import SparkCountingSource

    path = tmp_path / "tricky.csv"
    TRICKY.to_csv(path, index=False)
    duck = CountingSource.open(path, KINDS)
    spk = SparkCountingSource.open(str(path), KINDS, session=spark)
    try:
        expected, got = _counts(duck), _counts(spk)
        assert got == expected
        # the grammar, not an engine's parser: 1_000 and 0x10 and 1.5d are missing on both
        assert sum(expected[("amount", None)][0]) == len(TRICKY)
        coding = CategoryCoding(("a", "it's", "back\\slash", ""), 4, 5, 6)
        for source in (duck, spk):
            source.encode({"label": coding, "y": CategoryCoding(("x", "y"), None, 2, 3)})
        cliques = [("label", "y"), ("y", "label"), ("y",), ("label", "y")]
        for a, b in zip(duck.marginals(cliques), spk.marginals(cliques)):
            assert np.array_equal(a, b) and a.sum() == len(TRICKY)
    finally:
        duck.close()
        spk.close()


def test_parquet_storage_types_and_counts_match(tmp_path, spark):
    from synthroom.engine.spark import SparkCountingSource

    frame = pd.DataFrame(
        {
            "n": pd.array([1, 2, None, 40, 40, -7], dtype="Int64"),
            "x": [0.5, np.nan, np.inf, -3.25, 1e300, 7.0],
            "d": pd.to_datetime(["2020-01-01", None, "1901-05-05", "2099-12-31", "2020-01-01", "1970-01-01"]).date,
            "t": pd.to_datetime(
                ["2020-01-01 10:00:00.5", None, "1901-05-05", "2099-12-31", "2020-01-01", "1970-01-01"],
                format="ISO8601",
            ),
            "flag": [True, False, None, True, True, False],
        }
    )
    path = tmp_path / "typed.parquet"
    frame.to_parquet(path, index=False)
    kinds = {"n": "numerical", "x": "numerical", "d": "datetime", "t": "datetime", "flag": "categorical"}
    duck = CountingSource.open(path, kinds)
    spk = SparkCountingSource.open(str(path), kinds, session=spark)
    try:
        assert {c: spk.storage_type(c) for c in ("n", "x", "d", "flag")} == {
            c: duck.storage_type(c) for c in ("n", "x", "d", "flag")
        }
        for name in ("n", "x", "d", "t"):
            grid, _ = grid_and_clip(ColumnSpec(name, kinds[name]))
            assert spk.grid_counts(name, grid).tolist() == duck.grid_counts(name, grid).tolist(), name
        assert spk.category_counts("flag")[0] == duck.category_counts("flag")[0] == ["false", "true", None]
    finally:
        duck.close()
        spk.close()


def test_a_parquet_folder_counts_the_same_on_both_engines(tmp_path, spark):
    """A folder of Parquet files (as Spark writes them, with its ``_SUCCESS`` marker) is one table
    on both engines: every file's rows counted once."""
    from synthroom.engine.spark import SparkCountingSource

    folder = tmp_path / "parts.parquet"
    folder.mkdir()
    frame = pd.DataFrame({"k": list("abcab") * 3, "x": np.arange(15, dtype=np.float64)})
    frame.iloc[:9].to_parquet(folder / "part-00000.parquet", index=False)
    frame.iloc[9:].to_parquet(folder / "part-00001.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    kinds = {"k": "categorical", "x": "numerical"}
    duck = CountingSource.open(folder, kinds)
    spk = SparkCountingSource.open(str(folder), kinds, session=spark)
    try:
        assert duck.category_counts("k")[1].tolist() == [6, 6, 3]
        assert spk.category_counts("k")[1].tolist() == [6, 6, 3]
        grid, _ = grid_and_clip(ColumnSpec("x", "numerical"))
        assert duck.grid_counts("x", grid).tolist() == spk.grid_counts("x", grid).tolist()
        assert duck.grid_counts("x", grid).sum() == 15
    finally:
        duck.close()
        spk.close()


@pytest.fixture(scope="module")
def adult_small(adult_dir, adult_schema, tmp_path_factory):
    keep = ["age", "workclass", "hours-per-week", "capital-gain", "income"]
    path = tmp_path_factory.mktemp("adult") / "adult7.csv"
    pd.read_csv(adult_dir / "train.csv", dtype=str, nrows=5000)[keep].to_csv(path, index=False)
    return path, {"target": "income", "columns": [c for c in adult_schema["columns"] if c["name"] in keep]}


def test_a_seeded_fit_gives_the_identical_table_on_both_engines(adult_small, spark):
    path, schema = adult_small
    out = []
    for engine in ("duckdb", spark):
        synth = Synthesizer(schema, epsilon=1.0, seed=11, settings=Settings(iters=60), engine=engine).fit(str(path))
        out.append(synth.sample(3000).to_csv(index=False))
        assert synth.privacy_report()["rho_spent"] == pytest.approx(synth.accountant_.rho_budget, rel=1e-12)
    assert out[0] == out[1]


def test_sampling_in_parallel_partitions_writes_parquet(adult_small, spark, tmp_path):
    from synthroom.engine.spark import sample_to_parquet

    path, schema = adult_small
    # the fit's engine does not matter here (parity is above): only the sampling runs on Spark
    synth = Synthesizer(schema, epsilon=1.0, seed=3, settings=Settings(iters=30)).fit(str(path))
    n = sample_to_parquet(synth, 10_001, str(tmp_path / "out.parquet"), session=spark, partitions=3, seed=5)
    again = sample_to_parquet(synth, 10_001, str(tmp_path / "again.parquet"), session=spark, partitions=3, seed=5)
    first = pd.read_parquet(tmp_path / "out.parquet")
    assert n == again == len(first) == 10_001
    assert len(list((tmp_path / "out.parquet").glob("part-*.parquet"))) == 3
    assert list(first.columns) == [c["name"] for c in schema["columns"]]
    key = list(first.columns)
    pd.testing.assert_frame_equal(
        first.sort_values(key).reset_index(drop=True),
        pd.read_parquet(tmp_path / "again.parquet").sort_values(key).reset_index(drop=True),
    )
    assert set(first["income"].dropna()) <= {"<=50K", ">50K"}


def test_bad_spark_inputs_say_what_is_wrong(tmp_path, spark):
    from synthroom.engine.spark import SparkCountingSource

    with pytest.raises(InputError, match="does not exist"):
        SparkCountingSource.open(str(tmp_path / "nope.parquet"), KINDS, session=spark)
    with pytest.raises(InputError, match="neither a .parquet or .csv path nor a Spark table"):
        SparkCountingSource.open("no_such_table", KINDS, session=spark)
    path = tmp_path / "tricky.csv"
    TRICKY.drop(columns="y").to_csv(path, index=False)
    with pytest.raises(InputError, match="column 'y' is in the schema but not in"):
        SparkCountingSource.open(str(path), KINDS, session=spark)


def test_a_spark_table_by_name(spark, tmp_path):
    from synthroom.engine.spark import SparkCountingSource

    spark.createDataFrame(TRICKY.fillna("")).createOrReplaceTempView("synthroom_test_members")
    source = SparkCountingSource.open("synthroom_test_members", KINDS, session=spark)
    try:
        assert source.category_counts("y") == (["x", "y"], pytest.approx(np.array([6, 6])))
    finally:
        source.close()


CLUSTER_FIT = """
import json, sys, time
start = time.perf_counter()
from synthroom.engine.spark import spark_session
from synthroom.synthesis import Synthesizer
from synthroom.synthesis.synthesizer import Settings

session = spark_session("local-cluster[2,1,1024]")  # a master and two worker JVMs, one executor each
status = session.sparkContext._jsc.sc().getExecutorMemoryStatus()
while status.size() < 3 and time.perf_counter() - start < 300:  # the driver and both executors
    time.sleep(0.2)
    status = session.sparkContext._jsc.sc().getExecutorMemoryStatus()
synth = Synthesizer(json.loads(sys.argv[2]), epsilon=1.0, seed=11, settings=Settings(iters=60), engine=session)
csv = synth.fit(sys.argv[1]).sample(3000).to_csv(index=False)
print(json.dumps({"block_managers": status.size(), "passes": synth.counting_passes_, "csv": csv}))
session.stop()
"""


@pytest.mark.slow
def test_a_multi_process_cluster_counts_exactly(adult_small):
    """``local-cluster`` mode: the counts run in two executor JVMs apart from the driver's, the
    counts travel between processes, and the seeded fit is still DuckDB's to the byte. A fresh
    Python (one SparkContext per process: the ``spark`` fixture's is local)."""
    import json
    import subprocess
    import sys

    pytest.importorskip("pyspark")
    path, schema = adult_small
    # three columns: few counting passes, as every Spark job has a fixed cost (the bench measures it)
    kept = ("age", "workclass", "income")
    schema = {
        "target": "income",
        "columns": [c for c in schema["columns"] if c["name"] in kept],
        "ignore": [c["name"] for c in schema["columns"] if c["name"] not in kept],
    }
    proc = subprocess.run(
        [sys.executable, "-c", CLUSTER_FIT, str(path), json.dumps(schema)], capture_output=True, text=True, timeout=900
    )
    python_error = proc.stderr[proc.stderr.find("Traceback") :] if "Traceback" in proc.stderr else proc.stderr
    assert proc.returncode == 0, python_error[:3000]  # the Python error, not the JVM's shutdown noise after it
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["block_managers"] == 3  # the driver and two executors, each its own JVM
    duck = Synthesizer(schema, epsilon=1.0, seed=11, settings=Settings(iters=60)).fit(str(path))
    assert got["csv"] == duck.sample(3000).to_csv(index=False)
    assert got["passes"] < duck.counting_passes_  # marginals batched as GROUPING SETS on Spark


def test_spark_computes_each_value_and_cell_once_and_codes_numbers_as_duckdb(tmp_path, spark):
    """On Spark too, a piece pass and the encoding compute a numeric column's typed value and its
    grid cell once per row, in the query and in the plan Spark runs (its optimizer does not merge
    the layers back into one projection), and the pieces and codes are exactly DuckDB's."""
    from test_engine_dialect import VALUES, RecordedQueries, cell_and_value_once, expected_codes, numeric_coding

    from synthroom.engine.spark import SparkCountingSource

    path = tmp_path / "numbers.csv"
    pd.DataFrame({"x": VALUES}).to_csv(path, index=False)
    duck = CountingSource.open(path, {"x": "numerical"})
    spk = SparkCountingSource.open(str(path), {"x": "numerical"}, session=spark)
    try:
        recorded = spk._spark = RecordedQueries(spark, "sql")
        coding = numeric_coding(duck, "x")
        pieces = spk.piece_counts("x", coding.grid, coding.clip, coding.pieces)
        assert pieces.tolist() == duck.piece_counts("x", coding.grid, coding.clip, coding.pieces).tolist()
        spk.encode({"x": coding})
        duck.encode({"x": coding})
        for sql in (recorded.queries[-2], recorded.queries[-1]):  # the piece pass, the encoding
            assert cell_and_value_once(sql, spk, "x")
            plan = str(spark.sql(sql)._jdf.queryExecution().optimizedPlan().toString()).lower()
            assert plan.count("log2(") == 1
        codes = expected_codes(VALUES, coding)
        for source in (spk, duck):
            assert np.array_equal(source.marginals([("x",)])[0], np.bincount(codes, minlength=coding.size))
    finally:
        duck.close()
        spk.close()


def test_generated_code_too_large_to_jit_is_not_used_for_whole_stages(tmp_path, spark):
    """HotSpot never JIT-compiles a method over 8,000 bytes of bytecode; the 15-column encoding's
    whole-stage method was ~29 KB and ran interpreted (~90 microseconds a row at 100M rows). A
    session the engine sets up (or adopts) caps whole-stage code there, so such a stage uses
    expression-level code, which compiles; the counts are unchanged (the parity tests above)."""
    from synthroom.engine.spark import SparkCountingSource

    spark.conf.set("spark.sql.codegen.hugeMethodLimit", "65535")  # Spark's default
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1, 2]}).to_csv(path, index=False)
    SparkCountingSource.open(str(path), {"x": "numerical"}, session=spark).close()
    assert spark.conf.get("spark.sql.codegen.hugeMethodLimit") == "8000"


def _corrupt_parquet_folder(folder) -> None:
    """Two Parquet files of one table; the second's body zeroed (its magic bytes kept), so Spark
    resolves the table and fails only when a count reads that file."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        pd.DataFrame(
            {"a": rng.choice(["x", "y"], 200), "b": rng.normal(size=200), "y": rng.choice(["p", "q"], 200)}
        ).to_parquet(folder / f"part-{i}.parquet")
    raw = (folder / "part-1.parquet").read_bytes()
    (folder / "part-1.parquet").write_bytes(raw[:4] + bytes(len(raw) - 8) + raw[-4:])


def test_a_spark_failure_is_one_line_and_exit_4_with_nothing_written(tmp_path, spark):
    """A failed Spark job (here an unreadable file in the folder) reaches the CLI user as one line
    with Spark's own cause, exit code 4 and no output; before, a Py4J traceback and exit 1."""
    from typer.testing import CliRunner

    from synthroom.cli.app import app

    _corrupt_parquet_folder(tmp_path / "data.parquet")
    schema = tmp_path / "schema.json"
    schema.write_text(
        '{"target": "y", "columns": [{"name": "a", "type": "categorical"}, '
        '{"name": "b", "type": "numerical"}, {"name": "y", "type": "categorical"}]}'
    )
    out = tmp_path / "syn.csv"
    args = [str(tmp_path / "data.parquet"), "--schema", str(schema), "-o", str(out), "--engine", "spark"]
    result = CliRunner().invoke(app, ["synthesize", *args])
    message = " ".join(result.output.split())
    assert result.exit_code == 4, result.output
    assert (
        "error: Spark failed while counting: [FAILED_READ_FILE.NO_HINT] Encountered error while reading file" in message
    )
    assert "part-1.parquet" in message and "(caused by java.lang.RuntimeException: corrupted file" in message
    assert "Traceback" not in result.output and "\tat " not in result.output and "collectToPython" not in message
    assert not out.exists() and not list(tmp_path.glob(".syn.csv*"))


def test_spark_errors_become_one_line_causes_with_what_to_try():
    from synthroom.engine.spark import LOCAL_CONF, engine_failure

    oom = RuntimeError(
        "An error occurred while calling o312.collectToPython.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 7.0 failed 1 "
        "times, most recent failure: Lost task 3.0 in stage 7.0 (TID 40) (192.0.2.2 executor driver): "
        "java.lang.OutOfMemoryError: Java heap space\n\tat java.base/java.nio.HeapByteBuffer.<init>(X.java:64)\n"
    )
    assert str(engine_failure("counting", oom)) == (
        "Spark failed while counting: java.lang.OutOfMemoryError: Java heap space; give Spark more memory: "
        f"SYNTHROOM_SPARK_DRIVER_MEMORY for a local session (now {LOCAL_CONF['spark.driver.memory']}; 4g held "
        "100M rows x 15 columns), spark.executor.memory on a cluster"
    )
    gateway = RuntimeError("[JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port number.")
    assert str(engine_failure("starting", gateway)) == (
        "Spark failed while starting: [JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port "
        "number; Spark needs Java 17: install it, or point JAVA_HOME at it"
    )


def test_spark_without_java_says_so_in_one_line(tmp_path):
    """No JVM can start: one line saying what to install, exit 4, nothing written."""
    pytest.importorskip("pyspark")
    import os
    import subprocess
    import sys

    _corrupt_parquet_folder(tmp_path / "data.parquet")
    out = tmp_path / "syn.csv"
    code = "from synthroom.cli.app import main; main()"
    args = ["synthesize", str(tmp_path / "data.parquet"), "-o", str(out), "--engine", "spark"]
    schema = tmp_path / "schema.json"
    schema.write_text(
        '{"target": "y", "columns": [{"name": "a", "type": "categorical"}, {"name": "y", "type": "categorical"}]}'
    )
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java")}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args, "--schema", str(schema)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 4, proc.stderr
    assert "error: Spark failed while starting: [JAVA_GATEWAY_EXITED]" in proc.stderr
    assert "Spark needs Java 17: install it, or point JAVA_HOME at it" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr and not out.exists()
