"""The room audit: can a member tell whether one person is in another party's table?

``python bench/audit.py --room [--quick]`` plays the distinguishing game of :mod:`audit` on the
clean room's whole job path, not only the synthesizer. Two parties: a publisher's ``people``
(one row per person) and an advertiser's ``orders``, both with privacy unit ``user_id`` and cap 2. ``D`` and
``D'`` differ by one person, the *canary*, in the advertiser's table only: in ``D'`` it has two
orders (the cap) with a channel no one else has and an amount far outside the data; in ``D`` it
has none. The publisher knows the canary (it is one of its own people) and is the attacker: a
member that may neither run nor receive.

Every play builds a real :class:`synthroom.room.Room` in a fresh folder, configures both tables,
creates and approves the template, starts the job as the advertiser and runs it in-process
(template, sandbox, cap, holdout split, synthesis, evaluation, gate). The attacker then records
what it may read: the job as it sees it (state, category, budget refunded, the DP sample size,
compute seconds, no summary: it is not a receiver), the tables' budgets, metering and the audit
log. Statistics, each a yes/no with its threshold fixed before the game:

* ``state``: the job failed (any category), as the attacker sees it;
* ``refund``: the job's budget came back;
* ``rows``: the sample size (the DP estimate of the training rows) exceeds the median of a pilot
  on ``D``;
* ``time``: the compute seconds exceed the median of a pilot on ``D``;
* ``seed``: the sample size equals what a run with seed 0 gives on ``D'`` (and not on ``D``),
  computed by the attacker beforehand with the room's own code.

Broken variants (faults injected here, by patching :mod:`synthroom.room.jobs` in the worker
process; nothing in the product can turn them on) must be caught at a claimed epsilon of 1:

* ``known_seed``: the room uses seed 0 for every job (the cap's salt, the synthesizer, the split);
* ``refund_on_failure``: the template fails on the canary's rows (what ``error()`` on the canary
  did before the template check refused raising functions) and the room refunds failures that
  happen before the synthesizer measured (the old phase rule).

The shipped room also plays with the template calling ``error()`` on the canary (``probe``):
the checks must refuse it, or its failure would show.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from audit import CONFIDENCE, JAX_CACHE, _init_worker, epsilon_lower_bound, write_results  # noqa: E402

ADMIN = "room-audit-admin"
DELTA = 1e-9
EPSILON = 1.0
CAP = 2
PEOPLE = 2000
HOLDOUT_SHARE = 0.2  # synthesize_with_gate's default
CANARY_CHANNEL, CANARY_AMOUNT = "lighthouse", 10_000_000
STATISTICS = ("state", "refund", "rows", "time", "seed")
VARIANTS = ("as shipped", "probe", "known_seed", "refund_on_failure")
TARGET = {"known_seed": "seed", "refund_on_failure": "refund"}  # the statistic each broken variant must light up
TEMPLATE = "SELECT p.age, p.region, o.amount, o.channel FROM people AS p JOIN orders AS o ON p.user_id = o.user_id"
PROBE = (
    "SELECT p.age, p.region, CASE WHEN o.user_id = {canary} THEN error('canary') ELSE o.amount END AS amount, "
    "o.channel FROM people AS p JOIN orders AS o ON p.user_id = o.user_id"
)
MAX_MIA_SCORE = 0.8  # the gate (as in the demo)
CLASSIFICATION = {
    "target": "channel",
    "columns": [
        {"name": "age", "type": "numerical"},
        {"name": "region", "type": "categorical"},
        {"name": "amount", "type": "numerical"},
        {"name": "channel", "type": "categorical"},
    ],
}


# -- the neighbouring tables -------------------------------------------------------------------
@dataclass(frozen=True)
class RoomGame:
    people: pd.DataFrame
    orders: pd.DataFrame  # D: without the canary's rows
    canary: int

    def orders_of(self, with_canary: bool) -> pd.DataFrame:
        if not with_canary:
            return self.orders
        rows = pd.DataFrame(
            {"user_id": [self.canary] * CAP, "amount": [CANARY_AMOUNT] * CAP, "channel": [CANARY_CHANNEL] * CAP}
        )
        return pd.concat([self.orders, rows], ignore_index=True)

    def joined_rows(self, with_canary: bool) -> int:
        """Rows reaching the synthesizer's split (after the cap): public to the game, not to members."""
        counts = self.orders_of(with_canary).user_id.value_counts().clip(upper=CAP)
        return int(counts[counts.index.isin(self.people.user_id)].sum())


