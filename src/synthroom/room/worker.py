"""The background worker: runs queued jobs and model trainings one at a time, and deletes
expired artifacts.

On start it first fails every job a previous server left queued or running (releasing their
budget reservations), then purges expired artifacts; after that it purges again every
``purge_every`` seconds between jobs.
"""

from __future__ import annotations

import logging
import queue
import threading

from .jobs import Synthesize, purge_expired, recover_interrupted, run_job
from .service import Room
from .training import run_training

log = logging.getLogger("synthroom.worker")
_STOP = ("stop", 0)


class Worker:
    def __init__(self, room: Room, synthesize: Synthesize | None = None, purge_every: float = 3600.0):
        self.room, self.synthesize, self.purge_every = room, synthesize, purge_every
        self.queue: queue.Queue[tuple[str, int]] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.recovered: list[int] = []

    def start(self) -> "Worker":
        self.recovered = recover_interrupted(self.room)
        purge_expired(self.room)
        self.room.on_job_queued = lambda job_id: self.queue.put(("job", job_id))
        self.room.on_model_queued = lambda model_id: self.queue.put(("model", model_id))
        self.thread = threading.Thread(target=self._loop, name="synthroom-worker", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self.room.on_job_queued = self.room.on_model_queued = None
        if self.thread is not None:
            self.queue.put(_STOP)
            self.thread.join(timeout)

    def wait_idle(self) -> None:
        """Block until every submitted job and training has finished (tests)."""
        self.queue.join()

    def _loop(self) -> None:
        while True:
            try:
                kind, object_id = self.queue.get(timeout=self.purge_every)
            except queue.Empty:
                self._safely(purge_expired, self.room)
                continue
            try:
                if kind == _STOP[0]:
                    return
                if kind == "job":
                    self._safely(run_job, self.room, object_id, self.synthesize)
                else:
                    self._safely(run_training, self.room, object_id)
            finally:
                self.queue.task_done()

    @staticmethod
    def _safely(fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a failure of one job must not stop the worker
            log.exception("worker task %s failed", getattr(fn, "__name__", fn))
