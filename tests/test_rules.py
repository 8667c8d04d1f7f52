"""Declared rules: parsing and validation (schema errors name the rule), checks on rows."""

import numpy as np
import pytest

from synthroom import InputError, load_schema, parse_schema
from synthroom.rules import Combinations, Computed, Inequality, Range, violations

COLUMNS = [
    {"name": "a", "type": "numerical"},
    {"name": "b", "type": "numerical"},
    {"name": "d1", "type": "datetime"},
    {"name": "d2", "type": "datetime"},
    {"name": "st", "type": "categorical"},
    {"name": "rg", "type": "categorical"},
    {"name": "t", "type": "categorical"},
    {"name": "tot", "type": "numerical"},
]
ALL_KINDS = [
    "a <= b",
    {"check": "d1 < d2", "name": "login after signup"},
    {"columns": ["st", "rg"], "allowed": [["CA", "West"], ["NY", "East"], [1, 2.0]]},
    {"column": "a", "min": 0, "max": 10, "step": 0.5},
    {"column": "d1", "min": "2015-01-01"},
    {"column": "tot", "formula": "ROUND(a * b, 2) + GREATEST(a, 1) - ABS(-b) / 2"},
]


def schema_with(*rules):
    return parse_schema({"target": "t", "columns": COLUMNS, "rules": list(rules)})


def test_every_kind_parses_and_round_trips(tmp_path):
    s = schema_with(*ALL_KINDS)
    assert [type(r) for r in s.rules] == [Inequality, Inequality, Combinations, Range, Range, Computed]
    assert s.rules[0] == Inequality("a", "<=", "b")
    assert s.rules[1].label == "login after signup"
    assert s.rules[2].allowed == (("CA", "West"), ("NY", "East"), ("1", "2"))  # compared as text
    assert s.rules[4].min == 1420070400.0  # 2015-01-01 UTC in epoch seconds
    assert s.rules[5].inputs == ("a", "b")
    assert parse_schema(s.to_dict()) == s
    p = tmp_path / "s.yaml"
    p.write_text(
        "target: t\ncolumns:\n"
        + "".join(f"  - {{name: {c['name']}, type: {c['type']}}}\n" for c in COLUMNS)
        + "rules:\n  - signup_date <= last_login\n".replace("signup_date", "d1").replace("last_login", "d2")
    )
    assert load_schema(p).rules == (Inequality("d1", "<=", "d2"),)


def test_a_yaml_date_bound_round_trips_as_json(tmp_path):
    import json

    p = tmp_path / "s.yaml"
    p.write_text(
        "target: t\ncolumns:\n  - {name: d1, type: datetime}\n  - {name: t, type: categorical}\n"
        "rules:\n  - {column: d1, min: 2015-01-01, max: 2020-12-31 12:00:00}\n"
    )
    s = load_schema(p)
    assert s.rules[0].min == 1420070400.0 and s.rules[0].max == 1609416000.0
    assert parse_schema(json.loads(json.dumps(s.to_dict()))) == s


def test_no_rules_is_the_default():
    s = parse_schema({"target": "t", "columns": COLUMNS})
    assert s.rules == () and "rules" not in s.to_dict()


