"""Per-job resource limits: a job's computation runs in a child process that cannot take the
server (or the other jobs) down with it.

:func:`run_limited` starts a fresh Python process (not a fork: the server has threads, and JAX
must not be forked) and gives it

* **memory**: ``RLIMIT_AS`` (address space) of ``memory_bytes``, and DuckDB's ``memory_limit`` at
  half of it (DuckDB then spills to its temporary directory or fails cleanly);
* **temporary disk**: its own temporary folder (``TMPDIR`` and DuckDB's ``temp_directory``) with
  DuckDB's ``max_temp_directory_size`` of ``temp_bytes``, and ``RLIMIT_FSIZE``: no file it writes
  may grow past ``temp_bytes``; the folder is deleted when the job ends;
* **threads**: DuckDB's ``threads`` and the BLAS/OpenMP/XLA thread settings (one thread turns
  XLA's multi-threaded Eigen off);
* **time**: a wall-clock limit of ``seconds``; past it the whole process group is killed.

Going over any of them raises :class:`~synthroom.errors.ResourceLimit` in the caller: a
``MemoryError`` or DuckDB out-of-memory error in the child, a child killed by the kernel
(``SIGKILL``, ``SIGXFSZ``, ``SIGXCPU``) or crashed in native code at its address-space limit
(``SIGSEGV``, ``SIGABRT``, ``SIGBUS``), or the time limit. The address-space limit counts
reserved virtual memory: JAX alone reserves about 2 GiB, so below about 4 GiB even a small
synthesis cannot run. Any other exception the child raises
is raised again in the caller with its type (it must pickle; else an internal error).

The function, its arguments and ``shared`` travel to the child by pickle (a module-level
function). The attributes the child sets on its copy of ``shared`` (its last argument) are set
on the caller's as they happen, so progress survives a kill (e.g. "the template has started
reading rows": the job stays charged).
"""

from __future__ import annotations

import errno
import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ResourceLimit
from ..runtime import xla_flags

_GIB = 1 << 30
_MIB = 1 << 20
_KILLED_BY_LIMIT = (signal.SIGKILL, signal.SIGXFSZ, signal.SIGXCPU)
# Native code that meets its address-space limit often crashes instead of raising (a failed
# allocation aborts or dereferences NULL): counted as the memory limit. This errs on the side of
# "nothing is given back", never on the side of a free refund.
_CRASHED_AT_LIMIT = (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS)
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
_CHILD = "from synthroom.room.limits import _child_main; _child_main()"


@dataclass(frozen=True)
class JobLimits:
    """What one job may use; a server's come from its settings (``synthroom serve --job-*``)."""

    seconds: float = 3600.0
    memory_bytes: int = 8 * _GIB
    threads: int = 2
    temp_bytes: int = 10 * _GIB

    @classmethod
    def from_settings(cls, settings) -> "JobLimits":
        """The limits a server's :class:`~.settings.Settings` set (validated there)."""
        return cls(
            seconds=settings.job_seconds,
            memory_bytes=settings.job_memory_mib * _MIB,
            threads=settings.job_threads,
            temp_bytes=settings.job_temp_disk_mib * _MIB,
        )

    def duckdb_config(self, temp_dir: Path) -> dict[str, Any]:
        """The settings every DuckDB connection of the job starts with."""
        return {
            "threads": self.threads,
            "memory_limit": f"{self.memory_bytes // 2 // _MIB}MB",
            "temp_directory": str(temp_dir),
            "max_temp_directory_size": f"{self.temp_bytes // _MIB}MB",
        }

    def environment(self, temp_dir: Path) -> dict[str, str]:
        """The child's environment: the server's, with thread counts and the temporary folder."""
        env = dict(os.environ, TMPDIR=str(temp_dir), TEMP=str(temp_dir), TMP=str(temp_dir))
        env.update({name: str(self.threads) for name in _THREAD_VARIABLES})
        env["XLA_FLAGS"] = xla_flags(env.get("XLA_FLAGS"))
        if self.threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
        return env


def size_text(n_bytes: int) -> str:
    """``10 GiB``, ``50 MiB``: a limit as people write it."""
    return f"{n_bytes / _GIB:g} GiB" if n_bytes >= _GIB else f"{n_bytes / _MIB:g} MiB"


def run_limited(
    fn: Callable[..., Any], args: tuple, *, limits: JobLimits, shared: Any, temp_root: Path | None = None
) -> Any:
    """``fn(*args, shared)`` in a child process under ``limits``; its return value, or its exception."""
    temp_dir = Path(tempfile.mkdtemp(prefix="synthroom-job-", dir=temp_root))
    read_fd, write_fd = os.pipe()
    payload = pickle.dumps((list(sys.path), pickle.dumps((fn, args, shared, limits, str(temp_dir), write_fd))))
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            env=limits.environment(temp_dir),
            pass_fds=(write_fd,),
            start_new_session=True,
        )
        os.close(write_fd)
        write_fd = -1
        try:
            if child.stdin is None:  # never: stdin=PIPE
                raise RuntimeError("the job's child process has no stdin pipe")
            child.stdin.write(payload)
            child.stdin.close()
            return _collect(child, read_fd, limits, shared)
        finally:
            _kill_group(child)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _collect(child: subprocess.Popen, read_fd: int, limits: JobLimits, shared: Any) -> Any:
    """Read the child's messages until its result, its error, its death or the time limit."""
    deadline = time.monotonic() + limits.seconds
    reader = _Frames(read_fd)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            _kill_group(child)
            raise ResourceLimit(f"the job ran past its time limit of {limits.seconds:g} s and was stopped")
        message = reader.next(timeout=min(left, 1.0))
        if message is None:
            if reader.closed:
                return _died(child, limits)
            continue
        kind, value = message
        if kind == "set":
            for name, item in value.items():
                setattr(shared, name, item)
        elif kind == "result":
            child.wait()
            return value
        else:  # "error"
            child.wait()
            raise value


