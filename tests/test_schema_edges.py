"""Issue 12's schema rough edges: the reference product's analysis template as it is, ``ignore``,
one SchemaError (exit 2, no traceback) for every malformed schema, date-only columns, .csv.gz."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from synthroom import Synthesizer, parse_schema
from synthroom.cli.app import app
from synthroom.engine import CountingSource
from synthroom.errors import InputError, SchemaError
from synthroom.schema import load_schema

PARAMETERS = {
    "epsilon": 2.0,
    "maxMembershipInferenceAttackScore": 0.7,
    "columnClassification": {
        "columnMapping": [
            {"columnName": "age", "columnType": "NUMERICAL", "isPredictiveValue": False},
            {"columnName": "plan", "columnType": "CATEGORICAL", "isPredictiveValue": False},
            {"columnName": "churned", "columnType": "CATEGORICAL", "isPredictiveValue": True},
        ]
    },
}
TEMPLATE = {  # an analysis template as the reference product's API describes it
    "name": "churn-synthetic",
    "description": "synthetic customers",
    "membershipIdentifier": "m-123",
    "format": "SQL",
    "source": {"text": "SELECT age, plan, churned FROM customers"},
    "analysisParameters": [],
    "schema": {"referencedTables": ["customers"]},
    "syntheticDataParameters": {"mlSyntheticDataParameters": PARAMETERS},
}


@pytest.mark.parametrize(
    "data",
    [
        TEMPLATE,
        TEMPLATE["syntheticDataParameters"],
        {"analysisTemplate": TEMPLATE},  # as `get-analysis-template` prints it
        {
            "SyntheticDataParameters": {
                "MlSyntheticDataParameters": {  # CloudFormation's spelling
                    "Epsilon": 2.0,
                    "MaxMembershipInferenceAttackScore": 0.7,
                    "ColumnClassification": {
                        "ColumnMapping": [
                            {
                                "ColumnName": c["columnName"],
                                "ColumnType": c["columnType"],
                                "IsPredictiveValue": c["isPredictiveValue"],
                            }
                            for c in PARAMETERS["columnClassification"]["columnMapping"]
                        ]
                    },
                }
            }
        },
        PARAMETERS,
    ],
)
def test_the_reference_template_is_accepted_as_it_is(data, tmp_path):
    path = tmp_path / "template.json"
    path.write_text(json.dumps(data))
    for schema in (parse_schema(data), load_schema(path)):
        assert schema.names == ["age", "plan", "churned"] and schema.target == "churned"
        assert [c.kind for c in schema.columns] == ["numerical", "categorical", "categorical"]
        assert schema.epsilon == 2.0 and schema.max_mia_score == 0.7


COLS = [{"name": "a", "type": "numerical"}, {"name": "y", "type": "categorical"}]
MALFORMED = [
    (
        None,
        "the schema must be a non-empty mapping with 'columns' (Synthroom's spelling) or 'columnClassification' "
        "(the reference product's), not NoneType None",
    ),
    (
        {},
        "the schema must be a non-empty mapping with 'columns' (Synthroom's spelling) or 'columnClassification' "
        "(the reference product's), not dict {}",
    ),
    (
        [1, 2],
        "the schema must be a non-empty mapping with 'columns' (Synthroom's spelling) or 'columnClassification' "
        "(the reference product's), not list [1, 2]",
    ),
    (
        "columns",
        "the schema must be a non-empty mapping with 'columns' (Synthroom's spelling) or "
        "'columnClassification' (the reference product's), not str 'columns'",
    ),
    (
        {"target": "y"},
        "the schema needs a non-empty 'columns' list (or the reference product's 'columnClassification'), "
        "not NoneType None",
    ),
    (
        {"target": "y", "columns": {"a": "numerical"}},
        "the schema needs a non-empty 'columns' list (or the reference "
        "product's 'columnClassification'), not dict {'a': 'numerical'}",
    ),
    (
        {"target": "y", "columns": []},
        "the schema needs a non-empty 'columns' list (or the reference product's 'columnClassification'), not list []",
    ),
    (
        {"target": ["a", "y"], "columns": COLS},
        "target (the one predictive column) must be a non-empty string, not list ['a', 'y']",
    ),
    ({"target": 3, "columns": COLS}, "target (the one predictive column) must be a non-empty string, not int 3"),
    (
        {"target": "y", "columns": COLS, "colums": []},
        "unknown key 'colums' in the schema (known: columns, epsilon, ignore, max_mia_score, name, rules, target, task)",
    ),
    ({"target": "y", "columns": ["a", "y"]}, "schema column #1 must be a mapping with a 'name', not str 'a'"),
    (
        {"target": "y", "columns": [{"type": "numerical"}]},
        "schema column #1 must be a mapping with a 'name', not dict {'type': 'numerical'}",
    ),
    (
        {"target": "y", "columns": [{"name": 5, "type": "numerical"}]},
        "schema column #1's name must be a non-empty string, not int 5",
    ),
    (
        {"target": "y", "columns": [{"name": "a", "type": ["numerical"]}]},
        "column 'a': type ['numerical'] is not one of categorical, numerical, datetime, date",
    ),
    (
        {"target": "y", "columns": [{"name": "a"}]},
        "column 'a': type None is not one of categorical, numerical, datetime, date",
    ),
    (
        {"target": "a", "columns": [{"name": "a", "type": "numerical", "min": "zero"}]},
        "column 'a': min must be a number, not str 'zero'",
    ),
    (
        {"target": "a", "columns": [{"name": "a", "type": "numerical", "max": True}]},
        "column 'a': max must be a number, not bool True",
    ),
    (
        {"target": "a", "columns": [{"name": "a", "type": "numerical", "integer": "yes"}]},
        "column 'a': integer must be true or false, not str 'yes'",
    ),
    (
        {"target": "a", "columns": [{"name": "a", "type": "categorical", "categories": "x,y"}]},
        "column 'a': categories must be a list of values (text or numbers), not str 'x,y'",
    ),
    (
        {"target": "a", "columns": [{"name": "a", "type": "categorical", "categories": [["x"]]}]},
        "column 'a': categories must be a list of values (text or numbers), not list [['x']]",
    ),
    (
        {"target": "a", "columns": [{"name": "a", "type": "datetime", "format": 7}]},
        "column 'a': format must be a non-empty string, not int 7",
    ),
    (
        {"target": "a", "columns": [{"name": "a", "type": "numerical", "bounds": [0, 1]}]},
        "unknown key 'bounds' in column 'a' (known: categories, format, hierarchy, integer, kind, max, min, name, "
        "parent, parents, predictive, target, type)",
    ),
    (
        {"target": "a", "columns": [{"name": "a", "type": "numerical", "target": "yes"}]},
        "column 'a': target must be true or false, not str 'yes'",
    ),
    ({"target": "y", "epsilon": "one", "columns": COLS}, "epsilon must be a number, not str 'one'"),
    ({"target": "y", "epsilon": 0, "columns": COLS}, "epsilon 0 is outside the allowed range [0.0001, 10.0]"),
    ({"target": "y", "columns": COLS, "ignore": "id"}, "ignore must be a list of column names, not str 'id'"),
    (
        {"target": "y", "columns": COLS, "ignore": [None]},
        "ignore entry #1 must be a non-empty string, not NoneType None",
    ),
    (
        {"target": "y", "columns": COLS, "ignore": ["a"]},
        "column 'a' is both classified and listed under ignore (or twice)",
    ),
    ({"syntheticDataParameters": []}, "syntheticDataParameters must be a mapping, not list []"),
    (
        {"syntheticDataParameters": {"mlSyntheticDataParameters": {"epsilon": 1}}},
        "columnClassification needs a non-empty 'columnMapping' list",
    ),
    ({"columnClassification": {"columnMapping": "age"}}, "columnClassification needs a non-empty 'columnMapping' list"),
    (
        {"columnClassification": {"columnMapping": [{"columnType": "NUMERICAL"}]}},
        "columnMapping entry #1 must be a mapping with a 'columnName' string, not dict {'columnType': 'NUMERICAL'}",
    ),
    (
        {"columnClassification": {"columnMapping": [{"columnName": "a", "columnType": "TEXT"}]}},
        "column 'a': columnType 'TEXT' is not CATEGORICAL or NUMERICAL",
    ),
    (
        {
            "columnClassification": {
                "columnMapping": [{"columnName": "a", "columnType": "NUMERICAL", "isPredictiveValue": "true"}]
            }
        },
        "column 'a': isPredictiveValue must be true or false, not str 'true'",
    ),
    (
        {
            "columnClassification": {
                "columnMapping": [{"columnName": "a", "columnType": "NUMERICAL", "isPredictive": True}]
            }
        },
        "unknown key 'isPredictive' in columnMapping entry 'a' (known: columnName, columnType, isPredictiveValue)",
    ),
    (
        {
            "epsilon": 1,
            "columnClassification": {"columnMapping": [{"columnName": "a", "columnType": "NUMERICAL"}]},
            "maxMIA": 0.6,
        },
        "unknown key 'maxMIA' in mlSyntheticDataParameters (known: columnClassification, epsilon, "
        "maxMembershipInferenceAttackScore)",
    ),
]


@pytest.mark.parametrize("data, message", MALFORMED)
def test_every_malformed_schema_is_one_schema_error(data, message):
    with pytest.raises(SchemaError) as info:
        parse_schema(data)
    assert str(info.value) == message


def test_malformed_schema_files_exit_2_without_traceback(tmp_path):
    data = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2, 3], "y": ["x", "y", "x"]}).to_csv(data, index=False)
    out = tmp_path / "out.csv"
    cases = [(yaml.safe_dump(d), m) for d, m in MALFORMED[:12]] + [
        ("target: [a\n", "does not parse"),
        ("", "not NoneType None"),
        ("- a\n- b\n", "not list ['a', 'b']"),
    ]
    for i, (text, message) in enumerate(cases):
        schema = tmp_path / f"s{i}.yaml"
        schema.write_text(text)
        result = CliRunner().invoke(app, ["synthesize", str(data), "-s", str(schema), "-o", str(out), "-q"])
        assert result.exit_code == 2, (text, result.output)
        assert message.splitlines()[0][:40] in " ".join(result.output.split()) and "Traceback" not in result.output
        assert not out.exists()
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SchemaError, match="is not UTF-8 text"):
        load_schema(binary)


@pytest.fixture()
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 2_000
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "age": rng.integers(18, 80, n),
            "joined": day,
            "plan": rng.choice(["a", "b", "c"], n),
            "churned": rng.choice(["yes", "no"], n),
        }
    )


SCHEMA = {
    "target": "churned",
    "columns": [
        {"name": "age", "type": "numerical"},
        {"name": "joined", "type": "date"},
        {"name": "plan", "type": "categorical"},
        {"name": "churned", "type": "categorical"},
    ],
}


def test_an_unclassified_column_names_itself_and_the_way_out(table):
    with pytest.raises(InputError) as info:
        Synthesizer(SCHEMA, epsilon=1.0, seed=0).fit(table)
    assert str(info.value) == (
        "column 'customer_id' in the DataFrame is not classified in the schema: classify it, or "
        "leave it out with 'ignore: [customer_id]' in the schema (--ignore customer_id on the "
        "command line)"
    )
    with pytest.raises(InputError, match="column 'customer_id' in the DataFrame is not classified"):
        Synthesizer(dict(SCHEMA, ignore=["customer"]), epsilon=1.0, seed=0).fit(table)  # a typo names the column


def test_every_unclassified_or_absent_column_is_named_in_one_message(table):
    """A file of many unclassified columns (an id, a free-text note) gets them all in one message
    with the whole way out, not one per run; so do schema columns the input lacks."""
    wide = table.assign(note="x", batch=1)
    with pytest.raises(InputError) as info:
        Synthesizer(SCHEMA, epsilon=1.0, seed=0).fit(wide)
    assert str(info.value) == (
        "columns 'customer_id', 'note' and 'batch' in the DataFrame are not classified in the schema: classify "
        "them, or leave them out with 'ignore: [customer_id, note, batch]' in the schema (--ignore customer_id "
        "--ignore note --ignore batch on the command line)"
    )
    narrow = table.drop(columns=["age", "plan"])
    with pytest.raises(InputError) as info:
        Synthesizer(dict(SCHEMA, ignore=["customer_id"]), epsilon=1.0, seed=0).fit(narrow)
    assert str(info.value) == "columns 'age' and 'plan' are in the schema but not in the DataFrame"


def test_ignored_columns_are_neither_read_nor_output_and_dates_stay_dates(table, tmp_path):
    synth = Synthesizer(dict(SCHEMA, ignore=["customer_id"]), epsilon=2.0, seed=0).fit(table)
    assert parse_schema(synth.schema.to_dict()) == synth.schema  # ignore and `type: date` round-trip
    out = synth.sample(500, seed=0)
    assert list(out.columns) == ["age", "joined", "plan", "churned"]
    joined = out.joined.dropna()
    assert len(joined) > 400 and all(type(v) is dt.date for v in joined)  # dates, no time of day
    assert joined.min() >= dt.date(2023, 1, 1) and joined.max() <= dt.date(2026, 1, 1)
    csv = tmp_path / "t.csv"
    table.assign(customer_id=['x,"y'] * len(table)).to_csv(csv, index=False)
    source = CountingSource.open(csv, {c["name"]: "categorical" for c in SCHEMA["columns"]}, ignore=["customer_id"])
    try:
        assert "customer_id" not in source._rel_types  # not even parsed into the engine's table
    finally:
        source.close()


def test_the_command_line_ignores_columns_reads_csv_gz_and_writes_dates(table, tmp_path):
    data = tmp_path / "t.csv.gz"
    with gzip.open(data, "wt") as fh:
        table.to_csv(fh, index=False)
    schema = tmp_path / "s.yaml"
    schema.write_text(yaml.safe_dump(SCHEMA))
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"out.{suffix}"
        args = [
            "synthesize",
            str(data),
            "-s",
            str(schema),
            "-o",
            str(out),
            "-q",
            "--seed",
            "0",
            "--ignore",
            "customer_id",
        ]
        result = CliRunner().invoke(app, args + (["--report", str(tmp_path / "r.html")] if suffix == "csv" else []))
        assert result.exit_code in (0, 3), result.output  # 3: a gate refused; the report path ran on .csv.gz
        if suffix == "parquet":
            back = pd.read_parquet(out)
            assert "customer_id" not in back.columns and all(type(v) is dt.date for v in back.joined.dropna())
    csv_out = tmp_path / "plain.csv"
    result = CliRunner().invoke(
        app, ["synthesize", str(data), "-s", str(schema), "-o", str(csv_out), "-q", "--ignore", "customer_id"]
    )
    assert result.exit_code == 0, result.output
    text = csv_out.read_text().splitlines()
    assert text[0] == "age,joined,plan,churned"
    assert all(len(line.split(",")[1]) in (0, 10) for line in text[1:])  # 2024-05-01, or empty
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"not gzip")
    result = CliRunner().invoke(app, ["synthesize", str(bad), "-s", str(schema), "-o", str(csv_out), "-q"])
    assert result.exit_code == 2 and "does not parse: Not a gzipped file" in " ".join(result.output.split())
