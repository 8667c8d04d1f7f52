"""Training a model on a succeeded job's synthetic rows (never on real rows).

Built-in trainers (:mod:`.estimators`): ``gbm``, ``logistic``/``linear`` and ``auto`` (the better
of both on a seeded validation split of the synthetic rows), with simple hyperparameters; the
model is saved as ``model.skops`` (no code runs when it is loaded) with ``model.json`` beside it
(features, task, classes, the types a loader must trust).

A member's training script runs in the bubblewrap sandbox (:mod:`.sandbox`): it sees the
synthetic rows and its output folder and nothing else (no network, no other file), under CPU,
memory, time and output-size limits. It is called as ``train.py --data /input/synthetic.parquet
--target COL --task classification|regression --output /out`` and writes ``metrics.json``
(a JSON object) and its model file(s) into the output folder; a ``model.skops`` there is the
model that inference and export use. Scripts are on unless the operator turns them off
(``--no-training-scripts``) or the sandbox cannot run on the server (then a clear refusal).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from ..errors import FAILURE_CATEGORIES, InputError
from ..schema import parse_schema
from . import audit, claims, estimators, sandbox
from .claims import LEASE_SECONDS
from .errors import Conflict, Forbidden, NotFound
from .jobs import HOLDOUT_FILE, artifacts_of, check_receiver
from .mlpolicy import policy_of
from .models import Collaboration, Job, Template, TrainedModel
from .service import Actor, Room, get_row, not_found, visible

BUILTIN = estimators.BUILTIN
TRAINERS = BUILTIN + ("script",)
task_of = estimators.task_of
INPUT_NOTE = (
    "a DataFrame of the feature columns in this order: categorical values as text (missing: NaN), "
    "numbers as floats, datetimes as days since 1970-01-01 (synthroom.room.estimators.prepare)"
)


def train_builtin(frame: pd.DataFrame, schema, trainer: str, out_dir: Path, params: dict | None = None) -> dict:
    """Fit a built-in trainer on ``frame``; write ``model.skops`` and ``model.json`` into ``out_dir``.
    Returns the fit's details (:func:`.estimators.fit_builtin`'s info)."""
    model, info = estimators.fit_builtin(frame, schema, trainer, params)
    estimators.save_model(model, out_dir)
    card = {
        "format": "skops",
        "file": estimators.MODEL_FILE,
        "trusted": list(estimators.BUILTIN_TRUSTED),
        "task": estimators.task_of(schema),
        "target": schema.target,
        "features": estimators.features_of(schema),
        "classes": [str(c) for c in getattr(model, "classes_", [])],
        "input": INPUT_NOTE,
        **info,
    }
    (out_dir / "model.json").write_text(json.dumps(card, indent=2))
    return info


def script_limits(settings) -> sandbox.ScriptLimits:
    """The sandbox limits a server's settings give a training script."""
    mib = 1 << 20
    return sandbox.ScriptLimits(
        seconds=settings.script_time_limit,
        memory_bytes=settings.script_memory_mib * mib,
        output_bytes=settings.script_output_mib * mib,
    )


def run_script(script: Path, data: Path, target: str, task: str, out_dir: Path, limits: sandbox.ScriptLimits) -> dict:
    """Run a member's training script in the sandbox; its ``metrics.json`` is the result."""
    done = sandbox.run_script(script, data, ["--target", target, "--task", task], out_dir, limits)
    (out_dir / "train.log").write_text(done.log)
    if done.code != 0:
        tail = done.log.strip().splitlines()[-1:] or [""]
        raise InputError(f"the training script exited with code {done.code}: {tail[0][:300]}")
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise InputError("the training script wrote no readable metrics.json into its --output folder") from None
    if not isinstance(metrics, dict):
        raise InputError("the training script's metrics.json must hold a JSON object")
    return metrics


