"""Synthesize behind a release gate: hold out real rows, fit on the rest, evaluate, then release.

    run = synthesize_with_gate("customers.parquet", schema, epsilon=1, max_mia_score=0.6)
    if run.released: run.synthetic.to_parquet(...)
    write_report(run.report, "report.html")

The split is seeded and exact: ``round(holdout_share * n)`` rows go to the holdout. A file is
split inside DuckDB (never loaded into pandas): rows are ranked by a hash of their row number
and the seed, the training part is copied to a temporary Parquet file that the synthesizer fits
on (the folder is removed afterwards, also on failure), and only a seeded sample of at most
``max_rows`` training and holdout rows is read into pandas for the evaluation.

What is private and what is not: the synthesizer sees only the training part, and the synthetic
rows and model are ``(epsilon, delta)``-DP with respect to it. The evaluation reads raw training
and holdout rows; its real-data aggregates (the report) and the release decision are *not* DP.
The report is meant for the data owner, not for the people the synthetic data is shared with.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import numpy as np
import pandas as pd

from .engine.counting import NUMERIC_TYPES, check_names, csv_header, quote_ident, quote_literal
from .errors import InputError
from .evaluation.result import EvaluationReport
from .schema import Schema, parse_schema
from .synthesis.synthesizer import DEFAULT_DELTA, Synthesizer

Progress = Callable[[str, str], None]
DEFAULT_HOLDOUT_SHARE = 0.2
DEFAULT_MAX_ROWS = 50_000
_RID = "__synthroom_row"  # row-number column added while splitting (never written out)


def _quiet(_phase: str, _message: str) -> None:
    return None


@dataclass
class GatedRun:
    """The outcome of :func:`synthesize_with_gate`: the synthetic rows only when released."""

    released: bool
    synthetic: pd.DataFrame | None  # None when a gate refused the release
    report: EvaluationReport
    synthesizer: Synthesizer


@dataclass
class Split:
    """A seeded holdout split: what the synthesizer fits on, and the rows the evaluation reads."""

    fit_data: "str | pd.DataFrame"  # a Parquet path (file input) or the training DataFrame
    train: pd.DataFrame  # training rows for the evaluation (a seeded sample of at most max_rows)
    holdout: pd.DataFrame  # holdout rows for the evaluation (likewise)
    n_train: int
    n_holdout: int
    notes: list[str]


def check_holdout_share(share: float) -> float:
    """The holdout share must be in (0, 0.5]: enough rows stay to fit on."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 0.5:
        raise InputError(f"holdout share {share!r} must be in (0, 0.5]")
    return float(share)


def holdout_size(n: int, share: float) -> int:
    """Rows in the holdout: ``round(share * n)``; both parts need enough rows for the attacks."""
    from .evaluation.tables import MIN_ROWS

    k = int(round(share * n))
    if k < 1:
        raise InputError(f"the holdout is empty: {share:g} of {n:,} rows rounds to 0 rows")
    for part, rows in (("holdout", k), ("training part", n - k)):
        if rows < MIN_ROWS:
            raise InputError(
                f"the {part} would have {rows:,} of {n:,} rows (holdout share {share:g}); at least {MIN_ROWS} "
                "are needed for a meaningful membership-inference score"
            )
    return k


def split_frame(df: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded split of a DataFrame into (train, holdout), both in the input's row order."""
    k = holdout_size(len(df), check_holdout_share(share))
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED])).permutation(len(df))
    is_holdout = np.zeros(len(df), dtype=bool)
    is_holdout[order[:k]] = True
    return df[~is_holdout].reset_index(drop=True), df[is_holdout].reset_index(drop=True)


