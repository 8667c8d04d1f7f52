"""White-box audit of each DP mechanism, in its own terms: is the noise worth what was charged?

An end-to-end distinguishing game (``bench/audit.py``) at delta 1e-9 cannot see a factor sqrt(2)
in a Gaussian's noise: the error rates it would need are far below what any number of runs can
measure. This audit looks inside instead. For each mechanism it runs the real code path on two
neighbouring inputs many times:

1. *contribution bounding*: ``D`` is a table of people (one row each); ``D'`` adds one person
   with ``3 k`` rows, and the room's executor (:func:`synthroom.sql.run_template`, cap ``k``)
   keeps ``k`` of them, exactly as a room job does;
2. *counting*: :class:`~synthroom.engine.CountingSource` on the capped result;
3. *the charging entry point*, the function the synthesizer calls, with OpenDP's secure noise
   (the release path) and an accountant whose unit is one person of up to ``k`` rows.

and estimates the privacy parameter from the two output distributions:

* **Gaussian mechanisms** (partition selection's counts, a numeric column's grid histogram, a
  measured marginal): the output on the cell the extra person moves, ``t``, is Gaussian with the
  same scale under both inputs; ``mu = (mean t' - mean t) / sd`` is its Gaussian-DP parameter,
  ``rho = mu^2 / 2``. The claim is ``sqrt(2 rho)`` of the step's ledger charge.
* **Exponential mechanism** (clique selection): two candidate cliques whose scores the extra
  person moves in opposite directions by ``k`` (the worst case); the log-odds of picking the
  first move by ``epsilon_hat``, its bounded-range parameter (``rho = epsilon^2 / 8``). The claim
  is the ledger's epsilon.
* **Selection threshold's delta**: the extra person's ``k`` rows sit on values nobody else holds
  (all on one value, or one on each of ``k`` values); the rate at which any of them is released
  must stay at or below the delta charged. Measured with 0.05 given per column (the first
  selection stage is charged half of it, 0.025, the claim audited here), not the 5e-10 of a real run, so that the rate is measurable in thousands of runs; the threshold's
  formula is the same for every delta.

Every estimate comes with a 99% confidence interval (normal approximation for mu and epsilon,
Clopper-Pearson for a rate). A shipped mechanism passes when its interval reaches down to its
claim (the estimate is not significantly above it); since the mechanisms are tight, their
estimates should sit *at* the claim (ratio about 1). The broken variants of
:mod:`synthroom.privacy.faults` must be caught (the interval's lower end above the claim):
a sensitivity declared sqrt(2) below the truth, group privacy scaled by k instead of k^2, and a
selection threshold set for one row whatever the cap.

    python bench/audit_mechanisms.py --quick   # 1,000 runs per side, a few minutes
    python bench/audit_mechanisms.py           # 10,000 runs per side; writes bench/RESULTS.md

Exit code 1 when a broken variant goes uncaught or a shipped mechanism exceeds its claim.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from audit import RESULTS, write_results  # noqa: E402  (bench/audit.py: the library audit)

CONFIDENCE = 0.99
Z = float(stats.norm.isf((1 - CONFIDENCE) / 2))
PEOPLE = 600
GROUP_K = 4  # the cap of rows per person in the group-privacy configurations
RHO = 0.5  # each Gaussian step's charge: mu = 1 claimed
EPSILON_EM = 2.0
DELTA_MEASURED = 0.05  # the claimed per-column delta of the threshold configurations (measurable)
SCHEMA = {
    "target": "y",
    "columns": [
        {"name": "c1", "type": "categorical"},
        {"name": "c2", "type": "categorical"},
        {"name": "num", "type": "numerical", "min": 0, "max": 1000},
        {"name": "y", "type": "categorical"},
    ],
}
SHARED_ROW = {"c1": "a", "c2": "b", "num": 37.0, "y": "yes"}  # where the extra person's rows go


# -- the neighbouring inputs ---------------------------------------------------------------------
def people(n: int = PEOPLE, seed: int = 0) -> pd.DataFrame:
    """``D``: one row per person, common values only (each held by many people)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "person": np.arange(n),
            "c1": rng.choice(["a", "b", "c"], n),
            "c2": rng.choice(["a", "b", "c"], n),
            "num": rng.integers(20, 70, n).astype(float),
            "y": rng.choice(["yes", "no"], n),
        }
    )


