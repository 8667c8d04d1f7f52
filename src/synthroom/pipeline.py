"""Synthesize behind a release gate: hold out real rows, fit on the rest, evaluate, then release.

    run = synthesize_with_gate("customers.parquet", schema, epsilon=1, max_mia_score=0.6)
    if run.released: run.synthetic.to_parquet(...)
    write_report(run.report, "report.html")

**The split is per person.** Each privacy unit (each row, when there are no units) goes to the
holdout when the first 64 bits of HMAC-SHA256(key, unit id), read as a fraction of 2**64, are
below ``holdout_share``. The key is 32 bytes from the OS's secure generator, fresh for every run
and never stored or shown; only an explicit ``seed`` (reproducible experiments) derives it. A
row's unit id is the ``units`` value given with it, else the row's own content. So adding or
removing one person moves that person's rows and nobody else's: the training parts of two
neighbouring tables differ by that person's rows at most. The holdout's size is therefore
about, not exactly, ``holdout_share`` of the rows.

The split runs in the engine (:func:`synthroom.engine.split.split_table` on DuckDB,
:mod:`synthroom.engine.spark_split` on Spark; a file is never loaded into pandas): the rows are
typed as the counting source types them (a CSV's types come from the schema, never from its
content; a value that does not parse is missing), the training part is copied to a temporary
Parquet file that the synthesizer fits on (the folder is removed afterwards, also on failure),
and at most ``max_rows`` rows of each part (those with the lowest keyed hash: a random sample)
are read into pandas for the evaluation.

**The holdout-size check is DP.** The evaluation needs ``MIN_ROWS`` rows in each part. Before
the fit, both parts' rows are counted with Gaussian noise (:class:`HoldoutCheck`); unless both
noisy counts clear ``MIN_ROWS`` plus :data:`HOLDOUT_CHECK_Z` noise standard deviations, the
evaluation is skipped with a note and every requested gate refuses. Whether a run is evaluated
is thus a DP fact, not a free oracle on the row count (docs/evaluation.md gives the argument).

What is private and what is not: the synthesizer sees only the training part, and the synthetic
rows and model are ``(epsilon, delta)``-DP with respect to it. The evaluation reads raw training
and holdout rows; its real-data aggregates (the report) and the release decision are *not* DP.
The report is meant for the data owner, not for the people the synthetic data is shared with
(:mod:`synthroom.evaluation.disclosure` builds what those may see).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .progress import Progress, quiet
from .engine.counting import check_names
from .engine.split import check_units, cut, read_rows, split_table, unit_draws
from .errors import InputError
from .evaluation.result import EvaluationReport
from .evaluation.tables import MIN_ROWS
from .privacy import ZCDPAccountant
from .privacy.mechanisms import gaussian_counts, person_sensitivity, sigma_for
from .privacy.noise import Noise
from .schema import Schema, parse_schema
from .synthesis.selection import RowCount
from .synthesis.synthesizer import DEFAULT_DELTA, Synthesizer

DEFAULT_HOLDOUT_SHARE = 0.2  # the largest share a sized holdout takes (and the old fixed share)
HOLDOUT_ROWS = 3_000  # the holdout a sized split aims at: what the evaluation needs (docs/evaluation.md)
DEFAULT_MAX_ROWS = 50_000
KEY_BYTES = 32  # the split's HMAC key
HOLDOUT_CHECK_SHARE = 0.05  # of the run's rho, for the DP count of all rows (holdout size and check)
HOLDOUT_CHECK_Z = 8.0  # noise standard deviations above MIN_ROWS that both noisy counts must clear
# The split's own spread that the holdout's size allows for (holdout_share_for): without it, a 1,500-row table at
# epsilon 1 held out 20% (300 rows, std 15.5 by the split) against a check needing about 254, and about 3 runs in
# 1,000 were refused and charged (5 in 100 with 3 rows a person); with it, about 3 in 100,000.
SPLIT_Z = 4.0


@dataclass
class GatedRun:
    """The outcome of :func:`synthesize_with_gate`: the synthetic rows only when released."""

    released: bool
    synthetic: pd.DataFrame | None  # None when a gate refused the release
    report: EvaluationReport
    synthesizer: Synthesizer
    holdout: pd.DataFrame | None = None  # the evaluation's real holdout rows (never fitted on)


@dataclass
class Split:
    """A keyed holdout split: what the synthesizer fits on, and the rows the evaluation reads."""

    fit_data: "str | pd.DataFrame"  # the training part: a Parquet path (file input) or a DataFrame
    train: pd.DataFrame  # training rows for the evaluation (a random sample of at most max_rows)
    holdout: pd.DataFrame  # holdout rows for the evaluation (likewise)
    n_train: int
    n_holdout: int
    notes: list[str]


def check_holdout_share(share: float) -> float:
    """The holdout share must be in (0, 0.5]: enough rows stay to fit on."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 0.5:
        raise InputError(f"holdout share {share!r} must be in (0, 0.5]")
    return float(share)


