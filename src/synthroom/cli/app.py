"""``synthroom``: synthesize, sample, simulate, demo.

Exit codes: 0 success, 2 bad input (one message naming the column or value at fault, and no
output file), 3 a release gate refused the synthetic data (no output file), 4 the counting engine
failed (Spark: could not start, out of memory, a file it could not read; one line with what to
try, and no output file), 1 anything unexpected; the clean room's commands add 5 and 6 to the
same table (:mod:`.output`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import EngineFailure, InputError
from ..io import check_output_path, write_batches, write_table
from ..privacy.accountant import DEFAULT_DELTA
from .output import fail

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Differentially private synthetic data.")
err = Console(stderr=True)
out = Console()


def _fail(exc: Exception, code: int = 2) -> None:
    fail(str(exc), code)  # printed as text: 'synthroom[spark]' is no markup


class _Phases:
    """A rich progress line per phase (reading, measuring, fitting, sampling)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[phase]:<10}[/] {task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
            disable=quiet,
        )
        self.tasks: dict[str, TaskID] = {}
        self.current: str | None = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self._finish_current()
        return self.progress.__exit__(*exc)

    def _finish_current(self):
        if self.current is not None:
            self.progress.update(self.tasks[self.current], total=1, completed=1)

    def __call__(self, phase: str, message: str) -> None:
        if phase != self.current:
            self._finish_current()
            self.tasks[phase] = self.progress.add_task(message, total=None, phase=phase)
            self.current = phase
        else:
            self.progress.update(self.tasks[phase], description=message)


def _summary(synth, rows: int, columns: int, seconds: float, output: Path | None) -> None:
    priv = synth.privacy_report()
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("rows", f"{rows:,}")
    table.add_row("columns", str(columns))
    table.add_row("epsilon spent", f"{priv['epsilon_spent']:.4g} of {priv['epsilon']:g}")
    table.add_row("delta", f"{priv['delta_spent']:.3g}")
    table.add_row("rho (zCDP)", f"{priv['rho_spent']:.4g} in {len(priv['charges'])} charges")
    table.add_row("time", f"{seconds:.1f} s")
    if output is not None:
        table.add_row("output", str(output))
    out.print(table)


def _show_evaluation(evaluation, report: Path | None, refused: str) -> None:
    """Write the report, print the scores; when a gate failed, say which score was over which
    threshold and what to try, and exit with code 3."""
    from ..report import explain_refusal, summary_table, write_report

    paths = write_report(evaluation, report) if report is not None else None
    out.print(summary_table(evaluation))
    if paths is not None:
        out.print(f"report: {escape(str(paths[0]))} (and {escape(paths[1].name)})", highlight=False, soft_wrap=True)
    if not evaluation.passed:
        why, to_try = explain_refusal(evaluation)
        for line in why:
            err.print(f"[bold red]{refused}:[/] {escape(line)}", highlight=False)
        if to_try:
            err.print("what to try:")
        for advice in to_try:
            err.print(f"  - {escape(advice)}", highlight=False)
        raise typer.Exit(3)


