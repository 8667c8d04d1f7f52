"""The public entry point: :func:`evaluate` compares a synthetic table with the real training
rows it was made from and real holdout rows it never saw. Definitions: docs/evaluation.md."""

from __future__ import annotations

import time
from pathlib import Path
from contextlib import ExitStack, contextmanager
from typing import Any, Iterator

import pandas as pd

from ..progress import Progress, quiet
from ..schema import Schema, parse_schema
from .attacks import copy_rates, dcr_attack, density_ratio_attack, draw_candidates
from .binning import bin_columns
from .distance import encode_rows
from .fidelity import measure_fidelity
from .gates import advise, apply_gates, require_computable, resolve_gates
from .result import Attack, EvaluationReport, Fidelity, GateResult, Utility
from .rule_checks import check_rules
from .sidecar import AnonymeterRun, find_sidecar
from .tables import Tables, prepare_tables
from .utility import measure_utility

SKIPPED_ADVICE = (
    "Not evaluated: there were too few real rows to evaluate; use more rows, a larger holdout share or a "
    "larger epsilon (the check that decides this is differentially private)."
)


def evaluate(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema | dict[str, Any],
    *,
    gates: dict[str, float] | None = None,
    max_mia_score: float | None = None,
    max_rows: int = 50_000,
    seed: int = 0,
    privacy: dict | None = None,
    anonymeter: bool = True,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Fidelity, ML utility and privacy attacks of ``synthetic`` against real ``train`` rows (the
    synthesizer's input) and real ``holdout`` rows (never used for fitting), plus release gates.

    ``gates`` maps an attack_version to the highest score allowed; ``max_mia_score`` is shorthand
    for a gate on "DCR-v1". ``privacy`` (the accountant's ledger) is embedded in the report.
    Tables above ``max_rows`` rows are subsampled (seeded by ``seed``; the report notes it).
    anonymeter's risks run in a sidecar interpreter when one is available (see
    :mod:`.sidecar`); without one they are left out with a note, unless a gate needs them.
    Raises :class:`~synthroom.errors.InputError` on unusable input.
    """
    say = progress or quiet
    schema = parse_schema(schema)
    timings: dict[str, float] = {}
    requested = resolve_gates(gates, max_mia_score)
    with _timed(timings, "prepare"):
        say("prepare", "checking and normalising the three tables")
        tables = prepare_tables(train, holdout, synthetic, schema, max_rows=max_rows, seed=seed)
    notes = list(tables.notes)
    interpreter, why = _sidecar(anonymeter, requested)
    with ExitStack() as stack:
        run = None
        if interpreter is not None:
            say("anonymeter", f"starting anonymeter's risks in the background ({interpreter})")
            run = stack.enter_context(AnonymeterRun(interpreter, tables, seed))
        else:
            notes.append(f"anonymeter risks not computed: {why}")
        fidelity, utility, attacks, copies = _measure(tables, seed, notes, timings, say)
        if run is not None:
            with _timed(timings, "anonymeter_wait"):
                say("anonymeter", "waiting for anonymeter's risks")
                found, problems = run.collect()
            attacks += found
            notes += problems
    gate_results = apply_gates(requested, attacks, notes)
    failed = [g for g in gate_results if not g.passed]
    say("gates", "release refused" if failed else "release allowed" if gate_results else "no gates")
    return EvaluationReport(
        rows=tables.rows,
        notes=notes,
        fidelity=fidelity,
        utility=utility,
        attacks=attacks,
        copies=copies,
        gates=gate_results,
        advice=advise(failed, schema, privacy),
        privacy=privacy,
        timings=timings,
        rules=check_rules(tables, schema),
    )


def _sidecar(anonymeter: bool, requested: dict[str, float]) -> tuple[Path | None, str | None]:
    """The anonymeter interpreter to use (None: none) and why there is none; refuses at once
    when a requested gate needs anonymeter's risks and they cannot be computed."""
    if not anonymeter:
        require_computable(requested, "anonymeter risks turned off")
        return None, "turned off"
    interpreter, why = find_sidecar()
    require_computable(requested, None if interpreter is not None else why)
    return interpreter, why


def _measure(
    tables: Tables, seed: int, notes: list[str], timings: dict[str, float], say: Progress
) -> tuple[Fidelity, Utility | None, list[Attack], dict[str, float]]:
    """Fidelity, utility, the in-process membership attacks and the copy rates (timed)."""
    with _timed(timings, "fidelity"):
        say("fidelity", f"comparing the distributions of {len(tables.kinds)} columns")
        bins = bin_columns(tables)
        fidelity = measure_fidelity(tables, bins)
    with _timed(timings, "utility"):
        say("utility", f"fitting models for {tables.target!r} on synthetic and on real rows")
        utility = measure_utility(tables, bins, notes)
    with _timed(timings, "attacks"):
        say("attacks", "membership inference: distance to closest record, density ratio")
        encoded = encode_rows(tables, bins)
        candidates = draw_candidates(tables.rows, seed)
        dcr, to_synthetic = dcr_attack(encoded, candidates)
        attacks = [dcr, density_ratio_attack(encoded, candidates, to_synthetic)]
    with _timed(timings, "copies"):
        say("copies", "exact and near copies of real rows")
        copies = copy_rates(tables, encoded, seed)
    return fidelity, utility, attacks, copies


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(time.perf_counter() - start, 3)


def skipped_report(
    schema: Schema | dict[str, Any],
    *,
    gates: dict[str, float] | None,
    max_mia_score: float | None,
    privacy: dict | None,
    synthetic_rows: int,
    why: str,
) -> EvaluationReport:
    """The report of a run whose evaluation was skipped (``why``, a note): nothing measured, and
    every requested gate refused (its value NaN: not evaluated), so a skip never releases rows
    that a gate was asked to check."""
    schema = parse_schema(schema)
    failed = [
        GateResult(name, threshold, float("nan"), False)
        for name, threshold in resolve_gates(gates, max_mia_score).items()
    ]
    return EvaluationReport(
        rows={"train": 0, "holdout": 0, "synthetic": synthetic_rows},
        notes=[why],
        fidelity=None,
        utility=None,
        attacks=[],
        copies={},
        gates=failed,
        advice=[SKIPPED_ADVICE] if failed else [],
        privacy=privacy,
    )
