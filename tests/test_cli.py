"""The command line: one clear message and exit code 2 for bad input, and no output file."""

import json
import re

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from synthroom.cli.app import app
from synthroom.demo import CUSTOMERS_SCHEMA

runner = CliRunner()


@pytest.fixture()
def files(tmp_path, customers):
    data = tmp_path / "c.csv"
    customers.head(2000).to_csv(data, index=False)
    schema = tmp_path / "s.yaml"
    schema.write_text(yaml.safe_dump(CUSTOMERS_SCHEMA))
    return tmp_path, data, schema


def _run(args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def _fails(args, out_path, message):
    code, output = _run(args)
    assert code == 2, output
    assert message in " ".join(output.split()), output
    assert not out_path.exists()
    assert not list(out_path.parent.glob(f".{out_path.name}*"))


def test_synthesize_writes_output_and_summary(files):
    tmp, data, schema = files
    out = tmp / "syn.parquet"
    code, output = _run(
        [
            "synthesize",
            data,
            "--schema",
            schema,
            "--epsilon",
            2,
            "--rows",
            700,
            "-o",
            out,
            "--seed",
            1,
            "--save-model",
            tmp / "m.npz",
            "--privacy-log",
            tmp / "p.json",
            "-q",
        ]
    )
    assert code == 0, output
    df = pd.read_parquet(out)
    assert df.shape == (700, 10)
    assert "epsilon spent" in output and "2 of 2" in output
    ledger = json.loads((tmp / "p.json").read_text())
    assert ledger["epsilon_spent"] == pytest.approx(2.0, rel=1e-6)
    code, output = _run(["sample", tmp / "m.npz", "--rows", 50, "-o", tmp / "more.csv", "--seed", 2])
    assert code == 0, output
    assert len(pd.read_csv(tmp / "more.csv")) == 50


def test_reference_product_json_is_accepted(files):
    tmp, data, _ = files
    mapping = [
        {"columnName": c["name"], "columnType": c["type"].upper(), "isPredictiveValue": c["name"] == "churned"}
        for c in CUSTOMERS_SCHEMA["columns"]
    ]
    mapping[7]["columnType"] = "NUMERICAL"  # the product has no datetime kind: a date is not a number
    ref = tmp / "ref.json"
    ref.write_text(
        json.dumps(
            {
                "epsilon": 1.0,
                "maxMembershipInferenceAttackScore": 0.6,
                "columnClassification": {"columnMapping": mapping},
            }
        )
    )
    code, output = _run(["synthesize", data, "--schema", ref, "-o", tmp / "o.csv", "--seed", 1, "-q"])
    assert code == 0, output  # the schema's gate (0.6) passed
    synthetic = pd.read_csv(tmp / "o.csv")
    # A value that does not parse as the column's kind counts as missing (whether a run fails must
    # not depend on one row's value): the dates are all missing, and so (up to the DP noise) is
    # the synthetic column.
    assert synthetic["signup_date"].isna().mean() > 0.95 and synthetic["age"].notna().all()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda df: df.rename(columns={"age": "years"}), "column 'age' is in the schema but not in"),
        (lambda df: df.assign(extra=1), "column 'extra' in"),
        # brackets in a message are printed as they are, not read as console markup
        (lambda df: df.assign(**{"score[raw]": 1}), "leave it out with 'ignore: [score[raw]]' in the schema"),
        (lambda df: df.head(0), "the table has no rows"),
    ],
)
def test_bad_tables(files, edit, message):
    tmp, data, schema = files
    bad = tmp / "bad.csv"
    edit(pd.read_csv(data)).to_csv(bad, index=False)
    _fails(["synthesize", bad, "--schema", schema, "-o", tmp / "o.csv"], tmp / "o.csv", message)


def test_a_value_that_does_not_parse_counts_as_missing(files):
    tmp, data, schema = files
    odd = tmp / "odd.csv"
    pd.read_csv(data).astype({"age": object}).assign(age=lambda d: d.age.where(d.index != 1500, "forty")).to_csv(
        odd, index=False
    )
    code, output = _run(["synthesize", odd, "--schema", schema, "-o", tmp / "o.csv", "--seed", 1, "-q"])
    assert code == 0, output
    assert len(pd.read_csv(tmp / "o.csv")) > 1500


