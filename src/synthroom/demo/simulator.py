"""A seeded simulator of a subscription business's customer table.

The columns are linked the way real ones are (age drives income, income drives the plan, the
plan and support calls drive churn), so a synthesizer that loses correlations shows it in the
utility score. It includes a datetime column, missing values and a long-tailed amount.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CUSTOMERS_SCHEMA: dict = {
    "target": "churned",
    "columns": [
        {"name": "age", "type": "numerical", "integer": True},
        {"name": "region", "type": "categorical"},
        {"name": "income", "type": "numerical"},
        {"name": "plan", "type": "categorical"},
        {"name": "tenure_months", "type": "numerical", "integer": True},
        {"name": "monthly_spend", "type": "numerical"},
        {"name": "support_calls", "type": "numerical", "integer": True},
        {"name": "signup_date", "type": "date"},
        {"name": "channel", "type": "categorical"},
        {"name": "churned", "type": "categorical"},
    ],
    # public facts of the simulator, kept on every synthetic row (post-processing: docs/rules.md)
    "rules": [{"column": "income", "step": 100}, {"column": "monthly_spend", "step": 0.01}],
}

_REGIONS = ["north", "south", "east", "west", "central"]
_CHANNELS = ["web", "store", "partner", "phone"]


def simulate_customers(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """Return ``n`` simulated customers; the same seed gives the same table."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(42, 13, n), 18, 90).round().astype(int)
    region = rng.choice(_REGIONS, n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    region_boost = (
        pd.Series(region).map({"north": 1.1, "south": 0.9, "east": 1.2, "west": 1.0, "central": 0.8}).to_numpy()
    )
    income = np.round(np.exp(rng.normal(10.3 + 0.012 * (age - 42), 0.45, n)) * region_boost, -2)
    income[rng.random(n) < 0.05] = np.nan  # some customers do not declare an income
    premium_p = 1 / (1 + np.exp(-(np.nan_to_num(np.log(income), nan=10.3) - 10.6) * 2.5))
    plan = np.where(rng.random(n) < premium_p, "premium", np.where(rng.random(n) < 0.6, "standard", "basic"))
    tenure = np.clip(rng.gamma(2.0, 14 + 6 * (plan == "premium"), n), 1, 120).round().astype(int)
    base = pd.Series(plan).map({"basic": 15.0, "standard": 35.0, "premium": 80.0}).to_numpy()
    spend = np.round(base * rng.lognormal(0, 0.25, n), 2)
    calls = rng.poisson(0.4 + 1.2 * (plan == "basic") + 0.02 * np.maximum(0, 60 - age), n)
    start = np.datetime64("2026-06-01")
    signup = start - (tenure * 30.4).astype("timedelta64[D]") + rng.integers(0, 30, n).astype("timedelta64[D]")
    channel = rng.choice(_CHANNELS, n, p=[0.55, 0.25, 0.15, 0.05])
    logit = (
        -1.6
        + 0.45 * calls
        - 0.025 * tenure
        + 0.8 * (plan == "basic")
        - 0.6 * (plan == "premium")
        + 0.3 * (channel == "partner")
    )
    churned = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame(
        {
            "age": age,
            "region": region,
            "income": income,
            "plan": plan,
            "tenure_months": tenure,
            "monthly_spend": spend,
            "support_calls": calls,
            "signup_date": pd.to_datetime(signup).date,
            "channel": channel,
            "churned": churned,
        }
    )
