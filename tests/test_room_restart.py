"""A killed server loses no committed state and leaves no job running: once the lease of the job
it was running has run out, a worker fails it (its template may have read rows: it stays
charged); the job it left queued stays queued and a worker runs it."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from roomkit import ADMIN, database_url

from synthroom.errors import InputError
from synthroom.room import Actor, Room, Worker, audit_log, get_job, recover_interrupted
from synthroom.room.models import Job, TrainedModel, utcnow

LEASE = 3.0  # seconds the killed server's claim on its running job holds without renewal

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
        (folder / "running.part").write_text(str(running["id"]))
        (folder / "running.part").rename(folder / "running")  # whole, never seen half-written
        time.sleep(600)

    run_job(tp.room, running["id"], synthesize=hangs, lease={lease})
""")


def test_killed_server_keeps_committed_state_and_recovers_jobs(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).parent), folder=str(tmp_path), lease=LEASE))
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
        s.add(
            TrainedModel(
                job_id=job_ids[0],
                collaboration_id=1,
                created_by=2,
                trainer="gbm",
                task="classification",
                target="converted",
                state="running",
                worker_id="killed",
                lease_until=utcnow() + timedelta(seconds=LEASE),
            )
        )
    assert recover_interrupted(room) == []  # the job's lease still runs: it could be a live worker's
    assert get_job(room, adv, job_ids[0])["state"] == "running"
    time.sleep(LEASE)
    holding, proceed = threading.Event(), threading.Event()

    def held(frame, schema, **kw):  # the restarted worker runs the queued job (held until checked)
        holding.set()
        proceed.wait(60)
        raise InputError("stand-in synthesizer")

    worker = Worker(room, held, limits=None).start()  # what `synthroom serve` does on start-up
    try:
        assert worker.recovered == job_ids[:1]
        job = get_job(room, adv, job_ids[0])
        assert job["state"] == "failed" and job["category"] == "interrupted"
        assert job["reason"] == "interrupted by a server restart before it finished"
        assert not job["budget_released"]  # its template may have read rows: it stays charged
        assert holding.wait(60)
        assert get_job(room, adv, job_ids[1])["state"] == "running"
        with room.read() as s:
            assert s.get(TrainedModel, 1).state == "failed"
            assert s.get(Job, job_ids[1]).worker_id.split(":")[1] == str(os.getpid())
        proceed.set()
        worker.wait_idle(60)
        with room.read() as s:
            assert s.get(Job, job_ids[1]).detail == "InputError: stand-in synthesizer"
        assert room.get_table(pub, 1)["epsilon_spent"] == pytest.approx(2.0)  # both touched the rows
        log = audit_log(room, pub, 1)
        assert log["verified"]
        assert [(e["actor"], e["action"]) for e in log["entries"][-4:]] == [
            ("server", "job.failed"),
            ("server", "model.failed"),
            ("worker", "job.running"),
            ("worker", "job.failed"),
        ], [(e["seq"], e["actor"], e["action"]) for e in log["entries"]]
    finally:
        proceed.set()
        worker.stop(5)
