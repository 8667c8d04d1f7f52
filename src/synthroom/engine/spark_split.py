"""The release gate's holdout split on Spark: the same keyed split as on DuckDB, on the cluster.

:func:`.split.split_table` (DuckDB) splits per privacy unit by HMAC-SHA256(key, unit id): a
unit is held out when the HMAC's first 64 bits, as a fraction of 2**64, are below the share.
Here the same HMAC is computed in Spark SQL (``sha2`` over ``unhex`` pads, RFC 2104), and the
comparison is made on the 16 lowercase hex digits (equal-length hex strings order as the
numbers do), so the same key and the same unit ids give the same holdout on both engines. The
key is the caller's (fresh secure bytes per run; derived from the seed only for a seeded
experiment), never stored.

The unit id is the given unit column's text, else the row's content: each schema column's
value as the engine counts it, as text, in a JSON list (adding or removing one row moves that
row only). The share is chosen from a DP count of all rows by the caller's plan, as on DuckDB.

What comes back to the driver: the two parts' exact sizes (the caller's DP checks noise them)
and at most ``max_rows`` typed rows of each part (those with the lowest draws: a random sample)
for the evaluation. The training part stays on the cluster, cached, for the Spark counting
source to fit on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from .counting import typed_sql, value_sql
from .dialect import SPARK
from .spark import duckdb_type
from .split import hmac_pads

_DRAW = "synthroom_draw"


@dataclass
class SparkSplit:
    """The two parts: the training rows on the cluster, bounded samples of both on the driver."""

    fit_data: Any  # Spark DataFrame of the typed training rows (cached)
    train: pd.DataFrame
    holdout: pd.DataFrame
    n_train: int
    n_holdout: int


def hmac_sql(key: bytes, message: str) -> str:
    """Spark SQL for HMAC-SHA256 of the BINARY expression ``message`` under ``key`` (64 hex digits)."""
    inner, outer = hmac_pads(key)
    return f"sha2(concat(unhex('{outer}'), unhex(sha2(concat(unhex('{inner}'), {message}), 256))), 256)"


def draw_sql(key: bytes, unit_text: str) -> str:
    """The unit's draw: the HMAC's first 64 bits as 16 lowercase hex digits."""
    message = f"encode({unit_text}, 'UTF-8')"
    return f"substr({hmac_sql(key, message)}, 1, 16)"


def cut_hex(share: float) -> str:
    """A draw below this (as hex text) is held out: a ``share`` of all 64-bit numbers."""
    return format(int(share * 2**64), "016x")


def _unit_text(kinds: dict[str, str], stored: dict[str, str], unit: str | None) -> str:
    if unit is not None:
        return SPARK.text(SPARK.ident(unit))
    values = ", ".join(SPARK.text(value_sql(n, k, stored[n], SPARK)) for n, k in kinds.items())
    return f"to_json(array({values}))"


def split_spark(frame, kinds: dict[str, str], plan: Any, key: bytes, *, unit: str | None, max_rows: int) -> SparkSplit:
    """Split the Spark DataFrame ``frame`` (columns ``kinds``, and ``unit`` when given) by the
    keyed hash; ``plan``: a :class:`~synthroom.pipeline.HoldoutPlan`, or a fixed share (float)."""
    session = frame.sparkSession
    stored = {f.name: duckdb_type(f.dataType.simpleString()) for f in frame.schema.fields}
    view = f"synthroom_split_in_{key[:4].hex()}{id(frame)}"
    frame.createOrReplaceTempView(view)
    typed = ", ".join(f"{typed_sql(n, k, stored[n], SPARK)} AS {SPARK.ident(n)}" for n, k in kinds.items())
    draw = draw_sql(key, _unit_text(kinds, stored, unit))
    split = session.sql(f"SELECT {typed}, {draw} AS {_DRAW} FROM {view}").persist()
    try:
        total = split.count()
        share = plan.measure(total) if hasattr(plan, "measure") else float(plan)
        holdout = f"{_DRAW} < '{cut_hex(share)}'"
        n_holdout = split.where(holdout).count()
        columns = [SPARK.ident(n) for n in kinds]
        fit = split.where(f"NOT ({holdout})").selectExpr(*columns).persist()
        samples = {
            part: _sample(split.where(cond), columns, max_rows)
            for part, cond in (("train", f"NOT ({holdout})"), ("holdout", holdout))
        }
    finally:
        session.catalog.dropTempView(view)
    split.unpersist()
    return SparkSplit(fit, samples["train"], samples["holdout"], total - n_holdout, n_holdout)


def _sample(part, columns: list[str], max_rows: int) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``part``, those with the lowest draws (a random sample)."""
    ordered = part.orderBy(_DRAW, *columns).limit(int(max_rows)).selectExpr(*columns)
    return ordered.toPandas()


__all__ = ["SparkSplit", "cut_hex", "draw_sql", "hmac_sql", "split_spark"]