@contextmanager
def _file_rows(path: str | Path, kinds: dict[str, str], *, strict: bool) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
    """Open a CSV/Parquet file in DuckDB; yields the connection and a relation holding the schema
    columns plus a stable row number ``_RID``. ``strict``: the file has exactly the schema's
    columns (as the synthesizer requires); otherwise extra columns are ignored."""
    path = Path(path)
    con = duckdb.connect(config={"threads": min(os.cpu_count() or 2, 4)})
    try:
        yield con, _open_rows(con, path, kinds, strict)
    except duckdb.Error as exc:
        raise InputError(f"input file {str(path)!r} does not parse: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _check_columns(names: list[str], kinds: dict[str, str], where: str, strict: bool) -> None:
    if strict:
        check_names(names, kinds, where)
        return
    missing = [k for k in kinds if k not in names]
    if missing:
        raise InputError(f"column {missing[0]!r} is in the schema but not in {where}")
    twice = [k for k in kinds if names.count(k) > 1]
    if twice:
        raise InputError(f"column {twice[0]!r} appears twice in {where}")


def _open_rows(con: duckdb.DuckDBPyConnection, path: Path, kinds: dict[str, str], strict: bool) -> str:
    if not path.exists():
        raise InputError(f"input file {str(path)!r} does not exist")
    ext = path.suffix.lower()
    if ext == ".parquet":
        names = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]
        _check_columns(names, kinds, str(path), strict)
        columns = ", ".join(quote_ident(k) for k in kinds)
        return f"(SELECT {columns}, file_row_number AS {quote_ident(_RID)} FROM read_parquet({quote_literal(str(path))}, file_row_number = true))"
    if ext in (".csv", ".tsv", ".txt"):
        _check_columns(csv_header(path), kinds, str(path), strict)
        con.execute(f"CREATE TEMP TABLE synthroom_raw AS SELECT * FROM read_csv({quote_literal(str(path))}, header = true, all_varchar = true)")
        return f"(SELECT {_csv_typed_columns(con, path, kinds)}, rowid AS {quote_ident(_RID)} FROM synthroom_raw)"
    raise InputError(f"input file {str(path)!r}: unknown extension {ext!r} (use .csv or .parquet)")


def _keeps_kind(kind: str, sniffed: str) -> bool:
    """Whether a sniffed CSV type fits the column's kind (a date stays text in a numerical column,
    so the synthesizer reports it as it does when it reads the CSV itself)."""
    base = sniffed.split("(")[0]
    numeric = base in NUMERIC_TYPES or base == "DECIMAL"
    if kind == "numerical":
        return numeric
    if kind == "datetime":
        return numeric or base.startswith(("DATE", "TIMESTAMP"))
    return base != "VARCHAR"


def _csv_typed_columns(con: duckdb.DuckDBPyConnection, path: Path, kinds: dict[str, str]) -> str:
    """SELECT list that gives each schema column of a CSV the type DuckDB's sniffer reads (the
    storage type the synthesizer sees when it reads the CSV itself) where that loses nothing:
    every value of a numerical/datetime column parses, every value of a categorical column reads
    back unchanged (so "yes"/"no" stays text, not a boolean). Other columns stay text, so the
    synthesizer's own validation names the value that does not parse."""
    sniffed = {r[0]: str(r[1]) for r in con.execute(
        f"DESCRIBE SELECT * FROM read_csv({quote_literal(str(path))}, header = true, sample_size = 20480)").fetchall()}
    typed = [n for n in kinds if _keeps_kind(kinds[n], sniffed.get(n, "VARCHAR"))]
    value = {n: quote_ident(n) if kinds[n] == "categorical" else f"NULLIF(trim({quote_ident(n)}), '')" for n in typed}
    lossy = {n: f"CAST(TRY_CAST({quote_ident(n)} AS {sniffed[n]}) AS VARCHAR) IS DISTINCT FROM {quote_ident(n)}" if kinds[n] == "categorical"
             else f"TRY_CAST({value[n]} AS {sniffed[n]}) IS NULL" for n in typed}
    if typed:
        bad = con.execute("SELECT " + ", ".join(
            f"count(*) FILTER (WHERE {value[n]} IS NOT NULL AND {lossy[n]})" for n in typed) + " FROM synthroom_raw").fetchone()
        typed = [n for n, b in zip(typed, bad) if b == 0]
    return ", ".join(f"CAST({value[n]} AS {sniffed[n]}) AS {quote_ident(n)}" if n in typed else quote_ident(n) for n in kinds)


