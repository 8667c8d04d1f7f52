"""Job-worker options shared by ``synthroom serve`` and ``synthroom worker``, and the standalone
``synthroom worker`` command.

Any number of ``synthroom worker`` processes (and servers) may share one metadata database and
artifacts folder: each claims queued jobs safely (see :mod:`synthroom.room.claims`). Every job
runs in a child process under the per-job limits (:mod:`synthroom.room.limits`), which are
fields of the server's :class:`~synthroom.room.settings.Settings`.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..room.settings import Settings

Workers = Annotated[
    int,
    typer.Option(
        min=0,
        help="Job worker threads in this process (0: leave the jobs to "
        "`synthroom worker` processes on the same database).",
    ),
]
WorkerThreads = Annotated[int, typer.Option("--workers", min=1, help="Job worker threads in this process.")]
JobSeconds = Annotated[float, typer.Option(help="Wall-clock seconds one job may run.")]
JobMemory = Annotated[
    int,
    typer.Option(
        help="Address space one job's process may use, in MiB (JAX alone reserves "
        "about 2 GiB: below 4096 small syntheses fail too)."
    ),
]
JobThreads = Annotated[int, typer.Option(help="Threads one job's DuckDB, BLAS and XLA may use.")]
JobTempDisk = Annotated[
    int,
    typer.Option(help="Temporary disk one job may fill (DuckDB spilling; also the largest file it may write), in MiB."),
]
Engine = Annotated[
    str,
    typer.Option(
        help="Where templates run and rows are counted: duckdb or spark (a collaboration may choose its own; "
        "docs/engines.md)."
    ),
]
SparkMaster = Annotated[
    Optional[str],
    typer.Option(help="With spark: the cluster's master URL (default: a local session in each job's process)."),
]
ConfigFile = Annotated[
    Optional[Path],
    typer.Option(
        "--config",
        help="A TOML file of settings (default "
        "$SYNTHROOM_CONFIG); SYNTHROOM_<SETTING> variables and flags "
        "override it (docs/cleanroom.md, Server settings).",
    ),
]
DEFAULT_WORKERS = 1


def given_settings(ctx: typer.Context) -> dict[str, Any]:
    """The settings' flags given on the command line: a flag left at its default does not hide
    the config file's or the environment's value."""
    return {
        name: value
        for name, value in ctx.params.items()  # (typer's own click: compare by name)
        if name in Settings.model_fields and getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }


def default(field: str):
    """A setting's default, for a CLI option's."""
    return Settings.model_fields[field].default


def database_url(data_dir: Path, db_url: str | None) -> str:
    """``db_url``, else SQLite in ``data_dir``."""
    return db_url or f"sqlite:///{data_dir.resolve() / 'room.db'}"


def worker(
    ctx: typer.Context,
    data_dir: Annotated[
        Path, typer.Option(help="The server's data folder (artifacts; SQLite database unless --db-url).")
    ] = Path("synthroom-data"),
    db_url: Annotated[Optional[str], typer.Option(help="SQLAlchemy URL (default: SQLite in DATA_DIR).")] = None,
    workers: WorkerThreads = DEFAULT_WORKERS,
    job_seconds: JobSeconds = default("job_seconds"),
    job_memory_mib: JobMemory = default("job_memory_mib"),
    job_threads: JobThreads = default("job_threads"),
    job_temp_disk_mib: JobTempDisk = default("job_temp_disk_mib"),
    engine: Engine = default("engine"),
    spark_master: SparkMaster = default("spark_master"),
    config: ConfigFile = None,
) -> None:
    """Run queued clean-room jobs from the database, beside (or instead of) a server's own workers."""
    from rich.console import Console

    from ..room import Room, Worker

    from ..errors import InputError
    from ..room.settings import load_settings

    try:
        settings = load_settings(config, **given_settings(ctx))
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from None
    room = Room(database_url(data_dir, db_url), data_dir / "artifacts", settings=settings)
    running = Worker(room, threads=workers).start()
    recovered = f"; failed jobs whose worker died: {running.recovered}" if running.recovered else ""
    Console().print(
        f"worker: {workers} thread(s) on {room.db.url}, artifacts in {room.artifacts}{recovered}", highlight=False
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    running.stop(timeout=30)
