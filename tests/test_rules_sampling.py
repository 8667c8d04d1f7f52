"""Rules enforced on sampled rows, and conditional sampling (where=, balance=), library and CLI."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from synthroom import InputError, Synthesizer
from synthroom.cli.app import app
from synthroom.evaluation.disclosure import member_summary
from synthroom.rules import violations
from synthroom.synthesis import model as model_module
from synthroom.synthesis.enforce import normalised
from synthroom.synthesis.synthesizer import Settings

PAIRS = [("CA", "West"), ("OR", "West"), ("NY", "East"), ("MA", "East"), ("TX", "South")]
RULES = [
    "start <= end",
    {"columns": ["state", "region"], "allowed": [list(p) for p in PAIRS]},
    {"column": "price", "min": 1, "max": 100, "step": 0.5},
    {"column": "qty", "min": 1},
    {"column": "total", "formula": "price * qty", "name": "total is price times quantity"},
]
SCHEMA = {
    "target": "y",
    "columns": [
        {"name": "start", "type": "datetime"},
        {"name": "end", "type": "datetime"},
        {"name": "state", "type": "categorical"},
        {"name": "region", "type": "categorical"},
        {"name": "segment", "type": "categorical"},
        {"name": "price", "type": "numerical"},
        {"name": "qty", "type": "numerical", "integer": True},
        {"name": "total", "type": "numerical"},
        {"name": "y", "type": "categorical"},
    ],
    "rules": RULES,
}


def make_table(rows: int = 6000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), unit="D")
    end = start + pd.to_timedelta(rng.integers(0, 40, rows), unit="D")  # a short gap: bins overlap
    pair = rng.choice(len(PAIRS), rows, p=[0.3, 0.1, 0.3, 0.1, 0.2])
    segment = rng.choice(["a", "b", "c", "rare"], rows, p=[0.5, 0.3, 0.17, 0.03])
    price = np.round(rng.gamma(3.0, 8.0, rows) + 1, 1).clip(1, 100)
    qty = rng.integers(1, 6, rows)
    y = np.where(rng.random(rows) < np.where(segment == "rare", 0.8, 0.2), "yes", "no")
    return pd.DataFrame(
        {
            "start": start,
            "end": end,
            "state": [PAIRS[i][0] for i in pair],
            "region": [PAIRS[i][1] for i in pair],
            "segment": segment,
            "price": price,
            "qty": qty,
            "total": price * qty,
            "y": y,
        }
    )


@pytest.fixture(scope="module")
def fitted() -> Synthesizer:
    return Synthesizer(SCHEMA, epsilon=10.0, seed=0, settings=Settings(iters=300)).fit(make_table())


def broken(synth: Synthesizer, df: pd.DataFrame) -> dict[str, int]:
    """How many rows break each declared rule."""
    rules = synth.schema.rules
    frame = normalised(df, synth.schema, {c for r in rules for c in r.columns})
    return {r.label: int(violations(r, frame).sum()) for r in rules}


def test_computed_columns_are_not_modelled(fitted):
    assert "total" not in fitted.columns_ and set(fitted.columns_) == set(
        SCHEMA["columns"][i]["name"] for i in (0, 1, 2, 3, 4, 5, 6, 8)
    )
    # no budget is spent on it: one fewer column learns its domain
    charges = [c["step"] for c in fitted.privacy_report()["charges"]]
    assert not any("'total'" in step for step in charges) and any("'price'" in step for step in charges)


@pytest.mark.parametrize("seed", range(5))
def test_no_declared_rule_is_broken_for_any_seed(fitted, seed):
    df = fitted.sample(3000, seed=seed)
    assert list(df.columns) == [c["name"] for c in SCHEMA["columns"]] and len(df) == 3000
    assert set(broken(fitted, df).values()) == {0}
    assert (df["total"] == df["price"] * df["qty"]).all()
    assert np.allclose(df["price"] * 2, np.round(df["price"] * 2)) and df["price"].between(1, 100).all()
    assert str(df["qty"].dtype) == "Int64" and (df["qty"] >= 1).all()
    assert (pd.to_datetime(df["start"]) <= pd.to_datetime(df["end"])).all()
    assert set(zip(df["state"], df["region"])) <= set(PAIRS)
    report = fitted.rule_reports_[0]
    assert report.copied == 0 and report.drawn >= 3000


def test_the_model_alone_breaks_the_rules(fitted):
    """Without enforcing, the same model breaks the inequality and the combinations (so the test
    above is not vacuous), while the computed column is still computed."""
    raw = fitted.sample(3000, seed=0, rules=False)
    counts = broken(fitted, raw)
    assert counts["start <= end"] > 30
    assert counts["(state, region) in 5 allowed combinations"] > 30
    assert counts["total is price times quantity"] == 0
    assert fitted.rule_reports_ == [None]


def test_sampling_without_rules_or_conditions_is_unchanged(fitted):
    """A schema without rules draws exactly what sampling drew before rules existed."""
    plain = Synthesizer({**SCHEMA, "rules": []}, epsilon=10.0)
    plain.model_, plain.columns_ = fitted.model_, fitted.columns_
    codes = model_module.sample_codes(fitted.model_, 500, np.random.SeedSequence([7, 500]).generate_state(4))
    assert (
        plain.sample(500, seed=7)["segment"].to_numpy()
        == np.array(fitted.columns_["segment"].labels(), dtype=object)[codes["segment"]]
    ).all()


def test_where_draws_exactly_the_asked_value_without_rejection(fitted, monkeypatch):
    drawn = []
    real = model_module.sample_codes
    monkeypatch.setattr(model_module, "sample_codes", lambda m, k, s: drawn.append(k) or real(m, k, s))
    df = fitted.sample(2000, seed=1, where={"segment": "rare"}, rules=False)
    assert (df["segment"] == "rare").all() and len(df) == 2000
    assert drawn == [2000]  # one draw of n rows: a 3% value needs no rejection


def model_conditional(synth: Synthesizer, given: str, value: str, column: str) -> dict[str, float]:
    joint = np.asarray(synth.model_.project((given, column)).datavector(flatten=False))
    row = joint[synth.columns_[given].labels().index(value)]
    return dict(zip(synth.columns_[column].labels(), row / row.sum()))


def test_where_follows_the_models_conditional_distribution(fitted):
    """P(y | segment = rare) in 20,000 conditioned rows against the model's own conditional: each
    share within 5 standard errors (sqrt(p (1 - p) / n) <= 0.0036), so a correct sampler fails
    with probability below 1e-6 per class, while sampling y from its marginal (P(yes) near 0.22
    instead of near 0.8) would miss by over 100 standard errors."""
    n = 20_000
    df = fitted.sample(n, seed=2, where={"segment": "rare"}, rules=False)
    expected = model_conditional(fitted, "segment", "rare", "y")
    assert expected["yes"] > 0.6  # the model learned the dependence this test relies on
    for label, p in expected.items():
        share = float((df["y"] == label).mean())
        assert abs(share - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-9, (label, share, p)


def test_a_numeric_range_follows_the_models_conditional_distribution(fitted):
    """P(y | 20 <= price <= 40) in 20,000 rows against the model's, computed from the bins'
    within-range shares (the weights the condition puts on each bin): within 5 standard errors,
    as above. Weighting every bin the range touches by 1 instead would be a different, wrong
    target that the test does not accept by construction of its expected value."""
    from synthroom.synthesis.conditional import parse_where

    n = 20_000
    condition = parse_where({"price": (20, 40)}, fitted.columns_, set())
    labels = fitted.columns_["y"].labels()
    expected = {}
    for code, label in enumerate(labels):
        one = np.zeros(len(labels))
        one[code] = 1.0
        expected[label] = model_module.weighted_share(
            fitted.model_, condition.factors + [(("y",), one)]
        ) / model_module.weighted_share(fitted.model_, condition.factors)
    df = fitted.sample(n, seed=8, where={"price": (20, 40)}, rules=False)
    assert df["price"].between(20, 40).all()
    for label, p in expected.items():
        share = float((df["y"] == label).mean())
        assert abs(share - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-9, (label, share, p)
    # and the same rows as rejection would keep: plain rows inside the range, against the
    # conditioned ones, share of prices below 25 and of y = yes (two-sample, 5 standard errors)
    plain = fitted.sample(60_000, seed=9, rules=False)
    plain = plain[plain["price"].between(20, 40)]
    for a, b in ((plain["price"] < 25, df["price"] < 25), (plain["y"] == "yes", df["y"] == "yes")):
        p = (a.sum() + b.sum()) / (len(a) + len(b))
        assert abs(a.mean() - b.mean()) <= 5 * np.sqrt(p * (1 - p) * (1 / len(a) + 1 / len(b)))


def test_where_takes_lists_and_numeric_ranges(fitted):
    df = fitted.sample(
        2000, seed=3, where={"segment": ["a", "rare"], "price": (20, 40), "start": ("2021-01-01", "2021-06-30")}
    )
    assert set(df["segment"]) == {"a", "rare"}
    assert df["price"].between(20, 40).all() and df["price"].nunique() > 10
    starts = pd.to_datetime(df["start"])
    assert starts.between(pd.Timestamp("2021-01-01"), pd.Timestamp("2021-06-30")).all()
    assert set(broken(fitted, df).values()) == {0}  # the rules hold under conditions too
    point = fitted.sample(200, seed=3, where={"qty": 3})
    assert (point["qty"] == 3).all()


def test_balance_gives_equal_shares(fitted):
    df = fitted.sample(1001, seed=4, balance="segment")
    counts = df["segment"].value_counts().to_dict()
    assert set(counts) == {"a", "b", "c", "rare"} and max(counts.values()) - min(counts.values()) <= 1
    assert sum(counts.values()) == 1001 and set(broken(fitted, df).values()) == {0}
    both = fitted.sample(600, seed=4, balance="y", where={"segment": "rare"})
    assert (both["segment"] == "rare").all() and both["y"].value_counts().to_dict() == {"yes": 300, "no": 300}
    assert not df["segment"].head(20).is_monotonic_increasing  # the balanced parts are mixed


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"where": {"nosuch": "x"}}, "where: column 'nosuch' is not in the model's schema"),
        ({"where": {"segment": "zz"}}, "where: the model never learned the value 'zz' of column 'segment' (it knows "),
        # every segment value is kept, so the column has no 'other' code (selection.drop_empty_other)
        (
            {"where": {"segment": "zz"}},
            "where: the model never learned the value 'zz' of column 'segment' (it knows 'a', 'b', 'c' and 'rare')",
        ),
        ({"where": {"total": (1, 2)}}, "column 'total' is computed by a rule, not modelled: condition on the columns"),
        ({"where": {"price": (50, 10)}}, "where: column 'price': the range starts after it ends"),
        ({"where": {"price": "cheap"}}, "where: column 'price' is numerical and 'cheap' is not a number"),
        ({"where": {"start": "soon"}}, "where: column 'start' is datetime and 'soon' is not a date"),
        ({"where": {"price": (1e6, None)}}, "where: the model gives no probability to price in [1e+06, inf]"),
        ({"where": {"segment": []}}, "where: column 'segment' is given no value"),
        ({"balance": "price"}, "balance: column 'price' is numerical; balance a categorical column"),
        ({"balance": "total"}, "balance: column 'total' is computed by a rule, not modelled"),
        ({"balance": "nosuch"}, "balance: column 'nosuch' is not in the model's schema"),
    ],
)
def test_bad_conditions_are_input_errors(fitted, kwargs, message):
    with pytest.raises(InputError) as info:
        fitted.sample(10, seed=0, **kwargs)
    assert message in str(info.value)


def test_a_value_the_model_never_draws_is_refused(fitted):
    # Every segment value is kept: the fit gives the column no 'other' code (selection.drop_empty_other),
    # so 'other' is a value the model never learned (before, a phantom code the fit suppressed).
    assert fitted.columns_["segment"].coding.other_code is None
    with pytest.raises(InputError, match=r"the model never learned the value 'other' of column 'segment'"):
        fitted.sample(10, seed=0, where={"segment": "other"})


def test_an_inequality_with_an_offset_holds_on_every_row(fitted):
    """``end >= start + 7 days`` (the real table breaks it in about 7/40 of its rows, and so does
    the model) and a numerical offset: enforced, no row breaks them, for any seed."""
    from dataclasses import replace

    from synthroom.schema import with_rules

    schema = with_rules(replace(fitted.schema, rules=()), [*RULES, "end >= start + 7 days", "qty <= price - 1"])
    with_offset = Synthesizer(schema, epsilon=10.0)
    with_offset.model_, with_offset.columns_ = fitted.model_, fitted.columns_
    raw = with_offset.sample(3000, seed=3, rules=False)
    gap = pd.to_datetime(raw["end"]) - pd.to_datetime(raw["start"])
    assert (gap < pd.Timedelta(days=7)).mean() > 0.05  # the model alone breaks it: the test is not vacuous
    for seed in range(3):
        df = with_offset.sample(3000, seed=seed)
        gap = pd.to_datetime(df["end"]) - pd.to_datetime(df["start"])
        assert (gap >= pd.Timedelta(days=7)).all() and len(df) == 3000 and (df["qty"] <= df["price"] - 1).all()
        assert set(broken(with_offset, df).values()) == {0}
        assert with_offset.rule_reports_[0].before["end >= start + 7 days"] > 0.05


def test_a_computed_column_need_not_be_in_the_input(tmp_path):
    """The input may leave out a computed column (it is never read); with it or without it the fit
    reads the same counts, so a seeded run gives the same rows."""
    import yaml

    table = make_table(2000)
    without = Synthesizer(SCHEMA, epsilon=10.0, seed=1, settings=Settings(iters=100)).fit(table.drop(columns="total"))
    with_it = Synthesizer(SCHEMA, epsilon=10.0, seed=1, settings=Settings(iters=100)).fit(table)
    a, b = without.sample(500, seed=2), with_it.sample(500, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == [c["name"] for c in SCHEMA["columns"]] and (a["total"] == a["price"] * a["qty"]).all()
    path, schema, out = tmp_path / "t.csv", tmp_path / "s.yaml", tmp_path / "o.csv"
    table.drop(columns="total").to_csv(path, index=False)
    schema.write_text(yaml.safe_dump(SCHEMA))
    result = CliRunner().invoke(app, ["synthesize", str(path), "-s", str(schema), "-o", str(out), "--rows", "200"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    assert list(written.columns) == list(a.columns) and np.allclose(written["total"], written["price"] * written["qty"])


def test_a_saved_model_keeps_its_rules_and_conditions(tmp_path, fitted):
    fitted.save(tmp_path / "m.npz")
    loaded = Synthesizer.load(tmp_path / "m.npz")
    assert loaded.schema.rules == fitted.schema.rules
    df = loaded.sample(1500, seed=5, where={"segment": "rare"})
    assert (df["segment"] == "rare").all() and set(broken(loaded, df).values()) == {0}


def test_evaluation_reports_rule_rates_and_members_see_none(fitted):
    from synthroom.evaluation import evaluate

    real = make_table(1200, seed=9)
    real.loc[:59, "end"] = real.loc[:59, "start"] - pd.Timedelta(days=1)  # 5% of real rows break a rule
    report = evaluate(real.iloc[:600], real.iloc[600:], fitted.sample(600, seed=6), fitted.schema, anonymeter=False)
    rates = {r.rule: (r.train, r.holdout, r.synthetic) for r in report.rules}
    assert rates["start <= end"] == (0.1, 0.0, 0.0)
    assert rates["total is price times quantity"] == (0.0, 0.0, 0.0)
    assert report.to_dict()["rules"][0] == {"rule": "start <= end", "train": 0.1, "holdout": 0.0, "synthetic": 0.0}
    assert "rules" not in member_summary(report) and "start <= end" not in str(member_summary(report))
    from synthroom.report.html import render_html

    page = render_html(report)
    assert "<h2>Declared rules</h2>" in page and "start &lt;= end" in page and "10.00%" in page


# -- CLI ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory, fitted):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    fitted.save(path)
    return path


def test_cli_sample_where_and_balance(tmp_path, saved):
    out = tmp_path / "o.csv"
    result = CliRunner().invoke(
        app,
        [
            "sample",
            str(saved),
            "--rows",
            "400",
            "--seed",
            "1",
            "-o",
            str(out),
            "--where",
            "segment=rare",
            "--where",
            "segment=a",
            "--where",
            "price=10..30",
            "--balance",
            "segment",
        ],
    )
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    assert df["segment"].value_counts().to_dict() == {"rare": 200, "a": 200}
    assert df["price"].between(10, 30).all() and (df["total"] == df["price"] * df["qty"]).all()
    assert (pd.to_datetime(df["start"]) <= pd.to_datetime(df["end"])).all()
    result = CliRunner().invoke(app, ["sample", str(saved), "--rows", "50", "-o", str(out), "--where", "price=..5"])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["price"].le(5).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--where", "segment"], "--where 'segment': write COLUMN=VALUE"),
        (["--where", "nosuch=1"], "--where 'nosuch=1': column 'nosuch' is not in the model's schema"),
        (["--where", "segment=zz"], "the model never learned the value 'zz' of column 'segment'"),
        (["--where", "price=1..5", "--where", "price=7"], "column 'price' is given twice; give one range LOW..HIGH"),
        (["--balance", "price"], "balance: column 'price' is numerical; balance a categorical column"),
    ],
)
def test_cli_sample_bad_conditions_exit_2_and_write_nothing(tmp_path, saved, args, message):
    out = tmp_path / "o.csv"
    result = CliRunner().invoke(app, ["sample", str(saved), "--rows", "10", "-o", str(out), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output and not out.exists()


def test_cli_synthesize_refuses_an_invalid_rule(tmp_path):
    import yaml

    table, schema = tmp_path / "t.csv", tmp_path / "s.yaml"
    make_table(300).to_csv(table, index=False)
    schema.write_text(yaml.safe_dump({**SCHEMA, "rules": ["start <= segment"]}))
    result = CliRunner().invoke(app, ["synthesize", str(table), "-s", str(schema), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and not (tmp_path / "o.csv").exists()
    assert (
        "rule #1 (start <= segment): column 'segment' is categorical; an inequality compares numerical or "
        "datetime columns"
    ) in " ".join(result.output.split())


def test_conditioning_is_exact_also_across_cliques():
    """A weight table over columns no clique holds together (a new clique) gives exactly the
    brute-force conditional: P'(x) proportional to P(x) w(x_a, x_b)."""
    from mbi import CliqueVector, Domain, Factor, MarkovRandomField, marginal_oracles

    rng = np.random.default_rng(0)
    domain = Domain(["a", "t", "b"], [3, 2, 4])
    cliques = [("a", "t"), ("t", "b")]
    tables = {cl: Factor(domain.project(cl), rng.normal(size=domain.project(cl).shape)) for cl in cliques}
    potentials = CliqueVector(domain, cliques, tables)
    base = MarkovRandomField(
        potentials=potentials, marginals=marginal_oracles.message_passing_stable(potentials, 1.0), total=1.0
    )
    weights = (rng.random((3, 4)) > 0.5).astype(float)
    weights[0, 0] = 1.0
    joint = np.exp(tables[("a", "t")].values[:, :, None] + tables[("t", "b")].values[None, :, :])  # (a, t, b)
    expected = joint * weights[:, None, :]
    expected /= expected.sum()
    got = model_module.conditioned(base, [(("a", "b"), weights)])
    assert np.allclose(np.asarray(got.project(("a", "t", "b")).datavector(flatten=False)), expected, atol=1e-9)
    assert np.isclose(
        model_module.weighted_share(base, [(("b", "a"), weights.T)]), (joint / joint.sum() * weights[:, None, :]).sum()
    )


