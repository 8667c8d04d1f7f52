"""Availability against a real server: `synthroom serve` runs as its own process on a loopback
port; one member attacks it (a pathological template, a 50 MB body, a huge member list, a
runaway job) while another member's requests keep succeeding fast and its job still runs.

Every victim request must answer in under 2 s with no 5xx while an attack is in flight."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
from roomkit import ServerProcess, start_server, two_party

from synthroom.demo.adtech import DEMO_CLASSIFICATION

VICTIM_LIMIT = 2.0  # seconds any victim request may take while an attack runs
BLOW_UP = """SELECT a.age + 0 * UNNEST(RANGE(0, 200000)) AS age, a.region, a.device, a.segment, a.weekly_visits,
       CASE WHEN c.user_id IS NULL THEN 'no' ELSE 'yes' END AS converted
FROM audience AS a LEFT JOIN conversions AS c ON a.user_id = c.user_id"""


@dataclass
class Served:
    server: ServerProcess
    tp: object

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, who: str, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": self.tp.keys[who]}, timeout=timeout)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A two-party room (1,500 users, the demo template and a blow-up template approved) served
    by a real process with 2 job workers, small per-job limits and the anonymeter sidecar off."""
    folder = tmp_path_factory.mktemp("served")
    tp = two_party(folder, users=1500, budget=20)
    blow_up = tp.room.create_template(
        tp.analyst, tp.collab, "blow-up", BLOW_UP, epsilon=1.0, classification=DEMO_CLASSIFICATION
    )
    for actor in (tp.publisher, tp.advertiser):
        blow_up = tp.room.approve_template(actor, blow_up["id"], blow_up["hash"])
    tp.blow_up = blow_up
    tp.room.db.dispose()
    try:
        server = start_server(
            folder,
            tp.room.db.url,
            "--workers",
            "2",
            "--job-seconds",
            "120",
            "--job-memory-mib",
            "4096",
            "--job-temp-disk-mib",
            "1024",
            "--job-threads",
            "1",
        )
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield Served(server, tp)
    finally:
        server.stop()


@dataclass
class Victim:
    """Another member's steady traffic: reads, and a small write, in a loop."""

    served: Served
    who: str = "publisher"
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _requests(self):
        tp = self.served.tp
        return [
            ("GET", "/me", None),
            ("GET", f"/collaborations/{tp.collab}", None),
            ("GET", f"/templates/{tp.template['id']}", None),
            ("GET", f"/collaborations/{tp.collab}/jobs", None),
            ("GET", f"/tables/{tp.audience}", None),
            ("POST", f"/templates/{tp.template['id']}/approve", {"hash": tp.template["hash"]}),
        ]

    def run(self) -> None:
        with self.served.client(self.who, timeout=VICTIM_LIMIT * 5) as http:
            while not self._stop.is_set():
                for method, path, body in self._requests():
                    start = time.perf_counter()
                    try:
                        answer = http.request(method, path, json=body)
                        if answer.status_code >= 400:  # every victim request must succeed
                            self.failures.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{method} {path}: {type(exc).__name__}")
                    self.latencies.append(time.perf_counter() - start)

    def during(self, attack, seconds: float):
        """Run ``attack()`` in a thread, keep the victim going for ``seconds`` (at least), return
        the attack's result (or None if it has not answered by then)."""
        result: dict = {}

        def attacker():
            try:
                result["value"] = attack()
            except httpx.HTTPError as exc:
                result["value"] = exc

        thread = threading.Thread(target=attacker, daemon=True)
        thread.start()
        time.sleep(0.5)  # the attack is in flight
        victim = threading.Thread(target=self.run, daemon=True)
        victim.start()
        time.sleep(seconds)
        self._stop.set()
        victim.join(VICTIM_LIMIT * 5 + 1)
        thread.join(1)
        return result.get("value")

    def check(self) -> None:
        assert not self.failures, self.failures[:5]
        assert len(self.latencies) >= 6, "the victim made almost no requests"
        assert max(self.latencies) < VICTIM_LIMIT, sorted(self.latencies)[-5:]


def _post_raw(served: Served, who: str, path: str, content: bytes, timeout: float = 60):
    with served.client(who, timeout=timeout) as http:
        return http.post(path, content=content, headers={"Content-Type": "application/json"})


def test_a_50_mb_body_is_refused_and_others_keep_working(served):
    body = json.dumps({"name": "x" * (50 << 20), "members": [], "payer": "analyst"}).encode()
    victim = Victim(served)
    answer = victim.during(lambda: _post_raw(served, "analyst", "/collaborations", body), seconds=4)
    victim.check()
    assert isinstance(answer, httpx.Response) and answer.status_code in (413, 422), answer


def test_a_huge_member_list_is_refused_and_others_keep_working(served):
    members = [{"name": f"member-{i}", "can_run": False, "can_receive": False} for i in range(2_000_000)]
    body = json.dumps({"name": "flood", "members": members, "payer": "analyst"}).encode()
    victim = Victim(served)
    answer = victim.during(lambda: _post_raw(served, "analyst", "/collaborations", body), seconds=6)
    victim.check()
    assert isinstance(answer, httpx.Response) and answer.status_code in (413, 422), answer


def _detail(tp, job_id: int) -> str | None:
    """The operator's detail of a failed job (read from the database, as the operator would)."""
    from synthroom.room.models import Job

    with tp.room.read() as s:
        return s.get(Job, job_id).detail


def test_a_runaway_job_does_not_stop_another_members_job(served):
    """Two workers: the analyst's blow-up job (200,000 rows per row) runs into its limits while
    the advertiser's job is claimed at once and succeeds."""
    tp = served.tp
    with served.client("analyst") as analyst, served.client("advertiser") as advertiser:
        runaway = analyst.post(f"/templates/{tp.blow_up['id']}/jobs").json()
        time.sleep(1.0)  # the first worker has it
        normal = advertiser.post(f"/templates/{tp.template['id']}/jobs").json()
        deadline = time.time() + 180
        while True:
            jobs = {j["id"]: j for j in advertiser.get(f"/collaborations/{tp.collab}/jobs").json()}
            if all(jobs[j]["state"] in ("succeeded", "failed") for j in (runaway["id"], normal["id"])):
                break
            assert time.time() < deadline, jobs
            time.sleep(0.5)
    slow, other = jobs[runaway["id"]], jobs[normal["id"]]
    assert slow["state"] == "failed" and slow["category"] == "resource_limit", (slow, _detail(tp, runaway["id"]))
    assert not slow["budget_released"]
    assert other["state"] == "succeeded", (other, _detail(tp, normal["id"]))
    assert other["started_at"] < slow["finished_at"]  # it ran beside the runaway job, not after it


def test_a_pathological_template_is_refused_and_others_keep_working(served):
    """20,000 OR terms: the check is bounded (422) or, while it runs, holds no lock."""
    terms = " OR ".join(f"a.age = {i}" for i in range(20_000))
    sql = (
        f"SELECT a.age, a.region, a.device, a.segment, a.weekly_visits, CASE WHEN {terms} THEN 'yes' ELSE 'no' "
        "END AS converted FROM audience AS a"
    )
    body = {"name": "pathological", "sql": sql, "epsilon": 1.0, "classification": DEMO_CLASSIFICATION}
    victim = Victim(served)

    def attack():
        with served.client("analyst", timeout=8) as http:
            return http.post(f"/collaborations/{served.tp.collab}/templates", json=body)

    answer = victim.during(attack, seconds=6)
    victim.check()
    if isinstance(answer, httpx.Response):
        assert answer.status_code == 422, answer.text[:300]
