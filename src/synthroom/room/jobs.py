"""Synthetic-data jobs: start (checks, budget reservation), run, read results, recover, retention.

Life of a job: ``start_job`` checks the caller may run the template, that every table owner
approved its current hash, that someone may receive the result and that the template has gated
runs left, then reserves the template's epsilon and delta on every table's ledger, all in one
transaction. A worker claims it (:mod:`.claims`: any number of workers, one run per job) and
``run_job`` runs the SQL in the sandbox with the privacy-unit cap, synthesizes, evaluates and
applies the gate through :func:`synthroom.pipeline.synthesize_with_gate`, in a child process
under the per-job limits (:mod:`.limits`), and records the outcome (a :class:`JobOutcome`) with
the job's metering in one transaction.

Charging from first touch: once the sandbox starts reading the tables' rows the job is charged,
whatever happens next; only a failure decided before that (or by the source's identity) gets the
budget back (:func:`refunded`), so no refund depends on any person's rows. A failed job shows
members a fixed category and its fixed text (:data:`synthroom.errors.FAILURE_CATEGORIES`); the
detail, which may quote rows or server details, goes to the operator's log and database only.
``recover_interrupted`` fails the running jobs whose worker's lease ran out (the worker died):
such a job's template may have read rows, so it stays charged. Queued jobs stay queued.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select

from ..errors import FAILURE_CATEGORIES, InputError, JobFailure
from ..io import write_table
from ..pipeline import withhold_seed
from ..schema import parse_schema
from ..sql import check_template, run_template
from ..engine.spark_sandbox import spark_sql
from ..sql.template import UNIT_COLUMN, output_literals
from ..synthesis.selection import declare_public_values
from . import audit, claims, ledger
from .claims import LEASE_SECONDS
from .limits import JobLimits, run_limited
from .errors import Conflict, Forbidden, NotFound
from .models import (
    Association,
    Collaboration,
    ConfiguredTable,
    InferenceJob,
    Job,
    Member,
    Membership,
    MeterEntry,
    Template,
    TrainedModel,
    utcnow,
)
from .service import (
    Actor,
    Room,
    get_row,
    consent_missing,
    content_hash,
    engine_of,
    membership,
    source_of,
    table_columns,
    template_view,
    visible,
)

log = logging.getLogger("synthroom.jobs")
Synthesize = Callable[..., Any]  # synthesize_with_gate's signature
RESULT_FORMATS = ("csv", "parquet")
HOLDOUT_FILE = "holdout.parquet"  # the real rows the synthesizer never saw, kept to score models (owners' opt-in)
GATE_HIDDEN = "finished"  # the state a member without the scores right sees once a job reached the gate
INTERRUPTED = FAILURE_CATEGORIES["interrupted"]


@dataclass
class JobOutcome:
    """What one run of a job produced, as :func:`_finish` records it.

    ``touched`` is set by the code that calls the sandbox, right before the template starts
    reading real rows: from then on the job is charged whatever happens (see :func:`refunded`).
    ``detail`` is for the operator only (log and database): it may quote rows or server paths."""

    state: str = "failed"
    category: str | None = None  # a key of FAILURE_CATEGORIES when the job failed
    detail: str | None = None
    touched: bool = False
    released: bool = False
    summary: dict | None = None
    rows_real: int | None = None
    rows_synthetic: int | None = None
    synth_epsilon: float | None = None
    seconds: float = 0.0

    def fail(self, category: str, detail: str) -> None:
        if category not in FAILURE_CATEGORIES:
            raise ValueError(f"unknown failure category {category!r}")
        self.state, self.category, self.detail = "failed", category, detail


def refunded(category: str | None, touched: bool) -> bool:
    """Whether a failed job gets its budget back: only when the failure cannot depend on any
    person's rows (a refund that did would tell, for free, whether a row is there).

    - Not touched: the sandbox had not started reading rows. The job was withdrawn (approvals,
      associations), the current rules refuse its template, its parameters no longer fit the
      cap, or it was still queued at a restart: all decided by metadata that is the same on
      any two neighbouring tables.
    - ``source_changed``, whenever it is detected: a source is not the file configured. That is
      decided by the file's identity against its configuration (an owner's act), again the
      same event on neighbouring tables.
    - Everything else after the first touch stays charged: ``template_error``,
      ``resource_limit``, ``refused_by_gate``, ``internal_error``, ``interrupted`` while
      running. Whether these happen can depend on one person's rows (a value a cast rejects,
      a row that blows up memory, a score near the gate's threshold).
    """
    return not touched or category == "source_changed"


def _category_of(exc: BaseException) -> str:
    """The failure category of an exception raised while running a job."""
    if isinstance(exc, JobFailure):
        return exc.category
    if isinstance(exc, InputError):  # the sandbox run or the synthesizer refused the template's rows
        return "template_error"
    return "internal_error"


def start_job(room: Room, actor: Actor, template_id: int, seed: int | None = None) -> dict:
    """Check every rule, reserve the budget, queue the job; refusals name what is missing.

    A room job has no seed: the synthesizer and the holdout split draw from the OS's secure
    generator, and the cap's ranking salt is drawn (63 bits, ``secrets``) when the job runs and
    never stored. An explicit ``seed`` is refused unless the operator built the room for
    reproducibility checks (``Room(seeded_jobs=True)``, not reachable from the API or CLI);
    such a job is marked ``reproducible`` and never released."""
    if seed is not None and not room.seeded_jobs:
        raise Forbidden(
            "a room job takes no explicit seed: its randomness comes from the OS's secure generator "
            "(seeded, reproducible runs are for an operator's test room, and are never released)"
        )
    try:
        with room.transaction() as s:
            template, collab, tables = _runnable(s, actor, template_id)
            receivers = _receivers(s, template.collaboration_id, tables)
            _check_gated_runs(s, template, tables)
            params = json.loads(template.params)
            job = _queued_job(template, actor, tables, receivers, seed)
            s.add(job)
            s.flush()
            ledger.reserve(s, job.id, tables, params["epsilon"], params["delta"])
            audit.append(
                s,
                audit.collaboration_scope(collab.id),
                actor.name,
                "job.started",
                {
                    "job_id": job.id,
                    "template_id": template.id,
                    "hash": template.content_hash,
                    "epsilon": params["epsilon"],
                    "delta": params["delta"],
                    "tables": sorted(t.name for t in tables),
                    **({"reproducible": True} if job.reproducible else {}),
                },
            )
            result = job_view(job, sees_scores=_sees_scores(actor, job))
    except Conflict as exc:  # budget and gated-run refusals are audited too (the job itself was rolled back)
        _audit_refusal(room, actor, template_id, str(exc))
        raise
    if room.on_job_queued is not None:
        room.on_job_queued(result["id"])
    return result


def _runnable(s, actor: Actor, template_id: int) -> tuple[Template, Collaboration, list[ConfiguredTable]]:
    """The template ``actor`` may run now, its collaboration and the tables it reads: refused
    (Forbidden/Conflict, naming what is missing) unless the actor may run, the template's content
    still matches its hash, every approver approved it and every table's owner consented."""
    template = visible(s, actor, Template, template_id, "template")
    collab, member = membership(s, actor, template.collaboration_id)
    if not member.can_run:
        raise Forbidden(f"{actor.name!r} may not run templates in collaboration {collab.id}")
    if content_hash(template) != template.content_hash:
        raise Conflict(
            f"template {template.name!r} version {template.version} was altered after it was "
            "created: its content no longer matches its hash"
        )
    view = template_view(s, template)
    if not view["approved"]:
        missing = sorted(set(view["approvers"]) - set(view["approved_by"]))
        raise Forbidden(
            f"template {template.name!r} version {template.version} is not approved by "
            f"{', '.join(missing)} (hash {template.content_hash[:12]})"
        )
    tables = _tables_read(s, template)
    if (unconsented := consent_missing(s, collab, tables)) is not None:
        raise Conflict(unconsented)
    return template, collab, tables