def holdout_key(seed: int | None = None) -> bytes:
    """The split's secret HMAC key: fresh from the OS's secure generator, or (only when a seed is
    given explicitly, for reproducible experiments) derived from the seed."""
    if seed is None:
        return secrets.token_bytes(KEY_BYTES)
    return hashlib.sha256(b"synthroom holdout key\x00" + str(int(seed)).encode()).digest()


def split_rows(
    data: "str | Path | pd.DataFrame",
    schema: Schema,
    share: "float | HoldoutPlan",
    key: bytes,
    workdir: Path,
    *,
    units: "pd.Series | np.ndarray | list | None" = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Split:
    """Split a CSV/Parquet file or a DataFrame per privacy unit by the keyed hash (see the module
    docstring; the engine's :func:`~synthroom.engine.split.split_table` runs it); the typed
    training part goes to ``workdir/train.parquet`` (a file input) or stays a DataFrame (a
    DataFrame input, which may be empty). ``share``: the holdout's share, or a
    :class:`HoldoutPlan` that chooses it from a DP count of the rows."""
    if not isinstance(share, HoldoutPlan):
        share = check_holdout_share(share)
    kinds: dict[str, str] = {c.name: c.kind for c in schema.columns}
    given = check_units(units, data)
    part = split_table(data, kinds, share, key, workdir, units=given, ignore=tuple(schema.ignore), max_rows=max_rows)
    sizes = {"training": part.n_train, "holdout": part.n_holdout}
    notes = [_sample_note(name, size, max_rows) for name, size in sizes.items() if size > max_rows]
    return Split(part.fit_data, part.train, part.holdout, part.n_train, part.n_holdout, notes)


def split_file(
    path: str | Path, schema: Schema, share: float, seed: int | None, workdir: Path, max_rows: int = DEFAULT_MAX_ROWS
) -> Split:
    """:func:`split_rows` of a CSV/Parquet file, keyed by ``seed`` (None: a fresh secret key)."""
    return split_rows(path, schema, share, holdout_key(seed), workdir, max_rows=max_rows)


def split_frame(
    df: pd.DataFrame, share: float, seed: int | None = None, *, units: "pd.Series | np.ndarray | list | None" = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout) of a DataFrame, each in the input's row order: per unit (per row when
    ``units`` is None) by the keyed hash, keyed by ``seed`` (None: a fresh secret key)."""
    share = check_holdout_share(share)
    draws = unit_draws(df, holdout_key(seed), check_units(units, df))
    is_holdout = draws < np.uint64(cut(share))
    return df[~is_holdout].reset_index(drop=True), df[is_holdout].reset_index(drop=True)


def _sample_note(table: str, size: int, max_rows: int, seed: int | None = None) -> str:
    """Says how a table was subsampled; the seed only where it is not the synthesizer's."""
    how = "lowest keyed hash" if seed is None else f"seeded hash of the row number, seed {seed}"
    return f"the {table} table was subsampled from {size:,} to {max_rows:,} rows ({how})"


_SEED = re.compile(r"\bseed -?\d+")


def withhold_seed(notes: list[str]) -> list[str]:
    """Notes without the seed: the synthesizer's seed drives its DP noise, and whoever knows it
    could replay the noise and subtract it, so no report shows it (or anything derived from it)."""
    return [_SEED.sub("seed withheld", note) for note in notes]


def read_sample(
    path: str | Path, schema: Schema, max_rows: int, seed: int, table: str
) -> tuple[pd.DataFrame, list[str]]:
    """The schema columns of a CSV/Parquet file as stored (a CSV's as text: the evaluation reads
    and checks each value), at most ``max_rows`` of them (a seeded sample), without loading the
    whole file; the note says when it was subsampled."""
    df, n = read_rows(path, {c.name: c.kind for c in schema.columns}, max_rows, seed)
    return df, [_sample_note(table, n, max_rows, seed)] if n > max_rows else []


