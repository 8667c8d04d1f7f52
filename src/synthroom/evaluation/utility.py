"""Machine-learning utility: a model fitted on the synthetic rows and scored on the real holdout
rows (TSTR), beside the same model fitted on the real training rows (TRTR, the ceiling).

The model is scikit-learn's HistGradientBoosting{Classifier,Regressor}(random_state=0), other
settings at their defaults. Features: numbers as they are (datetime as epoch seconds), categorical
columns as native categorical features coded on the training rows' bins (missing stays missing).
A categorical target means classification, any other regression; rows whose target is missing are
left out of fitting and scoring.

Classification: ROC AUC (binary: the score of the positive class, which is the training rows'
minority class; multi-class: the macro mean over the holdout's classes of one-vs-rest AUCs),
accuracy, F1 (binary: of the positive class; multi-class: macro). Regression: R^2 and MAE.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, roc_auc_score
from threadpoolctl import threadpool_limits

from .binning import MISSING_LABEL, ColumnBins
from .result import Utility
from .tables import Tables

RANDOM_STATE = 0
# The models run on one OpenMP thread: on tables this size more threads gain little, and on a
# shared machine (or beside the anonymeter sidecar) OpenMP's spin-waiting made a fit 5x slower.
OPENMP_THREADS = 1


def measure_utility(tables: Tables, bins: list[ColumnBins], notes: list[str]) -> Utility | None:
    target = tables.target
    features = [b for b in bins if b.name != target]
    if not features:
        notes.append("utility not measured: the schema has no column besides the target")
        return None
    matrices = {key: _feature_matrix(df, features, key) for key, df in tables.items()}
    labels = {key: df[target].to_numpy() for key, df in tables.items()}
    categorical = [b.kind == "categorical" for b in features]
    task: Literal["classification", "regression"]
    scorer: Scorer
    if tables.kinds[target] == "categorical":
        task, scorer, model = "classification", _classification_scores, HistGradientBoostingClassifier
    else:
        task, scorer, model = "regression", _regression_scores, HistGradientBoostingRegressor
    scores = {}
    for name, fit_key in (("tstr", "synthetic"), ("trtr", "train")):
        with threadpool_limits(limits=OPENMP_THREADS, user_api="openmp"):
            fit, test, mask = _without_empty_features(matrices[fit_key], matrices["holdout"], categorical)
            scores[name] = scorer(
                model(random_state=RANDOM_STATE, categorical_features=mask),
                (fit, labels[fit_key]),
                (test, labels["holdout"]),
                notes,
                "the synthetic" if fit_key == "synthetic" else "the training",
                _positive_class(labels["train"]) if task == "classification" else None,
            )
    return Utility(
        task=task,
        target=target,
        model=f"{model.__name__}(random_state={RANDOM_STATE})",
        tstr=scores["tstr"],
        trtr=scores["trtr"],
    )


def _feature_matrix(df: pd.DataFrame, features: list[ColumnBins], key: str) -> np.ndarray:
    """Numbers as they are; categorical columns as their bin code, NaN where missing."""
    columns = []
    for b in features:
        if b.kind == "categorical":
            code = b.codes[key].astype(float)
            if b.labels and b.labels[-1] == MISSING_LABEL:
                code[b.codes[key] == b.size - 1] = np.nan
            columns.append(code)
        else:
            columns.append(df[b.name].to_numpy(dtype=float))
    return np.column_stack(columns)


def _without_empty_features(fit: np.ndarray, test: np.ndarray, categorical: list[bool]):
    """Leave out features with no value at all in the fitting rows (they carry nothing, and the
    model cannot bin them)."""
    keep = ~np.isnan(fit).all(axis=0)
    if not keep.any():  # nothing to learn from: one constant feature, so the model predicts the mean/prior
        return np.zeros((len(fit), 1)), np.zeros((len(test), 1)), [False]
    return fit[:, keep], test[:, keep], [c for c, k in zip(categorical, keep) if k]


def _positive_class(train_labels: np.ndarray) -> str | None:
    """The training rows' minority class (ties: the later in sorted order), for binary tasks."""
    counts = pd.Series(train_labels).dropna().value_counts().sort_index()
    if len(counts) != 2:
        return None
    return str(counts.index[1] if counts.iloc[1] <= counts.iloc[0] else counts.index[0])


# (model, (x, y) to fit on, (x, y) to score on, notes, the fitting rows' name, positive class) -> scores
Scorer = Callable[[Any, Any, Any, list[str], str, "str | None"], dict[str, float]]


def _classification_scores(model, fit, test, notes, fit_name, positive) -> dict[str, float]:
    (x, y), (x_test, y_test) = _drop_missing_target(fit), _drop_missing_target(test)
    y, y_test = y.astype(str), y_test.astype(str)
    classes = np.unique(y)
    if classes.size < 2:
        only = str(classes[0]) if classes.size else ""
        shown = f" ({only or 'none'})" if fit_name == "the synthetic" else ""  # never quote a real row's value
        notes.append(
            f"utility: {fit_name} rows hold a single target class{shown}; the model "
            "predicts it for every row, so its AUC is 0.5"
        )
        predicted = np.full(y_test.shape, only, dtype=object)
        proba: dict[str, np.ndarray] = {c: np.full(y_test.shape, float(c == only)) for c in np.unique(y_test)}
    else:
        model.fit(x, y)
        matrix = model.predict_proba(x_test)
        predicted = model.classes_[matrix.argmax(axis=1)]
        column = {c: i for i, c in enumerate(model.classes_)}
        proba = {c: matrix[:, column[c]] if c in column else np.zeros(len(y_test)) for c in np.unique(y_test)}
    scores = {"auc": _auc(y_test, proba, positive, notes), "accuracy": float(accuracy_score(y_test, predicted))}
    if positive is not None:
        scores["f1"] = float(f1_score(y_test == positive, predicted.astype(str) == positive, zero_division=0))
    else:
        scores["f1"] = float(f1_score(y_test, predicted.astype(str), average="macro", zero_division=0))
    return scores


def _auc(y_test: np.ndarray, proba: dict[str, np.ndarray], positive: str | None, notes: list[str]) -> float:
    """Binary: AUC of the positive class; else macro one-vs-rest over the holdout's classes.
    A constant score (e.g. a model that never saw a class) has AUC 0.5."""
    classes = [positive] if positive is not None else sorted(proba)
    aucs = []
    for c in classes:
        truth = y_test == c
        if truth.all() or not truth.any():
            continue
        score = proba.get(c, np.zeros(len(y_test)))
        aucs.append(float(roc_auc_score(truth, score)))
    if not aucs:
        notes.append("utility: the holdout rows hold a single target class, so the AUC is undefined (0.5 reported)")
        return 0.5
    return float(np.mean(aucs))


def _regression_scores(model, fit, test, notes, fit_name, _positive) -> dict[str, float]:
    (x, y), (x_test, y_test) = _drop_missing_target(fit), _drop_missing_target(test)
    y, y_test = y.astype(float), y_test.astype(float)
    if y.size == 0:
        notes.append(f"utility: {fit_name} rows have no target values; the model predicts 0")
        predicted = np.zeros_like(y_test)
    else:
        predicted = model.fit(x, y).predict(x_test)
    return {"r2": float(r2_score(y_test, predicted)), "mae": float(mean_absolute_error(y_test, predicted))}


def _drop_missing_target(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    x, y = pair
    keep = ~pd.isna(y)
    return x[keep], y[keep]
