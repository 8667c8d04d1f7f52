"""The second selection round: closed-form tree predictions, and a run that uses it."""

import numpy as np
import pytest

from synthroom import Synthesizer
from synthroom.demo import CUSTOMERS_SCHEMA, simulate_customers
from synthroom.synthesis.refine import tree_predictor
from synthroom.synthesis.synthesizer import Settings


def test_tree_predictions_match_the_model(customers):
    synth = Synthesizer(CUSTOMERS_SCHEMA, epsilon=10.0, seed=3, settings=Settings(refine=False, coarse=False)).fit(
        customers
    )
    model = synth.model_
    tree = [tuple(c) for c in model.cliques if len(c) == 3]
    sizes = {name: col.size for name, col in synth.columns_.items()}
    predict = tree_predictor(model, tree, sizes, "churned")
    edges = {frozenset(c[:2]) for c in tree}
    features = [c for c in sizes if c != "churned"]
    far = next(
        (x, y, "churned") for i, x in enumerate(features) for y in features[i + 1 :] if frozenset((x, y)) not in edges
    )
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


def test_a_column_only_in_a_two_way_clique_reaches_the_second_round():
    """Issue 12's 1M-row crash (KeyError: 'city' in refine), in the smallest table that reaches it:
    a many-valued column whose 3-way cliques with the target break the cap joins the tree by a
    2-way clique, so the second round scored cliques with a column it had no table for."""
    from synthroom.demo import simulate_customer_table

    df = simulate_customer_table(rows=8_000, seed=0)[["city", "state", "channel", "churned"]]
    schema = {"target": "churned", "columns": [{"name": c, "type": "categorical"} for c in df.columns]}
    # city keeps 76 codes and state 28 at this seed: city x state x churned (2 classes) is 4,256
    # cells, over the cap, so city joins the tree by the 2-way city x state
    synth = Synthesizer(schema, epsilon=10.0, seed=0, settings=Settings(max_clique_cells=4_000, iters=100)).fit(df)
    report = synth.privacy_report()
    steps = [c["step"] for c in report["charges"]]
    assert "marginal cityxstate" in steps  # the branch: city is in no clique with the target
    assert any(s.startswith("refine: select clique") for s in steps)
    assert report["rho_spent"] == pytest.approx(report["rho_budget"], rel=1e-9)
    out = synth.sample(2_000, seed=1)
    assert list(out.columns) == list(df.columns) and out.city.nunique() > 20


def test_tree_predictions_for_a_column_off_the_tree(customers):
    synth = Synthesizer(CUSTOMERS_SCHEMA, epsilon=10.0, seed=3, settings=Settings(refine=False, coarse=False)).fit(
        customers
    )
    model = synth.model_
    tree = [tuple(c) for c in model.cliques if len(c) == 3]
    off = next(c for c in synth.columns_ if c != "churned")
    tree = [c for c in tree if off not in c]  # as if `off` had joined the tree by a 2-way clique
    sizes = {name: col.size for name, col in synth.columns_.items()}
    other = next(c for c in sizes if c not in (off, "churned"))
    got = tree_predictor(model, tree, sizes, "churned")((off, other, "churned"))
    xt = np.asarray(model.project((off, "churned")).datavector(flatten=False))
    yt = np.asarray(model.project((other, "churned")).datavector(flatten=False))
    assert np.allclose(got, np.einsum("xt,yt->xyt", xt, yt) / xt.sum(axis=0), rtol=1e-6, atol=1e-9 * xt.sum())
