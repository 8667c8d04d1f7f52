"""Shared fixtures: the Adult data by path (never copied) and small simulated tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
ADULT = REPO.parent / "shared" / "data" / "adult"


@pytest.fixture(scope="session")
def adult_dir() -> Path:
    if not (ADULT / "train.csv").exists():
        pytest.skip(f"the Adult data is not at {ADULT}")
    return ADULT


@pytest.fixture(scope="session")
def adult_schema(adult_dir) -> dict:
    return json.loads((adult_dir / "schema.json").read_text())


@pytest.fixture(scope="session")
def customers() -> pd.DataFrame:
    from synthroom.demo import simulate_customers

    return simulate_customers(5000, seed=1)


@pytest.fixture(scope="session", autouse=True)
def drop_test_databases():
    """Drop the PostgreSQL databases this test process created (see ``roomkit.database_url``),
    so repeated CI runs on one server do not pile them up."""
    yield
    import os

    from roomkit import CREATED_DATABASES, POSTGRES_ENV

    if not CREATED_DATABASES or not os.environ.get(POSTGRES_ENV):
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as con:
            for name in sorted(CREATED_DATABASES):
                con.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