def _queued_job(
    template: Template, actor: Actor, tables: list[ConfiguredTable], receivers: list[int], seed: int | None
) -> Job:
    """A queued job of ``template``: its parameters, and the strictest of its tables' unit caps,
    sharing and model-evaluation allowances."""
    params = json.loads(template.params)
    return Job(
        collaboration_id=template.collaboration_id,
        template_id=template.id,
        content_hash=template.content_hash,
        started_by=actor.id,
        receivers=json.dumps(receivers),
        state="queued",
        seed=None if seed is None else int(seed),
        reproducible=seed is not None,
        epsilon=params["epsilon"],
        delta=params["delta"],
        unit_cap=min(t.unit_cap if t.unit_column else 1 for t in tables),
        share_full_report=all(t.share_full_report for t in tables),
        share_scores=all(t.share_scores for t in tables),
        model_evaluations=min(t.model_evaluations for t in tables),
    )


def _check_gated_runs(s, template: Template, tables: list[ConfiguredTable]) -> None:
    """At most the smallest ``max_gated_runs`` of the tables read charged jobs per template
    version: each one that reaches the gate tells its score readers a non-DP pass/refuse bit.
    Refunded jobs (they never read a row) do not count. The template row is locked first
    (``FOR UPDATE``; SQLite serialises writers), so concurrent starts cannot both pass."""
    limit = min(t.max_gated_runs for t in tables)
    s.execute(select(Template.id).where(Template.id == template.id).with_for_update())
    used = s.scalar(select(func.count(Job.id)).where(Job.template_id == template.id, Job.budget_released.is_(False)))
    if used >= limit:
        raise Conflict(
            f"template {template.name!r} version {template.version} has used its {limit} gated runs "
            "(the owners' max_gated_runs); a new version needs new approvals"
        )