def test_duplicate_column_names(files):
    tmp, data, schema = files
    bad = tmp / "dup.csv"
    lines = data.read_text().splitlines()
    bad.write_text("\n".join([lines[0] + ",age"] + [line + ",1" for line in lines[1:]]) + "\n")
    _fails(["synthesize", bad, "--schema", schema, "-o", tmp / "o.csv"], tmp / "o.csv", "column 'age' appears twice in")


@pytest.mark.parametrize(
    "schema_edit, message",
    [
        (lambda s: {"columns": s["columns"]}, "the schema names no predictive (target) column"),
        (
            lambda s: {**s, "columns": s["columns"] + [{"name": "age", "type": "numerical"}]},
            "column 'age' appears twice in the schema",
        ),
        (
            lambda s: {**s, "columns": [dict(c, target=True) if c["name"] == "plan" else c for c in s["columns"]]},
            "the schema names 2 predictive columns ('plan', 'churned'); exactly one is allowed",
        ),
    ],
)
def test_bad_schemas(files, schema_edit, message):
    tmp, data, _ = files
    bad = tmp / "bad.yaml"
    bad.write_text(yaml.safe_dump(schema_edit(CUSTOMERS_SCHEMA)))
    _fails(["synthesize", data, "--schema", bad, "-o", tmp / "o.csv"], tmp / "o.csv", message)


def test_bad_parameters_and_files(files):
    tmp, data, schema = files
    out = tmp / "o.csv"
    _fails(
        ["synthesize", data, "--schema", schema, "-o", out, "--epsilon", 11],
        out,
        "epsilon 11.0 is outside the allowed range [0.0001, 10.0]",
    )
    _fails(["synthesize", data, "--schema", schema, "-o", tmp / "o.xlsx"], tmp / "o.xlsx", "unknown extension '.xlsx'")
    garbage = tmp / "g.parquet"
    garbage.write_bytes(b"\x00\x01 not parquet at all")
    _fails(["synthesize", garbage, "--schema", schema, "-o", out], out, "does not parse")
    _fails(["synthesize", tmp / "nope.csv", "--schema", schema, "-o", out], out, "does not exist")
    (tmp / "broken.yaml").write_text("columns: [unclosed")
    _fails(["synthesize", data, "--schema", tmp / "broken.yaml", "-o", out], out, "does not parse")


def test_demo_runs_end_to_end(tmp_path, monkeypatch):
    """The README's first command: the two-party clean room, in-process, end to end."""
    monkeypatch.setenv("SYNTHROOM_ANONYMETER_PYTHON", "/nonexistent")  # as in CI: no anonymeter sidecar
    monkeypatch.setenv("COLUMNS", "200")
    code, output = _run(["demo", "--workdir", tmp_path / "d", "--users", 1500])
    assert code == 0, output
    for name in (
        "publisher/audience.csv",
        "advertiser/conversions.parquet",
        "server/room.db",
        "advertiser/synthetic.csv",
        "advertiser/report.html",
        "advertiser/model.skops",
        "advertiser/audit.json",
        "advertiser/predictions.csv",
        "publisher/new_users.csv",
    ):
        assert (tmp_path / "d" / name).exists(), name
    text = " ".join(output.split())
    assert "succeeded in" in text and "chain verified: True" in text and "where everything is" in text
    assert "the publisher, invited to #1, accepts" in text and "kept at entry 4 still holds: True" in text
    assert "refused as it should be: template rejected: column 'email' of table 'audience' may not be used" in text
    assert (
        "the publisher asks for the rows, refused as it should be: 'publisher' may not receive the results of job 1"
        in text
    )
    assert "budget left: audience 2 of 3, conversions 2 of 3" in text
    assert re.search(
        r"on the real holdout the synthesizer never saw \(not DP, rounded\): accuracy 0\.\d\d, f1_macro 0\.\d\d, "
        r"auc 0\.\d\d",
        text,
    ), text
    assert "the publisher scored its 1,000 new users with the model inside the room" in text
    predictions = pd.read_csv(tmp_path / "d" / "advertiser" / "predictions.csv")
    assert list(predictions.columns) == ["user_id", "prediction", "probability"] and len(predictions) == 1000
    synthetic = pd.read_csv(tmp_path / "d" / "advertiser" / "synthetic.csv")
    assert list(synthetic.columns) == ["age", "region", "device", "segment", "weekly_visits", "converted"]
    assert len(synthetic) > 900
    assert "email" not in synthetic.columns