def holdout_share_for(
    rows: float,
    sigma_rows: float,
    sigma_holdout: float,
    *,
    max_share: float = DEFAULT_HOLDOUT_SHARE,
    unit_cap: int = 1,
) -> float:
    """The holdout's share for a table whose DP row count is ``rows`` (noise std ``sigma_rows``).

    It aims at :data:`HOLDOUT_ROWS` held-out rows (what the evaluation needs for stable scores),
    at most ``max_share`` of the table; and at least what the DP holdout-size check needs to
    pass (``MIN_ROWS`` plus ``HOLDOUT_CHECK_Z + 3`` holdout-count noise deviations, on a row
    count 3 deviations below the estimate) even when the split itself holds out few rows:
    :data:`SPLIT_Z` standard deviations of the held-out row count below its mean (each person
    is held out with probability ``share``, with at most ``unit_cap`` rows, so that count's
    variance is at most ``share (1 - share) unit_cap rows``); at most half the table. A function
    of DP and public quantities only."""
    aim = min(max_share, HOLDOUT_ROWS / max(rows, 1.0))
    low = max(rows - 3 * sigma_rows, 1.0)
    need = MIN_ROWS + (HOLDOUT_CHECK_Z + 3) * sigma_holdout
    floor = min(0.5, need / low)
    for _ in range(100):  # the smallest share whose mean, less SPLIT_Z spreads, meets the need
        share = min(0.5, (need + SPLIT_Z * math.sqrt(floor * (1 - floor) * unit_cap * low)) / low)
        if share <= floor + 1e-12:
            break
        floor = share
    return float(min(0.5, max(aim, floor)))


@dataclass
class HoldoutPlan:
    """The holdout's size, from a DP count of all the rows (docs/evaluation.md, "The holdout size").

    :meth:`measure` counts the rows with Gaussian noise at :data:`HOLDOUT_CHECK_SHARE` of the
    run's rho, charged to the run's accountant (every row, held out or not, is in the count),
    and returns the share: ``fixed`` when the caller gave one, else :func:`holdout_share_for`
    of the noisy count. The same count later checks the training part's size and chooses the
    synthesizer's size regime (post-processing)."""

    accountant: ZCDPAccountant
    noise: "Noise | np.random.Generator"
    fixed: float | None = None
    rows: float = float("nan")  # the noisy count of all rows
    sigma: float = float("nan")
    share: float = float("nan")
    charge: Any = None  # the count's ledger entry (the holdout's ledger records it too)

    def holdout_sigma(self) -> float:
        """The noise std of the holdout part's count: what the run's rho leaves after this count."""
        return sigma_for(
            (1 - HOLDOUT_CHECK_SHARE) * self.accountant.rho_budget, person_sensitivity(self.accountant, 1.0)
        )

    def measure(self, n_rows: int) -> float:
        counts, self.sigma = gaussian_counts(
            self.accountant,
            self.noise,
            np.array([n_rows], dtype=float),
            HOLDOUT_CHECK_SHARE * self.accountant.rho_budget,
            step="rows of the table (holdout size and holdout-size check)",
        )
        self.charge = self.accountant.charges[-1]
        self.rows = float(counts[0])
        self.share = (
            self.fixed
            if self.fixed is not None
            else holdout_share_for(self.rows, self.sigma, self.holdout_sigma(), unit_cap=self.accountant.unit_cap)
        )
        return self.share

    def note(self, unit: str) -> str:
        if self.fixed is not None:
            return f"each {unit} held out with probability {self.share * 100:.3g}% (the share asked for)"
        return (
            f"each {unit} held out with probability {self.share * 100:.3g}%, sized from a DP count of the rows "
            f"({self.rows:,.0f}) to about {HOLDOUT_ROWS:,} held-out rows, at most "
            f"{DEFAULT_HOLDOUT_SHARE * 100:g}% of the table (more only where the holdout-size check needs it)"
        )


