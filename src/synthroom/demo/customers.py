"""A seeded simulator of a realistic, wide customer table, as it arrives from a join.

What makes it realistic (and what the Adult data lacks):

* ``city`` has 400 values with a Zipf-like distribution (a few big cities, a long tail), and
  belongs to a ``state`` that belongs to a ``region``: a public hierarchy (:data:`CITY_HIERARCHY`,
  the same for every seed; city names are made up);
* two dates, ``signup_date`` and ``last_login``, with ``last_login >= signup_date`` on every row
  where both are present;
* skewed amounts (``monthly_spend`` log-normal, ``lifetime_value`` heavy-tailed), counts;
* 2-10% missing values in most columns;
* each customer repeated: ``customers`` distinct people, each on about ``rows / customers`` rows
  (by default 50, as duplicated rows are common in joined data), in shuffled order;
* a binary target, ``churned``, driven by plan, support tickets, spend and recency.

    df = simulate_customer_table(rows=1_000_000, seed=0)        # 20,000 customers x 50
    write_customer_table("big.parquet", rows=10_000_000)         # in chunks, never all in memory
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_REPEAT = 50  # rows per customer when ``customers`` is not given
REFERENCE_DAY = np.datetime64("2026-01-01")
_START = np.datetime64("2015-01-01")
_REGIONS = {
    "Northeast": ["Maine", "New York", "Pennsylvania", "Massachusetts", "New Jersey", "Vermont"],
    "Midwest": ["Ohio", "Illinois", "Michigan", "Minnesota", "Iowa", "Kansas", "Wisconsin"],
    "South": ["Texas", "Florida", "Georgia", "Virginia", "Tennessee", "Alabama", "Kentucky", "Louisiana"],
    "West": ["California", "Washington", "Oregon", "Colorado", "Arizona", "Utah", "Nevada", "Idaho"],
}
_FRONT = [
    "Ash",
    "Bel",
    "Cedar",
    "Clear",
    "Eagle",
    "Fair",
    "Glen",
    "Green",
    "High",
    "Lake",
    "Maple",
    "Mill",
    "North",
    "Oak",
    "Pine",
    "Red",
    "River",
    "Rock",
    "Spring",
    "Stone",
]
_BACK = [
    "brook",
    "burg",
    "dale",
    "field",
    "ford",
    "haven",
    "hill",
    "land",
    "mont",
    "port",
    "ridge",
    "side",
    "ton",
    "vale",
    "view",
    "ville",
    "water",
    "wood",
    "crest",
    "bury",
]
_PLANS = np.array(["basic", "standard", "premium", "enterprise"], dtype=object)
_CHANNELS = np.array(["web", "app", "store", "partner", "phone"], dtype=object)


def _hierarchy() -> dict[str, tuple[str, str]]:
    """City -> (state, region): 400 made-up cities spread over the states, fixed for every seed."""
    states = [(s, r) for r, ss in _REGIONS.items() for s in ss]
    cities = [f + b for f in _FRONT for b in _BACK]
    order = np.random.default_rng(20260101).permutation(len(cities))  # big cities in every region
    return {cities[i]: states[k % len(states)] for k, i in enumerate(order)}


CITY_HIERARCHY: dict[str, tuple[str, str]] = _hierarchy()
CITIES: tuple[str, ...] = tuple(CITY_HIERARCHY)  # in rank order: the first is the most frequent

CUSTOMER_TABLE_SCHEMA: dict = {
    "target": "churned",
    "columns": [
        {"name": "city", "type": "categorical"},
        {"name": "state", "type": "categorical"},
        {"name": "region", "type": "categorical"},
        {"name": "age", "type": "numerical"},
        {"name": "plan", "type": "categorical"},
        {"name": "signup_date", "type": "datetime"},
        {"name": "last_login", "type": "datetime"},
        {"name": "monthly_spend", "type": "numerical"},
        {"name": "lifetime_value", "type": "numerical"},
        {"name": "orders", "type": "numerical"},
        {"name": "support_tickets", "type": "numerical"},
        {"name": "channel", "type": "categorical"},
        {"name": "churned", "type": "categorical"},
    ],
}


def _check(rows: int, customers: int | None) -> int:
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise ValueError(f"rows must be a positive integer, not {rows!r}")
    customers = max(1, rows // DEFAULT_REPEAT) if customers is None else customers
    if isinstance(customers, bool) or not isinstance(customers, (int, np.integer)) or not 1 <= customers <= rows:
        raise ValueError(f"customers must be an integer in [1, rows], not {customers!r}")
    return int(customers)


def _missing(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """``values`` as float (or object) with about ``share`` of them missing."""
    out = values.astype(float if values.dtype.kind in "iuf" else object)
    out[rng.random(len(out)) < share] = np.nan if out.dtype.kind == "f" else None
    return out


def _places(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    weights = 1.0 / np.arange(1, len(CITIES) + 1) ** 1.1  # Zipf-like
    city = np.asarray(CITIES, dtype=object)[rng.choice(len(CITIES), n, p=weights / weights.sum())]
    state = np.array([CITY_HIERARCHY[c][0] for c in CITIES], dtype=object)
    region = np.array([CITY_HIERARCHY[c][1] for c in CITIES], dtype=object)
    rank = {c: i for i, c in enumerate(CITIES)}
    idx = np.fromiter((rank[c] for c in city), dtype=np.int64, count=n)
    return {"city": city, "state": state[idx], "region": region[idx]}


def _dates(rng: np.random.Generator, n: int, churn_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signup between 2015 and 2025; the last login between signup and the reference day, earlier
    for customers likely to churn. ``last_login >= signup_date`` always."""
    span = (REFERENCE_DAY - _START).astype(int)
    signup = _START + (span * rng.beta(2.0, 1.2, n)).astype("timedelta64[D]")
    days_since = (REFERENCE_DAY - signup).astype(int)
    recency = rng.beta(1.0, 1.0 + 8.0 / (1.0 + np.exp(churn_score)), n)  # share of the time since signup unused
    last_login = signup + np.floor(days_since * (1.0 - recency)).astype("timedelta64[D]")
    return signup, last_login


