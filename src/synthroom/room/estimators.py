"""The room's built-in estimators: features, trainers, model selection, metrics, safe files.

Every built-in works on any classified table: categorical columns of any cardinality, missing
values, datetimes, and binary, multi-class and numerical targets.

* ``gbm``: scikit-learn's histogram gradient boosting with its native categorical support. Each
  categorical column is ordinal-encoded with at most :data:`MAX_GBM_CATEGORIES` codes (the
  rarest values share one "infrequent" code; unseen and missing values are missing), and the
  trees split on category sets; numbers and dates keep their missing values (the trees learn
  where they go).
* ``logistic`` / ``linear``: logistic regression (categorical target) or ridge (numerical target)
  on one-hot codes of at most :data:`MAX_ONEHOT_CATEGORIES` values per column (sparse) and
  standardised numbers with a missing-value indicator.
* ``auto``: both, each fitted on a seeded 80% of the synthetic rows and scored on the other
  20% (the validation split); the better one by :func:`selection_score` is refitted on all rows.

A model's input is its feature columns as :func:`prepare` makes them: categorical values as
text (missing: NaN), numbers as floats, datetimes as days since 1970-01-01. Models are saved
with ``skops`` (``model.skops``): loading one builds only the types listed as trusted and runs
no code from the file (:func:`load_model`), unlike a pickle.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError

BUILTIN = ("auto", "logistic", "linear", "gbm")
MAX_GBM_CATEGORIES = 250  # histogram gradient boosting takes at most 255 bins per feature
MAX_ONEHOT_CATEGORIES = 1000  # per column, for the linear models (sparse; the rest share one column)
VALIDATION_SHARE = 0.2
MIN_ROWS = 20
MODEL_FILE = "model.skops"
# Types outside skops's default trusted set that the built-in models hold: the gradient boosting
# trees and its internal encoder's partial(check_array). The server makes these files itself.
BUILTIN_TRUSTED = (
    "functools.partial",
    "numpy.dtype",
    "sklearn.utils.validation.check_array",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
# Simple hyperparameters: name -> (type, lowest, highest, default), per built-in trainer.
HYPERPARAMETERS: dict[str, dict[str, tuple[type, float, float, float]]] = {
    "gbm": {
        "max_iter": (int, 10, 1000, 200),
        "learning_rate": (float, 0.001, 1.0, 0.1),
        "max_leaf_nodes": (int, 2, 255, 31),
        "l2_regularization": (float, 0.0, 1000.0, 0.0),
    },
    "logistic": {"C": (float, 1e-4, 1e4, 1.0)},
    "linear": {"alpha": (float, 0.0, 1e4, 1.0)},
    "auto": {},
}
_EPOCH = pd.Timestamp("1970-01-01")


def task_of(schema) -> str:
    """``classification`` for a categorical target, ``regression`` otherwise."""
    return "classification" if schema[schema.target].kind == "categorical" else "regression"


def features_of(schema) -> list[dict[str, str]]:
    """The model's input columns and their kinds: every classified column but the target."""
    return [{"name": c.name, "kind": c.kind} for c in schema.columns if c.name != schema.target]


def check_params(trainer: str, params: dict[str, Any] | None) -> dict[str, float]:
    """``params`` checked against the trainer's hyperparameters; missing ones take their defaults."""
    if trainer not in HYPERPARAMETERS:
        raise InputError(f"trainer {trainer!r} is not one of {', '.join(BUILTIN)}")
    allowed, given = HYPERPARAMETERS[trainer], dict(params or {})
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        names = ", ".join(allowed) or "none (auto chooses among the defaults)"
        raise InputError(f"trainer {trainer!r} takes no hyperparameter {unknown[0]!r}; it takes: {names}")
    out: dict[str, float] = {}
    for name, (kind, lo, hi, default) in allowed.items():
        value = given.get(name, default)
        whole = kind is int and (isinstance(value, int) or isinstance(value, float) and value.is_integer())
        number = kind is float and isinstance(value, (int, float)) and math.isfinite(value)
        if isinstance(value, bool) or not (whole or number) or not lo <= value <= hi:
            what = "a whole number" if kind is int else "a number"
            raise InputError(
                f"hyperparameter {name!r} of {trainer!r} must be {what} from {lo:g} to {hi:g}, not {value!r}"
            )
        out[name] = kind(value)
    return out


