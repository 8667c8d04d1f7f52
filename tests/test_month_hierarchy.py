"""A date's month as a public hierarchy level (issue 12): ``{name: paid_on, type: date, hierarchy:
month}`` models the year-month and draws the day within it from one noisy (day, month) table."""

import copy
import datetime

import numpy as np
import pandas as pd
import pytest

from synthroom import Synthesizer, parse_schema
from synthroom.errors import SchemaError

MONTHS = pd.period_range("2023-01", "2024-12", freq="M")  # 24 months
SCHEMA: dict = {
    "target": "late",
    "columns": [
        {"name": "paid_on", "type": "date", "hierarchy": "month"},
        {"name": "plan", "type": "categorical"},
        {"name": "late", "type": "categorical"},
    ],
}


def billing_table(rows: int, seed: int) -> pd.DataFrame:
    """Payments over 24 months, more of them in later months; 70% on the 1st or the 15th of their
    month, the rest on any day of it; ``late`` far more frequent in the summer months."""
    rng = np.random.default_rng(seed)
    month = rng.choice(len(MONTHS), rows, p=np.linspace(1, 3, len(MONTHS)) / np.linspace(1, 3, len(MONTHS)).sum())
    start = MONTHS.start_time[month]
    length = MONTHS.days_in_month[month]
    anchored = rng.random(rows) < 0.7
    day = np.where(anchored, np.where(rng.random(rows) < 0.5, 1, 15), 1 + np.floor(rng.random(rows) * length))
    dates = start + pd.to_timedelta(day - 1, unit="D")
    summer = np.isin(MONTHS.month[month], [6, 7, 8])
    late = np.where(rng.random(rows) < np.where(summer, 0.6, 0.1), "yes", "no")
    plan = np.where(rng.random(rows) < 0.3, "pro", "basic")
    return pd.DataFrame({"paid_on": dates.date, "plan": plan, "late": late})


def schema(**keys) -> dict:
    d = copy.deepcopy(SCHEMA)
    d["columns"][0].update(keys)
    for key in [k for k, v in keys.items() if v is None]:
        del d["columns"][0][key]
    return d


# -- the schema --------------------------------------------------------------------------------
def test_the_month_level_parses_and_round_trips():
    s = parse_schema(SCHEMA)
    assert s["paid_on"].hierarchy == "month" and s["paid_on"].date_only
    assert s.to_dict()["columns"][0] == {"name": "paid_on", "type": "date", "hierarchy": "month"}
    assert parse_schema(s.to_dict()) == s
    assert parse_schema(schema(type="datetime"))["paid_on"].hierarchy == "month"
    assert parse_schema(schema(hierarchy=None))["paid_on"].hierarchy is None


@pytest.mark.parametrize(
    "column, message",
    [
        (
            {"name": "plan", "type": "categorical", "hierarchy": "month"},
            "column 'plan': hierarchy: month is only for datetime and date columns",
        ),
        (
            {"name": "paid_on", "type": "numerical", "hierarchy": "month"},
            "column 'paid_on': hierarchy: month is only for datetime and date columns",
        ),
        (
            {"name": "paid_on", "type": "date", "hierarchy": "week"},
            "column 'paid_on': hierarchy 'week' is not a level this version knows (known: month)",
        ),
        (
            {"name": "paid_on", "type": "date", "hierarchy": 12},
            "column 'paid_on': hierarchy must be a non-empty string, not int 12",
        ),
        (
            {"name": "paid_on", "type": "date", "hierarchy": "month", "parent": "plan"},
            "column 'paid_on': parent/parents are only for categorical columns",
        ),
        (
            {"name": "plan", "type": "categorical", "parent": "paid_on"},
            "column 'plan': parent 'paid_on' is not another categorical column of the schema",
        ),
    ],
)
def test_a_misused_month_level_is_one_schema_error_naming_the_column(column, message):
    d = copy.deepcopy(SCHEMA)
    d["columns"] = [c for c in d["columns"] if c["name"] != column["name"]] + [column]
    if column["name"] == "plan":
        d["columns"] = [c if c["name"] != "paid_on" else {"name": "paid_on", "type": "date"} for c in d["columns"]]
    with pytest.raises(SchemaError) as info:
        parse_schema(d)
    assert str(info.value) == message


# -- fitting and sampling ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return billing_table(20_000, seed=0)


def fit(d: dict, table: pd.DataFrame, seed: int = 0) -> Synthesizer:
    return Synthesizer(d, epsilon=1.0, seed=seed).fit(table)  # the default iterations: a month's ties converge


@pytest.fixture(scope="module")
def monthly(table) -> Synthesizer:
    return fit(SCHEMA, table)


@pytest.fixture(scope="module")
def plain(table) -> Synthesizer:
    return fit(schema(hierarchy=None), table)


def day_shares(dates: pd.Series) -> pd.Series:
    days = pd.to_datetime(pd.Series(dates)).dt.day
    return days.value_counts(normalize=True).reindex(range(1, 32), fill_value=0.0)