def _check_request(room: Room, trainer: str, script: str | None, params: dict | None) -> None:
    """The trainer exists, its hyperparameters fit, and a script may run on this server."""
    if trainer not in TRAINERS:
        raise InputError(f"trainer {trainer!r} is not one of {', '.join(TRAINERS)}")
    if trainer != "script":
        estimators.check_params(trainer, params)
        return
    if params:
        raise InputError("the script trainer takes no hyperparameters (the script chooses its own)")
    if not room.settings.allow_training_scripts:
        raise Forbidden("training scripts are off on this server (its operator started it with --no-training-scripts)")
    if (why := sandbox.unavailable()) is not None:
        raise Forbidden(why)
    if not script:
        raise InputError("the script trainer needs the script's text")


def _check_provider(s, actor: Actor, job: Job, trainer: str) -> None:
    """A script runs only for a member the collaboration's model policy lets provide models."""
    providers = policy_of(s.get(Collaboration, job.collaboration_id)).model_providers
    if trainer == "script" and providers is not None and actor.name not in providers:
        raise Forbidden(
            f"{actor.name!r} is not among the model providers of collaboration {job.collaboration_id}, "
            "so it may train only the built-in trainers"
        )


def _real_scoring_left(s, job: Job, trainer: str) -> bool:
    """Whether this model takes one of the job's scorings on the real holdout: a built-in trainer
    (a script could be written as a probe of one person's row), every table owner opted in
    (``model_evaluations``), and fewer models than that scored already. The job row is locked
    first (``FOR UPDATE``; SQLite serialises writers), so two requests cannot take the last one."""
    if trainer == "script" or job.model_evaluations <= 0:
        return False
    s.execute(select(Job.id).where(Job.id == job.id).with_for_update())
    used = s.scalar(
        select(func.count(TrainedModel.id)).where(TrainedModel.job_id == job.id, TrainedModel.scored_on_real.is_(True))
    )
    return used < job.model_evaluations


def score_on_real(out_dir: Path, holdout: Path, schema) -> dict[str, float]:
    """The model in ``out_dir`` scored on the real holdout rows, each metric rounded to 2 decimals
    (not DP: docs/cleanroom.md, "Models scored on real rows")."""
    frame = pd.read_parquet(holdout)
    frame = frame[frame[schema.target].notna()]
    model = estimators.load_model(out_dir / estimators.MODEL_FILE)
    with estimators.one_thread():
        scores = estimators.metrics(
            task_of(schema),
            model,
            estimators.prepare(frame, estimators.features_of(schema)),
            estimators.target_values(frame, schema),
        )
    return {k: round(v, 2) for k, v in scores.items()}


def train_model(
    room: Room, actor: Actor, job_id: int, trainer: str = "auto", script: str | None = None, params: dict | None = None
) -> dict:
    """Queue a training on job ``job_id``'s synthetic rows (only its result receivers may).

    With a worker attached (``room.on_model_queued``, the server) the model is returned
    ``queued`` and trained in the background; without one it is trained before returning."""
    _check_request(room, trainer, script, params)
    with room.transaction() as s:
        job = visible(s, actor, Job, job_id, "job")
        check_receiver(s, actor, job)
        if job.state != "succeeded" or not job.released:
            raise Conflict(f"job {job.id} has no released synthetic data to train on (state {job.state})")
        data = artifacts_of(job) / "synthetic.parquet"
        _check_provider(s, actor, job, trainer)
        schema = parse_schema(json.loads(s.get(Template, job.template_id).params)["classification"])
        record = TrainedModel(
            job_id=job.id,
            collaboration_id=job.collaboration_id,
            created_by=actor.id,
            trainer=trainer,
            task=task_of(schema),
            target=schema.target,
            state="queued",
            params=json.dumps(params or {}),
            scored_on_real=_real_scoring_left(s, job, trainer),
        )
        s.add(record)
        s.flush()
        out_dir = data.parent / "models" / str(record.id)
        out_dir.mkdir(parents=True, exist_ok=True)
        if script is not None:
            (out_dir / "train.py").write_text(script)
        record.path = str(out_dir)
        audit.append(
            s,
            audit.collaboration_scope(record.collaboration_id),
            actor.name,
            "model.queued",
            {"model_id": record.id, "job_id": job_id, "trainer": trainer},
        )
        view, model_id = model_view(record), record.id
    if room.on_model_queued is not None:
        room.on_model_queued(model_id)
        return view
    return run_training(room, model_id)


