"""Training a model on a succeeded job's synthetic rows (never on real rows).

Built-in estimators (scikit-learn): ``logistic`` / ``linear`` (logistic regression for a
categorical target, ridge regression for a numerical one) and ``gbm`` (histogram gradient
boosting); ``auto`` picks ``gbm``. Metrics come from a seeded 80/20 split of the synthetic rows.

A user's training script runs in a separate Python process (``-I``: isolated mode, no user site,
a minimal environment, its own working folder) with a time limit, and is called as
``script --data synthetic.parquet --target COL --task classification|regression --output DIR``;
it writes its model file(s) and ``metrics.json`` into DIR. A process is not a sandbox: the script
runs with the server's OS permissions, so scripts are off unless the server was started with
``--allow-training-scripts`` by an operator who trusts the scripts' authors (or runs the
server under an OS account that cannot read the members' raw files).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

from ..errors import FAILURE_CATEGORIES, InputError
from ..schema import parse_schema
from . import audit, claims
from .claims import LEASE_SECONDS
from .errors import Conflict, Forbidden, NotFound
from .jobs import _artifacts_of, check_receiver
from .models import Job, Template, TrainedModel
from .service import Actor, Room, _get, not_found, visible

BUILTIN = ("auto", "logistic", "linear", "gbm")


def _features(frame: pd.DataFrame, schema, target: str) -> pd.DataFrame:
    out = frame.drop(columns=[target]).copy()
    for col in schema.columns:
        if col.name == target or col.name not in out:
            continue
        if col.kind == "datetime":
            out[col.name] = pd.to_datetime(out[col.name], errors="coerce").astype("int64") / 86_400e9
        elif col.kind == "categorical":
            out[col.name] = out[col.name].astype("string").fillna("<missing>").astype(object)
    return out


def build_estimator(trainer: str, task: str, schema, target: str):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = [c.name for c in schema.columns if c.kind == "categorical" and c.name != target]
    numeric = [c.name for c in schema.columns if c.kind != "categorical" and c.name != target]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=5), categorical),
    ])
    if trainer in ("logistic", "linear"):
        model = LogisticRegression(max_iter=2000) if task == "classification" else Ridge()
    else:
        model = (HistGradientBoostingClassifier(max_iter=200, random_state=0) if task == "classification"
                 else HistGradientBoostingRegressor(max_iter=200, random_state=0))
    return make_pipeline(prep, model)


def _metrics(task: str, model, x_test: pd.DataFrame, y_test: pd.Series) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, roc_auc_score

    predicted = model.predict(x_test)
    if task == "regression":
        return {"r2": float(r2_score(y_test, predicted)), "mae": float(mean_absolute_error(y_test, predicted))}
    metrics = {"accuracy": float(accuracy_score(y_test, predicted)),
               "f1_macro": float(f1_score(y_test, predicted, average="macro"))}
    proba = model.predict_proba(x_test)
    classes = list(model.classes_)
    if len(classes) == 2:
        metrics["auc"] = float(roc_auc_score(y_test == classes[1], proba[:, 1]))
    elif len(set(y_test)) == len(classes):
        metrics["auc"] = float(roc_auc_score(y_test, proba, multi_class="ovr", labels=classes))
    return metrics


def train_builtin(frame: pd.DataFrame, schema, trainer: str, out_dir: Path, seed: int = 0) -> dict[str, float]:
    """Fit on 80% of ``frame``, score on the other 20%, save the model fitted on all rows."""
    target = schema.target
    task = task_of(schema)
    frame = frame[frame[target].notna()].reset_index(drop=True)
    if len(frame) < 20:
        raise InputError(f"only {len(frame)} synthetic rows have a {target!r} value; training needs at least 20")
    x, y = _features(frame, schema, target), frame[target]
    if task == "classification":
        y = y.astype("string").astype(object)
    order = np.random.default_rng(seed).permutation(len(frame))
    test, train = order[: len(frame) // 5], order[len(frame) // 5:]
    model = build_estimator(trainer, task, schema, target).fit(x.iloc[train], y.iloc[train])
    metrics = _metrics(task, model, x.iloc[test], y.iloc[test])
    final = build_estimator(trainer, task, schema, target).fit(x, y)
    with open(out_dir / "model.pkl", "wb") as fh:
        pickle.dump(final, fh)
    return metrics


def task_of(schema) -> str:
    return "classification" if schema[schema.target].kind == "categorical" else "regression"


def run_script(path: Path, data: Path, target: str, task: str, out_dir: Path, time_limit: float) -> dict:
    """Run a user's training script (saved at ``path``) in its own process; its metrics.json is
    the result."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(out_dir), "PYTHONHASHSEED": "0"}
    try:
        done = subprocess.run([sys.executable, "-I", str(path), "--data", str(data), "--target", target, "--task", task,
                               "--output", str(out_dir)], cwd=out_dir, env=env, capture_output=True, text=True,
                              timeout=time_limit)
    except subprocess.TimeoutExpired:
        raise InputError(f"the training script ran over its time limit of {time_limit:g} s and was stopped") from None
    (out_dir / "train.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        raise InputError(f"the training script exited with code {done.returncode}: {tail[0][:300]}")
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise InputError("the training script wrote no readable metrics.json into its --output folder") from None
    if not isinstance(metrics, dict):
        raise InputError("the training script's metrics.json must hold a JSON object")
    return metrics


def train_model(room: Room, actor: Actor, job_id: int, trainer: str = "auto", script: str | None = None) -> dict:
    """Queue a training on job ``job_id``'s synthetic rows (only its result receivers may).

    With a worker attached (``room.on_model_queued``, the server) the model is returned
    ``queued`` and trained in the background; without one it is trained before returning."""
    if trainer not in BUILTIN + ("script",):
        raise InputError(f"trainer {trainer!r} is not one of {', '.join(BUILTIN + ('script',))}")
    if trainer == "script":
        if not room.settings.allow_training_scripts:
            raise Forbidden("training scripts are disabled on this server (start it with --allow-training-scripts)")
        if not script:
            raise InputError("the script trainer needs the script's text")
    with room.transaction() as s:
        job = visible(s, actor, Job, job_id, "job")
        check_receiver(s, actor, job)
        if job.state != "succeeded" or not job.released:
            raise Conflict(f"job {job.id} has no released synthetic data to train on (state {job.state})")
        data = _artifacts_of(job) / "synthetic.parquet"
        schema = parse_schema(json.loads(s.get(Template, job.template_id).params)["classification"])
        record = TrainedModel(job_id=job.id, collaboration_id=job.collaboration_id, created_by=actor.id,
                              trainer=trainer, task=task_of(schema), target=schema.target, state="queued")
        s.add(record)
        s.flush()
        out_dir = data.parent / "models" / str(record.id)
        out_dir.mkdir(parents=True, exist_ok=True)
        if script is not None:
            (out_dir / "train.py").write_text(script)
        record.path = str(out_dir)
        audit.append(s, audit.collaboration_scope(record.collaboration_id), actor.name, "model.queued",
                     {"model_id": record.id, "job_id": job_id, "trainer": trainer})
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
            return model_view(_get(s, TrainedModel, model_id, "model"))
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
    return record.trainer, _artifacts_of(job) / "synthetic.parquet", schema, Path(record.path)


def _train_claimed(room: Room, model_id: int, worker_id: str, lease: float, task: tuple) -> dict:
    """Train while renewing the claim's lease, then record the outcome (unless the claim was lost)."""
    trainer, data, schema, out_dir = task
    state, reason, metrics = "succeeded", None, {}
    with claims.Heartbeat(room, TrainedModel, model_id, worker_id, lease):
        try:
            if trainer == "script":
                metrics = run_script(out_dir / "train.py", data, schema.target, task_of(schema), out_dir,
                                     room.settings.script_time_limit)
            else:
                metrics = train_builtin(pd.read_parquet(data), schema, "gbm" if trainer == "auto" else trainer, out_dir)
        except InputError as exc:
            state, reason = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - recorded on the model
            state, reason = "failed", f"internal error: {type(exc).__name__}: {exc}"
    with room.transaction() as s:
        record = s.get(TrainedModel, model_id)
        if not claims.still_mine(record, worker_id):  # recovered after this worker's lease ran out
            return model_view(record)
        record.state, record.reason, record.metrics = state, reason, json.dumps(metrics)
        audit.append(s, audit.collaboration_scope(record.collaboration_id), "worker", f"model.{state}",
                     {"model_id": record.id, "job_id": record.job_id, "trainer": trainer, "metrics": metrics,
                      "reason": reason})
        return model_view(record)


def model_view(record: TrainedModel) -> dict:
    """A model as its receivers see it: an unexpected failure's text (which may name server paths)
    stays in the database for the operator; the view says only that it was internal."""
    reason = record.reason
    if reason is not None and reason.startswith("internal error"):
        reason = f"{FAILURE_CATEGORIES['internal_error']} (the operator's log has the detail)"
    return {"id": record.id, "job_id": record.job_id, "trainer": record.trainer, "task": record.task,
            "target": record.target, "state": record.state, "reason": reason,
            "metrics": json.loads(record.metrics), "created_at": record.created_at.isoformat()}


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
        return [model_view(m) for m in s.scalars(room.page(
            select(TrainedModel).where(TrainedModel.job_id == job_id).order_by(TrainedModel.id), limit, offset))]


def model_file(room: Room, actor: Actor, model_id: int) -> Path:
    """The model file (``model.pkl`` for built-ins; the script's first model file otherwise)."""
    with room.transaction() as s:
        record = _receivers_model(s, actor, model_id)
        job = s.get(Job, record.job_id)
        _artifacts_of(job)
        if record.state != "succeeded" or not record.path:
            raise Conflict(f"model {model_id} has no file (state {record.state})")
        folder = Path(record.path)
        candidates = [folder / "model.pkl"] + sorted(p for p in folder.glob("model*") if p.is_file())
        for path in candidates:
            if path.exists():
                audit.append(s, audit.collaboration_scope(record.collaboration_id), actor.name, "model.read",
                             {"model_id": model_id})
                return path
        raise NotFound(f"model {model_id}'s folder holds no model file")