def test_the_ledger_charges_the_day_table_once_at_an_even_share_of_the_marginals(monthly):
    report = monthly.privacy_report()
    charges = report["charges"]
    steps = [c["step"] for c in charges]
    table_step = "days of 'paid_on' within their month (public hierarchy)"
    assert steps.count(table_step) == 1
    assert "fine histogram of 'paid_on' inside its kept cells" not in steps  # the table replaces it
    at = steps.index(table_step)
    left = report["rho_budget"] - sum(c["rho"] for c in charges[:at])
    # an even share of what the marginals have left: 3 modelled columns + 1 day table
    assert charges[at]["rho"] == pytest.approx(left / 4, rel=1e-12)
    assert charges[at]["sensitivity"] == 1.0 and charges[at]["mechanism"] == "gaussian"
    assert report["rho_spent"] == pytest.approx(report["rho_budget"], rel=1e-9)


def test_days_clustered_on_the_1st_and_15th_keep_that_shape(table, monthly, plain):
    real = day_shares(table["paid_on"])
    assert real[1] + real[15] == pytest.approx(0.7 + 2 / 30.4 * 0.3, abs=0.02)
    with_key = day_shares(monthly.sample(20_000, seed=1)["paid_on"])
    without = day_shares(plain.sample(20_000, seed=1)["paid_on"])
    # the model's pieces of ~23 days lose the shape entirely; the day table keeps it
    assert with_key[1] + with_key[15] > 0.66
    assert without[1] + without[15] < 0.15
    tvd_with, tvd_without = 0.5 * (with_key - real).abs().sum(), 0.5 * (without - real).abs().sum()
    assert tvd_with < 0.09 and tvd_without > 0.5


def test_the_month_distribution_and_its_correlation_with_the_target_are_kept(table, monthly):
    df = monthly.sample(20_000, seed=2)
    real_month = pd.to_datetime(pd.Series(table["paid_on"])).dt.to_period("M")
    synth_month = pd.to_datetime(pd.Series(df["paid_on"])).dt.to_period("M")
    p, q = real_month.value_counts(normalize=True), synth_month.value_counts(normalize=True)
    assert set(q.index) <= set(MONTHS)
    assert 0.5 * p.sub(q, fill_value=0.0).abs().sum() < 0.03  # 24 months: 0.008-0.010 at fit seeds 1-3
    summer = synth_month.dt.month.isin([6, 7, 8]).to_numpy()
    late = (df["late"] == "yes").to_numpy()
    assert late[summer].mean() == pytest.approx(0.6, abs=0.04)
    assert late[~summer].mean() == pytest.approx(0.1, abs=0.03)


def test_every_date_falls_in_its_drawn_month_on_a_day_that_exists(monthly):
    col = monthly.columns_["paid_on"]
    bins = len(col.bin_weights)
    month = [pd.Period(pd.Timestamp(lo[0], unit="s"), "M") for lo in col.bin_lo]
    assert month == list(pd.period_range(month[0], periods=bins, freq="M"))  # one bin per month, in order
    assert set(MONTHS) <= set(month)
    rng = np.random.default_rng(3)
    codes = np.repeat(np.arange(bins), 400)
    values = pd.to_datetime(col.decode(codes, rng), unit="s")
    assert (pd.Series(values).dt.to_period("M").to_numpy() == np.asarray(month, dtype=object)[codes]).all()
    feb = codes == month.index(pd.Period("2023-02"))
    assert pd.Series(values[feb]).dt.day.max() <= 28  # no 29-31 February 2023
    out = monthly.sample(5_000, seed=8)["paid_on"]
    assert all(isinstance(v, datetime.date) and not isinstance(v, datetime.datetime) for v in out)
    # the year cell before 2023 is kept for the bills dated 1 January 2023 at midnight (its cells run
    # from 1900-01-01 in steps of 365.25 days): its empty months are never drawn
    assert pd.to_datetime(pd.Series(out)).dt.to_period("M").isin(MONTHS).all()


def test_a_datetime_column_keeps_its_time_of_day(table):
    stamps = pd.to_datetime(pd.Series(table["paid_on"])) + pd.to_timedelta(
        np.random.default_rng(4).random(len(table)) * 86_400, unit="s"
    )
    synth = fit(schema(type="datetime"), table.assign(paid_on=stamps))
    out = pd.to_datetime(synth.sample(10_000, seed=5)["paid_on"])
    seconds = (out - out.dt.floor("D")).dt.total_seconds()
    assert 0.45 < (seconds < 43_200).mean() < 0.55  # uniform within the day, as without the key
    shares = day_shares(out)
    assert shares[1] + shares[15] > 0.66


def test_a_range_condition_on_the_date_is_drawn_within_it_with_its_days(monthly, tmp_path):
    df = monthly.sample(2_000, seed=6, where={"paid_on": ("2023-03-01", "2023-03-31")})
    dates = pd.to_datetime(pd.Series(df["paid_on"]))
    assert ((dates >= "2023-03-01") & (dates <= "2023-03-31")).all()
    shares = day_shares(dates)
    assert shares[1] + shares[15] > 0.6
    with pytest.raises(Exception, match="balance a categorical column"):
        monthly.sample(10, balance="paid_on")
    monthly.save(tmp_path / "m.npz")
    loaded = Synthesizer.load(tmp_path / "m.npz")
    assert loaded.schema["paid_on"].hierarchy == "month"
    pd.testing.assert_frame_equal(loaded.sample(500, seed=7), monthly.sample(500, seed=7))
