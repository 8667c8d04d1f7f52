"""The training-script sandbox (bubblewrap): a script sees its rows and its output folder and
nothing else, reaches no network, and stops at its memory, time and output limits."""

import json
import os
import socket
import textwrap

import pandas as pd
import pytest

from synthroom.errors import InputError
from synthroom.room import sandbox

needs_bwrap = pytest.mark.skipif(sandbox.unavailable() is not None, reason=str(sandbox.unavailable()))


def _run(tmp_path, body, **limits):
    rows = tmp_path / "synthetic.parquet"
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(rows)
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(body))
    out = tmp_path / "out"
    run = sandbox.run_script(script, rows, ["--target", "a"], out, sandbox.ScriptLimits(**{"seconds": 30, **limits}))
    return run, out


@needs_bwrap
def test_the_script_reads_its_rows_and_no_other_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("another member's data")
    run, out = _run(
        tmp_path,
        f"""
        import json, os, sys
        import pandas as pd
        seen = {{"rows": len(pd.read_parquet(sys.argv[sys.argv.index("--data") + 1])), "uid": os.getuid()}}
        for path in ({str(secret)!r}, "/etc/passwd", "/root/.bashrc", {str(tmp_path)!r}, "/proc/1/root/etc/hostname"):
            try:
                open(path).read()
                seen[path] = "read"
            except Exception as exc:
                seen[path] = type(exc).__name__
        seen["root"] = sorted(os.listdir("/"))
        json.dump(seen, open("/out/metrics.json", "w"))
    """,
    )
    seen = json.loads((out / "metrics.json").read_text())
    assert run.code == 0 and seen["rows"] == 3 and seen["uid"] == 65534
    assert (
        seen[str(secret)] == seen["/etc/passwd"] == seen["/root/.bashrc"] == seen[str(tmp_path)] == "FileNotFoundError"
    )
    assert seen["/proc/1/root/etc/hostname"] in ("PermissionError", "FileNotFoundError")
    assert "etc" not in seen["root"] and "home" not in seen["root"]
    assert secret.read_text() == "another member's data"


@needs_bwrap
def test_the_script_opens_no_connection(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    run, out = _run(
        tmp_path,
        f"""
        import json, socket
        seen = {{}}
        for host, port in (("127.0.0.1", {port}), ("1.1.1.1", 53)):
            try:
                socket.create_connection((host, port), timeout=3)
                seen[host] = "connected"
            except OSError as exc:
                seen[host] = type(exc).__name__
        json.dump(seen, open("/out/metrics.json", "w"))
    """,
    )
    seen = json.loads((out / "metrics.json").read_text())
    assert seen == {"127.0.0.1": "ConnectionRefusedError", "1.1.1.1": "OSError"}  # no route out of its namespace
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing reached the host's socket
    listener.close()


@needs_bwrap
def test_the_memory_limit_stops_an_allocation(tmp_path):
    run, _ = _run(
        tmp_path,
        """
        block = bytearray(3 << 30)
    """,
        memory_bytes=1 << 30,
    )
    assert run.code == 1 and "MemoryError" in run.log


@needs_bwrap
def test_the_time_limit_stops_the_script(tmp_path):
    with pytest.raises(InputError, match=r"^the training script ran over its time limit of 2 s and was stopped$"):
        _run(
            tmp_path,
            """
            import os
            os.fork()
            while True:
                pass
        """,
            seconds=2,
        )


@needs_bwrap
def test_the_output_folder_has_a_size_cap(tmp_path):
    run, out = _run(
        tmp_path,
        """
        import json
        try:
            with open("/out/big.bin", "wb") as fh:
                fh.write(b"x" * (3 << 20))
            json.dump({"wrote": True}, open("/out/metrics.json", "w"))
        except OSError as exc:
            open("/tmp/err", "w").write(str(exc))
            raise
    """,
        output_bytes=1 << 20,
    )
    assert run.code != 0 and ("No space left" in run.log or "File too large" in run.log)
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) <= 1 << 20


def test_without_bwrap_scripts_stay_off_with_a_reason(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert sandbox.unavailable.__wrapped__() == (
        "bubblewrap (bwrap) is not installed on the server, so training scripts are off (`apt-get install bubblewrap`)"
    )


def test_ci_has_the_sandbox():
    """CI (`.ci/run`) installs bubblewrap and sets SYNTHROOM_REQUIRE_SANDBOX: the tests above must run there."""
    if os.environ.get("SYNTHROOM_REQUIRE_SANDBOX") and sandbox.unavailable() is not None:
        pytest.fail(f"SYNTHROOM_REQUIRE_SANDBOX is set but {sandbox.unavailable()}")
