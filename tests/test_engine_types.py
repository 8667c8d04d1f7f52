"""The one type table (engine/types.py) that the engine, the synthesizer and the room share."""

import pytest

from synthroom.engine.types import fits_int64, is_float, is_integer, is_number, is_time, quote_ident, quote_literal
from synthroom.errors import InputError
from synthroom.room.service import _check_output_kinds


def test_type_table():
    assert all(is_integer(t) and is_number(t) for t in ("TINYINT", "BIGINT", "UBIGINT", "HUGEINT", "UHUGEINT"))
    assert is_number("DECIMAL(18,3)") and not is_integer("DECIMAL(18,3)") and not is_float("DECIMAL(18,3)")
    assert is_float("DOUBLE") and is_float("REAL") and is_number("FLOAT")
    assert fits_int64("BIGINT") and fits_int64("UINTEGER") and not fits_int64("UBIGINT") and not fits_int64("HUGEINT")
    assert is_time("DATE") and is_time("TIMESTAMP WITH TIME ZONE") and is_time("TIMESTAMP_NS")
    assert not is_time("TIME") and not is_number("VARCHAR") and not is_number("BOOLEAN")


def test_quoting():
    assert quote_ident('a"b') == '"a""b"' and quote_literal("it's") == "'it''s'"


def _kinds(kind: str) -> dict:
    return {"classification": {"columns": [{"name": "c", "type": kind}]}}


def test_room_output_kinds_follow_the_engine():
    _check_output_kinds({"c": "UHUGEINT"}, _kinds("numerical"))
    _check_output_kinds({"c": "TIMESTAMP WITH TIME ZONE"}, _kinds("datetime"))
    _check_output_kinds({"c": "VARCHAR"}, _kinds("datetime"))
    # A time of day is no point in time: the engine would count every value as missing.
    with pytest.raises(InputError, match="classified datetime but the template gives TIME"):
        _check_output_kinds({"c": "TIME"}, _kinds("datetime"))
    with pytest.raises(InputError, match="classified numerical but the template gives DATE"):
        _check_output_kinds({"c": "DATE"}, _kinds("numerical"))