def extra_person(k: int, placement: str) -> pd.DataFrame:
    """The person ``D'`` adds: ``3 k`` rows (the cap keeps ``k``).

    ``shared``: every row the same, on values others hold (the L2-worst case: k on one cell);
    ``own-one``: every row on one value of ``c1`` nobody else holds; ``own-each``: each row on a
    value of its own (after the cap: k values held by k rows, one each)."""
    rows = []
    for i in range(3 * k):
        own = {"own-one": "own-0", "own-each": f"own-{i}"}.get(placement)
        rows.append({"person": -1, **SHARED_ROW, **({"c1": own} if own else {})})
    return pd.DataFrame(rows)


def bounded(table: pd.DataFrame, cap: int, workdir: Path, name: str) -> pd.DataFrame:
    """The room's contribution bounding: the template run by the sandbox with ``cap`` rows per person."""
    from synthroom.sql import Source, TableColumns, check_template, run_template, snapshot_file

    path = workdir / f"{name}.parquet"
    table.to_parquet(path)
    columns = tuple(table.columns)
    allowed = tuple(c for c in columns if c != "person") + ("person",)
    checked = check_template(
        "SELECT c1, c2, num, y FROM t",
        {"t": TableColumns(columns, allowed, "person")},
        [c["name"] for c in SCHEMA["columns"]],
    )
    snapshot = snapshot_file("parquet", path, list(allowed), workdir / f"{name}-room")
    source = Source("t", snapshot.path, snapshot.sha256, allowed, "person")
    return run_template(checked, [source], cap=cap, seed=0).frame


# -- one run of each mechanism's real code path --------------------------------------------------
@contextlib.contextmanager
def recording(module, name: str):
    """Record every return value of ``module.name`` while the real function runs."""
    original, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out)
        return out

    setattr(module, name, wrapper)
    try:
        yield calls
    finally:
        setattr(module, name, original)


@dataclass
class Setting:
    """What each run of one mechanism needs: the counting source, the schema, the person's cell."""

    source: object
    specs: dict
    cap: int


def run_partition_counts(s: Setting, acc, noise) -> float:
    """learn_categorical (category counts + partition selection); the noisy count of value 'a'."""
    from synthroom.synthesis import discretize, selection

    with recording(selection, "thresholded_counts") as calls:
        discretize.learn_categorical(s.source, s.specs["c1"], acc, noise, RHO, DELTA_MEASURED)
    return float(calls[0][0][s.specs["observed_index"]])


def run_partition_release(s: Setting, acc, noise) -> float:
    """learn_categorical; 1 when any value held only by the extra person is released."""
    from synthroom.synthesis import discretize

    column = discretize.learn_categorical(s.source, s.specs["c1"], acc, noise, RHO, DELTA_MEASURED)
    return float(any(v is not None and v.startswith("own-") for v in column.coding.values))


def run_grid_histogram(s: Setting, acc, noise) -> float:
    """grid_histogram (learn_numeric's level 1: grid counts + Gaussian); the person's cell."""
    from synthroom.synthesis import discretize

    spec = s.specs["num"]
    _, possible, noisy, _ = discretize.grid_histogram(s.source, spec, acc, noise, RHO)
    grid, _ = discretize.grid_and_clip(spec)
    return float(noisy[int(np.searchsorted(possible, grid.cell_of(np.array([SHARED_ROW["num"]]))[0]))])


def run_marginal(s: Setting, acc, noise) -> float:
    """structure.measure_cliques (marginal counts + Gaussian) of (c1, y); the person's cell."""
    from synthroom.synthesis import structure

    (m,) = structure.measure_cliques(s.source, acc, noise, [("c1", "y")], RHO, "marginal")
    return float(m.noisy[s.specs["codes"]["c1"], s.specs["codes"]["y"]])


def run_selection(s: Setting, acc, noise) -> float:
    """clique_scores + exponential_choice between (c1, y) and (c2, y); 1 when (c1, y) is picked.

    The predictions are fixed tables (as the anchors are, once measured): under (c1, y) every
    cell of D is predicted 2k + 10 rows low, under (c2, y) 2k + 10 + k/cells high; the person's k
    rows raise the first score by k and lower the second by k (the opposite-direction worst
    case), and in D the scores differ by k, so the pick is a fair coin halfway between."""
    from synthroom.privacy.mechanisms import exponential_choice
    from synthroom.synthesis.structure import clique_scores

    cands = [("c1", "y"), ("c2", "y")]
    scores = clique_scores(s.source, cands, s.specs["predict"], s.specs["sizes"], 1.0)
    return float(exponential_choice(acc, noise, scores, EPSILON_EM, 1.0, "select clique") == 0)