def customer_profiles(*, customers: int, seed: int = 0) -> pd.DataFrame:
    """One row per customer (no repetition); :func:`simulate_customer_table` repeats them."""
    rng = np.random.default_rng(seed)
    n = int(customers)
    places = _places(rng, n)
    region_idx = pd.Series(places["region"]).map({r: i for i, r in enumerate(_REGIONS)}).to_numpy()
    age = np.clip(rng.normal(41, 13, n), 18, 92).round().astype(np.int64)
    wealth = rng.normal(0, 1, n) + 0.02 * (age - 41) + 0.15 * (region_idx == 0) - 0.1 * (region_idx == 2)
    plan_idx = np.clip(np.floor(1.2 + wealth + rng.normal(0, 0.8, n)), 0, 3).astype(np.int64)
    spend = np.round(np.array([12.0, 29.0, 59.0, 240.0])[plan_idx] * rng.lognormal(0, 0.35, n), 2)
    orders = rng.negative_binomial(1.5, 1.5 / (1.5 + 4.0 + 3.0 * plan_idx), n)
    tickets = rng.poisson(0.3 + 0.5 * (plan_idx == 0) + 0.02 * orders, n)
    churn_score = -1.2 + 0.5 * tickets - 0.45 * plan_idx - 0.004 * spend + rng.normal(0, 0.5, n)
    signup, last_login = _dates(rng, n, churn_score)
    tenure_months = (REFERENCE_DAY - signup).astype(int) / 30.44
    ltv = np.round(spend * tenure_months * rng.pareto(3.0, n).clip(0, 50) * 0.5 + spend, 2)
    churned = np.where(rng.random(n) < 1 / (1 + np.exp(-churn_score)), "yes", "no").astype(object)
    channel = _CHANNELS[rng.choice(len(_CHANNELS), n, p=[0.42, 0.28, 0.14, 0.1, 0.06])]
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64) * 7919 % 1_000_003 + 100_000,
            "city": _missing(rng, places["city"], 0.02),
            "state": places["state"],
            "region": places["region"],
            "age": pd.array(_missing(rng, age, 0.03), dtype="Int64"),
            "plan": _PLANS[plan_idx],
            "signup_date": pd.to_datetime(signup).date,
            "last_login": pd.Series(pd.to_datetime(last_login).date, dtype=object).where(rng.random(n) >= 0.04, None),
            "monthly_spend": _missing(rng, spend, 0.05),
            "lifetime_value": _missing(rng, ltv, 0.08),
            "orders": pd.array(_missing(rng, orders, 0.02), dtype="Int64"),
            "support_tickets": tickets,
            "channel": _missing(rng, channel, 0.09),
            "churned": churned,
        }
    )


def _row_order(rng: np.random.Generator, rows: int, customers: int) -> np.ndarray:
    """Which customer each row is: every customer on ``rows // customers`` or one more rows, shuffled."""
    return rng.permutation(np.arange(rows, dtype=np.int64) % customers)


def simulate_customer_table(
    *, rows: int = 1_000_000, customers: int | None = None, seed: int = 0, id_column: bool = False
) -> pd.DataFrame:
    """``rows`` rows of ``customers`` simulated customers (default ``rows // 50``), shuffled.

    The same arguments give the same table. ``id_column`` adds ``customer_id`` first (an
    identifier the schema does not classify: list it under ``ignore``)."""
    customers = _check(rows, customers)
    profiles = customer_profiles(customers=customers, seed=seed)
    order = _row_order(np.random.default_rng([seed, 1]), rows, customers)
    table = profiles.iloc[order].reset_index(drop=True)
    return table if id_column else table.drop(columns="customer_id")


def write_customer_table(
    path: str | os.PathLike,
    *,
    rows: int,
    customers: int | None = None,
    seed: int = 0,
    id_column: bool = False,
    chunk_rows: int = 1_000_000,
) -> Path:
    """Write :func:`simulate_customer_table`'s rows to a ``.parquet`` or ``.csv`` file in chunks of
    ``chunk_rows`` (so 10 million rows never sit in memory at once); same rows, same order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    customers = _check(rows, customers)
    profiles = customer_profiles(customers=customers, seed=seed)
    if not id_column:
        profiles = profiles.drop(columns="customer_id")
    order = _row_order(np.random.default_rng([seed, 1]), rows, customers)
    tmp = path.with_name(path.name + ".tmp")
    schema = pa.Schema.from_pandas(profiles, preserve_index=False)
    writer = pq.ParquetWriter(tmp, schema) if path.suffix == ".parquet" else None
    try:
        for start in range(0, rows, chunk_rows):
            chunk = profiles.iloc[order[start : start + chunk_rows]]
            if writer is not None:
                writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
            else:
                chunk.to_csv(tmp, index=False, header=start == 0, mode="w" if start == 0 else "a")
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)
    return path