def _audit_refusal(room: Room, actor: Actor, template_id: int, reason: str) -> None:
    with room.transaction() as s:
        template = s.get(Template, template_id)
        if template is not None:
            audit.append(
                s,
                audit.collaboration_scope(template.collaboration_id),
                actor.name,
                "job.refused",
                {"template_id": template_id, "reason": reason},
            )


def _tables_read(s, template: Template) -> list[ConfiguredTable]:
    tables = []
    for name, table_id in json.loads(template.tables).items():
        assoc = s.scalar(
            select(Association).where(
                Association.collaboration_id == template.collaboration_id, Association.name == name
            )
        )
        if assoc is None or assoc.table_id != table_id:
            raise Conflict(
                f"table {name!r} is no longer associated as it was when template {template.name!r} was approved"
            )
        tables.append(s.get(ConfiguredTable, table_id))
    return tables


def _receivers(s, collaboration_id: int, tables: list[ConfiguredTable]) -> list[int]:
    """Members with the receive ability whom every table's analysis rule allows."""
    rows = s.execute(
        select(Membership, Member)
        .join(Member, Member.id == Membership.member_id)
        .where(
            Membership.collaboration_id == collaboration_id,
            Membership.can_receive.is_(True),
            Membership.status == "active",
        )
    ).all()
    allowed = []
    for _, member in rows:
        if all(t.allowed_receivers is None or member.name in json.loads(t.allowed_receivers) for t in tables):
            allowed.append(member.id)
    if not allowed:
        raise Forbidden(
            "no member of the collaboration may receive this template's results under every table's analysis rule"
        )
    return sorted(allowed)


def job_view(job: Job, *, sees_scores: bool = False) -> dict:
    """A job as a member sees it.

    Every member: the state, a failure's category and its fixed text (never the detail, which
    may quote rows or server details), the budget, the DP count of synthetic rows, compute time
    in whole seconds. The non-DP outcome of the evaluation (the summary's scores and gates, and
    pass/refuse itself) only when ``sees_scores`` (:func:`_sees_scores`); for anyone else a job
    that reached the gate is ``finished``, released or not."""
    hidden = not sees_scores and _reached_gate(job)
    category = None if hidden else job.category
    return {
        "id": job.id,
        "collaboration_id": job.collaboration_id,
        "template_id": job.template_id,
        "hash": job.content_hash,
        "state": GATE_HIDDEN if hidden else job.state,
        "category": category,
        "reason": FAILURE_CATEGORIES.get(category) if category else None,
        "epsilon": job.epsilon,
        "delta": job.delta,
        "unit_cap": job.unit_cap,
        "synth_epsilon": job.synth_epsilon,
        "released": None if hidden else job.released,
        "reproducible": job.reproducible,
        "budget_released": job.budget_released,
        "summary": json.loads(job.summary) if job.summary and sees_scores else None,
        "rows_synthetic": job.rows_synthetic,
        "compute_seconds": whole_seconds(job.compute_seconds),
        "created_at": iso_time(job.created_at),
        "started_at": iso_time(job.started_at),
        "finished_at": iso_time(job.finished_at),
        "expires_at": iso_time(job.expires_at),
        "artifacts_deleted_at": iso_time(job.artifacts_deleted_at),
    }


def _reached_gate(job: Job) -> bool:
    return job.state == "succeeded" or job.category == "refused_by_gate"


def _sees_scores(actor: Actor, job: Job) -> bool:
    """The job's result receivers (when it started) see its non-DP scores; every member does
    only when every table read shares them (``share_scores`` in its analysis rule)."""
    return job.share_scores or actor.id in json.loads(job.receivers)


