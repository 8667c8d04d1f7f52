"""Members' training scripts in a real sandbox: bubblewrap (``bwrap``, Debian's ``bubblewrap``).

:func:`run_script` runs ``python -I train.py --data /input/synthetic.parquet --target COL --task
KIND --output /out`` under ``bwrap`` with:

* **namespaces**: new user, mount, PID, network, IPC, UTS and cgroup namespaces
  (``--unshare-all``), uid/gid 65534 inside, no capabilities, no further user namespaces
  (``--disable-userns``), a new session (no terminal injection), killed with the server
  (``--die-with-parent``);
* **files**: an empty root with, read-only, ``/usr`` (and the ``/bin``, ``/lib`` links) and the
  Python installation the server runs (its prefix and its virtual environment), the synthetic
  rows at ``/input/synthetic.parquet`` and the script at ``/input/train.py``; writable only
  ``/out`` (the output folder) and ``/tmp``, both fresh in-memory file systems of fixed size.
  Nothing else of the host exists inside: no members' files, no artifacts, no database, no keys,
  no ``/etc``, no ``/home``, no ``/root``;
* **network**: none (its own network namespace: only a loopback device, down; the host's
  services on 127.0.0.1 are unreachable);
* **limits**: the script's address space (``RLIMIT_AS``), CPU seconds (``RLIMIT_CPU``), the
  size of any one file (``RLIMIT_FSIZE``) and of the output folder (the ``/out`` file system's
  size), a wall-clock limit, and at most :data:`MAX_PROCESSES` processes (``RLIMIT_NPROC``,
  counted in the sandbox's user namespace).

A small harness (:data:`_HARNESS`, run with ``-I`` inside the sandbox) starts the script, waits
for it (or for the time limit), kills every process left in the sandbox's PID namespace, then
writes ``/out`` as a tar stream to the server, which reads at most the output cap and unpacks
only regular files and folders (``tarfile``'s ``data`` filter). The script never holds a handle
on the server's file system, and the harness is not dumpable, so the script cannot reach its
stream through ``/proc``.

What this relies on: Linux user namespaces available to the server's account
(``kernel.unprivileged_userns_clone=1``, Debian's default; Ubuntu 24.04's AppArmor restriction
must allow ``bwrap``) or a root server (bwrap then still drops every capability). When ``bwrap``
is missing or cannot create its namespaces, :func:`unavailable` says why and scripts stay off.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import InputError

MAX_PROCESSES = 64
TMP_BYTES = 256 << 20
_MIB = 1 << 20


@dataclass(frozen=True)
class ScriptLimits:
    """What one training script may use (the server's settings)."""

    seconds: float = 600.0
    memory_bytes: int = 4 << 30
    output_bytes: int = 100 << 20


_HARNESS = r"""
import ctypes, json, os, resource, signal, subprocess, sys, tarfile, time
ctypes.CDLL(None).prctl(4, 0)  # PR_SET_DUMPABLE 0: the script cannot open this process's descriptors
spec = json.loads(sys.argv[1])
out = sys.stdout.buffer
def limits():
    os.setsid()
    for name, value in (("RLIMIT_AS", spec["memory"]), ("RLIMIT_CPU", spec["cpu"]),
                        ("RLIMIT_FSIZE", spec["file"]), ("RLIMIT_NPROC", spec["processes"])):
        resource.setrlimit(getattr(resource, name), (value, value))
with open("/tmp/.train.log", "wb") as log:
    child = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                             preexec_fn=limits, cwd="/out", env=spec["env"])
    try:
        code = child.wait(timeout=spec["seconds"])
    except subprocess.TimeoutExpired:
        code = "timeout"
for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid not in (1, os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
if code != "timeout":
    code = child.returncode
with open("/tmp/.train.log", "rb") as log:
    tail = log.read()[-20000:]
status = json.dumps({"code": code, "log": tail.decode("utf-8", "replace")}).encode()
out.write(len(status).to_bytes(8, "little") + status)
with tarfile.open(fileobj=out, mode="w|") as tar:
    tar.add("/out", arcname=".")
out.flush()
"""


@dataclass(frozen=True)
class ScriptRun:
    """A finished script: its exit code (``None``: stopped at the time limit) and its log's tail."""

    code: int | None
    log: str


def _mounts() -> list[str]:
    """Read-only binds: ``/usr`` with the merged-usr links, and the running Python's folders."""
    args = ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = os.path.join("/", link)
        if os.path.islink(target):
            args += ["--symlink", os.readlink(target), target]
        elif os.path.isdir(target):
            args += ["--ro-bind", target, target]
    for folder in sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}):
        if not folder.startswith("/usr"):
            args += ["--ro-bind", folder, folder]
    if os.path.realpath(sys.prefix) != sys.prefix:
        args += ["--symlink", os.path.realpath(sys.prefix), sys.prefix]
    return args


