"""Where the raw rows live: a narrow counting interface over DuckDB (or Spark).

The synthesis core never sees a row. It asks this layer for counts: of each distinct category,
of a numeric column on a fixed public grid, and of marginals over encoded (binned) columns.
Those counts are what the privacy mechanisms noise; this file boundary is the privacy boundary.

Every other module that opens data does it here too, and only this package imports DuckDB (an
import-linter contract): the release gate's keyed holdout split and the evaluation's bounded
reads (:mod:`.split`; Spark: :mod:`.spark_split`), and the clean room's snapshots and locked-down
template executor (:mod:`.sandbox`; Spark: :mod:`.spark_sandbox`).
"""

from typing import Any

from ..errors import InputError
from .counting import CategoryCoding, CountingSource, NumericCoding, Pieces

ENGINES = ("duckdb", "spark")


def check_engine(engine: Any) -> Any:
    """``"duckdb"``, ``"spark"`` or a SparkSession (the Spark engine on that session)."""
    if engine in ENGINES or hasattr(engine, "sparkContext"):
        return engine
    raise InputError(f"engine {engine!r} is not one of {', '.join(ENGINES)} (or a SparkSession)")


def open_source(data: Any, kinds: dict[str, str], engine: Any = "duckdb", ignore: Any = ()) -> CountingSource:
    """Open ``data`` for counting on ``engine`` (see :func:`check_engine`); ``ignore``: columns the
    input may hold that are never read."""
    if check_engine(engine) == "duckdb":
        return CountingSource.open(data, kinds, ignore=ignore)
    from .spark import SparkCountingSource, spark_session

    session = spark_session() if engine == "spark" else engine
    return SparkCountingSource.open(data, kinds, session=session, ignore=ignore)


__all__ = ["ENGINES", "CategoryCoding", "CountingSource", "NumericCoding", "Pieces", "check_engine", "open_source"]