def whole_seconds(seconds: float | None) -> int | None:
    """Compute time as members see it: a coarse, non-DP signal, shown in whole seconds."""
    return None if seconds is None else int(round(seconds))


def iso_time(value: datetime | None) -> str | None:
    """A stored time as the API shows it (ISO 8601), None when unset."""
    return None if value is None else value.isoformat()


def _default_synthesize(*args, **kwargs):
    from ..pipeline import synthesize_with_gate

    return synthesize_with_gate(*args, **kwargs)


@dataclass(frozen=True)
class _Claimed:
    """A job this worker took (queued -> running): what running it needs, read in the claim."""

    job_id: int
    worker_id: str
    plan: dict
    seed: int | None
    cap: int
    withdrawn: str | None


def run_job(
    room: Room,
    job_id: int,
    synthesize: Synthesize | None = None,
    *,
    limits: JobLimits | None = None,
    worker_id: str | None = None,
    lease: float = LEASE_SECONDS,
) -> dict:
    """Claim job ``job_id`` if it is still queued and run it to its end; returns its final view
    (as an operator sees it: with the gate's outcome). A job another worker claimed first, or one
    already finished, is returned as it is.

    ``limits``: run the computation in a child process under them (the server's workers always
    do); None runs it in this process (the domain layer, tests). ``lease``: seconds the claim
    holds without renewal (renewed every third of it while the job runs)."""
    claimed = _claim(room, job_id, worker_id or claims.new_worker_id(), lease)
    if claimed is None:
        with room.read() as s:
            return job_view(get_row(s, Job, job_id, "job"), sees_scores=True)
    return _run_claimed(room, claimed, synthesize, limits, lease)


def run_next_job(
    room: Room,
    *,
    worker_id: str,
    synthesize: Synthesize | None = None,
    limits: JobLimits | None = None,
    lease: float = LEASE_SECONDS,
) -> dict | None:
    """Claim the oldest queued job (any server may have queued it) and run it; None when none is queued."""
    claimed = _claim(room, None, worker_id, lease)
    return None if claimed is None else _run_claimed(room, claimed, synthesize, limits, lease)


def _claim(room: Room, job_id: int | None, worker_id: str, lease: float) -> _Claimed | None:
    """One short write transaction: take the job (see :mod:`.claims`), read its plan, audit it."""
    with room.transaction() as s:
        if job_id is not None:
            get_row(s, Job, job_id, "job")
        job_id = claims.take(s, Job, job_id, worker_id, lease, started_at=utcnow())
        if job_id is None:
            return None
        job = s.get(Job, job_id, populate_existing=True)
        template = s.get(Template, job.template_id)
        tables = {name: s.get(ConfiguredTable, tid) for name, tid in json.loads(template.tables).items()}
        plan = {
            "sql": template.sql,
            "params": json.loads(template.params),
            "columns": {n: table_columns(t) for n, t in tables.items()},
            "sources": [source_of(n, t) for n, t in tables.items()],
            "model_evaluations": job.model_evaluations,
            "engine": engine_of(room, s.get(Collaboration, job.collaboration_id)),
        }
        audit.append(s, audit.collaboration_scope(job.collaboration_id), "worker", "job.running", {"job_id": job.id})
        return _Claimed(job.id, worker_id, plan, job.seed, job.unit_cap, _withdrawn(s, template))


def _run_claimed(
    room: Room, claimed: _Claimed, synthesize: Synthesize | None, limits: JobLimits | None, lease: float
) -> dict:
    """Run a claimed job while renewing its lease, then record the outcome."""
    artifacts = room.artifacts / "jobs" / str(claimed.job_id)
    outcome = JobOutcome()
    start = time.perf_counter()
    with claims.Heartbeat(room, Job, claimed.job_id, claimed.worker_id, lease):
        try:
            if claimed.withdrawn:
                outcome.fail("withdrawn", claimed.withdrawn)
            else:
                _execute(claimed, artifacts, synthesize or _default_synthesize, limits, outcome)
        except Exception as exc:  # noqa: BLE001 - the job records any failure; the worker keeps going
            outcome.fail(_category_of(exc), f"{type(exc).__name__}: {exc}")
    outcome.seconds = time.perf_counter() - start
    return _finish(room, claimed.job_id, outcome, artifacts, worker_id=claimed.worker_id)