@pytest.mark.parametrize(
    "rule, message",
    [
        ("a <= zz", "rule #1 (a <= zz): column 'zz' is not in the schema"),
        (
            "a <= st",
            "rule #1 (a <= st): column 'st' is categorical; an inequality compares numerical or datetime columns",
        ),
        ("a <= d1", "rule #1 (a <= d1): cannot compare 'a' (numerical) with 'd1' (datetime)"),
        (
            "d1 >= st",
            "rule #1 (d1 >= st): column 'st' is categorical; an inequality compares numerical or datetime columns",
        ),
        (
            "a <= 3",
            "rule #1 (a <= 3): a check compares two columns with <, <=, > or >=, either side optionally plus or "
            "minus a constant (e.g. 'start <= end', 'a <= b + 10', 'last_login >= signup_date + 7 days'); for a "
            "bound on one column use {column, min, max}",
        ),
        ("a <=", "rule #1 (a <=): 'a <=' does not parse as an expression"),
        ("a < a", "rule #1 (a < a): compares column 'a' with itself"),
        (
            {"columns": ["st", "a"], "allowed": [["x", 1]]},
            "rule #1: column 'a' is numerical; allowed combinations are of categorical columns",
        ),
        (
            {"columns": ["st", "rg"], "allowed": [["CA"]]},
            "rule #1: each allowed combination must list 2 value(s), one per column, not ['CA']",
        ),
        ({"columns": ["st", "rg"], "allowed": []}, "rule #1: 'allowed' must be a non-empty list of value lists"),
        (
            {"column": "st", "min": 1},
            "rule #1: column 'st' is categorical; a range or step is for numerical or datetime columns",
        ),
        ({"column": "d1", "step": 1}, "rule #1: 'step' is for numerical columns; 'd1' is datetime"),
        ({"column": "d1", "min": "yesterday-ish"}, "rule #1: min 'yesterday-ish' is not a date"),
        ({"column": "a", "min": 0.1, "max": 0.2, "step": 1}, "rule #1: no multiple of step 1 lies between min and max"),
        ({"column": "a", "min": 5, "max": 1}, "rule #1: min 5 is greater than max 1"),
        ({"column": "a", "step": -1}, "rule #1: step -1 must be a positive number"),
        ({"column": "a"}, "rule #1: give at least one of min, max, step"),
        (
            {"column": "tot", "formula": "a || b"},
            "rule #1 (tot = a || b): 'a || b' is not allowed in a formula "
            "(numbers, columns, + - * /, parentheses, ROUND, ABS, LEAST, GREATEST)",
        ),
        ({"column": "tot", "formula": "__import__('os')"}, "rule #1 (tot = __import__('os')): "),
        (
            {"column": "tot", "formula": "a + st"},
            "rule #1 (tot = a + st): column 'st' is categorical; a formula uses numerical columns",
        ),
        (
            {"column": "t", "formula": "a"},
            "rule #1 (t = a): column 't' is categorical; a computed column must be numerical",
        ),
        ({"column": "tot", "formula": "tot + 1"}, "rule #1 (tot = tot + 1): the formula of 'tot' uses 'tot' itself"),
        ({"column": "tot", "formula": "2 * 3"}, "rule #1 (tot = 2 * 3): the formula uses no column"),
        ({"check": "a < b", "colour": "red"}, "rule #1: unknown key 'colour' (a check rule takes check, name)"),
        (
            {"nonsense": 1},
            "rule #1: a rule needs 'check', 'allowed' (with 'columns'), 'formula' (with 'column') or "
            "'column' with min/max/step",
        ),
        (42, "rule #1: a rule is a text like 'a <= b' or a mapping, not 42"),
    ],
)
def test_invalid_rule_is_a_schema_error_naming_it(rule, message):
    with pytest.raises(InputError) as info:
        schema_with(rule)
    assert str(info.value).startswith(message)


def test_rules_that_conflict_with_each_other_are_refused():
    with pytest.raises(InputError, match=r"^rule #2 \(tot = b \* 2\): column 'tot' is computed by more than one"):
        schema_with({"column": "tot", "formula": "a * 2"}, {"column": "tot", "formula": "b * 2"})
    with pytest.raises(InputError, match=r"^rule #1 \(b = tot \+ 1\): the formula uses the computed column 'tot'"):
        schema_with({"column": "b", "formula": "tot + 1"}, {"column": "tot", "formula": "a * 2"})
    with pytest.raises(InputError, match=r"^rule #2 \(tot in steps of 1\): a computed column cannot have a step"):
        schema_with({"column": "tot", "formula": "a * 2"}, {"column": "tot", "step": 1})
    with pytest.raises(InputError, match="the predictive column 't' cannot be computed"):
        parse_schema(
            {
                "target": "t",
                "columns": [{"name": "a", "type": "numerical"}, {"name": "t", "type": "numerical"}],
                "rules": [{"column": "t", "formula": "a * 2"}],
            }
        )
    with pytest.raises(InputError, match="the schema's 'rules' must be a list"):
        parse_schema({"target": "t", "columns": COLUMNS, "rules": "a <= b"})