def test_stratified_uniforms_put_one_draw_in_each_of_k_equal_intervals():
    u = model_module.stratified_uniforms(1000, np.random.default_rng(3))
    assert u.shape == (1000,) and ((0 <= u) & (u < 1)).all()
    assert (np.sort(np.floor(u * 1000)) == np.arange(1000)).all()
    assert not (np.diff(u) > 0).all()  # in random order, not sorted


def test_rows_that_share_parent_codes_get_each_code_in_the_models_proportions():
    """Sampling is post-processing of the model: rows with the same parent codes get each code
    within two rows of its expected count (with independent uniforms the counts would scatter by
    about sqrt(k p), some 15 rows here)."""
    marginal = np.array([[600.0, 300.0, 100.0], [50.0, 450.0, 500.0]])  # parent x child
    rng = np.random.default_rng(5)
    parent = rng.integers(0, 2, 4000)
    child = model_module._draw(marginal, [parent], 4000, rng)
    for p in (0, 1):
        k = int((parent == p).sum())
        expected = k * marginal[p] / marginal[p].sum()
        assert np.abs(np.bincount(child[parent == p], minlength=3) - expected).max() < 2, p
    root = model_module._draw(np.array([1.0, 2.0, 7.0]), [], 997, rng)
    assert np.abs(np.bincount(root, minlength=3) - 997 * np.array([0.1, 0.2, 0.7])).max() < 2