@app.command()
def synthesize(
    input: str = typer.Argument(
        ...,
        help="CSV or Parquet file with the real rows (with --engine spark: any path the cluster reads, or a Spark "
        "table's name).",
    ),
    schema: Path = typer.Option(
        ..., "--schema", "-s", help="Column classification (YAML/JSON, any accepted spelling)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Synthetic output, .csv or .parquet."),
    epsilon: Optional[float] = typer.Option(
        None, help="Privacy budget in [0.0001, 10] (default: the schema's, else 1)."
    ),
    delta: float = typer.Option(DEFAULT_DELTA, help=f"Privacy delta (default {DEFAULT_DELTA:g})."),
    rows: Optional[int] = typer.Option(None, help="Rows to generate (default: DP estimate of the input's rows)."),
    seed: Optional[int] = typer.Option(
        None,
        help="Same seed and input give the same output: for experiments, not for release (whoever knows "
        "the seed can recognise the input). Without it the noise is OpenDP's, on OS entropy.",
    ),
    save_model: Optional[Path] = typer.Option(None, help="Also save the fitted model (.npz) for later sampling."),
    privacy_log: Optional[Path] = typer.Option(None, help="Write the accountant's ledger as JSON."),
    max_mia_score: Optional[float] = typer.Option(
        None,
        help="Release gate: refuse when the DCR membership-inference score is above this (default: the schema's "
        "maxMembershipInferenceAttackScore).",
    ),
    gate: Optional[list[str]] = typer.Option(
        None, "--gate", metavar="NAME=VALUE", help="Another release gate (repeatable), e.g. DENSITY-RATIO-v1=0.6."
    ),
    holdout_share: Optional[float] = typer.Option(
        None,
        help="Share of the real rows held out for the evaluation, in (0, 0.5] (default: sized from a DP count of "
        "the rows, about 3,000 rows and at most 20%, when a gate or report is asked for).",
    ),
    report: Optional[Path] = typer.Option(None, "--report", help="Evaluate and write PATH.html and PATH.json."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    ignore: Optional[list[str]] = typer.Option(
        None,
        "--ignore",
        metavar="COLUMN",
        help="A column of INPUT to leave out: neither read nor synthesized (repeatable; adds to the schema's "
        "ignore list).",
    ),
    engine: str = typer.Option(
        "duckdb",
        "--engine",
        help="Where the rows are counted: duckdb (this process) or spark (the same exact counts: a seeded run gives "
        "the same output).",
    ),
    spark_master: Optional[str] = typer.Option(
        None, "--spark-master", metavar="URL", help="With --engine spark: the cluster (default: a local session)."
    ),
    partitions: Optional[int] = typer.Option(
        None,
        "--partitions",
        help="With --engine spark: draw the rows in this many parallel tasks on the cluster into a partitioned "
        "Parquet folder (for billions of rows); without it rows are drawn here.",
    ),
) -> None:
    """Fit a DP synthesizer to INPUT and write synthetic rows.

    With --report, --max-mia-score or --gate (or a schema that sets
    maxMembershipInferenceAttackScore) a seeded share of the rows is held out, the synthesizer is
    fitted on the rest, and the synthetic rows are written only if every gate passes (else exit 3).
    """
    from ..pipeline import parse_gates, synthesize_with_gate
    from ..report import check_report_path
    from ..schema import load_schema
    from ..synthesis import Synthesizer

    start = time.perf_counter()
    try:
        check_output_path(output)
        if rows is not None and rows < 1:
            raise InputError(f"--rows must be at least 1, not {rows}")
        if report is not None:
            check_report_path(report)
        gates = parse_gates(gate)
        parsed = load_schema(schema).with_ignored(ignore or [])
        eps = epsilon if epsilon is not None else (parsed.epsilon if parsed.epsilon is not None else 1.0)
        gated = any(x is not None for x in (report, max_mia_score, holdout_share, parsed.max_mia_score)) or bool(gates)
        counting = _engine(engine, spark_master, partitions, output, gated)
        evaluation = None
        with _Phases(quiet) as phases:
            if gated:
                run = synthesize_with_gate(
                    input,
                    parsed,
                    epsilon=eps,
                    delta=delta,
                    seed=seed,
                    rows=rows,
                    max_mia_score=max_mia_score,
                    gates=gates,
                    holdout_share=holdout_share,
                    progress=phases,
                    engine=counting,
                )
                synth, df, evaluation = run.synthesizer, run.synthetic, run.report
            else:
                synth = Synthesizer(parsed, epsilon=eps, delta=delta, seed=seed, progress=phases, engine=counting)
                synth.fit(input)
                df = None  # drawn and written in batches below: a large sample is never one DataFrame
                if partitions is None:
                    written = write_batches(synth.sample_batches(rows), output)
        if evaluation is not None:
            _gate_outcome(evaluation, synth, privacy_log, (output, save_model), report)
        if gated or partitions is not None:
            written = _write_rows(df, output, synth, rows, counting, partitions)
        if save_model is not None:
            synth.save(save_model)
        if privacy_log is not None:
            privacy_log.write_text(json.dumps(synth.privacy_report(), indent=2))
    except InputError as exc:
        _fail(exc)
    except EngineFailure as exc:
        _fail(exc, code=4)
    _summary(synth, written, len(parsed.columns), time.perf_counter() - start, output)
    for warning in synth.warnings_:  # shown even with --quiet: the output is weaker than it looks
        err.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)


def _gate_outcome(evaluation, synth, privacy_log: Path | None, outputs: tuple, report: Path | None) -> None:
    """The ledger (the budget was spent whether or not the rows are released), a note on earlier
    files a refused run left alone, and the evaluation (exits 3 when a gate refused)."""
    if privacy_log is not None:
        privacy_log.write_text(json.dumps(synth.privacy_report(), indent=2))
    for earlier in outputs if not evaluation.passed else ():
        if earlier is not None and earlier.exists():
            err.print(
                f"[bold yellow]note:[/] {escape(str(earlier))} is an earlier file: this run wrote nothing there",
                highlight=False,
                soft_wrap=True,
            )
    _show_evaluation(evaluation, report, refused="refused")