def build_room_game(seed: int = 0) -> RoomGame:
    rng = np.random.default_rng([seed, 7])
    ids = rng.permutation(np.arange(500_000, 500_000 + 3 * PEOPLE))[:PEOPLE]
    people = pd.DataFrame(
        {
            "user_id": ids,
            "age": rng.integers(18, 80, PEOPLE),
            "region": rng.choice(["north", "south", "east", "west"], PEOPLE, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    canary = int(ids[0])
    buyers = ids[1:]
    per_person = rng.choice([1, 2, 3], len(buyers), p=[0.5, 0.35, 0.15])
    user_id = np.repeat(buyers, per_person)
    orders = pd.DataFrame(
        {
            "user_id": user_id,
            "amount": np.round(rng.gamma(2.0, 30.0, len(user_id))).astype(np.int64) + 1,
            "channel": rng.choice(["web", "store", "app"], len(user_id), p=[0.5, 0.3, 0.2]),
        }
    )
    return RoomGame(people, orders, canary)


# -- broken variants -------------------------------------------------------------------------------
@contextlib.contextmanager
def injected(variant: str, game: RoomGame):
    """Patch :mod:`synthroom.room.jobs` for a broken variant, for the duration of one play."""
    from synthroom.errors import InputError
    from synthroom.room import jobs

    saved = {name: getattr(jobs, name) for name in ("refunded", "run_template")}
    if variant == "refund_on_failure":
        real_run = jobs.run_template

        def fails_on_the_canary(checked, sources, cap, seed):
            execution = real_run(checked, sources, cap=cap, seed=seed)
            if (execution.frame["channel"] == CANARY_CHANNEL).any():
                raise InputError("the template failed to run: Invalid Input Error: canary")
            return execution

        jobs.run_template = fails_on_the_canary
        jobs.refunded = lambda category, touched: category != "refused_by_gate"  # the old rule: before measuring
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(jobs, name, value)


# -- one play ------------------------------------------------------------------------------------
_GAME: list[RoomGame] = []


def _game() -> RoomGame:
    if not _GAME:
        _GAME.append(build_room_game())
    return _GAME[0]


def play(task: tuple) -> dict:
    """One job on ``D`` or ``D'`` in a fresh room; what the publisher (the attacker) sees."""
    variant, with_canary, seed = task
    from synthroom.room import Actor, Room, audit_log, get_job, metering, run_job, start_job
    from synthroom.room.models import Job

    game = _game()
    folder = Path(tempfile.mkdtemp(prefix="synthroom-room-audit-"))
    try:
        room = Room(
            f"sqlite:///{folder / 'room.db'}",
            folder / "artifacts",
            admin_key=ADMIN,
            audit_key="room-audit",
            seeded_jobs=seed is not None,
        )
        actors = {}
        for name in ("publisher", "advertiser"):
            (folder / name).mkdir()
            created = room.create_member(ADMIN, name, [str(folder / name)])
            actors[name] = Actor(created["id"], name)
        pub, adv = actors["publisher"], actors["advertiser"]
        game.people.to_csv(folder / "publisher" / "people.csv", index=False)
        game.orders_of(with_canary).to_csv(folder / "advertiser" / "orders.csv", index=False)
        people = room.configure_table(
            pub,
            "people",
            "csv",
            str(folder / "publisher" / "people.csv"),
            ["user_id", "age", "region"],
            epsilon_budget=3,
            unit_column="user_id",
            unit_cap=CAP,
        )
        orders = room.configure_table(
            adv,
            "orders",
            "csv",
            str(folder / "advertiser" / "orders.csv"),
            ["user_id", "amount", "channel"],
            epsilon_budget=3,
            unit_column="user_id",
            unit_cap=CAP,
            allowed_receivers=["advertiser"],
        )
        collab = room.create_collaboration(
            adv,
            "audit",
            [
                {"name": "publisher", "can_run": False, "can_receive": False},
                {"name": "advertiser", "can_run": True, "can_receive": True},
            ],
            payer="advertiser",
        )
        room.accept_invitation(pub, collab["id"])  # the advertiser created it and pays
        room.associate(pub, collab["id"], people["id"], "people")
        room.associate(adv, collab["id"], orders["id"], "orders")
        sql = PROBE.format(canary=game.canary) if variant == "probe" else TEMPLATE
        start = time.perf_counter()
        try:
            template = room.create_template(
                adv,
                collab["id"],
                "audit",
                sql,
                epsilon=EPSILON,
                delta=DELTA,
                classification=CLASSIFICATION,
                max_mia_score=MAX_MIA_SCORE,
            )
        except Exception as exc:  # noqa: BLE001 - the check refused it: the same in both worlds
            return {"refused": type(exc).__name__, "seconds": time.perf_counter() - start, **_nothing()}
        for actor in (pub, adv):
            room.approve_template(actor, template["id"], template["hash"])
        job = start_job(room, adv, template["id"], seed=seed)
        if variant == "known_seed":
            with room.transaction() as s:  # the broken room draws seed 0, which the attacker knows
                s.get(Job, job["id"]).seed = 0
        start = time.perf_counter()
        with injected(variant, game):
            run_job(room, job["id"])
        seconds = time.perf_counter() - start
        seen = get_job(room, pub, job["id"])
        budget = room.get_table(pub, people["id"])
        return {
            "state": seen["state"],
            "category": seen["category"],
            "refunded": seen["budget_released"],
            "rows_synthetic": seen["rows_synthetic"],
            "compute_seconds": seen["compute_seconds"],
            "summary_seen": seen["summary"] is not None,
            "epsilon_spent": budget["epsilon_spent"],
            "metering": [e["rows_synthetic"] for e in metering(room, pub, collab["id"])["entries"]],
            "audit": [e["action"] for e in audit_log(room, pub, collab["id"])["entries"]],
            "seconds": seconds,
            "refused": None,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _nothing() -> dict:
    return {
        "state": None,
        "category": None,
        "refunded": None,
        "rows_synthetic": None,
        "compute_seconds": None,
        "summary_seen": False,
        "epsilon_spent": 0.0,
        "metering": [],
        "audit": [],
    }


# -- statistics --------------------------------------------------------------------------------
@dataclass
class Thresholds:
    rows: float  # median sample size of the pilot on D
    time: float  # median compute seconds of the pilot on D
    seed_rows: dict[bool, int | None]  # the sample size a seed-0 run gives on D (False) and D' (True)


def statistics(out: dict, th: Thresholds) -> dict[str, bool]:
    rows = out["rows_synthetic"]
    seed_hit = rows is not None and th.seed_rows[True] != th.seed_rows[False] and rows == th.seed_rows[True]
    return {
        "state": out["state"] == "failed",
        "refund": bool(out["refunded"]),
        "rows": rows is not None and rows > th.rows,
        "time": out["compute_seconds"] is not None and out["compute_seconds"] > th.time,
        "seed": bool(seed_hit),
    }


@dataclass
class RoomConfig:
    variant: str
    runs: int
    hits: dict[str, list[int]] = field(default_factory=lambda: {s: [0, 0] for s in STATISTICS})  # [D, D']
    seconds: float = 0.0
    refused: int = 0
    leaks: list[str] = field(default_factory=list)  # fields a non-receiver should never see

    @property
    def broken(self) -> bool:
        return self.variant in TARGET

    def bounds(self) -> dict[str, float]:
        alpha = (1.0 - CONFIDENCE) / (2 * len(STATISTICS))  # Bonferroni: statistics x two rates
        return {s: epsilon_lower_bound(d, self.runs - dp, self.runs, DELTA, alpha) for s, (d, dp) in self.hits.items()}

    def ceiling(self) -> float:
        alpha = (1.0 - CONFIDENCE) / (2 * len(STATISTICS))
        return epsilon_lower_bound(0, 0, self.runs, DELTA, alpha)

    def empirical(self) -> tuple[str, float]:
        bounds = self.bounds()
        if self.broken:
            return TARGET[self.variant], bounds[TARGET[self.variant]]
        return max(bounds.items(), key=lambda kv: kv[1])

    def separating(self) -> list[str]:
        """Statistics that told the worlds apart in every run: a leak however few the runs (the
        bound alone cannot exceed :meth:`ceiling`)."""
        return [s for s, (d, dp) in self.hits.items() if abs(dp - d) == self.runs]

    def passed(self) -> bool:
        eps = self.empirical()[1]
        if self.broken:
            return eps > EPSILON
        return eps <= EPSILON and not self.leaks and not self.separating()


def _init_room_worker(cache_dir: str, anonymeter: bool) -> None:
    """:func:`audit._init_worker`, and without the anonymeter sidecar unless asked: its risks feed
    only the non-DP summary, which the attacker (no receiver) never sees, and its ~30 s per job
    would dominate the audit's time."""
    if not anonymeter:
        from synthroom.evaluation.sidecar import ENV_VAR

        os.environ[ENV_VAR] = os.devnull + "-no-anonymeter"
    _init_worker(cache_dir)


def thresholds(pool, pilot_runs: int) -> Thresholds:
    """Fixed before the game: the sample-size and time medians of a pilot on ``D``, and the
    attacker's own seed-0 runs on ``D`` and ``D'``."""
    pilot = list(pool.map(play, [("as shipped", False, None)] * pilot_runs))
    seeded = list(pool.map(play, [("as shipped", False, 0), ("as shipped", True, 0)]))
    rows = float(np.median([p["rows_synthetic"] for p in pilot]))
    time_median = float(np.median([p["compute_seconds"] for p in pilot]))
    return Thresholds(rows, time_median, {False: seeded[0]["rows_synthetic"], True: seeded[1]["rows_synthetic"]})


def run_room_audit(
    runs: int,
    broken_runs: int,
    workers: int,
    pilot_runs: int,
    *,
    anonymeter: bool = False,
    variants: tuple[str, ...] = VARIANTS,
    log=None,
) -> tuple[list[RoomConfig], Thresholds]:
    log = log or (lambda message: print(message, flush=True))
    configs = [RoomConfig(v, runs if v == "as shipped" else broken_runs) for v in variants]
    JAX_CACHE.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_room_worker, initargs=(str(JAX_CACHE), anonymeter)
    ) as pool:
        th = thresholds(pool, pilot_runs)
        log(f"thresholds: rows > {th.rows:.1f}, seconds > {th.time:g}, seed-0 sample sizes {th.seed_rows}")
        tasks, owners = [], []
        for c in configs:
            for _ in range(c.runs):
                for world in (0, 1):  # interleaved, so drifting machine load hits both worlds alike
                    tasks.append((c.variant, bool(world), None))
                    owners.append((c, world))
        log(f"{len(configs)} configurations, {len(tasks)} jobs on {workers} workers")
        start = time.perf_counter()
        for done, ((c, world), out) in enumerate(zip(owners, pool.map(play, tasks)), 1):
            for s, hit in statistics(out, th).items():
                c.hits[s][world] += int(hit)
            c.seconds += out["seconds"]
            c.refused += int(out["refused"] is not None)
            if out["summary_seen"] and "summary" not in c.leaks:
                c.leaks.append("summary")
            if done % 20 == 0:
                log(f"  {done}/{len(tasks)} jobs, {time.perf_counter() - start:.0f} s")
    return configs, th


def table(configs: list[RoomConfig]) -> str:
    head = (
        "| variant | ε claimed | runs per side | statistic | hits on D' / D | empirical ε (95% lower bound) | "
        "all statistics (ε bounds) | detectable at most | verdict |"
    )
    lines = [head, "|" + "---|" * 9]
    for c in configs:
        stat, eps = c.empirical()
        d, dp = c.hits[stat]
        others = ", ".join(f"{s} {b:.2f}" for s, b in c.bounds().items())
        if c.refused:
            others += f"; template refused by the checks in {c.refused} of {2 * c.runs} plays"
        if not c.broken and c.separating():
            others += f"; {', '.join(c.separating())} told the worlds apart in every run"
        verdict = ("caught" if c.passed() else "NOT CAUGHT") if c.broken else ("ok" if c.passed() else "EXCEEDS CLAIM")
        lines.append(
            f"| {c.variant} | {EPSILON:g} | {c.runs} | {stat} | {dp} / {d} | {eps:.2f} | {others} | "
            f"{c.ceiling():.2f} | {verdict} |"
        )
    return "\n".join(lines)


def summary(configs: list[RoomConfig]) -> tuple[str, bool]:
    shipped = [c for c in configs if not c.broken]
    broken = [c for c in configs if c.broken]
    caught = sum(c.passed() for c in broken)
    worst = max((c.empirical()[1] for c in shipped), default=0.0) / EPSILON
    ok = caught == len(broken) and all(c.passed() for c in shipped)
    return (
        f"room audit: {len(shipped)} shipped configurations, {caught} of {len(broken)} broken variants caught, "
        f"max empirical/claimed epsilon {worst:.2f}"
    ), ok


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="The room audit (bench/audit.py --room).")
    parser.add_argument("--room", action="store_true")
    parser.add_argument("--quick", action="store_true", help="enough jobs to catch both broken variants")
    parser.add_argument("--runs", type=int, help="jobs per side for the shipped room (default 10 quick, 200 full)")
    parser.add_argument(
        "--broken-runs",
        type=int,
        help="jobs per side for each broken variant and the probe (default 20 quick, 50 full)",
    )
    parser.add_argument("--pilot-runs", type=int, default=5, help="jobs on D that fix the rows and time thresholds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which configurations to play (comma-separated)")
    parser.add_argument("--anonymeter", action="store_true", help="evaluate with the anonymeter sidecar too (slow)")
    parser.add_argument(
        "--write", action="store_true", help="write the table to bench/RESULTS.md (the full run always does)"
    )
    args = parser.parse_args(argv)
    runs = args.runs or (10 if args.quick else 200)
    broken_runs = args.broken_runs or (20 if args.quick else 50)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    start = time.perf_counter()
    variants = tuple(v.strip() for v in args.variants.split(","))
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    configs, th = run_room_audit(
        runs, broken_runs, args.workers, args.pilot_runs, anonymeter=args.anonymeter, variants=variants
    )
    wall = time.perf_counter() - start
    jobs = sum(2 * c.runs for c in configs) + args.pilot_runs + 2
    text = table(configs)
    line, ok = summary(configs)
    command = " ".join(["python bench/audit.py", *argv])
    note = (
        f"`{command}` ({runs} jobs per side as shipped, {broken_runs} for the probe and each broken variant; "
        f"thresholds: rows > "
        f"{th.rows:.1f}, compute seconds > {th.time:g}, seed-0 sample sizes D {th.seed_rows[False]} / "
        f"D' {th.seed_rows[True]}): {jobs} jobs in {wall / 60:.1f} min on {args.workers} workers."
    )
    print(text)
    print(note)
    if args.write or not args.quick:
        write_results(
            f"{note}\n\n{text}\n\n`{line}`", marker="room-audit", anchor="<!-- filled in by the room audit -->"
        )
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