@pytest.mark.parametrize(
    "text, left, op, right, offset, shown",
    [
        ("a <= b + 10", "a", "<=", "b", 10.0, "a <= b + 10"),
        ("a + 3 <= b - 2.5", "a", "<=", "b", -5.5, "a <= b - 5.5"),
        ("a - 3 > (b)", "a", ">", "b", 3.0, "a > b + 3"),
        ("a <= 2 + b + -1", "a", "<=", "b", 1.0, "a <= b + 1"),
        ("d2 >= d1 + 7 days", "d2", ">=", "d1", 7 * 86400.0, "d2 >= d1 + 7 days"),
        ("d1 < d2 - 90 minutes", "d1", "<", "d2", -5400.0, "d1 < d2 - 90 minutes"),
        ("d2 >= d1 + INTERVAL 36 HOUR", "d2", ">=", "d1", 129600.0, "d2 >= d1 + 36 hours"),
        ("d2 >= d1 + interval '2 weeks'", "d2", ">=", "d1", 14 * 86400.0, "d2 >= d1 + 14 days"),
        ("d2 > d1 + 1 second", "d2", ">", "d1", 1.0, "d2 > d1 + 1 second"),
    ],
)
def test_an_inequality_takes_an_offset(text, left, op, right, offset, shown):
    s = schema_with(text)
    rule = s.rules[0]
    assert (rule.left, rule.op, rule.right, rule.offset, rule.label) == (left, op, right, offset, shown)
    assert parse_schema(s.to_dict()) == s and s.to_dict()["rules"] == [{"check": shown}]


@pytest.mark.parametrize(
    "rule, message",
    [
        (
            "d2 >= d1 + 7",
            "rule #1 (d2 >= d1 + 7): an offset to a datetime column needs a unit (e.g. '+ 7 days'; weeks, days, "
            "hours, minutes, seconds)",
        ),
        ("a <= b + 7 days", "rule #1 (a <= b + 7 days): a duration (days, hours...) can only offset datetime columns"),
        (
            "d2 >= d1 + 3 months",
            "rule #1 (d2 >= d1 + 3 months): a duration is in weeks, days, hours, minutes or seconds, not 'months' "
            "(months and years have no fixed length)",
        ),
        (
            "d2 >= d1 + interval 'x' day",
            "rule #1 (d2 >= d1 + interval 'x' day): the duration 'x' is not a number of days",
        ),
        (
            "a <= b * 2",
            "rule #1 (a <= b * 2): a check compares two columns with <, <=, > or >=, either side optionally plus "
            "or minus a constant (e.g. 'start <= end', 'a <= b + 10', 'last_login >= signup_date + 7 days'); for "
            "a bound on one column use {column, min, max}",
        ),
        ("a <= b + tot", "rule #1 (a <= b + tot): a check compares two columns"),
        (  # the README's wording of a computed column, written as a check
            "tot = a * b",
            "rule #1 (tot = a * b): '=' is not a check; a column computed from others is declared as "
            '{column: tot, formula: "a * b"}',
        ),
        ("d2 >= d1 + 7 days + 3", "rule #1 (d2 >= d1 + 7 days + 3): a check compares two columns"),
    ],
)
def test_a_bad_offset_is_a_schema_error_naming_it(rule, message):
    with pytest.raises(InputError) as info:
        schema_with(rule)
    assert str(info.value).startswith(message)