def test_ci_runs_the_readme_test_command_verbatim():
    """`.ci/run` is the README's second newcomer command, so a missing install step fails CI."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    blocks = (root / "README.md").read_text().split("```")
    commands = [b.strip() for b in blocks[1::2] if b.strip().startswith("python3 -m venv .venv")]
    assert len(commands) >= 2 and "synthroom demo" in commands[0]
    assert commands[1] in (root / ".ci" / "run").read_text().splitlines()


def test_synthesize_prints_what_the_fit_could_not_learn(tmp_path):
    import numpy as np

    rng = np.random.default_rng(3)
    pd.DataFrame(
        {"amount": rng.normal(5e6, 1e5, 40), "kind": rng.choice(["p", "q"], 40), "y": rng.choice(["p", "q"], 40)}
    ).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "s.yaml").write_text(
        yaml.safe_dump(
            {
                "target": "y",
                "columns": [
                    {"name": "amount", "type": "numerical"},
                    {"name": "kind", "type": "categorical"},
                    {"name": "y", "type": "categorical", "categories": ["p", "q"]},
                ],
            }
        )
    )  # undeclared: exit 2 (test_selection)
    code, output = _run(
        [
            "synthesize",
            tmp_path / "t.csv",
            "-s",
            tmp_path / "s.yaml",
            "--epsilon",
            "0.1",
            "-o",
            tmp_path / "o.csv",
            "--seed",
            "0",
            "-q",
        ]
    )
    assert code == 0, output
    text = " ".join(output.split())
    assert "warning: column 'amount': no value range stood out from the DP noise" in text
    assert "warning: column 'kind': no value is frequent enough to be released" in text
    assert (tmp_path / "o.csv").exists()


def test_engine_options_are_checked_before_any_work(files):
    tmp, data, schema = files
    out = tmp / "syn.parquet"
    base = ["synthesize", data, "-s", schema, "-o", out]
    _fails(base + ["--engine", "oracle"], out, "--engine 'oracle' is not one of duckdb, spark")
    _fails(base + ["--spark-master", "local[1]"], out, "--spark-master and --partitions need --engine spark")
    _fails(
        base + ["--engine", "spark", "--report", tmp / "r.html", "--partitions", "4"],
        out,
        "--partitions draws new rows after the fit, but the release gate releases only the rows it scored",
    )
    _fails(
        base[:-1] + [tmp / "syn.csv", "--engine", "spark", "--partitions", "4"],
        tmp / "syn.csv",
        "--partitions needs a positive number and a .parquet output",
    )


def test_a_long_path_is_printed_whole_when_the_output_is_not_a_terminal(tmp_path):
    """A path longer than the console's width (80 columns when the output is a pipe or a log) is
    printed on one line and as it is, so a user can copy it: rich folded it mid-path (and
    read [with] as console markup)."""
    output = tmp_path / ("a-folder-[with]-a-long-name-" * 4) / "customers[2].csv"
    output.parent.mkdir()
    code, text = _run(["simulate", "-o", output, "--rows", 10])
    assert code == 0, text
    assert f"wrote 10 simulated customers to {output}\n" in text


def test_the_simulator_s_schema_keeps_its_table_s_types_in_the_synthetic_rows(tmp_path):
    """A newcomer's first run (simulate --schema-out, then synthesize) gives rows shaped like the
    simulated ones: whole ages, months and calls, dates without a time of day, incomes in hundreds
    and spend in cents (the schema declares what the simulator knows; it was ages of 51.71077 and
    signup dates at 14:27:44)."""
    table, schema, synth = tmp_path / "customers.csv", tmp_path / "schema.yaml", tmp_path / "synth.csv"
    code, text = _run(["simulate", "-o", table, "--rows", 3000, "--schema-out", schema])
    assert code == 0, text
    # seeded: the formats are the point, not one fresh draw's noise (a phantom negative cell, say)
    code, text = _run(["synthesize", table, "--schema", schema, "--epsilon", 2, "--seed", 3, "-o", synth, "-q"])
    assert code == 0, text
    out = pd.read_csv(synth, dtype=str, keep_default_na=False)
    for column in ("age", "tenure_months", "support_calls"):  # (a fit may draw a few missing values)
        assert out[column].str.fullmatch(r"\d*").all() and (out[column] != "").mean() > 0.9, out[column].head()
    assert out.signup_date.str.fullmatch(r"\d{4}-\d{2}-\d{2}|").all(), out.signup_date.head()
    income = pd.to_numeric(out.income).dropna()
    assert len(income) > 2000 and (income % 100 == 0).all()
    assert out.monthly_spend.str.fullmatch(r"\d+(\.\d{1,2})?|").all(), out.monthly_spend.head()
