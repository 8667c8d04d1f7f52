"""Large samples in batches: Synthesizer.sample_batches and io.write_batches (the command line
never holds a large sample as one DataFrame)."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synthroom import Synthesizer
from synthroom.cli.app import app
from synthroom.demo import CUSTOMERS_SCHEMA
from synthroom.io import write_batches
from synthroom.synthesis import synthesizer as synthesizer_module
from synthroom.synthesis.synthesizer import Settings


@pytest.fixture(scope="module")
def fitted(customers) -> Synthesizer:
    return Synthesizer(CUSTOMERS_SCHEMA, epsilon=5.0, seed=0, settings=Settings(iters=100)).fit(customers)


def test_one_batch_is_exactly_sample(fitted):
    (only,) = list(fitted.sample_batches(700, seed=3, batch_rows=700))
    pd.testing.assert_frame_equal(only, fitted.sample(700, seed=3))


def test_batches_add_up_and_a_seeded_call_replays(fitted):
    batches = list(fitted.sample_batches(1050, seed=4, batch_rows=300))
    assert [len(b) for b in batches] == [300, 300, 300, 150]
    again = list(fitted.sample_batches(1050, seed=4, batch_rows=300))
    for a, b in zip(batches, again):
        pd.testing.assert_frame_equal(a, b)
    # independent draws, not one batch repeated
    assert not batches[0]["age"].reset_index(drop=True).equals(batches[1]["age"].reset_index(drop=True))
    assert list(fitted.sample_batches(1050, seed=5, batch_rows=300))[0]["age"].tolist() != batches[0]["age"].tolist()


def test_write_batches_parquet_and_csv(tmp_path):
    a = pd.DataFrame({"x": pd.array([1, 2], dtype="Int64"), "d": [pd.Timestamp("2020-01-02").date(), None]})
    b = pd.DataFrame({"x": ["other", None], "d": [None, None]})  # an integer category's 'other' in one batch
    assert write_batches(iter([a, b]), tmp_path / "o.parquet") == 4
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.schema.field("x").type == pa.string() and table.schema.field("d").type == pa.date32()
    assert table.column("x").to_pylist() == ["1", "2", "other", None]
    assert write_batches(iter([a, b]), tmp_path / "o.csv") == 4
    assert (tmp_path / "o.csv").read_text().splitlines() == ["x,d", "1,2020-01-02", "2,", "other,", ","]
    assert not list(tmp_path.glob(".*tmp"))


def test_the_command_line_writes_a_sample_in_batches(tmp_path, customers, monkeypatch):
    import yaml

    monkeypatch.setattr(synthesizer_module, "SAMPLE_BATCH_ROWS", 400)
    seen: list[int] = []
    real = Synthesizer.sample

    def counted(self, n=None, *args, **kwargs):
        seen.append(n)
        return real(self, n, *args, **kwargs)

    monkeypatch.setattr(Synthesizer, "sample", counted)
    path, schema, out = tmp_path / "c.parquet", tmp_path / "s.yaml", tmp_path / "o.parquet"
    customers.to_parquet(path)
    schema.write_text(yaml.safe_dump(CUSTOMERS_SCHEMA))
    args = ["synthesize", str(path), "-s", str(schema), "--epsilon", "5", "-o", str(out), "--rows", "1000"]
    result = CliRunner().invoke(app, [*args, "--seed", "1", "--save-model", str(tmp_path / "m.npz")])
    assert result.exit_code == 0, result.output
    assert seen == [400, 400, 200]
    df = pd.read_parquet(out)
    assert len(df) == 1000 and list(df.columns) == [c["name"] for c in CUSTOMERS_SCHEMA["columns"]]
    seen.clear()
    result = CliRunner().invoke(
        app, ["sample", str(tmp_path / "m.npz"), "--rows", "900", "-o", str(tmp_path / "s.csv")]
    )
    assert result.exit_code == 0 and seen == [400, 400, 100] and len(pd.read_csv(tmp_path / "s.csv")) == 900
    assert "wrote 900 rows" in result.output