def split_file(path: str | Path, schema: Schema, share: float, seed: int, workdir: Path,
               max_rows: int = DEFAULT_MAX_ROWS) -> Split:
    """Split a CSV/Parquet file in DuckDB; write the training part to ``workdir/train.parquet``."""
    share = check_holdout_share(share)
    with _file_rows(path, {c.name: c.kind for c in schema.columns}, strict=True) as (con, rows):
        n = con.execute(f"SELECT count(*) FROM {rows}").fetchone()[0]
        if n == 0:
            raise InputError("the table has no rows")
        k = holdout_size(n, share)
        con.execute(f"CREATE TEMP VIEW synthroom_ranked AS SELECT *, {_rank(seed)} AS synthroom_rank FROM {rows}")
        h, rid = con.execute(
            f"SELECT synthroom_rank, {quote_ident(_RID)} FROM synthroom_ranked ORDER BY 1, 2 LIMIT 1 OFFSET {k - 1}").fetchone()
        in_holdout = f"(synthroom_rank < {h}::UBIGINT OR (synthroom_rank = {h}::UBIGINT AND {quote_ident(_RID)} <= {rid}))"
        columns = ", ".join(quote_ident(c.name) for c in schema.columns)
        part = {"train": f"NOT {in_holdout}", "holdout": in_holdout}
        train_path = workdir / "train.parquet"
        con.execute(f"COPY (SELECT {columns} FROM synthroom_ranked WHERE {part['train']}) "
                    f"TO {quote_literal(str(train_path))} (FORMAT parquet)")
        # The rank is a seeded hash, so the lowest ranks of each part are a seeded random sample of it.
        frames = {name: con.execute(f"SELECT {columns} FROM synthroom_ranked WHERE {where} "
                                    f"ORDER BY synthroom_rank, {quote_ident(_RID)} LIMIT {int(max_rows)}").df()
                  for name, where in part.items()}
    sizes = {"training": n - k, "holdout": k}
    notes = [_sample_note(name, size, max_rows) for name, size in sizes.items() if size > max_rows]
    return Split(str(train_path), frames["train"], frames["holdout"], n - k, k, notes)


def _rank(seed: int) -> str:
    return f"hash({quote_ident(_RID)}, {int(seed)}::BIGINT)"


def _sample_note(table: str, size: int, max_rows: int, seed: int | None = None) -> str:
    """Says how a table was subsampled; the seed only where it is not the synthesizer's."""
    shown = "" if seed is None else f", seed {seed}"
    return f"the {table} table was subsampled from {size:,} to {max_rows:,} rows (seeded hash of the row number{shown})"


_SEED = re.compile(r"\bseed -?\d+")


def withhold_seed(notes: list[str]) -> list[str]:
    """Notes without the seed: the synthesizer's seed drives its DP noise, and whoever knows it
    could replay the noise and subtract it, so no report shows it (or anything derived from it)."""
    return [_SEED.sub("seed withheld", note) for note in notes]


def read_sample(path: str | Path, schema: Schema, max_rows: int, seed: int, table: str) -> tuple[pd.DataFrame, list[str]]:
    """The schema columns of a CSV/Parquet file, at most ``max_rows`` of them (a seeded sample),
    without loading the whole file; the note says when it was subsampled."""
    with _file_rows(path, {c.name: c.kind for c in schema.columns}, strict=False) as (con, rows):
        n = con.execute(f"SELECT count(*) FROM {rows}").fetchone()[0]
        order = f"{_rank(seed)}, {quote_ident(_RID)}" if n > max_rows else quote_ident(_RID)
        columns = ", ".join(quote_ident(c.name) for c in schema.columns)
        df = con.execute(f"SELECT {columns} FROM {rows} ORDER BY {order} LIMIT {int(max_rows)}").df()
    return df, [_sample_note(table, n, max_rows, seed)] if n > max_rows else []


def parse_gates(specs: list[str] | None) -> dict[str, float]:
    """``["DCR-v1=0.6", ...]`` -> ``{"DCR-v1": 0.6}``: the command line's ``--gate NAME=VALUE``."""
    gates: dict[str, float] = {}
    for spec in specs or []:
        name, sep, value = spec.rpartition("=")
        try:
            gates[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise InputError(f"--gate {spec!r} must look like NAME=VALUE, e.g. DCR-v1=0.6")
    return gates


def check_gates(gates: dict[str, float] | None, max_mia_score: float | None) -> None:
    """Before any work: unknown gate names, thresholds out of range, and gates on anonymeter's
    risks when its sidecar is not installed, each fail with one message."""
    from .evaluation import find_sidecar
    from .evaluation.gates import require_computable, resolve_gates

    requested = resolve_gates(gates, max_mia_score)
    interpreter, why = find_sidecar()
    require_computable(requested, None if interpreter is not None else why)


def _draw_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])