def _write_rows(df, output: Path, synth, rows: int | None, session, partitions: int | None) -> int:
    """Write the drawn rows; with ``partitions``, draw them on the cluster into a Parquet folder
    (``df`` is None exactly then: without ``partitions`` the rows were drawn here)."""
    if partitions is None:
        write_table(df, output)
        return len(df)
    from ..engine.spark import sample_to_parquet

    return sample_to_parquet(synth, rows, str(output), session=session, partitions=partitions)


def _engine(engine: str, master: str | None, partitions: int | None, output: Path, gated: bool):
    """The counting engine the options ask for (a SparkSession for spark), or InputError."""
    from ..engine import ENGINES

    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "duckdb":
        if master is not None or partitions is not None:
            raise InputError("--spark-master and --partitions need --engine spark")
        return "duckdb"
    if gated and partitions is not None:
        raise InputError(
            "--partitions draws new rows after the fit, but the release gate releases only the rows it scored: "
            "drop --partitions, or drop --report, --max-mia-score, --gate and --holdout-share"
        )
    if partitions is not None and (partitions < 1 or output.suffix.lower() != ".parquet"):
        raise InputError("--partitions needs a positive number and a .parquet output (written as a folder)")
    from ..engine.spark import spark_session

    return spark_session(master)


@app.command()
def sample(
    model: Path = typer.Argument(..., help="A model saved with --save-model."),
    output: Path = typer.Option(..., "--output", "-o", help="Synthetic output, .csv or .parquet."),
    rows: Optional[int] = typer.Option(None, help="Rows to generate (default: the model's estimate)."),
    seed: Optional[int] = typer.Option(None, help="Seed for sampling."),
    where: Optional[list[str]] = typer.Option(
        None,
        "--where",
        metavar="COLUMN=VALUE",
        help="Only rows with this value, drawn exactly from the model (repeatable; repeating a column allows "
        "several values; numerical/datetime columns take LOW..HIGH, either end open, e.g. age=30..40).",
    ),
    balance: Optional[str] = typer.Option(
        None, "--balance", metavar="COLUMN", help="Equal shares of each value of this categorical column."
    ),
) -> None:
    """Draw rows from a saved model (costs no privacy budget: it is post-processing)."""
    from ..synthesis import Synthesizer

    start = time.perf_counter()
    try:
        check_output_path(output)
        synth = Synthesizer.load(model)
        conditions = parse_where_options(where, synth.schema)
        if balance is None:  # in batches: a large sample is never one DataFrame
            written = write_batches(synth.sample_batches(rows, seed, where=conditions), output)
        else:
            df = synth.sample(rows, seed=seed, where=conditions, balance=balance)
            write_table(df, output)
            written = len(df)
    except InputError as exc:
        _fail(exc)
    out.print(
        f"wrote {written:,} rows to {escape(str(output))} in {time.perf_counter() - start:.1f} s",
        highlight=False,
        soft_wrap=True,
    )


def parse_where_options(specs: list[str] | None, schema) -> dict | None:
    """``--where COLUMN=VALUE`` options as ``Synthesizer.sample``'s ``where``: a repeated
    categorical column collects a list of values; a numerical or datetime column takes a value or
    ``LOW..HIGH`` (an empty end is open)."""
    if not specs:
        return None
    where: dict = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise InputError(f"--where {spec!r}: write COLUMN=VALUE")
        if name not in schema.names:
            raise InputError(f"--where {spec!r}: column {name!r} is not in the model's schema")
        if schema[name].kind == "categorical":
            where.setdefault(name, []).append(value)
            continue
        if name in where:
            raise InputError(f"--where {spec!r}: column {name!r} is given twice; give one range LOW..HIGH")
        lo, dots, hi = value.partition("..")
        where[name] = (lo or None, hi or None) if dots else value
    return where


@app.command()
def simulate(
    output: Path = typer.Option(Path("customers.csv"), "--output", "-o", help="Where to write the simulated table."),
    rows: int = typer.Option(20_000, help="Number of rows."),
    seed: int = typer.Option(0, help="Simulator seed."),
    schema_out: Optional[Path] = typer.Option(None, help="Also write the table's schema (YAML)."),
) -> None:
    """Write the project's seeded demo table (simulated customers)."""
    import yaml

    from ..demo import CUSTOMERS_SCHEMA, simulate_customers

    try:
        if rows < 1:
            raise InputError(f"--rows must be at least 1, not {rows}")
        write_table(simulate_customers(rows, seed), output)
        if schema_out is not None:
            schema_out.write_text(yaml.safe_dump(CUSTOMERS_SCHEMA, sort_keys=False))
    except InputError as exc:
        _fail(exc)
    out.print(f"wrote {rows:,} simulated customers to {escape(str(output))}", highlight=False, soft_wrap=True)