def bwrap_command(limits: ScriptLimits, binds: list[tuple[str, str]]) -> list[str]:
    """The ``bwrap`` command line up to the program it runs (``binds``: host path -> sandbox path, read-only)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--cap-drop",
        "ALL",
        *_mounts(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(TMP_BYTES),
        "--tmpfs",
        "/tmp",
        "--size",
        str(limits.output_bytes),
        "--tmpfs",
        "/out",
        "--dir",
        "/input",
    ]
    for host, inside in binds:
        args += ["--ro-bind", host, inside]
    return args + [
        "--chdir",
        "/out",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "TMPDIR",
        "/tmp",
    ]


@lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why scripts cannot run here (None: the sandbox works): bwrap missing or refused."""
    if shutil.which("bwrap") is None:
        return (
            "bubblewrap (bwrap) is not installed on the server, so training scripts are off "
            "(`apt-get install bubblewrap`)"
        )
    try:
        done = subprocess.run(
            bwrap_command(ScriptLimits(output_bytes=_MIB), []) + [sys.executable, "-I", "-c", "pass"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start its sandbox ({exc}), so training scripts are off"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        return (
            f"bubblewrap could not create its namespaces ({why}), so training scripts are off "
            "(the server's account needs unprivileged user namespaces)"
        )
    return None


def run_script(script: Path, data: Path, args: list[str], out_dir: Path, limits: ScriptLimits) -> ScriptRun:
    """Run ``script`` on ``data`` in the sandbox; its output folder's files land in ``out_dir``.

    Raises :class:`InputError` when the script ran past its time limit or its output was over the cap."""
    argv = [sys.executable, "-I", "/input/train.py", "--data", "/input/synthetic.parquet", *args, "--output", "/out"]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    seconds = max(1, int(limits.seconds))
    spec = {
        "argv": argv,
        "env": env,
        "seconds": limits.seconds,
        "memory": limits.memory_bytes,
        "cpu": seconds,
        "file": limits.output_bytes,
        "processes": MAX_PROCESSES,
    }
    command = bwrap_command(limits, [(str(script), "/input/train.py"), (str(data), "/input/synthetic.parquet")])
    command += [sys.executable, "-I", "-c", _HARNESS, json.dumps(spec)]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=limits.seconds + 60)
    except subprocess.TimeoutExpired:
        raise InputError(
            f"the training script ran over its time limit of {limits.seconds:g} s and was stopped"
        ) from None
    status, archive = _status(done)
    if status["code"] == "timeout":
        raise InputError(f"the training script ran over its time limit of {limits.seconds:g} s and was stopped")
    if len(archive) > limits.output_bytes + _MIB:
        raise InputError(f"the training script's output is over the cap of {limits.output_bytes / _MIB:g} MiB")
    _unpack(archive, out_dir)
    return ScriptRun(status["code"], status["log"])


def _status(done: subprocess.CompletedProcess) -> tuple[dict, bytes]:
    """The harness's status record and the tar stream after it."""
    data = done.stdout
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    try:
        status = json.loads(data[8 : 8 + size]) if 0 < size <= len(data) - 8 else None
    except ValueError:
        status = None
    if not isinstance(status, dict):
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise RuntimeError(f"the training sandbox ended without a result: {why[0][:300]}")
    return status, data[8 + size :]


def _unpack(archive: bytes, out_dir: Path) -> None:
    """Regular files and folders only, inside ``out_dir`` (tarfile's ``data`` filter)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        tar.extractall(out_dir, members=members, filter="data")