def _execute(
    claimed: _Claimed, artifacts: Path, synthesize: Synthesize, limits: JobLimits | None, outcome: JobOutcome
) -> None:
    """The job's computation: here, or in a child process under ``limits`` (its writes to
    ``outcome`` arrive as they happen, so a job stopped at a limit after its template touched the
    rows stays charged). Over a limit raises :class:`~synthroom.errors.ResourceLimit`."""
    args = (claimed.plan, claimed.seed, claimed.cap, artifacts, synthesize)
    if limits is None:
        _synthesize_job(*args, outcome)
        return
    artifacts.parent.mkdir(parents=True, exist_ok=True)
    run_limited(_synthesize_job, args, limits=limits, shared=outcome, temp_root=artifacts.parent)


def _withdrawn(s, template: Template) -> str | None:
    """Why a queued job may no longer run: an owner revoked its approval or took a table back."""
    try:
        tables = _tables_read(s, template)
    except Conflict as exc:
        return f"withdrawn before it ran: {exc}"
    if (missing := consent_missing(s, s.get(Collaboration, template.collaboration_id), tables)) is not None:
        return f"withdrawn before it ran: {missing}"
    view = template_view(s, template)
    if not view["approved"]:
        missing = ", ".join(sorted(set(view["approvers"]) - set(view["approved_by"])))
        return f"withdrawn before it ran: {missing} revoked the approval of template {template.name!r}"
    return None


def _synthesize_job(
    plan: dict, seed: int | None, cap: int, artifacts: Path, synthesize: Synthesize, outcome: JobOutcome
) -> None:
    """Template, cap, split, synthesis, gate; fills ``outcome`` (raises on a failure).

    ``seed`` is None for every room job (secure randomness throughout); only an operator's
    reproducible run has one, and then nothing is released."""
    params = plan["params"]
    schema = parse_schema(params["classification"])
    checked = check_template(plan["sql"], plan["columns"], schema.names)  # again: the rules may have changed
    # The approved template is public to the collaboration: the literals it can output are public categories.
    schema = declare_public_values(schema, output_literals(checked.sql))
    outcome.synth_epsilon = params["epsilon"]  # per person with up to `cap` rows: the synthesizer accounts for the cap
    execution, data, units, counting = _run_template(plan, checked, cap, seed, outcome)
    outcome.rows_real = execution.rows_after_cap
    run = synthesize(
        data,
        schema,
        epsilon=outcome.synth_epsilon,
        delta=params["delta"],
        unit_cap=cap,
        seed=seed,
        rows=params.get("rows"),
        max_mia_score=params.get("max_mia_score"),
        progress=_no_progress,
        units=units,
        **({} if counting == "duckdb" else {"engine": counting}),
    )  # the holdout is drawn per privacy unit
    if counting != "duckdb":
        execution.close()  # the model is fitted: the capped rows leave the executors' caches
    # No seed reaches a view or report (an operator's reproducible run has one: withheld too).
    run.report.notes = withhold_seed(run.report.notes)  # (the pipeline does too; the room relies on it)
    artifacts.mkdir(parents=True, exist_ok=True)
    from ..report import gate_failures, write_report

    write_report(run.report, artifacts / "report.html")
    outcome.summary = _summary(run.report, cap)
    # The DP sample size, released or not (so metering does not tell pass from refuse).
    outcome.rows_synthetic = params.get("rows") or run.synthesizer.estimated_rows_
    operator = {
        **run.report.to_dict(),
        "privacy_unit_cap": {
            "cap": cap,
            "rows_before_cap": execution.rows_before_cap,
            "rows_after_cap": execution.rows_after_cap,
            "units": execution.units,
        },
    }
    (artifacts / "summary.json").write_text(json.dumps(operator, indent=2, default=str))  # operator's copy: exact
    if not run.released:
        outcome.fail("refused_by_gate", "; ".join(gate_failures(run.report)))
        return
    outcome.state = "succeeded"
    if seed is not None:  # an operator's reproducible run: its noise can be replayed, so nothing leaves
        return
    for fmt in RESULT_FORMATS:
        write_table(run.synthetic, artifacts / f"synthetic.{fmt}")
    if plan.get("model_evaluations") and run.holdout is not None:  # every owner opted in: operator-only file
        write_table(run.holdout, artifacts / HOLDOUT_FILE)
    outcome.released = True