# -- estimates -----------------------------------------------------------------------------------
def mu_estimate(t0: np.ndarray, t1: np.ndarray) -> tuple[float, float, float]:
    """Gaussian-DP mu from two samples with a common scale: shift / pooled sd, with its CI.

    Var(mu_hat) ~ 2/n + mu^2 / (4 n) for n runs per side (the mean difference, and the pooled
    sd's relative error on 2n - 2 degrees of freedom)."""
    n = min(t0.size, t1.size)
    sd = math.sqrt((t0.var(ddof=1) + t1.var(ddof=1)) / 2)
    mu = (t1.mean() - t0.mean()) / sd
    se = math.sqrt(2 / n + mu**2 / (4 * n))
    return float(mu), float(mu - Z * se), float(mu + Z * se)


def clopper_pearson(hits: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval of a rate."""
    a = (1 - confidence) / 2
    lo = 0.0 if hits == 0 else float(stats.beta.ppf(a, hits, n - hits + 1))
    hi = 1.0 if hits == n else float(stats.beta.ppf(1 - a, hits + 1, n - hits))
    return lo, hi


def epsilon_estimate(p0_hits: int, p1_hits: int, n: int) -> tuple[float, float, float]:
    """Bounded-range epsilon of a two-way pick: logit(p') - logit(p), with its CI (Clopper-Pearson
    intervals of both rates at the square root of the confidence, combined at their ends)."""

    def logit(p: float) -> float:
        p = min(max(p, 1e-12), 1 - 1e-12)
        return math.log(p / (1 - p))

    level = math.sqrt(CONFIDENCE)
    lo0, hi0 = clopper_pearson(p0_hits, n, level)
    lo1, hi1 = clopper_pearson(p1_hits, n, level)
    return logit(p1_hits / n) - logit(p0_hits / n), logit(lo1) - logit(hi0), logit(hi1) - logit(lo0)


# -- configurations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mechanism:
    name: str
    kind: str  # mu | epsilon | delta
    run: Callable
    step: str  # the ledger step the claim is read from (a prefix)
    placement: str = "shared"


MECHANISMS = {
    "partition selection (counts)": Mechanism(
        "partition selection (counts)", "mu", run_partition_counts, "categories of 'c1'"
    ),
    "grid histogram": Mechanism("grid histogram", "mu", run_grid_histogram, "histogram of 'num'"),
    "marginal": Mechanism("marginal", "mu", run_marginal, "marginal c1xy"),
    "clique selection": Mechanism("clique selection", "epsilon", run_selection, "select clique"),
    "threshold, k rows on one own value": Mechanism(
        "threshold, k rows on one own value", "delta", run_partition_release, "categories of 'c1'", "own-one"
    ),
    "threshold, one row on each of k own values": Mechanism(
        "threshold, one row on each of k own values", "delta", run_partition_release, "categories of 'c1'", "own-each"
    ),
}


@dataclass
class Config:
    mechanism: str
    k: int
    fault: str | None
    runs: int
    outputs: dict = field(default_factory=dict)  # side -> np.ndarray of statistics
    claim: float = float("nan")
    seconds: float = 0.0

    @property
    def mech(self) -> Mechanism:
        return MECHANISMS[self.mechanism]

    def estimate(self) -> tuple[float, float, float]:
        """(estimate, low, high) of the mechanism's parameter, in the claim's units."""
        if self.mech.kind == "mu":
            return mu_estimate(self.outputs[0], self.outputs[1])
        if self.mech.kind == "epsilon":
            return epsilon_estimate(int(self.outputs[0].sum()), int(self.outputs[1].sum()), self.runs)
        hits = int(self.outputs[1].sum())
        return (hits / self.runs, *clopper_pearson(hits, self.runs))

    def passed(self) -> bool:
        _, lo, _ = self.estimate()
        return lo > self.claim if self.fault else lo <= self.claim


def standard_configs(runs: int) -> list[Config]:
    shipped = [
        Config(m, k, None, runs)
        for m in ("partition selection (counts)", "grid histogram", "marginal", "clique selection")
        for k in (1, GROUP_K)
    ]
    shipped += [
        Config("threshold, k rows on one own value", 1, None, runs),
        Config("threshold, k rows on one own value", GROUP_K, None, runs),
        Config("threshold, one row on each of k own values", GROUP_K, None, runs),
    ]
    broken = [
        Config("marginal", 1, "sensitivity_under_declared", runs),
        Config("clique selection", 1, "sensitivity_under_declared", runs),
        Config("marginal", GROUP_K, "group_scaling_linear", runs),
        Config("partition selection (counts)", GROUP_K, "group_scaling_linear", runs),
        Config("threshold, k rows on one own value", GROUP_K, "threshold_for_one_row", runs),
    ]
    return shipped + broken


class Worlds:
    """The capped, counted neighbouring tables for each (cap, placement), built once."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.cache: dict = {}

    def setting(self, k: int, placement: str, with_person: bool) -> Setting:
        key = (k, placement, with_person)
        if key not in self.cache:
            from synthroom.engine import CountingSource
            from synthroom.schema import parse_schema

            base = people()
            table = pd.concat([base, extra_person(k, placement)], ignore_index=True) if with_person else base
            frame = bounded(table, k, self.workdir, f"k{k}-{placement}-{int(with_person)}")
            kinds = {c["name"]: c["type"] for c in SCHEMA["columns"]}
            source = CountingSource.open(frame, kinds)
            specs = {c.name: c for c in parse_schema(SCHEMA).columns}
            self.cache[key] = Setting(source, {**specs, **self._encoding(source, specs, k)}, k)
        return self.cache[key]

    def _encoding(self, source, specs, k: int) -> dict:
        """Encode with D's public categories (declared: no noise) and fix the selection's predictions
        from D's exact marginals (the auditor's white-box knowledge), identical for D and D'."""
        from synthroom.engine import CountingSource
        from synthroom.privacy import ZCDPAccountant
        from synthroom.schema import parse_schema
        from synthroom.synthesis.discretize import learn_categorical

        declared = {"c1": ["a", "b", "c"], "c2": ["a", "b", "c"], "y": ["no", "yes"]}
        schema = {
            **SCHEMA,
            "columns": [{**c, "categories": declared[c["name"]]} for c in SCHEMA["columns"] if c["name"] in declared],
        }
        acc = ZCDPAccountant(1.0, 1e-9)
        codings = {
            s.name: learn_categorical(source, s, acc, np.random.default_rng(0), 1.0, 0.0).coding
            for s in parse_schema(schema).columns
        }
        source.encode(codings)
        sizes = {name: c.size for name, c in codings.items()}
        codes = {name: list(declared[name]).index(SHARED_ROW[name]) for name in codings}
        if "d_marginals" not in self.cache:
            d = CountingSource.open(people().drop(columns="person"), {c["name"]: c["type"] for c in SCHEMA["columns"]})
            d.encode(codings)
            self.cache["d_marginals"] = dict(zip([("c1", "y"), ("c2", "y")], d.marginals([("c1", "y"), ("c2", "y")])))
            d.close()
        exact = self.cache["d_marginals"]
        low, cells = 2 * k + 10.0, sizes["c1"] * sizes["y"]  # (c2, y) has as many cells
        offsets = {("c1", "y"): low, ("c2", "y"): -(low + k / cells)}  # the scores differ by k in D

        def predict(clique):
            return exact[clique] - offsets[clique]

        observed, _ = source.category_counts("c1")
        return {"sizes": sizes, "codes": codes, "predict": predict, "observed_index": observed.index(SHARED_ROW["c1"])}

    def close(self) -> None:
        for value in self.cache.values():
            if isinstance(value, Setting):
                value.source.close()


def run_config(c: Config, worlds: Worlds) -> Config:
    """Run one configuration: ``runs`` times on each side (only D' for a delta), fresh secure noise."""
    from synthroom.privacy import ZCDPAccountant, faults
    from synthroom.privacy.noise import SecureNoise

    start = time.perf_counter()
    acc = ZCDPAccountant(10.0, 0.5, delta_threshold=0.25, unit_cap=c.k)
    noise = SecureNoise()
    sides = (1,) if c.mech.kind == "delta" else (0, 1)
    with faults.injected(c.fault) if c.fault else contextlib.nullcontext():
        for side in sides:
            setting = worlds.setting(c.k, c.mech.placement, bool(side))
            out = np.empty(c.runs)
            for r in range(c.runs):
                out[r] = c.mech.run(setting, acc, noise)
                charges = [ch for ch in acc.charges if ch.step.startswith(c.mech.step)]
                claim = _claim(c.mech.kind, charges[0])
                if not math.isnan(c.claim) and not math.isclose(claim, c.claim, rel_tol=1e-12):
                    raise RuntimeError(f"{c.mechanism}: the charge changed between runs")
                c.claim = claim
                if bool(faults.broken_by(acc.summary())) != bool(c.fault):
                    raise RuntimeError(f"fault {c.fault!r} and the ledger's fault mark disagree")
                acc.charges[:] = [ch for ch in acc.charges if ch.mechanism == faults.MECHANISM]
            c.outputs[side] = out
    c.seconds = time.perf_counter() - start
    return c


def _claim(kind: str, charge) -> float:
    """The parameter the ledger claims for one charge, in the estimate's units."""
    if kind == "mu":
        return math.sqrt(2 * charge.rho)
    if kind == "epsilon":
        return math.sqrt(8 * charge.rho)
    return charge.delta


def run_audit(runs: int, log=print, configs: list[Config] | None = None) -> list[Config]:
    configs = configs if configs is not None else standard_configs(runs)
    with tempfile.TemporaryDirectory(prefix="synthroom-audit-") as tmp:
        worlds = Worlds(Path(tmp))
        try:
            for c in configs:
                run_config(c, worlds)
                est, lo, hi = c.estimate()
                log(
                    f"  {c.mechanism}, k={c.k}, {c.fault or 'as shipped'}: {est:.3f} [{lo:.3f}, {hi:.3f}] "
                    f"vs claim {c.claim:.3g} ({c.seconds:.0f} s)"
                )
        finally:
            worlds.close()
    return configs


# -- report ----------------------------------------------------------------------------------------
def table(configs: list[Config]) -> str:
    head = (
        "| mechanism | k | variant | runs per side | parameter | claimed (ledger) | estimate | "
        f"{CONFIDENCE:.0%} interval | estimate / claim | verdict |"
    )
    lines = [head, "|" + "---|" * 10]
    for c in configs:
        est, lo, hi = c.estimate()
        param = {"mu": "mu", "epsilon": "epsilon (bounded range)", "delta": "delta (release rate)"}[c.mech.kind]
        verdict = ("caught" if c.passed() else "NOT CAUGHT") if c.fault else ("ok" if c.passed() else "EXCEEDS CLAIM")
        lines.append(
            f"| {c.mechanism} | {c.k} | {c.fault or 'as shipped'} | {c.runs} | {param} | {c.claim:.4g} | "
            f"{est:.4g} | [{lo:.4g}, {hi:.4g}] | {est / c.claim:.3f} | {verdict} |"
        )
    return "\n".join(lines)


def summary(configs: list[Config]) -> tuple[str, bool]:
    shipped = [c for c in configs if not c.fault]
    broken = [c for c in configs if c.fault]
    caught = sum(c.passed() for c in broken)
    within = sum(c.passed() for c in shipped)
    ratio = max(c.estimate()[0] / c.claim for c in shipped) if shipped else float("nan")
    ok = caught == len(broken) and within == len(shipped)
    line = (
        f"mechanism audit: {within} of {len(shipped)} shipped configurations within their claims "
        f"(max estimate/claim {ratio:.3f}), {caught} of {len(broken)} broken variants caught"
    )
    return line, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 runs per side (a few minutes)")
    parser.add_argument("--runs", type=int, help="runs per side and configuration (default 1,000 quick, 10,000 full)")
    parser.add_argument(
        "--write", action="store_true", help="write the table to bench/RESULTS.md (the full run always does)"
    )
    args = parser.parse_args(argv)
    runs = args.runs or (1000 if args.quick else 10_000)
    start = time.perf_counter()
    configs = run_audit(runs)
    wall = time.perf_counter() - start
    text = table(configs)
    line, ok = summary(configs)
    command = " ".join(["python bench/audit_mechanisms.py", *(argv if argv is not None else sys.argv[1:])])
    note = (
        f"`{command}`: {runs:,} runs per side for each of {len(configs)} configurations, OpenDP's secure "
        f"noise, {wall / 60:.1f} min."
    )
    print(text)
    print(note)
    if args.write or not args.quick:
        write_results(f"{note}\n\n{text}\n\n`{line}`", RESULTS, marker="audit-mechanisms")
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
