"""Empirical differential-privacy audit: can anyone tell a table from the same table plus one row?

The distinguishing game. ``D`` is a small table and ``D'`` is ``D`` plus one *canary* row built
to be as exposed as possible:

* a category value at the *edge* of the selection threshold: ``D`` holds it on exactly
  ``floor(tau)`` rows (``tau`` = the partition-selection threshold, read from a pilot run's
  public ledger), so ``D'`` holds it on one row more, just above ``tau``;
* a category value no other row has, and the rare class of the predictive column;
* numbers far outside the data (their public grid cells are empty in ``D``).

The full synthesizer (default settings: DP discretisation, category selection, structure
selection, estimation) is fitted many times on each table with fresh seeds (seeded runs draw
the same distributions as the secure samplers of a release, from numpy, so the game is
reproducible; ``bench/audit_mechanisms.py`` audits the secure samplers themselves). The attacker sees
what a user may publish (the fitted model, which ``--save-model`` writes and which is as private
as the synthetic data) and guesses "``D'``" from three statistics, each with a threshold fixed
in advance:

* ``category``: the edge value or the unique value is among the released categories;
* ``range``: the grid cell of a canary number is modelled (the bins reach it);
* ``rows``: the model's DP row count exceeds ``|D| + 0.5``.

From each statistic's false-positive and false-negative counts, Clopper-Pearson upper bounds
give the empirical lower bound on epsilon at the synthesizer's delta,
``max(ln((1 - delta - FNR) / FPR), ln((1 - delta - FPR) / FNR))``. All bounds of one
configuration hold together with 95% confidence (Bonferroni over the statistics and the two
rates). A correct implementation must stay at or below the claimed epsilon; the same game on the
deliberately broken variants of :mod:`synthroom.privacy.faults` (at claimed epsilon 1) must
exceed it, which shows that the game can see a leak.

    python bench/audit.py --quick      # ~ a few hundred fits, minutes on 2 cores
    python bench/audit.py              # the full run (about an hour); writes bench/RESULTS.md
    python bench/audit.py --room --quick   # the clean room's job path (bench/audit_room.py)

Exit code 1 when a broken variant goes uncaught or an empirical bound exceeds its claim.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
JAX_CACHE = BENCH / "out" / "jax-cache"
DELTA = 1e-9  # the synthesizer's default delta
CONFIDENCE = 0.95
STATISTICS = ("category", "range", "rows")
KINDS = ("categorical-heavy", "numeric-heavy")
EPSILONS = (1.0, 4.0, 10.0)
FAULTS = ("no_measurement_noise", "noiseless_category_selection", "numeric_bounds_from_data")
BROKEN_EPSILON = 1.0
EDGE_VALUE, UNIQUE_VALUE = "lighthouse", "diamond"
BASE_ROWS = 1000


# -- the neighbouring tables -------------------------------------------------------------------
@dataclass(frozen=True)
class Game:
    """``D`` (``table``), the canary row that makes ``D'``, and what the attacker looks for."""

    kind: str
    schema: dict
    table: pd.DataFrame
    canary: dict
    edge_column: str
    categories: dict[str, str]  # column -> canary value that D's release never needs
    extremes: dict[str, float]  # column -> canary number far outside D

    def world(self, with_canary: bool) -> pd.DataFrame:
        if not with_canary:
            return self.table
        return pd.concat([self.table, pd.DataFrame([self.canary])], ignore_index=True)


