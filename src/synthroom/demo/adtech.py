"""A seeded two-party simulator: a publisher's audience and an advertiser's conversions.

The two tables share a ``user_id`` (the privacy unit) and nothing else. Conversions are
one-to-many (most users have none, some several) and depend on the audience's columns (age,
interest segment, device, visits), so a model trained on the joined data has something to
learn that neither party could learn alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_REGIONS = ["north", "south", "east", "west"]
_DEVICES = ["mobile", "desktop", "tablet"]
_SEGMENTS = ["sports", "travel", "tech", "home", "fashion"]
_CAMPAIGNS = ["spring_sale", "new_arrivals", "loyalty"]


def simulate_audience(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    """The publisher's table: one row per user, with an e-mail column no template may read."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng([seed, 1])
    user_id = rng.permutation(np.arange(100_000, 100_000 + 3 * n))[:n]
    age = np.clip(rng.normal(38, 12, n), 18, 80).round().astype(int)
    device = np.where(
        age < 35, rng.choice(_DEVICES, n, p=[0.75, 0.15, 0.10]), rng.choice(_DEVICES, n, p=[0.45, 0.40, 0.15])
    )
    segment = rng.choice(_SEGMENTS, n, p=[0.2, 0.2, 0.25, 0.2, 0.15])
    visits = rng.poisson(np.where(segment == "tech", 6, 3) + (device == "desktop") * 2, n)
    return pd.DataFrame(
        {
            "user_id": user_id,
            "email": [f"user{u}@example.com" for u in user_id],
            "age": age,
            "region": rng.choice(_REGIONS, n, p=[0.3, 0.3, 0.2, 0.2]),
            "device": device,
            "segment": segment,
            "weekly_visits": visits,
        }
    )


def simulate_conversions(audience: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The advertiser's table: zero or more purchases per user of the audience (plus a few
    users the publisher does not know)."""
    rng = np.random.default_rng([seed, 2])
    n = len(audience)
    logit = (
        -2.6
        + 1.5 * (audience.segment == "tech").to_numpy()
        + 0.9 * (audience.segment == "fashion").to_numpy()
        + 1.0 * (audience.device == "desktop").to_numpy()
        + 0.2 * np.minimum(audience.weekly_visits.to_numpy(), 10)
        - 0.03 * (audience.age.to_numpy() - 38)
    )
    buys = rng.random(n) < 1 / (1 + np.exp(-logit))
    counts = np.where(buys, 1 + rng.poisson(0.6, n), 0)
    users = np.repeat(audience.user_id.to_numpy(), counts)
    strangers = rng.integers(900_000, 999_999, max(1, n // 50))
    users = np.concatenate([users, strangers])
    m = len(users)
    value = np.round(rng.lognormal(3.6, 0.6, m), 2)
    return pd.DataFrame(
        {
            "user_id": users,
            "campaign": rng.choice(_CAMPAIGNS, m),
            "order_value": value,
            "order_date": (np.datetime64("2026-03-01") + rng.integers(0, 90, m).astype("timedelta64[D]")).astype(
                "datetime64[ns]"
            ),
        }
    )


AUDIENCE_COLUMNS = ["user_id", "age", "region", "device", "segment", "weekly_visits"]  # email is not allowed
CONVERSIONS_COLUMNS = ["user_id", "campaign", "order_value"]

# One output row per user: the audience's columns, and whether the user bought anything.
DEMO_TEMPLATE = """
SELECT a.age, a.region, a.device, a.segment, a.weekly_visits,
       CASE WHEN count(c.user_id) > 0 THEN 'yes' ELSE 'no' END AS converted
FROM audience AS a
LEFT JOIN conversions AS c ON a.user_id = c.user_id
GROUP BY a.user_id, a.age, a.region, a.device, a.segment, a.weekly_visits
""".strip()

DEMO_CLASSIFICATION = {
    "target": "converted",
    "columns": [
        {"name": "age", "type": "numerical", "min": 18, "max": 80},
        {"name": "region", "type": "categorical"},
        {"name": "device", "type": "categorical"},
        {"name": "segment", "type": "categorical"},
        {"name": "weekly_visits", "type": "numerical", "min": 0, "max": 40},
        {"name": "converted", "type": "categorical", "categories": ["no", "yes"]},
    ],
}
