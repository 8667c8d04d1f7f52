"""Inference jobs: a trained model scores the rows of its runner's own configured table, inside
the room; the predictions go to the collaboration's inference receivers.

Who and what (checked in one transaction when the job is started):

* the runner is named in the collaboration's model policy (``inference_runners``) and **owns**
  the table: a member can only ever score its own rows (another member's table is refused, and
  one it cannot see does not exist);
* the table is associated with the model's collaboration, and its analysis rule allows every
  column the model reads (checked like a template's: only the model's feature columns, and the
  table's privacy-unit column as the row's id, are read from its snapshot);
* the receivers are the policy's ``inference_receivers`` that are active members and that the
  table's rule allows (``allowed_receivers``); at least one;
* the inference payer (the policy's, else the collaboration's payer) is active and accepted paying.

A worker claims the job like any other (:mod:`.claims`), scores the rows in a child process under
the per-job limits (a crafted model file cannot take the server down), and writes
``predictions.csv``/``.parquet`` (the id column, ``prediction`` and, for a classifier, the
predicted class's ``probability``, 4 decimals). Failures show the room's fixed categories;
artifacts expire with the collaboration's retention; each run is metered to the inference payer.

The predictions are per-row functions of the runner's raw rows, released to the receivers by the
runner's own act: they are not DP, and a model can be built to copy a feature into its output
(docs/cleanroom.md, "Inference").
"""

from __future__ import annotations

import io
import json
import shutil
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

from ..errors import FAILURE_CATEGORIES, InputError, JobFailure
from ..io import write_table
from . import audit, claims, estimators
from .claims import LEASE_SECONDS
from .errors import Conflict, Forbidden, NotFound
from .jobs import RESULT_FORMATS, artifacts_of, iso_time, whole_seconds
from .limits import JobLimits, run_limited
from .mlpolicy import policy_of
from .models import (
    Association,
    Collaboration,
    ConfiguredTable,
    InferenceJob,
    Job,
    Member,
    Membership,
    TrainedModel,
    utcnow,
)
from .service import Actor, Room, get_row, membership, not_found, source_of, visible

KINDS = ("categorical", "numerical", "datetime")
ROW_ID = "row"  # the id column when the table has no privacy-unit column


def start_inference(room: Room, actor: Actor, model_id: int, table_id: int) -> dict:
    """Check who and what (module docstring) and queue the job; refusals name what is missing."""
    with room.transaction() as s:
        model = visible(s, actor, TrainedModel, model_id, "model")
        collab, _ = membership(s, actor, model.collaboration_id)
        policy = policy_of(collab)
        if actor.name not in policy.inference_runners:
            raise Forbidden(
                f"{actor.name!r} may not run inference in collaboration {collab.id} (the model policy's "
                "inference_runners)"
            )
        table = _own_table(s, actor, collab.id, table_id)
        if model.state != "succeeded":
            raise Conflict(f"model {model.id} cannot score rows (state {model.state})")
        artifacts_of(s.get(Job, model.job_id))
        features = _features(model)
        _check_columns(table, features)
        receivers = _receivers(s, collab, policy.inference_receivers, table)
        payer = _payer(s, collab, policy.inference_payer)
        record = InferenceJob(
            collaboration_id=collab.id,
            model_id=model.id,
            table_id=table.id,
            started_by=actor.id,
            receivers=json.dumps(receivers),
            payer_id=payer,
            state="queued",
        )
        s.add(record)
        s.flush()
        audit.append(
            s,
            audit.collaboration_scope(collab.id),
            actor.name,
            "inference.started",
            {
                "inference_id": record.id,
                "model_id": model.id,
                "table_id": table.id,
                "columns": [f["name"] for f in features],
            },
        )
        view, inference_id = inference_view(record), record.id
    if room.on_model_queued is not None:  # the worker's wake-up (it takes trainings and inference)
        room.on_model_queued(inference_id)
        return view
    return run_inference(room, inference_id)


def _own_table(s, actor: Actor, collaboration_id: int, table_id: int) -> ConfiguredTable:
    """The runner's own table, associated with the collaboration: nobody scores another's rows."""
    table = get_row(s, ConfiguredTable, table_id, "table")
    associated = s.scalar(
        select(Association.id).where(Association.collaboration_id == collaboration_id, Association.table_id == table.id)
    )
    if table.owner_id != actor.id:
        if associated is None:
            raise not_found("table", table_id)
        raise Forbidden(f"table {table.id} belongs to another member: inference reads only its runner's own tables")
    if associated is None:
        raise Conflict(f"table {table.id} is not associated with collaboration {collaboration_id}")
    return table