def synthesize_with_gate(
    data: "str | Path | pd.DataFrame",
    schema: "Schema | dict",
    *,
    epsilon: float,
    delta: float = DEFAULT_DELTA,
    seed: int | None = None,
    rows: int | None = None,
    max_mia_score: float | None = None,
    gates: dict[str, float] | None = None,
    holdout_share: float = DEFAULT_HOLDOUT_SHARE,
    progress: Progress | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    unit_cap: int = 1,
) -> GatedRun:
    """Hold out ``holdout_share`` of the real rows (seeded), fit on the rest, sample ``rows``
    (default: the DP estimate of the training part's size), evaluate against the holdout and
    release the synthetic rows only if every gate passes.

    ``max_mia_score`` defaults to the schema's ``maxMembershipInferenceAttackScore``; ``gates``
    maps further gate names to thresholds (see :func:`synthroom.evaluation.evaluate`).
    """
    from .evaluation import evaluate

    progress = progress or _quiet
    parsed = parse_schema(schema)
    check_holdout_share(holdout_share)
    if rows is not None and rows < 1:
        raise InputError(f"the number of rows to sample must be at least 1, not {rows!r}")
    if max_mia_score is None:
        max_mia_score = parsed.max_mia_score
    check_gates(gates, max_mia_score)
    split_seed = _draw_seed() if seed is None else int(seed)
    synth = Synthesizer(parsed, epsilon=epsilon, delta=delta, seed=seed, progress=progress,  # checks epsilon first
                        unit_cap=unit_cap)  # rows per person: the guarantee is per person (docs/privacy.md)

    share = f"{holdout_share * 100:g}%"
    progress("splitting", f"holding out {share} of the real rows")
    with tempfile.TemporaryDirectory(prefix="synthroom-split-") as workdir:
        if isinstance(data, pd.DataFrame):
            check_names([str(c) for c in data.columns], {c.name: c.kind for c in parsed.columns}, "the DataFrame")
            train, holdout = split_frame(data, holdout_share, split_seed)
            split = Split(train, train, holdout, len(train), len(holdout), [])
        else:
            split = split_file(data, parsed, holdout_share, split_seed, Path(workdir), max_rows)
        synth.fit(split.fit_data)
    synthetic = synth.sample(rows)

    progress("evaluating", f"scoring {len(synthetic):,} synthetic rows against the real ones")
    report = evaluate(split.train, split.holdout, synthetic, parsed, gates=gates, max_mia_score=max_mia_score,
                      max_rows=max_rows, seed=split_seed, privacy=synth.privacy_report(), progress=progress)
    report.notes = [
        f"holdout: {split.n_holdout:,} of {split.n_train + split.n_holdout:,} real rows ({share}, a seeded draw); "
        f"the synthesizer was fitted on the other {split.n_train:,}"
    ] + split.notes + synth.warnings_ + withhold_seed(report.notes)
    released = report.passed
    return GatedRun(released, synthetic if released else None, report, synth)


def evaluate_files(
    train: str | Path,
    holdout: str | Path,
    synthetic: str | Path,
    schema: "Schema | dict",
    *,
    gates: dict[str, float] | None = None,
    max_mia_score: float | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 0,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Score any synthetic table (ours or another tool's) against real training and holdout
    files; reads at most ``max_rows`` seeded rows of each. ``max_mia_score`` defaults to the
    schema's ``maxMembershipInferenceAttackScore``."""
    from .evaluation import evaluate
    from .evaluation.tables import MIN_ROWS

    progress = progress or _quiet
    parsed = parse_schema(schema)
    if max_rows < MIN_ROWS:
        raise InputError(f"--max-rows {max_rows} is below the minimum of {MIN_ROWS}")
    if max_mia_score is None:
        max_mia_score = parsed.max_mia_score
    check_gates(gates, max_mia_score)
    frames, notes = {}, []
    for key, path, table in (("train", train, "training"), ("holdout", holdout, "holdout"), ("synthetic", synthetic, "synthetic")):
        progress("reading", f"the {table} table {path}")
        frames[key], note = read_sample(path, parsed, max_rows, seed, table)
        notes += note
    progress("evaluating", f"scoring {len(frames['synthetic']):,} synthetic rows against the real ones")
    report = evaluate(frames["train"], frames["holdout"], frames["synthetic"], parsed, gates=gates,
                      max_mia_score=max_mia_score,
                      max_rows=max_rows, seed=seed, progress=progress)
    report.notes[:0] = notes
    return report


__all__: list[Any] = ["GatedRun", "synthesize_with_gate", "evaluate_files", "split_frame", "split_file",
                      "read_sample", "parse_gates", "check_holdout_share", "holdout_size"]
