"""Built-in trainers on a table (what a job's synthetic rows look like): classification and
regression, with metrics from a held-out share and a model file that predicts."""

import pickle

import numpy as np
import pandas as pd
import pytest

from synthroom.errors import InputError
from synthroom.room.training import train_builtin
from synthroom.schema import parse_schema


def _table(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    kind = rng.choice(["a", "b", "c"], n)
    day = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    value = 3 * x + (kind == "b") * 2 + rng.normal(scale=0.5, size=n)
    label = np.where(value + rng.normal(size=n) > 1, "yes", "no")
    return pd.DataFrame({"x": x, "kind": kind, "day": day, "value": value, "label": label})


SCHEMA = [{"name": "x", "type": "numerical"}, {"name": "kind", "type": "categorical"},
          {"name": "day", "type": "datetime"}, {"name": "value", "type": "numerical"}]


@pytest.mark.parametrize("trainer", ["logistic", "gbm"])
def test_classification(tmp_path, trainer):
    schema = parse_schema({"target": "label", "columns": SCHEMA + [{"name": "label", "type": "categorical"}]})
    metrics = train_builtin(_table(), schema, trainer, tmp_path)
    assert set(metrics) == {"accuracy", "f1_macro", "auc"} and metrics["auc"] > 0.85
    model = pickle.loads((tmp_path / "model.pkl").read_bytes())
    fresh = _table(200, seed=1)
    assert (model.predict(fresh.drop(columns=["label"]).assign(day=lambda d: d.day.astype("int64") / 86_400e9))
            == fresh.label).mean() > 0.75


@pytest.mark.parametrize("trainer", ["linear", "gbm"])
def test_regression(tmp_path, trainer):
    cols = [c for c in SCHEMA if c["name"] != "value"] + [{"name": "label", "type": "categorical"},
                                                          {"name": "value", "type": "numerical"}]
    metrics = train_builtin(_table(), parse_schema({"target": "value", "columns": cols}), trainer, tmp_path)
    assert set(metrics) == {"r2", "mae"} and metrics["r2"] > 0.8


def test_too_few_rows(tmp_path):
    schema = parse_schema({"target": "label", "columns": SCHEMA + [{"name": "label", "type": "categorical"}]})
    with pytest.raises(InputError, match="only 10 synthetic rows have a 'label' value; training needs at least 20"):
        train_builtin(_table(10), schema, "gbm", tmp_path)