@dataclass
class HoldoutCheck:
    """The DP check that both parts are big enough to evaluate (see docs/evaluation.md).

    :meth:`measure` runs first in the synthesizer's fit, on its accountant and noise source,
    after the :class:`HoldoutPlan`'s count of all rows (``plan``), already charged to the run:

    * the holdout part's rows, counted with Gaussian noise on a ledger of its own that also
      records the plan's count, at the rho that leaves: a person's rows are all in one part, so
      this count and the fit read disjoint rows, and by parallel composition the run costs the
      larger of the two ledgers, which is the fit's;
    * the training part's rows are estimated as the plan's count minus the holdout's noisy count
      (post-processing: no charge of its own).

    The evaluation runs only if both estimates clear ``MIN_ROWS`` plus
    :data:`HOLDOUT_CHECK_Z` noise standard deviations. Exact sizes below ``MIN_ROWS`` (the
    evaluation would fail) turn a passed check into a failed one; that overrides the DP outcome
    with probability below 2e-15 (8 standard deviations, twice). :meth:`measure` returns the
    training estimate and its noise std: the fit's row count (size regime, category selection),
    so the fit measures none of its own."""

    n_train: int
    n_holdout: int
    plan: HoldoutPlan
    needed: dict[str, float] = field(default_factory=dict)
    enough: bool = False
    holdout_ledger: dict | None = None

    def measure(self, accountant: ZCDPAccountant, noise: "Noise | np.random.Generator") -> RowCount:
        parallel = ZCDPAccountant(
            accountant.epsilon,
            accountant.delta,
            accountant.delta_threshold,
            unit_cap=accountant.unit_cap,
            randomness=accountant.randomness,
            reproducible=accountant.reproducible,
        )
        plan = self.plan
        parallel.charge_gaussian(plan.charge.step, plan.charge.sensitivity, plan.charge.noise)
        counts, sigma_h = gaussian_counts(
            parallel,
            noise,
            np.array([self.n_holdout], dtype=float),
            parallel.rho_remaining,
            step="rows of the holdout part (holdout-size check)",
        )
        noisy = {"holdout": float(counts[0]), "training": plan.rows - float(counts[0])}
        sigma = {"holdout": sigma_h, "training": float(np.hypot(plan.sigma, sigma_h))}
        self.needed = {part: MIN_ROWS + HOLDOUT_CHECK_Z * sigma[part] for part in ("training", "holdout")}
        self.holdout_ledger = parallel.summary()
        self.enough = all(noisy[p] >= self.needed[p] for p in noisy) and min(self.n_train, self.n_holdout) >= MIN_ROWS
        return RowCount(noisy["training"], sigma["training"])

    def note(self) -> str:
        needed = " and ".join(f"{self.needed[p]:,.0f} {p}" for p in ("training", "holdout"))
        return (
            f"evaluation skipped: the DP counts of the real rows did not clear {needed} rows ({MIN_ROWS} plus "
            f"{HOLDOUT_CHECK_Z:g} noise standard deviations each), so every release gate refuses; use more rows, "
            "a larger holdout share or a larger epsilon"
        )


def parse_gates(specs: list[str] | None) -> dict[str, float]:
    """``["DCR-v1=0.6", ...]`` -> ``{"DCR-v1": 0.6}``: the command line's ``--gate NAME=VALUE``."""
    gates: dict[str, float] = {}
    for spec in specs or []:
        name, sep, value = spec.rpartition("=")
        try:
            gates[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise InputError(f"--gate {spec!r} must look like NAME=VALUE, e.g. DCR-v1=0.6")
    return gates


def check_gates(gates: dict[str, float] | None, max_mia_score: float | None) -> None:
    """Before any work: unknown gate names, thresholds out of range, and gates on anonymeter's
    risks when its sidecar is not installed, each fail with one message."""
    from .evaluation import find_sidecar
    from .evaluation.gates import require_computable, resolve_gates

    requested = resolve_gates(gates, max_mia_score)
    interpreter, why = find_sidecar()
    require_computable(requested, None if interpreter is not None else why)


def _draw_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])


def _split_and_fit(
    synth: Synthesizer,
    data: "str | Path | pd.DataFrame",
    schema: Schema,
    share: float | None,
    key: bytes,
    units,
    max_rows: int,
    progress: Progress,
) -> tuple[Split, HoldoutCheck]:
    """Count all rows (DP), size the holdout from the count (or take ``share``), split, and fit on
    the training part with the DP holdout-size check first, all on one accountant."""
    progress(
        "splitting",
        "holding out real rows for the evaluation"
        if share is None
        else f"holding out about {share * 100:g}% of the real rows",
    )
    acc, noise = synth.start_run()
    plan = HoldoutPlan(acc, noise, share)
    with tempfile.TemporaryDirectory(prefix="synthroom-split-") as workdir:
        if hasattr(data, "sparkSession"):
            split = _split_on_spark(data, schema, plan, key, units, max_rows)
        else:
            split = split_rows(data, schema, plan, key, Path(workdir), units=units, max_rows=max_rows)
        check = HoldoutCheck(split.n_train, split.n_holdout, plan)
        synth.fit(split.fit_data, first=check.measure, run=(acc, noise))
        if hasattr(split.fit_data, "unpersist"):  # the training part cached on the cluster
            split.fit_data.unpersist()
    return split, check


