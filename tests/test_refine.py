"""The second selection round: closed-form tree predictions, and a run that uses it."""

import numpy as np
import pytest

from synthroom import Synthesizer
from synthroom.demo import CUSTOMERS_SCHEMA, simulate_customers
from synthroom.synthesis.refine import tree_predictor
from synthroom.synthesis.synthesizer import Settings


def test_tree_predictions_match_the_model(customers):
    synth = Synthesizer(CUSTOMERS_SCHEMA, epsilon=10.0, seed=3, settings=Settings(refine=False)).fit(customers)
    model = synth.model_
    tree = [tuple(c) for c in model.cliques if len(c) == 3]
    sizes = {name: col.size for name, col in synth.columns_.items()}
    predict = tree_predictor(model, tree, sizes, "churned")
    edges = {frozenset(c[:2]) for c in tree}
    features = [c for c in sizes if c != "churned"]
    far = next((x, y, "churned") for i, x in enumerate(features) for y in features[i + 1:] if frozenset((x, y)) not in edges)
    exact = np.asarray(model.project(far).datavector(flatten=False))
    assert np.allclose(predict(far), exact, rtol=1e-6, atol=1e-6 * exact.sum())


def test_a_large_budget_runs_the_second_round_and_spends_exactly_the_budget():
    df = simulate_customers(30_000, seed=5)
    synth = Synthesizer(CUSTOMERS_SCHEMA, epsilon=10.0, seed=0).fit(df)
    report = synth.privacy_report()
    steps = [c["step"] for c in report["charges"]]
    assert any(s.startswith("refine: select clique") for s in steps)
    assert report["rho_spent"] == pytest.approx(report["rho_budget"], rel=1e-9)
    assert len([c for c in synth.model_.cliques]) >= 1
    out = synth.sample(5000)
    rate = out.groupby("plan").churned.apply(lambda s: (s == "yes").mean())
    real = df.groupby("plan").churned.apply(lambda s: (s == "yes").mean())
    assert (abs(rate - real) < 0.04).all()