def prepare(frame: pd.DataFrame, features: list[dict[str, str]]) -> pd.DataFrame:
    """The model's input: the feature columns in order, typed as the model expects (see above)."""
    missing = [f["name"] for f in features if f["name"] not in frame.columns]
    if missing:
        raise InputError(f"the rows to score lack the model's feature column {missing[0]!r}")
    return pd.DataFrame({f["name"]: _typed(frame[f["name"]], f["kind"]) for f in features})


def _typed(values: pd.Series, kind: str) -> pd.Series:
    if kind == "categorical":
        text = values.astype(object).map(str)
        return text.where(values.notna(), np.nan).astype(object)
    if kind == "datetime":
        when = pd.to_datetime(values, errors="coerce", utc=True).dt.tz_localize(None)
        return ((when - _EPOCH) / pd.Timedelta(days=1)).astype(float)
    return pd.to_numeric(values, errors="coerce").astype(float)


def target_values(frame: pd.DataFrame, schema) -> pd.Series:
    """The target as the model predicts it: class labels as text, numbers (dates as days) as floats."""
    kind = schema[schema.target].kind
    values = _typed(frame[schema.target], kind)
    return values.astype(object) if kind == "categorical" else values


def build(trainer: str, task: str, features: list[dict[str, str]], params: dict[str, float]):
    """An unfitted pipeline for ``trainer`` (``gbm``, ``logistic`` or ``linear``)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    categorical = [f["name"] for f in features if f["kind"] == "categorical"]
    numeric = [f["name"] for f in features if f["kind"] != "categorical"]
    if trainer == "gbm":
        return _gbm(task, categorical, numeric, params)
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
                ),
                numeric,
            ),
            (
                "cat",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", max_categories=MAX_ONEHOT_CATEGORIES, min_frequency=5
                ),
                categorical,
            ),
        ]
    )
    if task == "classification":
        return make_pipeline(prep, LogisticRegression(C=params.get("C", 1.0), max_iter=2000))
    return make_pipeline(prep, Ridge(alpha=params.get("alpha", 1.0)))


def _gbm(task: str, categorical: list[str], numeric: list[str], params: dict[str, float]):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    prep = ColumnTransformer(
        [
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    max_categories=MAX_GBM_CATEGORIES,
                ),
                categorical,
            ),
            ("num", "passthrough", numeric),
        ]
    )
    mask = [True] * len(categorical) + [False] * len(numeric)
    options = {
        k: params[k] for k in ("max_iter", "learning_rate", "max_leaf_nodes", "l2_regularization") if k in params
    }
    model = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    return make_pipeline(prep, model(categorical_features=mask if any(mask) else None, random_state=0, **options))


def metrics(task: str, model, x: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """Accuracy, macro F1 and AUC (one-vs-rest when multi-class) or R^2 and MAE, on (x, y)."""
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, roc_auc_score

    predicted = model.predict(x)
    if task == "regression":
        return {"r2": float(r2_score(y, predicted)), "mae": float(mean_absolute_error(y, predicted))}
    out = {"accuracy": float(accuracy_score(y, predicted)), "f1_macro": float(f1_score(y, predicted, average="macro"))}
    classes, seen = list(model.classes_), set(y)
    if len(classes) == 2 and len(seen) == 2:
        out["auc"] = float(roc_auc_score(y == classes[1], model.predict_proba(x)[:, 1]))
    elif len(classes) > 2 and seen == set(classes):
        out["auc"] = float(roc_auc_score(y, model.predict_proba(x), multi_class="ovr", labels=classes))
    return out


def predict_rows(model, frame: pd.DataFrame, features: list[dict[str, str]], *, classify: bool) -> pd.DataFrame:
    """The model's ``prediction`` for each row of ``frame`` and, for a classifier that gives
    probabilities, the predicted class's ``probability`` (4 decimals): one row per input row,
    in order (an inference job's output, on the room's worker or on a Spark executor)."""
    with one_thread():
        x = prepare(frame, features)
        out = pd.DataFrame({"prediction": model.predict(x)})
        if classify and hasattr(model, "predict_proba"):
            out["probability"] = np.round(model.predict_proba(x).max(axis=1), 4)
    return out


def selection_score(task: str, scores: dict[str, float]) -> float:
    """What ``auto`` maximises on the validation split: AUC (else accuracy), or R^2."""
    return scores["r2"] if task == "regression" else scores.get("auc", scores["accuracy"])


def one_thread():
    """OpenMP on one thread for a fit or a prediction: on a shared machine OpenMP's spin-waiting
    made a gradient boosting fit a hundred times slower (as in :mod:`synthroom.evaluation.utility`)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def fit_builtin(frame: pd.DataFrame, schema, trainer: str, params: dict | None = None, *, seed: int = 0):
    """Fit ``trainer`` on ``frame`` (synthetic rows). Returns ``(model, info)``: the model refitted
    on every row, and ``info`` with the chosen trainer, its hyperparameters and its validation
    metrics (from a seeded split: fitted on 80% of the rows, scored on the other 20%)."""
    task, features = task_of(schema), features_of(schema)
    plan = _plan(trainer, task, params)
    frame = frame[frame[schema.target].notna()].reset_index(drop=True)
    if len(frame) < MIN_ROWS:
        raise InputError(
            f"only {len(frame)} synthetic rows have a {schema.target!r} value; training needs at least {MIN_ROWS}"
        )
    x, y = prepare(frame, features), target_values(frame, schema)
    if task == "classification" and y.nunique() < 2:
        raise InputError(f"the synthetic rows hold one value of {schema.target!r}; a classifier needs two or more")
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = max(1, int(len(frame) * VALIDATION_SHARE))
    val, fit = order[:cut], order[cut:]
    with one_thread():
        return _select(x, y, fit, val, task, features, plan, cut)


