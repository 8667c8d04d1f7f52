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
from typing import Annotated, Optional

import typer

from ..room.settings import Settings

Workers = Annotated[int, typer.Option(min=0, help="Job worker threads in this process (0: leave the jobs to "
                                                  "`synthroom worker` processes on the same database).")]
WorkerThreads = Annotated[int, typer.Option("--workers", min=1, help="Job worker threads in this process.")]
JobSeconds = Annotated[float, typer.Option(help="Wall-clock seconds one job may run.")]
JobMemory = Annotated[int, typer.Option(help="Address space one job's process may use, in MiB (JAX alone reserves "
                                             "about 2 GiB: below 4096 small syntheses fail too).")]
JobThreads = Annotated[int, typer.Option(help="Threads one job's DuckDB, BLAS and XLA may use.")]
JobTempDisk = Annotated[int, typer.Option(help="Temporary disk one job may fill (DuckDB spilling; also the largest "
                                               "file it may write), in MiB.")]
DEFAULT_WORKERS = 1


def default(field: str):
    """A setting's default, for a CLI option's."""
    return Settings.model_fields[field].default


def database_url(data_dir: Path, db_url: str | None) -> str:
    """``db_url``, else SQLite in ``data_dir``."""
    return db_url or f"sqlite:///{data_dir.resolve() / 'room.db'}"


def worker(
    data_dir: Annotated[Path, typer.Option(help="The server's data folder (artifacts; SQLite database unless "
                                                "--db-url).")] = Path("synthroom-data"),
    db_url: Annotated[Optional[str], typer.Option(help="SQLAlchemy URL (default: SQLite in DATA_DIR).")] = None,
    workers: WorkerThreads = DEFAULT_WORKERS,
    job_seconds: JobSeconds = default("job_seconds"),
    job_memory_mib: JobMemory = default("job_memory_mib"),
    job_threads: JobThreads = default("job_threads"),
    job_temp_disk_mib: JobTempDisk = default("job_temp_disk_mib"),
) -> None:
    """Run queued clean-room jobs from the database, beside (or instead of) a server's own workers."""
    from pydantic import ValidationError
    from rich.console import Console

    from ..room import Room, Worker

    try:
        settings = Settings(job_seconds=job_seconds, job_memory_mib=job_memory_mib, job_threads=job_threads,
                            job_temp_disk_mib=job_temp_disk_mib)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}"
                                           for e in exc.errors())) from None
    room = Room(database_url(data_dir, db_url), data_dir / "artifacts", settings=settings)
    running = Worker(room, threads=workers).start()
    recovered = f"; failed jobs whose worker died: {running.recovered}" if running.recovered else ""
    Console().print(f"worker: {workers} thread(s) on {room.db.url}, artifacts in {room.artifacts}{recovered}",
                    highlight=False)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    running.stop(timeout=30)