def test_an_offset_moves_the_bound():
    nan = np.nan
    day = 86400.0
    frame = {
        "a": np.array([10.0, 12.0, 12.5, nan]),
        "b": np.array([0.0, 2.0, 2.0, 1.0]),
        "d1": np.array([0.0, 0.0, 0.0, nan]),
        "d2": np.array([7 * day, 7 * day - 1, 8 * day, 0.0]),
    }
    s = schema_with("a <= b + 10", "a < b + 10", "d2 >= d1 + 7 days")
    got = [violations(r, frame).tolist() for r in s.rules]
    assert got[0] == [False, False, True, False]  # 12 <= 2 + 10 holds; 12.5 does not
    assert got[1] == [True, True, True, False]  # 10 < 0 + 10 does not hold, nor 12 < 12
    assert got[2] == [False, True, False, False]  # a second short of a week breaks it


def test_violations_follow_sql_check_semantics():
    nan = np.nan
    frame = {
        "a": np.array([1.0, 2.0, 3.0, nan, 0.75]),
        "b": np.array([2.0, 2.0, 1.0, 1.0, nan]),
        "st": np.array(["CA", "NY", "CA", None, "TX"], dtype=object),
        "rg": np.array(["West", "West", "East", "East", "South"], dtype=object),
        "tot": np.array([2.0, 4.0, 5.0, nan, 1.0]),
    }
    s = schema_with(
        "a < b",
        {"columns": ["st", "rg"], "allowed": [["CA", "West"], ["NY", "East"]]},
        {"column": "a", "min": 0, "max": 2.5, "step": 0.5},
        {"column": "tot", "formula": "a * b"},
    )
    got = [violations(r, frame).tolist() for r in s.rules]
    assert got[0] == [False, True, True, False, False]  # missing operand: satisfied
    assert got[1] == [False, True, True, False, True]
    assert got[2] == [False, False, True, False, True]  # 3 > 2.5; 0.75 is not a multiple of 0.5
    assert got[3] == [False, False, True, False, True]  # nan*1 is missing and tot is missing: fine


def _draws(p_ok: float, seed: int = 0):
    """A stand-in for the model: rows where ``a <= b`` holds with probability ``p_ok``."""
    import pandas as pd

    rng = np.random.default_rng(seed)

    def draw(k: int) -> "pd.DataFrame":
        a = rng.random(k)
        ok = rng.random(k) < p_ok
        return pd.DataFrame({"a": a, "b": np.where(ok, a + 1, a - 1), "t": ["x"] * k})

    return draw


SMALL = {
    "target": "t",
    "columns": [
        {"name": "a", "type": "numerical"},
        {"name": "b", "type": "numerical"},
        {"name": "t", "type": "categorical"},
    ],
    "rules": ["a <= b"],
}


def test_enforce_redraws_only_what_breaks_and_reports_it():
    from synthroom.synthesis.enforce import enforce

    schema = parse_schema(SMALL)
    df, report = enforce(schema, _draws(0.7), 5000, np.random.default_rng(0))
    assert len(df) == 5000 and (df["a"] <= df["b"]).all() and report.copied == 0
    assert abs(report.before["a <= b"] - 0.3) < 0.03  # the model's own rate, from the first draw
    assert 5000 < report.drawn < 5000 / 0.7 * 1.3  # redraws sized from the pass rate, not blind


def test_enforce_copies_passing_rows_when_the_model_almost_never_passes():
    from synthroom.synthesis.enforce import MAX_DRAWN, enforce

    schema = parse_schema(SMALL)
    df, report = enforce(schema, _draws(0.0005), 1000, np.random.default_rng(0))
    assert len(df) == 1000 and (df["a"] <= df["b"]).all()
    assert 0 < report.copied < 1000 and report.drawn <= 1000 * MAX_DRAWN


def test_enforce_names_the_rule_no_drawn_row_meets():
    from synthroom.synthesis.enforce import enforce

    with pytest.raises(
        InputError,
        match=r"^rule 'a <= b': none of the [\d,]+ rows drawn from the model meets the "
        r"rules \(with the conditions asked for\); the model learned data that "
        r"contradicts it$",
    ):
        enforce(parse_schema(SMALL), _draws(0.0), 200, np.random.default_rng(0))