def run_training(room: Room, model_id: int, *, worker_id: str | None = None, lease: float = LEASE_SECONDS) -> dict:
    """Claim model ``model_id`` if it is still queued and train it to its end; returns its final view."""
    worker_id = worker_id or claims.new_worker_id()
    with room.transaction() as s:
        if claims.take(s, TrainedModel, model_id, worker_id, lease) is None:
            return model_view(get_row(s, TrainedModel, model_id, "model"))
        task = _task(s, model_id)
    return _train_claimed(room, model_id, worker_id, lease, task)


def run_next_training(room: Room, *, worker_id: str, lease: float = LEASE_SECONDS) -> dict | None:
    """Claim the oldest queued training (any server may have queued it) and run it; None when none is queued."""
    with room.transaction() as s:
        model_id = claims.take(s, TrainedModel, None, worker_id, lease)
        if model_id is None:
            return None
        task = _task(s, model_id)
    return _train_claimed(room, model_id, worker_id, lease, task)


def _task(s, model_id: int) -> tuple:
    """What training a claimed model needs: its trainer, data file, schema and output folder."""
    record = s.get(TrainedModel, model_id, populate_existing=True)
    job = s.get(Job, record.job_id)
    schema = parse_schema(json.loads(s.get(Template, job.template_id).params)["classification"])
    holdout = artifacts_of(job) / HOLDOUT_FILE if record.scored_on_real else None
    return (
        record.trainer,
        json.loads(record.params or "{}"),
        artifacts_of(job) / "synthetic.parquet",
        schema,
        Path(record.path),
        holdout,
    )


def _train_claimed(room: Room, model_id: int, worker_id: str, lease: float, task: tuple) -> dict:
    """Train while renewing the claim's lease, then record the outcome (unless the claim was lost)."""
    trainer, params, data, schema, out_dir, holdout = task
    state, reason, metrics, details, real = "succeeded", None, {}, {}, None
    with claims.Heartbeat(room, TrainedModel, model_id, worker_id, lease):
        try:
            if trainer == "script":
                metrics = run_script(
                    out_dir / "train.py", data, schema.target, task_of(schema), out_dir, script_limits(room.settings)
                )
            else:
                details = train_builtin(pd.read_parquet(data), schema, trainer, out_dir, params)
                metrics = details.pop("validation")
                if holdout is not None and holdout.is_file():
                    real = score_on_real(out_dir, holdout, schema)
        except InputError as exc:
            state, reason = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - recorded on the model
            state, reason = "failed", f"internal error: {type(exc).__name__}: {exc}"
    with room.transaction() as s:
        record = s.get(TrainedModel, model_id)
        if not claims.still_mine(record, worker_id):  # recovered after this worker's lease ran out
            return model_view(record)
        record.state, record.reason, record.metrics = state, reason, json.dumps(metrics)
        record.details = json.dumps(details)
        record.real_metrics = None if real is None else json.dumps(real)
        audit.append(
            s,
            audit.collaboration_scope(record.collaboration_id),
            "worker",
            f"model.{state}",
            {
                "model_id": record.id,
                "job_id": record.job_id,
                "trainer": trainer,
                "metrics": metrics,
                "reason": reason,
                "scored_on_real_rows": real is not None,
            },
        )  # never the real metrics
        return model_view(record)


