"""A killed server loses no committed state and leaves no job running: on start-up, jobs it
left queued or running are failed with their budget reservations released."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from roomkit import ADMIN, database_url

from synthroom.room import Actor, Room, Worker, audit_log, get_job
from synthroom.room.models import TrainedModel

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from roomkit import two_party
    from synthroom.room import run_job, start_job

    folder = Path({folder!r})
    tp = two_party(folder, users=200, budget=3.0)
    running = start_job(tp.room, tp.advertiser, tp.template["id"])
    queued = start_job(tp.room, tp.advertiser, tp.template["id"])

    def hangs(frame, schema, **kw):
        kw["progress"]("measuring", "learning the domains")
        (folder / "running").write_text(str(running["id"]))
        time.sleep(600)

    run_job(tp.room, running["id"], synthesize=hangs)
""")


def test_killed_server_keeps_committed_state_and_recovers_jobs(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).parent), folder=str(tmp_path)))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "running").exists():
            if child.poll() is not None or time.time() > deadline:
                pytest.fail(f"the child server never reached a running job: {child.stdout.read().decode()[-2000:]}")
            time.sleep(0.1)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    room = Room(database_url(tmp_path), tmp_path / "artifacts", admin_key=ADMIN)
    adv, pub = Actor(2, "advertiser"), Actor(1, "publisher")
    job_ids = [int((tmp_path / "running").read_text()), int((tmp_path / "running").read_text()) + 1]
    assert [get_job(room, adv, j)["state"] for j in job_ids] == ["running", "queued"]  # committed, survived the kill
    assert room.get_table(pub, 1)["epsilon_spent"] == pytest.approx(2.0)
    assert room.list_templates(adv, 1)[0]["approved"]

    with room.transaction() as s:  # as if a training had been cut short too
        s.add(TrainedModel(job_id=job_ids[0], collaboration_id=1, created_by=2, trainer="gbm",
                           task="classification", target="converted", state="running"))
    worker = Worker(room).start()  # what `synthroom serve` does on start-up
    try:
        assert worker.recovered == job_ids
        for j in job_ids:
            job = get_job(room, adv, j)
            assert job["state"] == "failed" and job["category"] == "interrupted"
            assert job["reason"] == "interrupted by a server restart before it finished"
        # the running job's template may have read rows: it stays charged; the queued one is refunded
        assert [get_job(room, adv, j)["budget_released"] for j in job_ids] == [False, True]
        assert room.get_table(pub, 1)["epsilon_spent"] == pytest.approx(1.0)
        assert room.get_table(adv, 2)["epsilon_spent"] == pytest.approx(1.0)
        with room.transaction() as s:
            assert s.get(TrainedModel, 1).state == "failed"
        log = audit_log(room, pub, 1)
        assert log["verified"] and [e["actor"] for e in log["entries"][-3:]] == ["server"] * 3
    finally:
        worker.stop(5)