def _run_template(plan: dict, checked, cap: int, seed: int | None, outcome: JobOutcome) -> tuple:
    """The template and the cap on the plan's engine: ``(execution, the capped rows, their units,
    the counting engine)``; marks ``outcome`` touched right before the rows are read."""
    engine = plan.get("engine") or {"name": "duckdb"}
    if engine["name"] == "spark":
        spark_sql(checked)  # a template Spark may not run is refused before any row is read (refunded)
    outcome.touched = True  # the sandbox reads the tables' rows from here on: charged, whatever happens next
    salt = secrets.randbits(63) if seed is None else seed
    if engine["name"] == "spark":
        return _on_spark(checked, plan["sources"], cap, salt, engine.get("master"))
    execution = run_template(checked, plan["sources"], cap=cap, seed=salt)
    return execution, execution.frame, execution.unit_ids, "duckdb"


def _on_spark(checked, sources: list, cap: int, salt: int, master: str | None) -> tuple:
    """The template on Spark (:mod:`synthroom.engine.spark_sandbox`): ``(execution, the capped rows
    as a Spark DataFrame, their unit column or None, the job's Spark session)``."""
    from ..engine.spark import spark_session
    from ..engine.spark_sandbox import run_template_spark

    execution = run_template_spark(checked, sources, cap=cap, seed=salt, session=spark_session(master))
    units = UNIT_COLUMN if execution.has_units else None  # no units: each row is its own (its content)
    return execution, execution.frame, units, execution.session


def _no_progress(_phase: str, _message: str) -> None:
    """Progress phases decide nothing here: charging follows :attr:`JobOutcome.touched`."""


def _summary(report, cap: int) -> dict:
    """The non-DP summary for the members allowed scores (:func:`member_summary`: scores rounded,
    gates, advice without values), no exact count of real rows (an exact join size is not DP: it
    tells how many of one party's people are in another's table)."""
    from ..evaluation.disclosure import member_summary

    return {**member_summary(report), "privacy_unit_cap": cap}


def _finish(room: Room, job_id: int, outcome: JobOutcome, artifacts: Path, *, worker_id: str | None = None) -> dict:
    """Record the outcome, the refund decision and the metering in one transaction (unless the
    job was recovered after ``worker_id``'s lease ran out: then nothing)."""
    with room.transaction() as s:
        job = s.get(Job, job_id)
        if not claims.still_mine(job, worker_id):
            shutil.rmtree(artifacts, ignore_errors=True)
            return job_view(job, sees_scores=True)
        collab_scope = audit.collaboration_scope(job.collaboration_id)
        job.state, job.category, job.detail = outcome.state, outcome.category, outcome.detail
        job.reason = FAILURE_CATEGORIES.get(outcome.category) if outcome.category else None
        job.finished_at = utcnow()
        job.released = outcome.released
        job.synth_epsilon = outcome.synth_epsilon
        job.summary = json.dumps(outcome.summary) if outcome.summary else None
        job.rows_real, job.rows_synthetic = outcome.rows_real, outcome.rows_synthetic
        job.compute_seconds = outcome.seconds
        if job.state == "failed":
            log.warning(
                "job %s failed (%s, %s): %s",
                job.id,
                job.category,
                "charged" if outcome.touched else "not touched",
                job.detail,
            )
            if refunded(job.category, outcome.touched):
                ledger.release(s, job.id)
                job.budget_released = True
                shutil.rmtree(artifacts, ignore_errors=True)
        collab = s.get(Collaboration, job.collaboration_id)
        if artifacts.exists():
            job.artifacts_dir = str(artifacts)
            job.expires_at = job.finished_at + timedelta(days=collab.retention_days)
        s.add(
            MeterEntry(
                collaboration_id=job.collaboration_id,
                job_id=job.id,
                payer_id=collab.payer_id,
                compute_seconds=job.compute_seconds,
                rows_real=job.rows_real or 0,
                rows_synthetic=job.rows_synthetic or 0,
            )
        )
        gated = _reached_gate(job)  # every member reads the audit log: pass/refuse is not in it
        audit.append(
            s,
            collab_scope,
            "worker",
            "job.finished" if gated else f"job.{job.state}",
            {
                "job_id": job.id,
                "category": None if gated else job.category,
                "budget_released": job.budget_released,
                "compute_seconds": whole_seconds(job.compute_seconds),
                "rows_synthetic": job.rows_synthetic,
            },
        )
        return job_view(job, sees_scores=True)