def _features(model: TrainedModel) -> list[dict[str, str]]:
    card = Path(model.path or "") / "model.json"
    try:
        features = json.loads(card.read_text())["features"]
        if (
            not isinstance(features, list)
            or not features
            or not all(
                isinstance(f, dict) and isinstance(f.get("name"), str) and f.get("kind") in KINDS for f in features
            )
        ):
            raise ValueError("malformed")
        return [{"name": f["name"], "kind": f["kind"]} for f in features]
    except (OSError, ValueError, KeyError, TypeError):
        raise Conflict(
            f"model {model.id} has no feature list (model.json): only built-in models and scripts that "
            "write model.json with their features can score rows"
        ) from None


def _check_columns(table: ConfiguredTable, features: list[dict[str, str]]) -> None:
    allowed = set(json.loads(table.allowed_columns))
    for feature in features:
        if feature["name"] not in allowed:
            raise InputError(
                f"the model reads column {feature['name']!r}, which table {table.name!r}'s analysis rule "
                "does not allow (or it lacks)"
            )


def _receivers(s, collab: Collaboration, names: list[str], table: ConfiguredTable) -> list[int]:
    allowed = None if table.allowed_receivers is None else set(json.loads(table.allowed_receivers))
    rows = s.execute(
        select(Member.id, Member.name)
        .join(Membership, Membership.member_id == Member.id)
        .where(Membership.collaboration_id == collab.id, Membership.status == "active", Member.name.in_(names))
    ).all()
    ids = sorted(m for m, name in rows if allowed is None or name in allowed)
    if not ids:
        raise Forbidden(
            "no active inference receiver of the collaboration may receive results from table "
            f"{table.name!r} under its analysis rule"
        )
    return ids


def _payer(s, collab: Collaboration, name: str | None) -> int:
    if name is None:
        if not collab.payer_accepted:
            raise Conflict(f"the paying member has not accepted paying (`synthroom room accept {collab.id} --pay`)")
        return collab.payer_id
    member = s.scalar(select(Member).where(Member.name == name))
    row = s.get(Membership, (collab.id, member.id))
    if row is None or row.status != "active" or not collab.inference_payer_accepted:
        raise Conflict(
            f"the inference payer {name!r} has not accepted paying for inference "
            f"(`synthroom room accept {collab.id} --pay`)"
        )
    return member.id


def run_inference(room: Room, inference_id: int, *, worker_id: str | None = None, lease: float = LEASE_SECONDS) -> dict:
    """Claim inference ``inference_id`` if still queued and run it to its end; its final view."""
    worker_id = worker_id or claims.new_worker_id()
    with room.transaction() as s:
        if claims.take(s, InferenceJob, inference_id, worker_id, lease) is None:
            return inference_view(get_row(s, InferenceJob, inference_id, "inference"))
        task = _task(s, inference_id, room.settings.spark_master)
    return _run_claimed(room, inference_id, worker_id, lease, task)


def run_next_inference(room: Room, *, worker_id: str, lease: float = LEASE_SECONDS) -> dict | None:
    """Claim the oldest queued inference and run it; None when none is queued."""
    with room.transaction() as s:
        inference_id = claims.take(s, InferenceJob, None, worker_id, lease)
        if inference_id is None:
            return None
        task = _task(s, inference_id, room.settings.spark_master)
    return _run_claimed(room, inference_id, worker_id, lease, task)


def _task(s, inference_id: int, master: str | None) -> dict:
    """What scoring needs, read in the claim: the model, the table's snapshot, what to read."""
    record = s.get(InferenceJob, inference_id, populate_existing=True)
    model, table = s.get(TrainedModel, record.model_id), s.get(ConfiguredTable, record.table_id)
    withdrawn = None
    if (
        s.scalar(
            select(Association.id).where(
                Association.collaboration_id == record.collaboration_id, Association.table_id == table.id
            )
        )
        is None
    ):
        withdrawn = f"table {table.id} was taken out of the collaboration before the inference ran"
    return {
        "model": str(Path(model.path or "") / estimators.MODEL_FILE),
        "features": _features(model),
        "trusted": [] if model.trainer == "script" else list(estimators.BUILTIN_TRUSTED),
        "source": source_of(table.name, table),
        "task": model.task,
        "withdrawn": withdrawn,
        "master": master,
    }