def model_view(record: TrainedModel) -> dict:
    """A model as its receivers see it: an unexpected failure's text (which may name server paths)
    stays in the database for the operator; the view says only that it was internal."""
    reason = record.reason
    if reason is not None and reason.startswith("internal error"):
        reason = f"{FAILURE_CATEGORIES['internal_error']} (the operator's log has the detail)"
    details = json.loads(record.details or "{}")
    return {
        "id": record.id,
        "job_id": record.job_id,
        "trainer": record.trainer,
        "task": record.task,
        "target": record.target,
        "state": record.state,
        "reason": reason,
        "params": json.loads(record.params or "{}"),
        "chosen": details.get("trainer"),
        "chosen_params": details.get("params"),
        "candidates": details.get("candidates"),
        "metrics": json.loads(record.metrics),
        "real_metrics": None if record.real_metrics is None else json.loads(record.real_metrics),
        "created_at": record.created_at.isoformat(),
    }


def _receivers_model(s, actor: Actor, model_id: int) -> TrainedModel:
    """A model only its job's result receivers see; to anyone else it does not exist."""
    record = visible(s, actor, TrainedModel, model_id, "model")
    try:
        check_receiver(s, actor, s.get(Job, record.job_id))
    except Forbidden:
        raise not_found("model", model_id) from None
    return record


def get_model(room: Room, actor: Actor, model_id: int) -> dict:
    with room.read() as s:
        return model_view(_receivers_model(s, actor, model_id))


def list_models(room: Room, actor: Actor, job_id: int, *, limit: int | None = None, offset: int = 0) -> list[dict]:
    """The models trained on a job's synthetic rows (its result receivers only), oldest first, one page."""
    with room.read() as s:
        check_receiver(s, actor, visible(s, actor, Job, job_id, "job"))
        return [
            model_view(m)
            for m in s.scalars(
                room.page(
                    select(TrainedModel).where(TrainedModel.job_id == job_id).order_by(TrainedModel.id), limit, offset
                )
            )
        ]


def model_file(room: Room, actor: Actor, model_id: int) -> Path:
    """The model file, ``model.skops``, for the model's receivers when the collaboration's model
    policy allows export, under its size cap, holding only types a loader may trust (see
    :mod:`.estimators`: loading it runs no code)."""
    with room.transaction() as s:
        record = _receivers_model(s, actor, model_id)
        job = s.get(Job, record.job_id)
        artifacts_of(job)
        policy = policy_of(s.get(Collaboration, record.collaboration_id))
        if not policy.allow_export:
            raise Forbidden(
                f"the model policy of collaboration {record.collaboration_id} does not allow models to "
                "leave the room (allow_export); run inference inside it instead"
            )
        if record.state != "succeeded" or not record.path:
            raise Conflict(f"model {model_id} has no file (state {record.state})")
        path = Path(record.path) / estimators.MODEL_FILE
        if not path.is_file():
            raise NotFound(f"model {model_id} has no {estimators.MODEL_FILE} (a script must write one to be exported)")
        _check_exportable(path, record, policy.max_artifact_mib)
        audit.append(
            s,
            audit.collaboration_scope(record.collaboration_id),
            actor.name,
            "model.exported",
            {"model_id": model_id, "bytes": path.stat().st_size},
        )
        return path


def _check_exportable(path: Path, record: TrainedModel, max_mib: int) -> None:
    """Under the size cap, and only types a loader trusts: skops's defaults, and for the server's
    own built-in models the few it lists (:data:`.estimators.BUILTIN_TRUSTED`)."""
    size = path.stat().st_size
    if size > max_mib * (1 << 20):
        raise Forbidden(
            f"model {record.id}'s file is {size / (1 << 20):.1f} MiB, over the collaboration's "
            f"max_artifact_mib of {max_mib}"
        )
    allowed = () if record.trainer == "script" else estimators.BUILTIN_TRUSTED
    extra = sorted(set(estimators.untrusted_types(path)) - set(allowed))
    if extra:
        raise Forbidden(
            f"model {record.id}'s file holds types a loader would have to trust blindly "
            f"({', '.join(extra)}); it cannot leave the room"
        )
