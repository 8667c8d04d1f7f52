"""Background workers: run queued jobs and model trainings, recover what dead workers left,
delete expired artifacts.

A :class:`Worker` runs ``threads`` worker threads. Each polls the database for the oldest queued
job (then training), claims it (see :mod:`.claims`: safe with any number of threads, processes
and servers on one database), and runs it; a job queued through this process's room wakes the
threads at once, one queued through another server is found at the next poll. Each job's
computation runs in a child process under the room's per-job limits (its settings), or the
``limits`` given; ``limits=None`` runs it in the worker's own process (tests and library use only).

Every ``lease / 2`` seconds (and on start) a worker fails the jobs and trainings whose worker's
lease ran out, releasing their budget reservations (:func:`~.jobs.recover_interrupted`); it
purges expired artifacts every ``purge_every`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import func, select

from .claims import LEASE_SECONDS, new_worker_id
from .jobs import Synthesize, purge_expired, recover_interrupted, run_next_job
from .limits import JobLimits
from .inference import purge_expired_inference, recover_interrupted_inference, run_next_inference
from .models import InferenceJob, Job, TrainedModel
from .service import Room
from .training import run_next_training

log = logging.getLogger("synthroom.worker")
ACTIVE = ("queued", "running")


class Worker:
    """``Worker(room, threads=2).start()`` ... ``.stop()``: job-running threads for one room."""

    def __init__(
        self,
        room: Room,
        synthesize: Synthesize | None = None,
        purge_every: float = 3600.0,
        *,
        threads: int = 1,
        limits: JobLimits | None | str = "settings",
        lease: float = LEASE_SECONDS,
        poll: float = 1.0,
    ):
        if threads < 1:
            raise ValueError(f"a worker needs at least 1 thread, not {threads}")
        self.room, self.synthesize, self.purge_every = room, synthesize, purge_every
        self.limits = JobLimits.from_settings(room.settings) if limits == "settings" else limits
        self.threads, self.lease, self.poll = threads, lease, poll
        self.recovered: list[int] = []
        self._stop, self._wake, self._lock = threading.Event(), threading.Event(), threading.Lock()
        self._threads: list[threading.Thread] = []
        self._next_recovery = self._next_purge = 0.0

    def start(self) -> "Worker":
        """Recover what dead workers left, purge, then start the threads."""
        self.recovered = recover_interrupted(self.room)
        recover_interrupted_inference(self.room)
        purge_expired(self.room)
        purge_expired_inference(self.room)
        now = time.monotonic()
        self._next_recovery, self._next_purge = now + self.lease / 2, now + self.purge_every
        self.room.on_job_queued = self.room.on_model_queued = lambda _id: self._wake.set()
        for index in range(self.threads):
            thread = threading.Thread(
                target=self._loop,
                args=(new_worker_id(f"thread{index}"),),
                name=f"synthroom-worker-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking work; wait up to ``timeout`` seconds for running jobs to end."""
        self.room.on_job_queued = self.room.on_model_queued = None
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def wait_idle(self, timeout: float = 900.0) -> None:
        """Block until no job or training is queued or running in the database (tests)."""
        deadline = time.monotonic() + timeout
        while self._active():
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs or trainings still queued or running after {timeout:g} s")
            time.sleep(0.05)

    def _active(self) -> int:
        with self.room.read() as s:
            return sum(
                s.scalar(select(func.count()).select_from(model).where(model.state.in_(ACTIVE)))
                for model in (Job, TrainedModel, InferenceJob)
            )

    def _loop(self, worker_id: str) -> None:
        while not self._stop.is_set():
            self._housekeeping()
            busy = self._safely(
                run_next_job,
                self.room,
                worker_id=worker_id,
                synthesize=self.synthesize,
                limits=self.limits,
                lease=self.lease,
            )
            busy = busy or self._safely(run_next_training, self.room, worker_id=worker_id, lease=self.lease)
            busy = busy or self._safely(run_next_inference, self.room, worker_id=worker_id, lease=self.lease)
            if not busy:
                self._wake.wait(self.poll)
                self._wake.clear()

    def _housekeeping(self) -> None:
        """Recovery and purging, by one thread at a time, when due."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            now = time.monotonic()
            if now >= self._next_recovery:
                self._next_recovery = now + self.lease / 2
                self._safely(recover_interrupted, self.room)
                self._safely(recover_interrupted_inference, self.room)
            if now >= self._next_purge:
                self._next_purge = now + self.purge_every
                self._safely(purge_expired, self.room)
                self._safely(purge_expired_inference, self.room)
        finally:
            self._lock.release()

    @staticmethod
    def _safely(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a failure of one task must not stop the worker
            log.exception("worker task %s failed", getattr(fn, "__name__", fn))
            return None