def _run_claimed(room: Room, inference_id: int, worker_id: str, lease: float, task: dict) -> dict:
    artifacts = room.artifacts / "inference" / str(inference_id)
    outcome = _Outcome()
    start = time.perf_counter()
    with claims.Heartbeat(room, InferenceJob, inference_id, worker_id, lease):
        try:
            if task["withdrawn"]:
                outcome.fail("withdrawn", task["withdrawn"])
            else:
                artifacts.mkdir(parents=True, exist_ok=True)
                limits = JobLimits.from_settings(room.settings)
                outcome.rows = run_limited(
                    _score, (task, str(artifacts)), limits=limits, shared=_Shared(), temp_root=artifacts.parent
                )
        except Exception as exc:  # noqa: BLE001 - recorded on the job
            outcome.fail(
                exc.category if isinstance(exc, JobFailure) else "internal_error", f"{type(exc).__name__}: {exc}"
            )
    outcome.seconds = time.perf_counter() - start
    return _finish(room, inference_id, worker_id, outcome, artifacts)


class _Shared:
    """Nothing travels back from the scoring process but its result."""


class _Outcome:
    def __init__(self) -> None:
        self.category: str | None = None
        self.detail: str | None = None
        self.rows: int | None = None
        self.seconds = 0.0

    def fail(self, category: str, detail: str) -> None:
        self.category, self.detail = category, detail


def _score(task: dict, artifacts: str, _shared: _Shared) -> int:
    """In the child process: read the verified snapshot's needed columns, predict, write (a
    table on the cluster is read and scored on Spark: :func:`_score_on_spark`)."""
    import pyarrow.parquet as pq

    from ..engine.sandbox import verified_snapshot

    source, features = task["source"], task["features"]
    if source.cluster:
        return _score_on_spark(task, Path(artifacts))
    id_column = source.unit
    columns = [f["name"] for f in features] + (
        [id_column] if id_column and id_column not in [f["name"] for f in features] else []
    )
    frame = pq.read_table(io.BytesIO(verified_snapshot(source)), columns=columns).to_pandas()
    model = estimators.load_model(Path(task["model"]), trusted=tuple(task["trusted"]))
    out = pd.DataFrame({id_column or ROW_ID: frame[id_column] if id_column else np.arange(1, len(frame) + 1)})
    predicted = estimators.predict_rows(model, frame, features, classify=task["task"] == "classification")
    for name in predicted.columns:
        out[name] = predicted[name].to_numpy()
    for fmt in RESULT_FORMATS:
        write_table(out, Path(artifacts) / f"predictions.{fmt}")
    return len(out)


def _score_on_spark(task: dict, artifacts: Path) -> int:
    """A cluster table's rows, scored where they live (:mod:`synthroom.engine.spark_inference`):
    the fingerprint checked first, as for local snapshots; the predictions come back in batches."""
    from ..engine.spark import spark_session
    from ..engine.spark_inference import prediction_type, scored_frame, verified_rows, write_predictions
    from ..engine.spark_sandbox import job_session

    source, features, path = task["source"], task["features"], Path(task["model"])
    session = job_session(spark_session(task["master"]))
    rows = verified_rows(session, source, features)
    model = estimators.load_model(path, trusted=tuple(task["trusted"]))
    classify = task["task"] == "classification"
    options = {"unit": source.unit, "trusted": tuple(task["trusted"])}
    options |= {"output_type": prediction_type(model, classify=classify)}
    scored = scored_frame(
        rows, features, path.read_bytes(), **options, probability=classify and hasattr(model, "predict_proba")
    )
    targets = [artifacts / f"predictions.{fmt}" for fmt in RESULT_FORMATS]
    return write_predictions(scored, targets, row_column=None if source.unit else ROW_ID)


def _finish(room: Room, inference_id: int, worker_id: str, outcome: _Outcome, artifacts: Path) -> dict:
    """Record the outcome and its metering in one transaction (unless the claim was lost)."""
    with room.transaction() as s:
        record = s.get(InferenceJob, inference_id)
        if not claims.still_mine(record, worker_id):
            shutil.rmtree(artifacts, ignore_errors=True)
            return inference_view(record)
        record.state = "failed" if outcome.category else "succeeded"
        record.category, record.detail = outcome.category, outcome.detail
        record.rows_scored, record.compute_seconds, record.finished_at = outcome.rows, outcome.seconds, utcnow()
        if record.state == "failed":
            shutil.rmtree(artifacts, ignore_errors=True)
        else:
            collab = s.get(Collaboration, record.collaboration_id)
            record.artifacts_dir = str(artifacts)
            record.expires_at = record.finished_at + timedelta(days=collab.retention_days)
        audit.append(
            s,
            audit.collaboration_scope(record.collaboration_id),
            "worker",
            f"inference.{record.state}",
            {
                "inference_id": record.id,
                "category": record.category,
                "compute_seconds": whole_seconds(record.compute_seconds),
            },
        )
        return inference_view(record)