def recover_interrupted(room: Room, now: datetime | None = None) -> list[int]:
    """Fail every running job whose worker's lease ran out (the worker was killed, its server
    restarted or lost), and likewise its model trainings; returns the job ids. Such a job's
    template may have read rows, so it stays charged (see :func:`refunded`). A job a live worker
    runs keeps its renewed lease and is left alone; queued jobs stay queued for any worker."""
    now = now or utcnow()
    with room.read() as s:
        ids = claims.expired(s, Job, now)
    recovered = [job_id for job_id in ids if _fail_interrupted(room, job_id, now)]
    with room.read() as s:
        models = claims.expired(s, TrainedModel, now)
    for model_id in models:  # a training its worker left
        with room.transaction() as s:
            if not claims.expired(s, TrainedModel, now, model_id):
                continue
            model = s.get(TrainedModel, model_id)
            model.state, model.reason = "failed", "interrupted by a server restart"
            audit.append(
                s,
                audit.collaboration_scope(model.collaboration_id),
                "server",
                "model.failed",
                {"model_id": model.id, "reason": model.reason},
            )
    return recovered


def _fail_interrupted(room: Room, job_id: int, now: datetime) -> bool:
    """One transaction: fail the job (refund as :func:`refunded` says), if its lease is still expired."""
    with room.transaction() as s:
        if not claims.expired(s, Job, now, job_id):
            return False  # its worker renewed the lease, or another worker recovered it
        job = s.get(Job, job_id)
        job.state, job.category, job.reason, job.finished_at = "failed", "interrupted", INTERRUPTED, utcnow()
        epsilon = 0.0
        if refunded(job.category, touched=True):  # it was running: its template may have read rows
            epsilon = ledger.release(s, job.id)
            job.budget_released = True
        shutil.rmtree(room.artifacts / "jobs" / str(job.id), ignore_errors=True)
        job.artifacts_dir = None
        audit.append(
            s,
            audit.collaboration_scope(job.collaboration_id),
            "server",
            "job.failed",
            {"job_id": job.id, "reason": INTERRUPTED, "epsilon_released": epsilon},
        )
        return True


def get_job(room: Room, actor: Actor, job_id: int) -> dict:
    with room.read() as s:
        job = visible(s, actor, Job, job_id, "job")
        return job_view(job, sees_scores=_sees_scores(actor, job))


def list_jobs(
    room: Room, actor: Actor, collaboration_id: int, *, limit: int | None = None, offset: int = 0
) -> list[dict]:
    """A collaboration's jobs, oldest first, one page."""
    with room.read() as s:
        membership(s, actor, collaboration_id)
        return [
            job_view(j, sees_scores=_sees_scores(actor, j))
            for j in s.scalars(
                room.page(select(Job).where(Job.collaboration_id == collaboration_id).order_by(Job.id), limit, offset)
            )
        ]


def check_receiver(s, actor: Actor, job: Job) -> None:
    """The caller may receive this job's results: a receiver when it started, and still one."""
    _, member = membership(s, actor, job.collaboration_id)
    if not member.can_receive or actor.id not in json.loads(job.receivers):
        raise Forbidden(f"{actor.name!r} may not receive the results of job {job.id}")


def artifacts_of(job: Job) -> Path:
    """The job's artifacts folder, refused once the retention period is over (at the request,
    whether or not the periodic purge has deleted the files yet)."""
    if job.artifacts_deleted_at is not None:
        raise NotFound(
            f"job {job.id}'s artifacts were deleted at the end of the retention period "
            f"({iso_time(job.artifacts_deleted_at)})"
        )
    if job.expires_at is not None and job.expires_at <= utcnow():
        raise NotFound(
            f"job {job.id}'s artifacts expired at the end of the retention period ({iso_time(job.expires_at)})"
        )
    if job.artifacts_dir is None:
        raise NotFound(f"job {job.id} has no artifacts (state {job.state})")
    return Path(job.artifacts_dir)


def result_path(room: Room, actor: Actor, job_id: int, fmt: str = "csv") -> Path:
    """The released synthetic data, for a result receiver only."""
    if fmt not in RESULT_FORMATS:
        raise InputError(f"format {fmt!r} is not one of {', '.join(RESULT_FORMATS)}")
    with room.transaction() as s:
        job = visible(s, actor, Job, job_id, "job")
        check_receiver(s, actor, job)
        if job.reproducible:
            raise Conflict(f"job {job.id} is a reproducible run (an explicit seed): its data is never released")
        if job.state != "succeeded" or not job.released:
            raise Conflict(
                f"job {job.id} released no synthetic data (state {job.state}{': ' + job.reason if job.reason else ''})"
            )
        path = artifacts_of(job) / f"synthetic.{fmt}"
        audit.append(
            s,
            audit.collaboration_scope(job.collaboration_id),
            actor.name,
            "result.read",
            {"job_id": job.id, "format": fmt},
        )
    return path


