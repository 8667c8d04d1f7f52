import json

import pytest

from synthroom import InputError, load_schema, parse_schema

REFERENCE = {
    "epsilon": 1.0,
    "maxMembershipInferenceAttackScore": 0.6,
    "columnClassification": {
        "columnMapping": [
            {"columnName": "age", "columnType": "NUMERICAL", "isPredictiveValue": False},
            {"columnName": "plan", "columnType": "CATEGORICAL", "isPredictiveValue": False},
            {"columnName": "churned", "columnType": "CATEGORICAL", "isPredictiveValue": True},
        ]
    },
}


def test_reference_product_shape_is_accepted_verbatim():
    s = parse_schema(REFERENCE)
    assert s.names == ["age", "plan", "churned"]
    assert s.target == "churned"
    assert [c.kind for c in s.columns] == ["numerical", "categorical", "categorical"]
    assert s.epsilon == 1.0 and s.max_mia_score == 0.6


def test_native_yaml_with_public_facts(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(
        "target: y\ncolumns:\n  - {name: a, type: numerical, min: 0, max: 10}\n"
        "  - {name: b, type: categorical, categories: [x, z]}\n  - {name: y, type: categorical}\n"
    )
    s = load_schema(p)
    assert s["a"].min == 0 and s["a"].max == 10
    assert s["b"].categories == ("x", "z")
    assert parse_schema(s.to_dict()) == s


def test_bench_schema_json(adult_dir):
    s = load_schema(adult_dir / "schema.json")
    assert s.target == "income" and len(s.columns) == 15


@pytest.mark.parametrize(
    "data, message",
    [
        ({"columns": [{"name": "a", "type": "numerical"}]}, "the schema names no predictive (target) column"),
        (
            {"target": "z", "columns": [{"name": "a", "type": "numerical"}]},
            "the predictive column 'z' is not among the schema's columns",
        ),
        (
            {"target": "a", "columns": [{"name": "a", "type": "numerical"}, {"name": "a", "type": "categorical"}]},
            "column 'a' appears twice in the schema",
        ),
        (
            {"target": "a", "columns": [{"name": "a", "type": "text"}]},
            "column 'a': type 'text' is not one of categorical, numerical, datetime, date",
        ),
        (
            {"target": "a", "columns": [{"name": "a", "type": "numerical", "min": 5, "max": 1}]},
            "column 'a': min 5.0 is greater than max 1.0",
        ),
        (
            {"target": "a", "epsilon": 20, "columns": [{"name": "a", "type": "numerical"}]},
            "epsilon 20 is outside the allowed range [0.0001, 10.0]",
        ),
    ],
)
def test_bad_native_schemas(data, message):
    with pytest.raises(InputError) as info:
        parse_schema(data)
    assert str(info.value) == message


def test_two_predictive_columns_in_reference_shape():
    data = json.loads(json.dumps(REFERENCE))
    data["columnClassification"]["columnMapping"][0]["isPredictiveValue"] = True
    with pytest.raises(InputError) as info:
        parse_schema(data)
    assert str(info.value) == "2 columns have isPredictiveValue true ('age', 'churned'); exactly one is allowed"


def test_mia_threshold_range():
    data = dict(REFERENCE, maxMembershipInferenceAttackScore=0.4)
    with pytest.raises(InputError, match=r"max MIA score 0.4 is outside the allowed range \[0.5, 1.0\]"):
        parse_schema(data)