def build_game(kind: str, edge_count: int, seed: int = 0) -> Game:
    """The table ``D`` of one kind, with ``edge_count`` rows holding the edge value."""
    rng = np.random.default_rng(seed)
    n = BASE_ROWS
    target = rng.choice(["no", "yes"], n, p=[0.75, 0.25])
    if kind == "categorical-heavy":
        cols = {
            "region": rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "plan": np.where(
                target == "yes", rng.choice(["basic", "premium"], n), rng.choice(["basic", "standard"], n)
            ),
            "channel": rng.choice(["web", "store"], n, p=[0.7, 0.3]),
            "spend": np.round(rng.gamma(2.0, 40.0, n)).astype(np.int64) + 5,
        }
        edge_column, kinds = (
            "region",
            {"region": "categorical", "plan": "categorical", "channel": "categorical", "spend": "numerical"},
        )
        canary = {"region": EDGE_VALUE, "plan": UNIQUE_VALUE, "channel": "store", "spend": 10_000_000}
        categories, extremes = {"region": EDGE_VALUE, "plan": UNIQUE_VALUE}, {"spend": 10_000_000.0}
    elif kind == "numeric-heavy":
        cols = {
            "age": rng.integers(18, 91, n),
            "income": np.round(rng.lognormal(10.5, 0.5, n), 2),
            "hours": np.clip(np.round(rng.normal(40, 8, n)), 1, 80).astype(np.int64),
            "segment": rng.choice(["a", "b", "c"], n),
        }
        edge_column, kinds = (
            "segment",
            {"age": "numerical", "income": "numerical", "hours": "numerical", "segment": "categorical"},
        )
        canary = {"age": 999, "income": 2.5e9, "hours": -40, "segment": EDGE_VALUE}
        categories, extremes = {"segment": EDGE_VALUE}, {"age": 999.0, "income": 2.5e9, "hours": -40.0}
    else:
        raise ValueError(f"unknown table kind {kind!r}")
    table = pd.DataFrame({**cols, "label": target})
    edge_rows = table.sample(edge_count, random_state=seed).index  # these rows all have label "no" below
    table.loc[edge_rows, edge_column] = EDGE_VALUE
    table.loc[edge_rows, "label"] = "no"  # the canary's "yes" with the edge value is a rare combination
    canary["label"] = "yes"
    schema = {
        "target": "label",
        "columns": [{"name": c, "type": k} for c, k in kinds.items()] + [{"name": "label", "type": "categorical"}],
    }
    return Game(kind, schema, table, canary, edge_column, categories, extremes)


# -- one run of the game ------------------------------------------------------------------------
def observe(synth, game: Game) -> dict[str, bool]:
    """The attacker's three yes/no statistics on one fitted (publishable) model."""
    from synthroom.engine.grid import LOG_GRID

    released = any(v in synth.columns_[c].coding.values for c, v in game.categories.items())
    reached = False
    for col, value in game.extremes.items():
        cell = int(LOG_GRID.cell_of(np.array([value]))[0])
        reached |= synth.columns_[col].coding.pieces.nsub[cell] > 0
    rows = float(synth.model_.total) > len(game.table) + 0.5
    return {"category": bool(released), "range": bool(reached), "rows": bool(rows)}


_GAMES: dict[tuple[str, int], Game] = {}
_FITS_SINCE_CLEAR = [0]
CLEAR_EVERY = 100  # fits; compiled programs kept longer exhaust the process's memory maps


def _game(kind: str, edge_count: int) -> Game:
    if (kind, edge_count) not in _GAMES:
        _GAMES[(kind, edge_count)] = build_game(kind, edge_count)
    return _GAMES[(kind, edge_count)]


def play(task: tuple) -> dict:
    """Fit once on ``D`` or ``D'`` (with a fault injected, for a broken variant); observe."""
    kind, edge_count, epsilon, fault, with_canary, seed = task
    import contextlib

    from synthroom import Synthesizer
    from synthroom.privacy import faults

    game = _game(kind, edge_count)
    _FITS_SINCE_CLEAR[0] += 1
    if _FITS_SINCE_CLEAR[0] % CLEAR_EVERY == 0:
        import jax

        jax.clear_caches()  # the on-disk cache still holds every compiled program
    start = time.perf_counter()
    with faults.injected(fault) if fault else contextlib.nullcontext():
        synth = Synthesizer(game.schema, epsilon=epsilon, delta=DELTA, seed=seed).fit(game.world(with_canary))
    marked = bool(faults.broken_by(synth.privacy_report()))
    if marked != bool(fault):
        raise RuntimeError(f"fault {fault!r} but the ledger's fault mark is {marked}")
    return {"seconds": time.perf_counter() - start, **observe(synth, game)}