def _split_on_spark(frame: Any, schema: Schema, plan: HoldoutPlan, key: bytes, units: Any, max_rows: int) -> Split:
    """:func:`split_rows` of a Spark DataFrame, on the cluster (:mod:`synthroom.engine.spark_split`):
    the same keyed hash and DP-sized share; ``units``, if given, names the frame's unit column."""
    from .engine.spark_split import split_spark

    if units is not None and not isinstance(units, str):
        raise InputError("on Spark, units names the DataFrame's privacy-unit column")
    kinds: dict[str, str] = {c.name: c.kind for c in schema.columns}
    part = split_spark(frame, kinds, plan, key, unit=units, max_rows=max_rows)
    sizes = {"training": part.n_train, "holdout": part.n_holdout}
    notes = [_sample_note(name, size, max_rows) for name, size in sizes.items() if size > max_rows]
    return Split(part.fit_data, part.train, part.holdout, part.n_train, part.n_holdout, notes)


def _on_engine(data: Any, schema: Schema, engine: Any) -> tuple[Any, Any]:
    """``(data, engine)`` to split and fit on: a Spark run reads its input as a Spark DataFrame
    (a path the cluster reads, a table name, a DataFrame), checked against the schema."""
    from .engine import check_engine

    engine = check_engine(engine)
    if engine == "duckdb" and not hasattr(data, "sparkSession"):
        return data, engine
    from .engine.spark import read_frame, spark_session

    session = data.sparkSession if hasattr(data, "sparkSession") else engine
    session = spark_session() if session == "spark" else session
    if not hasattr(data, "sparkSession"):
        where = "the DataFrame" if isinstance(data, pd.DataFrame) else str(data)
        data = read_frame(session, data)
        check_names(list(data.columns), {c.name: c.kind for c in schema.columns}, where, schema.ignore)
    return data, session


def _gate_report(
    split: Split,
    check: HoldoutCheck,
    synthetic: pd.DataFrame,
    synth: Synthesizer,
    parsed: Schema,
    *,
    gates: dict[str, float] | None,
    max_mia_score: float | None,
    max_rows: int,
    eval_seed: int,
    progress: Progress,
) -> EvaluationReport:
    """The gate's evaluation of ``synthetic`` against the split's parts, its ledger holding the
    holdout check's; when the DP holdout-size check failed, a skipped report (every gate refuses)."""
    from .evaluation import evaluate, skipped_report

    privacy = {**synth.privacy_report(), "holdout_check": check.holdout_ledger}
    if check.enough:
        progress("evaluating", f"scoring {len(synthetic):,} synthetic rows against the real ones")
        report = evaluate(
            split.train,
            split.holdout,
            synthetic,
            parsed,
            gates=gates,
            max_mia_score=max_mia_score,
            max_rows=max_rows,
            seed=eval_seed,
            privacy=privacy,
            progress=progress,
        )
    else:
        progress("evaluating", "skipped: too few rows to evaluate")
        report = skipped_report(
            parsed,
            gates=gates,
            max_mia_score=max_mia_score,
            privacy=privacy,
            synthetic_rows=len(synthetic),
            why=check.note(),
        )
    return report