def _died(child: subprocess.Popen, limits: JobLimits):
    code = child.wait()
    if -code in _KILLED_BY_LIMIT + _CRASHED_AT_LIMIT:
        how = "was stopped by" if -code in _KILLED_BY_LIMIT else "crashed with"
        raise ResourceLimit(
            f"the job's process {how} signal {signal.Signals(-code).name} (memory limit "
            f"{size_text(limits.memory_bytes)}, temporary disk {size_text(limits.temp_bytes)})"
        )
    raise RuntimeError(f"the job's process ended without a result (exit status {code})")


def _kill_group(child: subprocess.Popen) -> None:
    """Kill the child and whatever it started (its process group outlives it while members remain)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()


class _Frames:
    """Length-prefixed pickles from a pipe, read without blocking past a timeout."""

    def __init__(self, fd: int):
        self.fd, self.buffer, self.closed = fd, b"", False

    def next(self, timeout: float):
        while True:
            frame = self._frame()
            if frame is not None:
                return frame
            if self.closed:
                return None
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                self.closed = True
            self.buffer += chunk

    def _frame(self):
        if len(self.buffer) < 8:
            return None
        size = struct.unpack("<Q", self.buffer[:8])[0]
        if len(self.buffer) < 8 + size:
            return None
        data, self.buffer = self.buffer[8 : 8 + size], self.buffer[8 + size :]
        return pickle.loads(data)


# -- the child's side ---------------------------------------------------------------------------
def _mirror(obj: Any, send: Callable[[str, Any], None]) -> Any:
    """``obj`` (the child's copy of ``shared``) made to send each attribute it is given to the
    parent (see :func:`run_limited`)."""

    base: Any = type(obj)  # whatever class the shared object has

    def __setattr__(self: Any, name: str, value: Any) -> None:
        base.__setattr__(self, name, value)
        send("set", {name: value})

    obj.__class__ = type("Mirrored", (base,), {"__setattr__": __setattr__})
    return obj


def _child_main() -> None:
    """Entry point of the child: apply the limits, run the function, send back what happened."""
    sys_path, rest = pickle.loads(sys.stdin.buffer.read())
    sys.path[:] = sys_path
    fn, args, shared, limits, temp_dir, fd = pickle.loads(rest)
    out = os.fdopen(fd, "wb")

    def send(kind: str, value: Any) -> None:
        data = pickle.dumps((kind, value))
        out.write(struct.pack("<Q", len(data)) + data)
        out.flush()

    _die_with_parent()
    _apply(limits, Path(temp_dir))
    try:
        result = fn(*args, _mirror(shared, send))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        send("error", _transportable(_as_limit(exc, limits)))
    else:
        send("result", result)
    out.close()
    os._exit(0)  # no interpreter teardown: JAX or DuckDB threads must not delay or crash the exit


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the worker thread that started it ends (a
    killed server leaves no job running on its own)."""
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent kills its group when it can
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _apply(limits: JobLimits, temp_dir: Path) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.temp_bytes, limits.temp_bytes))
    from ..engine.sandbox import limit_every_connection

    limit_every_connection(limits.duckdb_config(temp_dir))  # the sandbox's, the counts', the split's


def _as_limit(exc: BaseException, limits: JobLimits) -> BaseException:
    """An out-of-memory anywhere in the exception's chain is the job's memory limit."""
    seen: BaseException | None = exc
    while seen is not None:
        if _out_of_memory(seen):
            return ResourceLimit(
                f"the job ran out of memory or temporary disk (memory limit "
                f"{size_text(limits.memory_bytes)}, temporary disk {size_text(limits.temp_bytes)}): "
                f"{str(seen).splitlines()[0] if str(seen) else type(seen).__name__}"
            )
        seen = seen.__cause__ or seen.__context__
    return exc


def _out_of_memory(exc: BaseException) -> bool:
    """A failed allocation: Python's, DuckDB's, Arrow's, the OS's (``ENOMEM``), or a library that
    could not be mapped into the address space left."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryException":
        return True
    if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
        return True
    text = str(exc).lower()
    if type(exc).__module__.startswith("pyarrow"):  # Arrow's allocators: "malloc of size N failed", mmap, ...
        return any(word in text for word in ("memory", "malloc", "mmap", "allocat"))
    return isinstance(exc, (ImportError, OSError)) and (
        "failed to map segment" in text or "cannot allocate memory" in text
    )


def _transportable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - an exception that does not pickle becomes a plain one
        return RuntimeError(f"{type(exc).__name__}: {exc}")
