"""Built-in trainers on tables like a job's synthetic rows: a 300-value and a 20-value categorical
column, missing values in every kind of column, dates; binary, multi-class and numerical targets.
Metrics come from a seeded validation split; the model file is skops and predicts after a load."""

import numpy as np
import pandas as pd
import pytest

from synthroom.errors import InputError
from synthroom.room.estimators import (
    BUILTIN_TRUSTED,
    MODEL_FILE,
    check_params,
    fit_builtin,
    load_model,
    prepare,
    save_model,
    untrusted_types,
)
from synthroom.schema import parse_schema

FEATURES = [
    {"name": "x", "type": "numerical"},
    {"name": "city", "type": "categorical"},
    {"name": "plan", "type": "categorical"},
    {"name": "day", "type": "datetime"},
]


def _table(n=6000, seed=0):
    """``city`` (300 values) and ``plan`` (20) drive the targets through per-value effects, so a
    model that drops them (or folds them all away) cannot reach the thresholds below."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    city_effect, plan_effect = np.random.default_rng(99).normal(scale=1.5, size=300), np.linspace(-2, 2, 20)
    city, plan = rng.integers(0, 300, n), rng.integers(0, 20, n)
    day = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    score = x + city_effect[city] + plan_effect[plan] + (day.day_of_year.to_numpy() > 180) * 1.0
    value = score + rng.normal(scale=0.3, size=n)
    frame = pd.DataFrame(
        {
            "x": x,
            "city": [f"city{c}" for c in city],
            "plan": [f"p{p}" for p in plan],
            "day": day,
            "value": value,
            "label": np.where(score + rng.normal(scale=0.5, size=n) > 0.5, "yes", "no"),
            "tier": pd.cut(value, [-np.inf, -1, 1, np.inf], labels=["low", "mid", "high"]).astype(str),
        }
    )
    for col in ("x", "city", "day"):  # 5% missing in a number, a category and a date
        frame.loc[rng.random(n) < 0.05, col] = None
    return frame


def _schema(target, kind):
    return parse_schema({"target": target, "columns": FEATURES + [{"name": target, "type": kind}]})


# Floors well above what gbm reaches with ``city`` blanked out (AUC 0.79, macro F1 0.53, R^2 0.41).
CASES = {
    "binary": ("label", "categorical", "auc", 0.88),
    "multiclass": ("tier", "categorical", "f1_macro", 0.65),
    "regression": ("value", "numerical", "r2", 0.7),
}


@pytest.mark.parametrize("trainer", ["gbm", "logistic", "auto"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_trainer_on_each_target_kind(tmp_path, trainer, case):
    target, kind, metric, floor = CASES[case]
    schema = _schema(target, kind)
    model, info = fit_builtin(_table(), schema, trainer)
    assert info["validation"][metric] > floor, info
    assert info["validation_rows"] == 1200
    save_model(model, tmp_path)
    loaded = load_model(tmp_path / MODEL_FILE)
    fresh = _table(1000, seed=1)
    features = [{"name": c.name, "kind": c.kind} for c in schema.columns if c.name != target]
    predicted = loaded.predict(prepare(fresh, features))
    if kind == "numerical":
        assert np.corrcoef(predicted, fresh[target])[0, 1] > 0.85
    else:
        assert (predicted == fresh[target]).mean() > (0.8 if case == "binary" else 0.65)


def test_the_issue_table_trains_with_gbm_and_auto():
    """The issue's case: 20,000 rows with a 50-value and a 20-value categorical column (gbm and auto
    failed on sparse one-hot input)."""
    rng = np.random.default_rng(3)
    n = 20_000
    shop, region = rng.integers(0, 50, n), rng.integers(0, 20, n)
    frame = pd.DataFrame(
        {"shop": [f"s{i}" for i in shop], "region": [f"r{i}" for i in region], "spend": rng.gamma(2, 50, n)}
    )
    frame["churned"] = np.where((shop % 7 == 0) ^ (frame.spend > 120), "yes", "no")
    schema = parse_schema(
        {
            "target": "churned",
            "columns": [
                {"name": "shop", "type": "categorical"},
                {"name": "region", "type": "categorical"},
                {"name": "spend", "type": "numerical"},
                {"name": "churned", "type": "categorical"},
            ],
        }
    )
    for trainer in ("gbm", "auto"):
        _, info = fit_builtin(frame, schema, trainer)
        assert info["trainer"] == "gbm" and info["validation"]["accuracy"] > 0.99, info


def test_auto_picks_the_better_model_on_the_validation_split():
    """An interaction (xor) only trees can learn: auto keeps gbm; its scores of both are shown."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 3000), rng.integers(0, 2, 3000)
    frame = pd.DataFrame({"a": a.astype(str), "b": b.astype(str), "y": np.where(a ^ b, "t", "f")})
    schema = parse_schema(
        {
            "target": "y",
            "columns": [
                {"name": "a", "type": "categorical"},
                {"name": "b", "type": "categorical"},
                {"name": "y", "type": "categorical"},
            ],
        }
    )
    _, info = fit_builtin(frame, schema, "auto")
    assert info["trainer"] == "gbm" and info["candidates"]["gbm"] == 1.0 and info["candidates"]["logistic"] < 0.6


def test_hyperparameters_are_used_and_checked():
    schema = _schema("label", "categorical")
    _, info = fit_builtin(_table(1000), schema, "gbm", {"max_iter": 10, "learning_rate": 0.3})
    assert info["params"] == {"max_iter": 10, "learning_rate": 0.3, "max_leaf_nodes": 31, "l2_regularization": 0.0}
    with pytest.raises(
        InputError,
        match=r"^trainer 'gbm' takes no hyperparameter 'C'; it takes: max_iter, "
        r"learning_rate, max_leaf_nodes, l2_regularization$",
    ):
        check_params("gbm", {"C": 1})
    with pytest.raises(
        InputError,
        match=r"^hyperparameter 'max_iter' of 'gbm' must be a whole number from 10 to "
        r"1000, not 5\.5$",
    ):
        check_params("gbm", {"max_iter": 5.5})
    with pytest.raises(InputError, match=r"^trainer 'auto' takes no hyperparameter 'C'; it takes: none"):
        check_params("auto", {"C": 1})


def test_the_model_file_is_skops_with_only_the_listed_types(tmp_path):
    model, _ = fit_builtin(_table(1000), _schema("label", "categorical"), "gbm")
    path = save_model(model, tmp_path)
    assert set(untrusted_types(path)) <= set(BUILTIN_TRUSTED)
    with pytest.raises(InputError, match="the model file holds types that are not trusted: .*TreePredictor"):
        load_model(path, trusted=())


def test_too_few_rows():
    with pytest.raises(InputError, match="^only 10 synthetic rows have a 'label' value; training needs at least 20$"):
        fit_builtin(_table(10), _schema("label", "categorical"), "gbm")


def test_one_class_is_refused():
    frame = _table(100).assign(label="yes")
    with pytest.raises(
        InputError, match="^the synthetic rows hold one value of 'label'; a classifier needs two or more$"
    ):
        fit_builtin(frame, _schema("label", "categorical"), "auto")