def synthesize_with_gate(
    data: "str | Path | pd.DataFrame",
    schema: "Schema | dict",
    *,
    epsilon: float,
    delta: float = DEFAULT_DELTA,
    seed: int | None = None,
    rows: int | None = None,
    max_mia_score: float | None = None,
    gates: dict[str, float] | None = None,
    holdout_share: float | None = None,
    progress: Progress | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    unit_cap: int = 1,
    units: "pd.Series | np.ndarray | list | str | None" = None,
    engine: Any = "duckdb",
) -> GatedRun:
    """Hold out about ``holdout_share`` of the real rows (None, the default: a share sized from a DP
    count of the rows, see :class:`HoldoutPlan`) per privacy unit, by a secret keyed hash; fit on
    the rest, sample ``rows`` (default: the DP estimate of the training part's size), evaluate
    against the holdout and release the synthetic rows only if every gate passes.

    ``units`` (a DataFrame input only): each row's privacy unit, so that a unit's rows go to the
    same part (a Spark DataFrame: the name of its unit column); ``engine``: ``"duckdb"``,
    ``"spark"`` or a SparkSession: on Spark the split, the fit's counts and the evaluation's
    samples run on the cluster (:mod:`synthroom.engine.spark_split`), a Spark DataFrame input
    implying it; ``unit_cap``: the most rows one unit holds (the guarantee is per unit, see
    docs/privacy.md). ``max_mia_score`` defaults to the schema's ``maxMembershipInferenceAttackScore``;
    ``gates`` maps further gate names to thresholds (see :func:`synthroom.evaluation.evaluate`).
    When the DP holdout-size check fails, the evaluation is skipped and every gate refuses.
    """
    progress = progress or quiet
    parsed = parse_schema(schema)
    if holdout_share is not None:
        check_holdout_share(holdout_share)
    if rows is not None and rows < 1:
        raise InputError(f"the number of rows to sample must be at least 1, not {rows!r}")
    if max_mia_score is None:
        max_mia_score = parsed.max_mia_score
    check_gates(gates, max_mia_score)
    eval_seed = _draw_seed() if seed is None else int(seed)
    data, engine = _on_engine(data, parsed, engine)
    synth = Synthesizer(
        parsed,
        epsilon=epsilon,
        delta=delta,
        seed=seed,
        progress=progress,  # checks epsilon first
        unit_cap=unit_cap,
        engine=engine,
    )  # rows per person: the guarantee is per person (docs/privacy.md)

    split, check = _split_and_fit(synth, data, parsed, holdout_share, holdout_key(seed), units, max_rows, progress)
    synthetic = synth.sample(rows)

    report = _gate_report(
        split,
        check,
        synthetic,
        synth,
        parsed,
        gates=gates,
        max_mia_score=max_mia_score,
        max_rows=max_rows,
        eval_seed=eval_seed,
        progress=progress,
    )
    unit = "privacy unit" if units is not None else "row"
    report.notes = (
        [
            f"holdout: {split.n_holdout:,} of {split.n_train + split.n_holdout:,} real rows "
            f"({check.plan.note(unit)}, by a secret keyed hash); the synthesizer was fitted on the other "
            f"{split.n_train:,}"
        ]
        + split.notes
        + synth.warnings_
        + withhold_seed(report.notes)
    )
    released = report.passed
    return GatedRun(released, synthetic if released else None, report, synth, holdout=split.holdout)


def evaluate_files(
    train: str | Path,
    holdout: str | Path,
    synthetic: str | Path,
    schema: "Schema | dict",
    *,
    gates: dict[str, float] | None = None,
    max_mia_score: float | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 0,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Score any synthetic table (ours or another tool's) against real training and holdout
    files; reads at most ``max_rows`` seeded rows of each. ``max_mia_score`` defaults to the
    schema's ``maxMembershipInferenceAttackScore``."""
    from .evaluation import evaluate

    progress = progress or quiet
    parsed = parse_schema(schema)
    if max_rows < MIN_ROWS:
        raise InputError(f"--max-rows {max_rows} is below the minimum of {MIN_ROWS}")
    if max_mia_score is None:
        max_mia_score = parsed.max_mia_score
    check_gates(gates, max_mia_score)
    frames, notes = {}, []
    for key, path, table in (
        ("train", train, "training"),
        ("holdout", holdout, "holdout"),
        ("synthetic", synthetic, "synthetic"),
    ):
        progress("reading", f"the {table} table {path}")
        frames[key], note = read_sample(path, parsed, max_rows, seed, table)
        notes += note
    progress("evaluating", f"scoring {len(frames['synthetic']):,} synthetic rows against the real ones")
    report = evaluate(
        frames["train"],
        frames["holdout"],
        frames["synthetic"],
        parsed,
        gates=gates,
        max_mia_score=max_mia_score,
        max_rows=max_rows,
        seed=seed,
        progress=progress,
    )
    report.notes[:0] = notes
    return report


__all__: list[Any] = [
    "GatedRun",
    "HoldoutCheck",
    "synthesize_with_gate",
    "evaluate_files",
    "split_rows",
    "split_frame",
    "split_file",
    "holdout_key",
    "read_sample",
    "parse_gates",
    "check_holdout_share",
    "HoldoutPlan",
    "holdout_share_for",
]