def report_path(room: Room, actor: Actor, job_id: int, kind: str = "html") -> Path:
    """The full evaluation report holds non-DP aggregates of the real joined rows: a receiver
    reads it only when every table's rule shares it."""
    if kind not in ("html", "json"):
        raise InputError(f"report kind {kind!r} is not html or json")
    with room.transaction() as s:
        job = visible(s, actor, Job, job_id, "job")
        check_receiver(s, actor, job)
        if not job.share_full_report:
            raise Forbidden(
                f"the analysis rules of job {job.id}'s tables do not share the full report; the summary is in the job"
            )
        path = artifacts_of(job) / f"report.{kind}"
        if not path.exists():
            raise NotFound(f"job {job.id} has no report")
        audit.append(
            s,
            audit.collaboration_scope(job.collaboration_id),
            actor.name,
            "report.read",
            {"job_id": job.id, "kind": kind},
        )
    return path


def purge_expired(room: Room, now: datetime | None = None) -> list[int]:
    """Delete the artifacts of jobs past their retention; log each deletion."""
    now = now or utcnow()
    with room.transaction() as s:
        ids = list(
            s.scalars(select(Job.id).where(Job.expires_at <= now, Job.artifacts_deleted_at.is_(None)).order_by(Job.id))
        )
    for job_id in ids:
        with room.transaction() as s:
            job = s.get(Job, job_id)
            if job.artifacts_deleted_at is not None:
                continue
            if job.artifacts_dir:
                shutil.rmtree(job.artifacts_dir, ignore_errors=True)
            job.artifacts_deleted_at = now
            audit.append(
                s,
                audit.collaboration_scope(job.collaboration_id),
                "retention",
                "job.artifacts_deleted",
                {"job_id": job.id, "expired_at": iso_time(job.expires_at)},
            )
    return ids


def metering(room: Room, actor: Actor, collaboration_id: int, *, limit: int | None = None, offset: int = 0) -> dict:
    """Compute seconds (whole) and synthetic rows (the DP sample size, released or not) per job,
    charged to the payer (the exact count of real rows is kept for the operator only: it is not
    DP): one page of entries, the totals of all."""
    with room.read() as s:
        membership(s, actor, collaboration_id)
        names = {m.id: m.name for m in s.scalars(select(Member))}
        entries = list(
            s.scalars(select(MeterEntry).where(MeterEntry.collaboration_id == collaboration_id).order_by(MeterEntry.id))
        )
        rows = [
            {
                "job_id": e.job_id,
                "payer": names[e.payer_id],
                "compute_seconds": whole_seconds(e.compute_seconds),
                "rows_synthetic": e.rows_synthetic,
                "at": iso_time(e.created_at),
            }
            for e in entries
        ]
        totals: dict[str, dict[str, float]] = {}
        for r in rows:
            t = totals.setdefault(r["payer"], {"jobs": 0, "compute_seconds": 0, "rows_synthetic": 0})
            t["jobs"] += 1
            for k in ("compute_seconds", "rows_synthetic"):
                t[k] += r[k]
        scored = s.scalars(
            select(InferenceJob)
            .where(InferenceJob.collaboration_id == collaboration_id, InferenceJob.finished_at.is_not(None))
            .order_by(InferenceJob.id)
        )
        inference = [
            {
                "inference_id": r.id,
                "payer": names[r.payer_id],
                "state": r.state,
                "compute_seconds": whole_seconds(r.compute_seconds),
                "rows_scored": r.rows_scored if r.shows_row_count_to(actor.id) else None,
                "at": iso_time(r.finished_at),
            }
            for r in scored
        ]
        return {"entries": rows[room.window(limit, offset)], "totals": totals, "inference": inference}


def audit_log(room: Room, actor: Actor, collaboration_id: int, *, limit: int | None = None, offset: int = 0) -> dict:
    """One page of the collaboration's audit entries, and whether the whole chain verifies."""
    with room.read() as s:
        membership(s, actor, collaboration_id)
        scope = audit.collaboration_scope(collaboration_id)
        entries = audit.read_chain(s, scope)
        check = audit.verify_scope(s, scope, entries)
        return {
            "entries": [audit.entry_dict(e) for e in entries[room.window(limit, offset)]],
            "verified": check.ok,
            "problem": check.problem,
            "head": check.head,
        }