def _select(x, y, fit, val, task: str, features: list[dict[str, str]], plan: list, cut: int):
    """Fit each candidate on the ``fit`` rows, score it on ``val``, refit the best on all rows."""
    results = []
    for name, options in plan:
        model = build(name, task, features, options).fit(x.iloc[fit], y.iloc[fit])
        scores = metrics(task, model, x.iloc[val], y.iloc[val])
        results.append((selection_score(task, scores), name, options, scores))
    _, name, options, scores = max(results, key=lambda r: r[0])
    final = build(name, task, features, options).fit(x, y)
    info = {
        "trainer": name,
        "params": options,
        "validation": {k: round(v, 4) for k, v in scores.items()},
        "validation_rows": int(cut),
        "candidates": {r[1]: round(r[0], 4) for r in results},
    }
    return final, info


def _plan(trainer: str, task: str, params: dict | None) -> list[tuple[str, dict[str, float]]]:
    """The (trainer, hyperparameters) candidates: ``auto`` tries the linear model and ``gbm`` with
    their defaults; ``logistic`` and ``linear`` are one trainer (the target decides which)."""
    check_params(trainer, params)
    linear = "linear" if task == "regression" else "logistic"
    if trainer == "auto":
        return [(linear, check_params(linear, None)), ("gbm", check_params("gbm", None))]
    name = "gbm" if trainer == "gbm" else linear
    return [(name, check_params(name, params))]


def save_model(model, out_dir: Path) -> Path:
    """Write ``model`` as ``model.skops`` in ``out_dir``."""
    import skops.io as sio

    path = Path(out_dir) / MODEL_FILE
    sio.dump(model, path)
    return path


def untrusted_types(path: Path) -> list[str]:
    """The types in a skops file outside skops's default trusted set."""
    import skops.io as sio

    return list(sio.get_untrusted_types(file=path))


def load_model(path: Path, trusted: tuple[str, ...] = BUILTIN_TRUSTED):
    """Load a skops model file, building no type outside skops's defaults and ``trusted``
    (a file that needs another type is refused with the type's name)."""
    import skops.io as sio

    extra = sorted(set(untrusted_types(path)) - set(trusted))
    if extra:
        raise InputError(f"the model file holds types that are not trusted: {', '.join(extra)}")
    return sio.load(path, trusted=list(trusted))
