"""Shared fixtures: the Adult data by path (never copied) and small simulated tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from synthroom.runtime import FAST_COMPILE_FLAG, XLA_FLAG, xla_flags

# The product's XLA flag, and no LLVM optimisation passes: the suite fits hundreds of small models,
# whose JAX time is mostly compiling (synthroom.runtime). XLA reads the flags once, when JAX starts,
# so they are set before any test module imports it; the command lines the tests run inherit them.
os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS"), defaults=(XLA_FLAG, FAST_COMPILE_FLAG))

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


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for every Spark test of the run (the spark-marked suites)."""
    pytest.importorskip("pyspark")
    from synthroom.engine import spark as backend

    backend.LOCAL_CONF["spark.sql.shuffle.partitions"] = "1"  # tiny tables: one reduce task per count
    # every spark-marked suite shares this JVM: the default 1g heap ran out in the room's gate tests
    # after the engine's (planning the encoding query; each suite alone passes)
    backend.LOCAL_CONF["spark.driver.memory"] = "2g"
    session = backend.spark_session("local[1]")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _spark_cache_cleared(request):
    """After each test that used the shared session, its cached tables go (they hold heap)."""
    yield
    if "spark" in request.fixturenames:
        request.getfixturevalue("spark").catalog.clearCache()


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