@app.command()
def demo(
    workdir: Path = typer.Option(Path("synthroom-demo"), help="Folder for the demo's files."),
    epsilon: float = typer.Option(1.0, help="Privacy budget of the template."),
    users: int = typer.Option(5_000, help="Users in the publisher's simulated audience."),
    engine: str = typer.Option("duckdb", help="Where the room runs the template and counts: duckdb or spark."),
    spark_master: Optional[str] = typer.Option(
        None, "--spark-master", metavar="URL", help="With --engine spark: the cluster (default: a local session)."
    ),
) -> None:
    """Two-party clean room end to end (publisher + advertiser, joined on a user id): DP synthetic data, a model,
    where everything is."""
    from ..demo.cleanroom import run_demo
    from ..engine import ENGINES

    if users < 100:
        _fail(InputError(f"--users must be at least 100, not {users}"))
    if engine not in ENGINES or (spark_master is not None and engine != "spark"):
        _fail(InputError(f"--engine {engine!r} is not one of {', '.join(ENGINES)} (--spark-master needs spark)"))
    run_demo(workdir, users=users, epsilon=epsilon, console=out, engine=engine, spark_master=spark_master)


@app.command("evaluate")
def evaluate_command(
    train: Path = typer.Option(..., "--train", help="Real rows the synthesizer was fitted on (CSV or Parquet)."),
    holdout: Path = typer.Option(..., "--holdout", help="Real rows it never saw (CSV or Parquet)."),
    synthetic: Path = typer.Option(..., "--synthetic", help="Synthetic rows to score, from any tool (CSV or Parquet)."),
    schema: Path = typer.Option(
        ..., "--schema", "-s", help="Column classification (YAML/JSON, any accepted spelling)."
    ),
    report: Optional[Path] = typer.Option(None, "--report", help="Write PATH.html and PATH.json."),
    max_mia_score: Optional[float] = typer.Option(
        None, help="Gate: fail when the DCR membership-inference score is above this (default: the schema's)."
    ),
    gate: Optional[list[str]] = typer.Option(
        None, "--gate", metavar="NAME=VALUE", help="Another gate (repeatable), e.g. DENSITY-RATIO-v1=0.6."
    ),
    max_rows: int = typer.Option(50_000, help="Larger tables are subsampled to this many rows (seeded)."),
    seed: int = typer.Option(0, help="Seed for subsampling and the attacks."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Score a synthetic table against real training and holdout rows: fidelity, utility, privacy attacks."""
    from ..pipeline import evaluate_files, parse_gates
    from ..report import check_report_path
    from ..schema import load_schema

    try:
        if report is not None:
            check_report_path(report)
        gates = parse_gates(gate)
        parsed = load_schema(schema)
        with _Phases(quiet) as phases:
            evaluation = evaluate_files(
                train,
                holdout,
                synthetic,
                parsed,
                gates=gates,
                max_mia_score=max_mia_score,
                max_rows=max_rows,
                seed=seed,
                progress=phases,
            )
        _show_evaluation(evaluation, report, refused="gate failed")
    except InputError as exc:
        _fail(exc)


@app.command("setup-anonymeter")
def setup_anonymeter(
    venv: Optional[Path] = typer.Option(
        None, help="Where to create the environment (default: the sidecar's usual place)."
    ),
    python: Optional[Path] = typer.Option(None, help="Base interpreter, Python 3.9 to 3.12 (default: this one)."),
    force: bool = typer.Option(
        False, "--force", help="Rebuild even if a working environment with the same pins is there."
    ),
) -> None:
    """Create the anonymeter sidecar environment (installs pinned packages from the index, once;
    a working one with the same pins is kept)."""
    import subprocess

    from ..evaluation import setup_anonymeter_venv

    try:
        with _Phases(False) as phases:
            phases("setup", "creating the anonymeter environment (pip install of the pinned packages)")
            interpreter = setup_anonymeter_venv(venv, python, force)
    except InputError as exc:
        _fail(exc)
    except FileNotFoundError as exc:
        _fail(InputError(f"cannot run {exc.filename or python}: no such file"))
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        err.print(f"[bold red]error:[/] setting up the sidecar failed: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    out.print(f"anonymeter sidecar ready: {escape(str(interpreter))}", highlight=False, soft_wrap=True)


from .room import room_app, serve  # noqa: E402 - the clean room's commands
from .output import add_json_option  # noqa: E402
from .workers import worker  # noqa: E402

add_json_option(room_app)  # every room command takes --json (also those other modules register)
app.add_typer(room_app, name="room")
app.command("serve")(serve)
app.command("worker")(worker)


def main() -> None:
    """Console-script entry point (this process's XLA flags first: :mod:`synthroom.runtime`)."""
    import os

    from ..runtime import xla_flags

    os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS"))
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