def inference_view(record: InferenceJob, viewer: int | None = None) -> dict:
    """An inference job as ``viewer`` sees it: a failure's category and fixed text, never the detail;
    the rows scored only for those ``InferenceJob.shows_row_count_to`` allows."""
    return {
        "id": record.id,
        "collaboration_id": record.collaboration_id,
        "model_id": record.model_id,
        "table_id": record.table_id,
        "state": record.state,
        "category": record.category,
        "reason": FAILURE_CATEGORIES.get(record.category) if record.category else None,
        "rows_scored": record.rows_scored if record.shows_row_count_to(viewer) else None,
        "compute_seconds": whole_seconds(record.compute_seconds),
        "created_at": iso_time(record.created_at),
        "finished_at": iso_time(record.finished_at),
        "expires_at": iso_time(record.expires_at),
        "artifacts_deleted_at": iso_time(record.artifacts_deleted_at),
    }


def get_inference(room: Room, actor: Actor, inference_id: int) -> dict:
    with room.read() as s:
        return inference_view(visible(s, actor, InferenceJob, inference_id, "inference"), actor.id)


def list_inference(
    room: Room, actor: Actor, collaboration_id: int, *, limit: int | None = None, offset: int = 0
) -> list[dict]:
    """A collaboration's inference jobs, oldest first, one page."""
    with room.read() as s:
        membership(s, actor, collaboration_id)
        return [
            inference_view(r, actor.id)
            for r in s.scalars(
                room.page(
                    select(InferenceJob)
                    .where(InferenceJob.collaboration_id == collaboration_id)
                    .order_by(InferenceJob.id),
                    limit,
                    offset,
                )
            )
        ]


def inference_result(room: Room, actor: Actor, inference_id: int, fmt: str = "csv") -> Path:
    """The predictions, for the job's inference receivers only (while retained)."""
    if fmt not in RESULT_FORMATS:
        raise InputError(f"format {fmt!r} is not one of {', '.join(RESULT_FORMATS)}")
    with room.transaction() as s:
        record = visible(s, actor, InferenceJob, inference_id, "inference")
        membership(s, actor, record.collaboration_id)
        if actor.id not in json.loads(record.receivers):
            raise Forbidden(f"{actor.name!r} does not receive the predictions of inference {record.id}")
        if record.artifacts_deleted_at is not None or (record.expires_at and record.expires_at <= utcnow()):
            raise NotFound(f"inference {record.id}'s predictions were deleted at the end of the retention period")
        if record.state != "succeeded" or not record.artifacts_dir:
            raise Conflict(f"inference {record.id} has no predictions (state {record.state})")
        audit.append(
            s,
            audit.collaboration_scope(record.collaboration_id),
            actor.name,
            "inference.read",
            {"inference_id": record.id, "format": fmt},
        )
        return Path(record.artifacts_dir) / f"predictions.{fmt}"


def purge_expired_inference(room: Room, now=None) -> list[int]:
    """Delete the predictions of inference jobs past their retention; log each deletion."""
    now = now or utcnow()
    with room.read() as s:
        ids = list(
            s.scalars(
                select(InferenceJob.id).where(
                    InferenceJob.expires_at <= now, InferenceJob.artifacts_deleted_at.is_(None)
                )
            )
        )
    for inference_id in ids:
        with room.transaction() as s:
            record = s.get(InferenceJob, inference_id)
            if record.artifacts_deleted_at is not None:
                continue
            if record.artifacts_dir:
                shutil.rmtree(record.artifacts_dir, ignore_errors=True)
            record.artifacts_deleted_at = now
            audit.append(
                s,
                audit.collaboration_scope(record.collaboration_id),
                "retention",
                "inference.artifacts_deleted",
                {"inference_id": record.id},
            )
    return ids


def recover_interrupted_inference(room: Room, now=None) -> list[int]:
    """Fail the running inference jobs whose worker's lease ran out (category ``interrupted``)."""
    now = now or utcnow()
    with room.read() as s:
        ids = claims.expired(s, InferenceJob, now)
    done = []
    for inference_id in ids:
        with room.transaction() as s:
            if not claims.expired(s, InferenceJob, now, inference_id):
                continue
            record = s.get(InferenceJob, inference_id)
            record.state, record.category, record.finished_at = "failed", "interrupted", utcnow()
            shutil.rmtree(room.artifacts / "inference" / str(record.id), ignore_errors=True)
            audit.append(
                s,
                audit.collaboration_scope(record.collaboration_id),
                "server",
                "inference.failed",
                {"inference_id": record.id, "category": "interrupted"},
            )
            done.append(inference_id)
    return done
