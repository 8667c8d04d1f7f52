#!/usr/bin/env python3
"""Load bench (not a timed test): twenty members keep using a real clean-room server while one
member attacks it with a pathological template (20,000 OR terms) and 50 MB request bodies.

    python bench/load.py [--members 20] [--baseline 10] [--seconds 30] [--think 0.1] [--db-url URL]

It builds a two-party room (1,000 simulated users, ``tests/roomkit.py``) plus ``--members``
members who share a collaboration, starts ``synthroom serve`` as its own process on a loopback
port, and runs two phases: ``baseline`` (the members alone) and ``attack`` (the same traffic while
the attacker sends the template once and 50 MB bodies back to back). Each member loops over six
reads (who am I, collaborations, the collaboration, its jobs, its templates, its audit chain)
with ``--think`` seconds between requests. Per phase it reports the members' request count,
p50/p99/max latency and 5xx/error count, and what the attacker got back; JSON in
``bench/out/load.json``. Targets: p99 under 1 s and no 5xx during the attack.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(REPO / "tests"))

from roomkit import ADMIN, start_server, two_party  # noqa: E402

from synthroom.demo.adtech import DEMO_CLASSIFICATION  # noqa: E402
from synthroom.room import Actor  # noqa: E402

OR_TERMS = 20_000
BODY_BYTES = 50 << 20


def build_room(folder: Path, members: int, db_url: str | None):
    """The two-party room and ``members`` more members in one collaboration (created by the advertiser)."""
    tp = two_party(folder, users=1000, url=db_url)
    names = [f"member{i:02d}" for i in range(members)]
    created = {name: tp.room.create_member(ADMIN, name, []) for name in names}
    collab = tp.room.create_collaboration(tp.advertiser, "load", [{"name": n} for n in names], payer="advertiser")
    for name, member in created.items():
        tp.room.accept_invitation(Actor(member["id"], name), collab["id"])
    return tp, {name: member["api_key"] for name, member in created.items()}, collab["id"]


class Members:
    """Closed-loop traffic from many members; latencies and failures per phase."""

    def __init__(self, url: str, keys: dict[str, str], collab: int, think: float):
        self.url, self.keys, self.collab, self.think = url, keys, collab, think
        self.samples: list[tuple[float, int | str]] = []
        self._lock = threading.Lock()

    def paths(self) -> list[str]:
        c = self.collab
        return [
            "/me",
            "/collaborations",
            f"/collaborations/{c}",
            f"/collaborations/{c}/jobs",
            f"/collaborations/{c}/templates",
            f"/collaborations/{c}/audit",
        ]

    def _member(self, key: str, until: float) -> None:
        with httpx.Client(base_url=self.url, headers={"X-API-Key": key}, timeout=30) as http:
            while time.monotonic() < until:
                for path in self.paths():
                    start = time.perf_counter()
                    try:
                        outcome: int | str = http.get(path).status_code
                    except httpx.HTTPError as exc:
                        outcome = type(exc).__name__
                    with self._lock:
                        self.samples.append((time.perf_counter() - start, outcome))
                    time.sleep(self.think)

    def run(self, seconds: float) -> dict:
        self.samples = []
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=self._member, args=(key, until)) for key in self.keys.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return summarize(self.samples)


def summarize(samples: list[tuple[float, int | str]]) -> dict:
    latencies = sorted(s for s, _ in samples)
    outcomes = [o for _, o in samples]
    return {
        "requests": len(samples),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000, 1)
        if latencies
        else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "server_errors_5xx": sum(isinstance(o, int) and o >= 500 for o in outcomes),
        "client_errors_4xx": sum(isinstance(o, int) and 400 <= o < 500 for o in outcomes),
        "transport_errors": sum(isinstance(o, str) for o in outcomes),
    }


class Attacker:
    """The pathological template once, then 50 MB bodies back to back, until stopped."""

    def __init__(self, url: str, key: str, collab: int):
        self.url, self.key, self.collab = url, key, collab
        self.answers: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _send(self, label: str, method: str, path: str, timeout: float, **kw) -> None:
        start = time.perf_counter()
        try:
            with httpx.Client(base_url=self.url, headers={"X-API-Key": self.key}, timeout=timeout) as http:
                outcome: int | str = http.request(method, path, **kw).status_code
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        self.answers.append(f"{label}: {outcome} after {time.perf_counter() - start:.1f} s")

    def _template(self) -> None:
        terms = " OR ".join(f"a.age = {i}" for i in range(OR_TERMS))
        sql = (
            f"SELECT a.age, a.region, a.device, a.segment, a.weekly_visits, CASE WHEN {terms} THEN 'yes' "
            "ELSE 'no' END AS converted FROM audience AS a"
        )
        self._send(
            f"template with {OR_TERMS:,} OR terms",
            "POST",
            f"/collaborations/{self.collab}/templates",
            120,
            json={"name": "pathological", "sql": sql, "epsilon": 1.0, "classification": DEMO_CLASSIFICATION},
        )

    def _bodies(self) -> None:
        body = json.dumps({"name": "x" * BODY_BYTES, "members": [], "payer": "analyst"}).encode()
        while not self._stop.is_set():
            self._send(
                "50 MB body", "POST", "/collaborations", 60, content=body, headers={"Content-Type": "application/json"}
            )

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._template, daemon=True),
            threading.Thread(target=self._bodies, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of traffic without the attacker")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of traffic during the attack")
    parser.add_argument("--think", type=float, default=0.1, help="seconds each member waits between requests")
    parser.add_argument("--db-url", default=None, help="metadata database (default: SQLite in the run folder)")
    args = parser.parse_args()

    folder = OUT / f"load-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True)
    tp, keys, collab = build_room(folder, args.members, args.db_url)
    tp.room.db.dispose()
    server = start_server(folder, tp.room.db.url)
    try:
        members = Members(server.url, keys, collab, args.think)
        baseline = members.run(args.baseline)
        attacker = Attacker(server.url, tp.keys["analyst"], tp.collab)
        attacker.start()
        time.sleep(1.0)  # both attacks are in flight
        attack = members.run(args.seconds)
        attacker.stop()
    finally:
        server.stop()
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result = {
        "commit": commit,
        "members": args.members,
        "think_s": args.think,
        "database": tp.room.db.dialect,
        "baseline": baseline,
        "attack": attack,
        "attacker": attacker.answers,
    }
    (OUT / "load.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print("\n| phase | requests | p50 ms | p99 ms | max ms | 5xx | transport errors |\n|---|---|---|---|---|---|---|")
    for phase in ("baseline", "attack"):
        r = result[phase]
        print(
            f"| {phase} | {r['requests']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | "
            f"{r['server_errors_5xx']} | {r['transport_errors']} |"
        )


if __name__ == "__main__":
    main()
