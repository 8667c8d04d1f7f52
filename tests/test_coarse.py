"""Coarse pairs (synthesis/coarse.py): which pairs, at what resolution, what they cost, and that
the model reads them as grouped sums of its own marginals."""

import math

import numpy as np
import pandas as pd
import pytest

from synthroom import Synthesizer
from synthroom.demo import CUSTOMERS_SCHEMA, simulate_customers
from synthroom.engine import CategoryCoding, open_source
from synthroom.privacy import ZCDPAccountant
from synthroom.privacy.noise import noise_for
from synthroom.synthesis import coarse
from synthroom.synthesis.coarse import chain_predictor, coarse_round, column_groups, group_table
from synthroom.synthesis.structure import Measurement, measure_cliques
from synthroom.synthesis.synthesizer import Settings


def _table(rows: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """a-b, b-c and c-d tied given t (the tree), and d a noisy copy of a: a pair no tree clique
    holds and that the chain a-b-c-d cannot explain (b and c barely carry a)."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, rows)
    a = rng.integers(0, 6, rows)
    b = np.where(rng.random(rows) < 0.3, a, rng.integers(0, 6, rows))
    c = np.where(rng.random(rows) < 0.3, b, rng.integers(0, 6, rows))
    d = np.where(rng.random(rows) < 0.8, a, rng.integers(0, 6, rows))
    return pd.DataFrame({k: v.astype(str) for k, v in dict(a=a, b=b, c=c, d=d, t=t).items()})


def _source(df: pd.DataFrame):
    source = open_source(df, {c: "categorical" for c in df.columns})
    codings = {}
    for c in df.columns:
        values = tuple(sorted(df[c].unique()))
        codings[c] = CategoryCoding(values, None, None, len(values))
    source.encode(codings)
    return source, {c: coding.size for c, coding in codings.items()}


def _first_round(source, acc, noise, rho):
    anchors = [("a", "t"), ("b", "t"), ("c", "t"), ("d", "t")]
    tree = [("a", "b", "t"), ("b", "c", "t"), ("c", "d", "t")]
    return measure_cliques(source, acc, noise, anchors + tree, rho / 7, "marginal")


def test_the_pair_the_tree_cannot_explain_is_chosen_and_the_round_spends_exactly_its_rho():
    df = _table()
    source, sizes = _source(df)
    acc = ZCDPAccountant(10.0, 1e-9, 0.0)
    noise = noise_for(0)
    first = _first_round(source, acc, noise, 0.5 * acc.rho_budget)
    rho = acc.rho_remaining
    out = coarse_round(source, first, sizes, {}, "t", acc, noise, rho, pairs=2)
    # the candidates: the pairs no measured clique holds, (a, c), (a, d), (b, d); (a, d) wins
    assert [m.clique for m in out][0] == ("a", "d")
    assert {m.clique for m in out} <= {("a", "c"), ("a", "d"), ("b", "d")}
    charges = acc.charges[-2 * len(out) :]
    picks = [ch for ch in charges if ch.step.startswith("coarse pair")]
    assert [ch.step for ch in picks] == [f"coarse pair {i + 1}" for i in range(len(out))]
    for ch in picks:  # each pick: epsilon^2 / 8 = a quarter of the round's rho over the picks
        assert ch.rho == pytest.approx(coarse.SELECT_SHARE * rho / 2, rel=1e-12)
    measured = [ch for ch in charges if ch.step.startswith("coarse marginal")]
    assert [ch.step for ch in measured] == [f"coarse marginal {x}x{y}" for x, y in (m.clique for m in out)]
    assert sum(ch.rho for ch in charges) == pytest.approx(rho, rel=1e-9)
    assert acc.rho_spent == pytest.approx(acc.rho_budget, rel=1e-9)
    source.close()


def test_a_coarse_measurement_sums_the_pairs_table_over_the_groups():
    df = _table(5_000, seed=1)
    source, sizes = _source(df)
    acc = ZCDPAccountant(10.0, 1e-9, 0.0)
    first = _first_round(source, acc, noise_for(1), 0.5 * acc.rho_budget)
    (m,) = coarse_round(source, first, sizes, {}, "t", acc, noise_for(1), acc.rho_remaining, pairs=1, groups=3)
    gx, gy = m.groups
    assert max(gx) + 1 == 3 and max(gy) + 1 == 3  # six values each, in three groups
    exact = source.marginals([m.clique])[0]
    assert m.noisy.shape == (3, 3)
    assert np.abs(m.noisy - group_table(exact, gx, gy)).max() < 6 * m.sigma
    source.close()


def test_groups_query_is_the_grouped_table_of_the_models_marginal():
    from mbi import Domain, Factor

    from synthroom.synthesis.model import GroupsQuery, jax_settings

    values = np.arange(24, dtype=float).reshape(4, 6)
    gx, gy = (0, 0, 1, 2), (1, 0, 1, 0, 2, 2)
    with jax_settings():
        got = np.asarray(GroupsQuery((gx, gy))(Factor(Domain(["x", "y"], [4, 6]), values)))
    assert np.array_equal(got, group_table(values, gx, gy).ravel())
    assert GroupsQuery((gx, gy)).op_norm_sq() == 2 * 2  # the largest groups: 2 codes of x, 2 of y


def test_groups_have_about_equal_noisy_mass_in_the_columns_order_or_by_the_target():
    # numeric x (bins in order, missing bin 5 apart), categorical y sorted by its share of t = 1
    xt = np.array([[100, 0], [100, 0], [100, 0], [100, 0], [100, 0], [7, 0]], dtype=float)
    yt = np.array([[90, 10], [10, 90], [50, 50], [99, 1]], dtype=float)
    ms = [Measurement(("x", "t"), xt, 1.0), Measurement(("y", "t"), yt, 1.0)]
    assert column_groups(ms, "x", 6, "t", 2, {"x": 5}) == (0, 0, 1, 1, 1, 2)
    assert column_groups(ms, "y", 4, "t", 2, {}) == (0, 1, 1, 0)  # shares 0.1, 0.9, 0.5, 0.01
    assert column_groups(ms, "y", 4, "t", 4, {}) == (0, 1, 2, 3)  # few enough codes: all kept


def test_the_chain_prediction_follows_the_tree_given_the_target():
    # x - y - z along the tree, given t: P(x, z) = sum_t P(x, t) sum_y P(y | x, t) P(z | y, t)
    rng = np.random.default_rng(0)
    xyt = rng.integers(50, 200, (3, 4, 2)).astype(float)
    yzt = rng.integers(50, 200, (4, 2, 2)).astype(float)
    xt = xyt.sum(axis=1)
    ms = [Measurement(("x", "t"), xt, 1.0), Measurement(("x", "y", "t"), xyt, 1.0)]
    ms += [Measurement(("y", "z", "t"), yzt, 1.0)]
    got = chain_predictor(ms, {"x": 3, "y": 4, "z": 2, "t": 2}, "t")("x", "z")
    xyt, yzt, xt = xyt + 0.5, yzt + 0.5, xt + 0.5  # the half row every cell gets
    want = np.einsum(
        "xyt,yzt->xz", xyt / xyt.sum(axis=1, keepdims=True) * xt[:, None, :], yzt / yzt.sum(axis=1, keepdims=True)
    )
    n = np.median([t.sum() for t in (xt, xyt, yzt)])
    assert np.allclose(got, want / xt.sum() * n, rtol=1e-9)


def test_a_fit_runs_the_round_only_without_a_second_round_and_spends_the_budget_exactly():
    df = simulate_customers(8_000, seed=2)
    fitted = Synthesizer(CUSTOMERS_SCHEMA, epsilon=1.0, seed=0, settings=Settings(iters=100)).fit(df)
    report = fitted.privacy_report()
    steps = [c["step"] for c in report["charges"]]
    assert report["rho_spent"] == pytest.approx(report["rho_budget"], rel=1e-9)
    assert not any(s.startswith("refine:") for s in steps)
    picks = [c for c in report["charges"] if c["step"].startswith("coarse pair")]
    assert 1 <= len(picks) <= coarse.PAIRS
    off = Synthesizer(CUSTOMERS_SCHEMA, epsilon=1.0, seed=0, settings=Settings(iters=100, coarse=False)).fit(df)
    assert not any(c["step"].startswith("coarse") for c in off.privacy_report()["charges"])
    big = Synthesizer(CUSTOMERS_SCHEMA, epsilon=10.0, seed=0, settings=Settings(iters=100)).fit(
        simulate_customers(30_000, seed=5)
    )
    big_steps = [c["step"] for c in big.privacy_report()["charges"]]
    assert any(s.startswith("refine:") for s in big_steps) and not any(s.startswith("coarse") for s in big_steps)
    assert math.isfinite(float(fitted.model_.total))
