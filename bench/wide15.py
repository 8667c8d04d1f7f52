"""A seeded 15-column table for the engine scale curve (bench/spark.py scale), written in chunks.

    write_wide(Path("bench/out/wide15_100000000.parquet"), rows=100_000_000)   # a Parquet folder, ~1M rows a file

Seven categorical columns (a 200-value Zipf-like ``city`` inside its ``state`` inside its
``region``, a public hierarchy; ``plan``, ``channel``, ``device``; the target ``churned``), six
numerical (integer and skewed float amounts, 2-8% missing) and two dates. Every chunk of
``chunk_rows`` rows is drawn from its own generator (``seed``, chunk number) and written as its
own file, so no more than one chunk is ever in memory and the same arguments give the same files.
Row groups of 131,072 rows let Spark split even a one-file table across its cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WIDE_SCHEMA = {
    "target": "churned",
    "columns": [
        {"name": "region", "type": "categorical"},
        {"name": "state", "type": "categorical"},
        {"name": "city", "type": "categorical"},
        {"name": "plan", "type": "categorical"},
        {"name": "channel", "type": "categorical"},
        {"name": "device", "type": "categorical"},
        {"name": "age", "type": "numerical"},
        {"name": "income", "type": "numerical"},
        {"name": "monthly_spend", "type": "numerical"},
        {"name": "orders", "type": "numerical"},
        {"name": "support_tickets", "type": "numerical"},
        {"name": "score", "type": "numerical"},
        {"name": "signup_date", "type": "date"},
        {"name": "last_login", "type": "datetime"},
        {"name": "churned", "type": "categorical"},
    ],
}
CITIES = 200
_CITY_P = 1.0 / np.arange(1, CITIES + 1) ** 1.1
_PLANS = ["basic", "standard", "premium", "enterprise"]
_CHANNELS = ["web", "app", "store", "partner", "phone"]
_DEVICES = ["desktop", "mobile", "tablet"]
_DAY0 = np.datetime64("2015-01-01", "D").astype(np.int64)  # days since 1970
_END = np.datetime64("2026-01-01", "s").astype(np.int64)  # seconds: no login after this
ROW_GROUP = 131_072


def _text(pa, codes: np.ndarray, names: list[str], missing: np.ndarray | None = None):
    """A string column from integer codes into ``names`` (missing where ``missing``)."""
    indices = pa.array(codes.astype(np.int32), mask=missing)
    return pa.DictionaryArray.from_arrays(indices, pa.array(names)).cast(pa.string())


def _gaps(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return rng.random(n) < share


def wide_chunk(rng: np.random.Generator, n: int):
    """``n`` rows of the table as a pyarrow Table (column order as :data:`WIDE_SCHEMA`)."""
    import pyarrow as pa

    city = rng.choice(CITIES, n, p=_CITY_P / _CITY_P.sum())
    state = city % 20
    region = state // 5
    age = np.clip(rng.normal(41, 13, n), 18, 92).round()
    wealth = rng.normal(0, 1, n) + 0.02 * (age - 41) + 0.2 * (region == 0)
    plan = np.clip(np.floor(1.2 + wealth + rng.normal(0, 0.8, n)), 0, 3).astype(np.int64)
    income = np.round(np.exp(10.3 + 0.5 * wealth + rng.normal(0, 0.4, n)), 2)
    spend = np.round(np.array([12.0, 29.0, 59.0, 240.0])[plan] * rng.lognormal(0, 0.35, n), 2)
    orders = rng.negative_binomial(1.5, 1.5 / (5.5 + 3.0 * plan), n)
    tickets = rng.poisson(0.3 + 0.5 * (plan == 0) + 0.02 * orders, n)
    churn = -1.2 + 0.5 * tickets - 0.45 * plan - 0.004 * spend + rng.normal(0, 0.5, n)
    signup = _DAY0 + rng.integers(0, 4000, n)
    last = np.minimum(signup * 86_400 + (rng.exponential(400, n) * np.exp(-churn) * 86_400).astype(np.int64), _END)
    churned = (rng.random(n) < 1 / (1 + np.exp(-churn))).astype(np.int64)
    device = rng.choice(3, n, p=[0.45, 0.45, 0.10])
    columns = {
        "region": _text(pa, region, ["north", "south", "east", "west"]),
        "state": _text(pa, state, [f"S{i:02d}" for i in range(20)]),
        "city": _text(pa, city, [f"city-{i:03d}" for i in range(CITIES)], _gaps(rng, n, 0.02)),
        "plan": _text(pa, plan, _PLANS),
        "channel": _text(pa, rng.choice(5, n, p=[0.42, 0.28, 0.14, 0.1, 0.06]), _CHANNELS, _gaps(rng, n, 0.08)),
        "device": _text(pa, device, _DEVICES),
        "age": pa.array(age.astype(np.int64), mask=_gaps(rng, n, 0.03)),
        "income": pa.array(income, mask=_gaps(rng, n, 0.05)),
        "monthly_spend": pa.array(spend, mask=_gaps(rng, n, 0.05)),
        "orders": pa.array(orders.astype(np.int64), mask=_gaps(rng, n, 0.02)),
        "support_tickets": pa.array(tickets.astype(np.int64)),
        "score": pa.array(np.round(rng.normal(0.3 * wealth, 1.0, n), 3)),
        "signup_date": pa.array(signup.astype(np.int32), pa.int32()).cast(pa.date32()),
        "last_login": pa.array(last, mask=_gaps(rng, n, 0.04), type=pa.int64()).cast(pa.timestamp("s")),
        "churned": _text(pa, churned, ["no", "yes"]),
    }
    return pa.table(columns)


def write_wide(path: Path, *, rows: int, seed: int = 0, chunk_rows: int = 1_000_000) -> Path:
    """Write ``rows`` rows to the Parquet folder ``path`` (one file per chunk), unless it exists.
    An interrupted run resumes: the chunks already in ``path``'s ``.tmp`` folder are kept (each
    is written under a temporary name and renamed when complete)."""
    import pyarrow.parquet as pq

    if path.exists():
        return path
    tmp = path.with_name(path.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for number, start in enumerate(range(0, rows, chunk_rows)):
        final = tmp / f"part-{number:05d}.parquet"
        if final.exists():
            continue
        table = wide_chunk(np.random.default_rng([seed, number]), min(chunk_rows, rows - start))
        pq.write_table(table, tmp / "writing", row_group_size=ROW_GROUP)
        (tmp / "writing").rename(final)
    tmp.rename(path)
    return path