def selection_threshold(task: tuple) -> float:
    """``tau`` of the edge column's partition selection, from a pilot run's public ledger."""
    kind, epsilon = task
    from synthroom import Synthesizer
    from synthroom.privacy.mechanisms import threshold_for

    game = _game(kind, 0)
    report = Synthesizer(game.schema, epsilon=epsilon, delta=DELTA, seed=0).fit(game.table).privacy_report()
    step = f"categories of {game.edge_column!r}"
    charge = next(c for c in report["charges"] if c["step"].startswith(step))
    return threshold_for(charge["noise"], charge["delta"])


def _init_worker(cache_dir: str) -> None:
    """One thread per worker, and JAX's on-disk compilation cache shared by the workers."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax

    import synthroom.synthesis.model as model  # sets its own JAX options first

    # ``release_compiled`` frees compiled programs after each fit to cap one fit's memory; it
    # changes no output. Here the same few structures recur hundreds of times, so keep them.
    if hasattr(model, "release_compiled"):
        model.release_compiled = lambda: None
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_enable_compilation_cache", True)


# -- bounds -----------------------------------------------------------------------------------
def rate_upper_bound(errors: int, trials: int, alpha: float) -> float:
    """One-sided Clopper-Pearson upper bound, at level ``1 - alpha``, of an error rate."""
    if errors >= trials:
        return 1.0
    return float(stats.beta.ppf(1.0 - alpha, errors + 1, trials - errors))


def epsilon_lower_bound(false_pos: int, false_neg: int, trials: int, delta: float, alpha: float) -> float:
    """Empirical epsilon: no (epsilon, delta)-DP mechanism allows error rates this low."""
    fpr, fnr = rate_upper_bound(false_pos, trials, alpha), rate_upper_bound(false_neg, trials, alpha)
    best = 0.0
    for num, den in ((1.0 - delta - fnr, fpr), (1.0 - delta - fpr, fnr)):
        if num > 0 and den > 0:
            best = max(best, math.log(num / den))
    return best


@dataclass
class Config:
    """One configuration of the game and its tallies."""

    kind: str
    epsilon: float
    fault: str | None
    runs: int
    edge_count: int = 0
    hits: dict[str, list[int]] = field(default_factory=lambda: {s: [0, 0] for s in STATISTICS})  # [D, D']
    seconds: float = 0.0

    def bounds(self) -> dict[str, float]:
        alpha = (1.0 - CONFIDENCE) / (2 * len(STATISTICS))  # Bonferroni: statistics x two rates
        return {s: epsilon_lower_bound(d, self.runs - dp, self.runs, DELTA, alpha) for s, (d, dp) in self.hits.items()}

    def empirical(self) -> tuple[str, float]:
        stat, eps = max(self.bounds().items(), key=lambda kv: kv[1])
        return stat, eps

    def ceiling(self) -> float:
        alpha = (1.0 - CONFIDENCE) / (2 * len(STATISTICS))
        return epsilon_lower_bound(0, 0, self.runs, DELTA, alpha)

    def passed(self) -> bool:
        eps = self.empirical()[1]
        return eps > self.epsilon if self.fault else eps <= self.epsilon


# -- the audit --------------------------------------------------------------------------------
def run_audit(runs: int, broken_runs: int, workers: int, seed: int, log=print) -> list[Config]:
    configs = [Config(k, e, None, runs) for k in KINDS for e in EPSILONS]
    configs += [Config(k, BROKEN_EPSILON, f, broken_runs) for k in KINDS for f in FAULTS]
    JAX_CACHE.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(str(JAX_CACHE),)
    ) as pool:
        pilots = sorted({(c.kind, c.epsilon) for c in configs})
        taus = dict(zip(pilots, pool.map(selection_threshold, pilots)))
        tasks, owners = [], []
        for i, c in enumerate(configs):
            c.edge_count = int(math.floor(taus[(c.kind, c.epsilon)]))
            for r in range(c.runs):
                for world in (0, 1):
                    run_seed = int(np.random.SeedSequence([seed, i, r, world]).generate_state(1)[0])
                    tasks.append((c.kind, c.edge_count, c.epsilon, c.fault, bool(world), run_seed))
                    owners.append((c, world))
        log(f"{len(configs)} configurations, {len(tasks)} fits on {workers} workers")
        done, start = 0, time.perf_counter()
        for (c, world), out in zip(owners, pool.map(play, tasks, chunksize=4)):
            for s in STATISTICS:
                c.hits[s][world] += int(out[s])
            c.seconds += out["seconds"]
            done += 1
            if done % 100 == 0:
                log(f"  {done}/{len(tasks)} fits, {time.perf_counter() - start:.0f} s")
    return configs


def table(configs: list[Config]) -> str:
    head = (
        "| table | variant | ε claimed | runs per side | statistic | hits on D' / D | "
        "empirical ε (95% lower bound) | detectable at most | verdict |"
    )
    lines = [head, "|" + "---|" * 9]
    for c in configs:
        stat, eps = c.empirical()
        d, dp = c.hits[stat]
        verdict = ("caught" if c.passed() else "NOT CAUGHT") if c.fault else ("ok" if c.passed() else "EXCEEDS CLAIM")
        lines.append(
            f"| {c.kind} | {c.fault or 'as shipped'} | {c.epsilon:g} | {c.runs} | {stat} | "
            f"{dp} / {d} | {eps:.2f} | {c.ceiling():.2f} | {verdict} |"
        )
    return "\n".join(lines)


def summary(configs: list[Config]) -> tuple[str, bool]:
    correct = [c for c in configs if not c.fault]
    broken = [c for c in configs if c.fault]
    caught = sum(c.passed() for c in broken)
    ratio = max(c.empirical()[1] / c.epsilon for c in correct)
    ok = caught == len(broken) and all(c.passed() for c in correct)
    line = (
        f"audit: {len(correct)} configurations, {caught} of {len(broken)} broken variants caught, "
        f"max empirical/claimed epsilon {ratio:.2f}"
    )
    return line, ok


def write_results(text: str, path: Path = RESULTS, marker: str = "audit", *, anchor: str | None = None) -> None:
    """Replace the ``marker`` block of RESULTS.md (between its markers), or put one in place of
    ``anchor`` (a placeholder line), or append one."""
    block = f"<!-- {marker}:begin -->\n{text}\n<!-- {marker}:end -->"
    current = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"<!-- {re.escape(marker)}:begin -->.*?<!-- {re.escape(marker)}:end -->", re.S)
    if pattern.search(current):
        new = pattern.sub(lambda _m: block, current)
    elif anchor and anchor in current:
        new = current.replace(anchor, block, 1)
    else:
        new = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--room" in argv:  # the clean room's whole job path: bench/audit_room.py
        sys.path.insert(0, str(BENCH))
        from audit_room import main as room_main

        return room_main(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a few hundred fits (minutes), enough to catch the broken variants"
    )
    parser.add_argument(
        "--runs", type=int, help="fits per table and side for each epsilon (default 10 quick, 500 full)"
    )
    parser.add_argument(
        "--broken-runs", type=int, help="fits per table for each broken variant (default 20 quick, 100 full)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026, help="master seed; every fit gets its own seed from it")
    parser.add_argument(
        "--write", action="store_true", help="write the table to bench/RESULTS.md (the full run always does)"
    )
    args = parser.parse_args(argv)
    runs = args.runs or (10 if args.quick else 500)
    broken_runs = args.broken_runs or (20 if args.quick else 100)
    start = time.perf_counter()
    configs = run_audit(runs, broken_runs, args.workers, args.seed)
    wall = time.perf_counter() - start
    fits = sum(2 * c.runs for c in configs)
    text = table(configs)
    line, ok = summary(configs)
    command = " ".join(["python bench/audit.py", *argv])
    note = (
        f"`{command}` (seed {args.seed}, {runs} fits per side for each epsilon, {broken_runs} for each "
        f"broken variant): {fits} fits in {wall / 60:.1f} min on {args.workers} workers."
    )
    print(text)
    print(note)
    if args.write or not args.quick:
        write_results(f"{note}\n\n{text}\n\n`{line}`")
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
