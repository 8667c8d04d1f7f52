"""The anonymeter sidecar: a separate virtual environment that runs :mod:`.anonymeter_runner`.

anonymeter 1.1.0 needs numpy < 1.27 and pyarrow < 22; Synthroom needs numpy 2 (JAX). They
cannot share one environment, so the risks are computed by another interpreter, found at

1. ``$SYNTHROOM_ANONYMETER_PYTHON`` when set, else
2. ``~/.cache/synthroom/anonymeter-venv/bin/python`` (what :func:`setup_anonymeter_venv` creates).

The evaluation writes the three tables as Parquet to a temporary folder, starts the runner in the
background while it computes everything else, and reads its ``result.json`` at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from .result import Attack
from .tables import Tables

ENV_VAR = "SYNTHROOM_ANONYMETER_PYTHON"
RUNNER = Path(__file__).with_name("anonymeter_runner.py")
# anonymeter 1.1.0 and every package it pulls in, pinned exactly (resolved on Python 3.11).
SIDECAR_PINS = (
    "anonymeter==1.1.0",
    "numpy==1.26.4",
    "pandas==2.3.3",
    "pyarrow==21.0.0",
    "scikit-learn==1.9.1",
    "scipy==1.17.1",
    "numba==0.68.1",
    "llvmlite==0.50.0",
    "joblib==1.6.0",
    "polars==2.1.0",
    "polars-runtime-32==2.1.0",
    "narwhals==2.29.0",
    "cloudpickle==3.1.3",
    "threadpoolctl==3.8.0",
    "python-dateutil==4.0.0",
    "pytz==2026.6",
    "tzdata==2026.6",
)
MAX_ROWS = 5_000  # rows of each table handed to anonymeter (multivariate singling-out cost grows with it)
N_ATTACKS = 500
N_COLS = 3  # columns per multivariate singling-out query
# Multivariate singling out draws random predicates until N_ATTACKS of them single out one
# synthetic row; on a noisy synthetic table that can take millions of draws (70 s of CPU on
# Adult at epsilon 0.1). Capped: fewer predicates make the attack weaker, and the details say
# how many were found ("n_queries").
MAX_ATTEMPTS = 50_000
TIMEOUT_S = 300.0

ATTACKS = {  # runner's name -> (attack_version, description)
    "singling_out_univariate": (
        "ANONYMETER-SINGLING-OUT-UNIVARIATE-v1",
        "anonymeter singling-out risk, one-column predicates learned from the synthetic rows",
    ),
    "singling_out_multivariate": (
        "ANONYMETER-SINGLING-OUT-MULTIVARIATE-v1",
        f"anonymeter singling-out risk, {N_COLS}-column predicates learned from the synthetic rows",
    ),
    "linkability": (
        "ANONYMETER-LINKABILITY-v1",
        "anonymeter linkability risk: linking two halves of a training row through the synthetic rows",
    ),
    "inference": (
        "ANONYMETER-INFERENCE-v1",
        "anonymeter attribute-inference risk for the predictive column from all other columns",
    ),
}
ATTACK_VERSIONS = tuple(version for version, _ in ATTACKS.values())


def default_venv() -> Path:
    return Path.home() / ".cache" / "synthroom" / "anonymeter-venv"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_sidecar() -> tuple[Path | None, str]:
    """The sidecar interpreter, or None and why it is not available."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        path = Path(configured).expanduser()
        if path.is_file():
            return path, ""
        return None, f"{ENV_VAR} is set to {configured!r}, which is not a file"
    path = venv_python(default_venv())
    if path.is_file():
        return path, ""
    return None, (
        f"no sidecar interpreter (set {ENV_VAR}, or create {default_venv()} with `synthroom setup-anonymeter`)"
    )


PINS_MARKER = "synthroom-sidecar-pins.txt"


def setup_anonymeter_venv(
    venv: str | Path | None = None, python: str | Path | None = None, force: bool = False
) -> Path:
    """Create the sidecar environment (``python -m venv`` + ``pip install`` of the exact pins),
    check it with a small run (which also compiles anonymeter's numba kernels into their cache)
    and return its interpreter. Downloads from the package index: run once, at setup time.

    An environment this function built earlier with the same pins (recorded in a marker file
    inside it) is kept and only checked, unless ``force``: so the setup step can stand in a
    command that is run again and again (the README's test command) at the cost of one check."""
    venv = Path(venv).expanduser() if venv is not None else default_venv()
    marker = venv / PINS_MARKER
    interpreter = venv_python(venv)
    if (
        not force
        and python is None
        and interpreter.is_file()
        and marker.is_file()
        and marker.read_text() == "\n".join(SIDECAR_PINS)
    ):
        _warm_up(interpreter)
        return interpreter
    base = str(python) if python is not None else sys.executable
    version = subprocess.run(
        [base, "-c", "import sys; print(sys.version_info[0] * 100 + sys.version_info[1])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not 309 <= int(version) <= 312:
        raise InputError(
            f"the anonymeter sidecar needs Python 3.9 to 3.12 (numpy 1.26 has no wheels for later "
            f"versions); {base} is {int(version) // 100}.{int(version) % 100}: pass another interpreter"
        )
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(interpreter), "-m", "pip", "install", "--quiet", *SIDECAR_PINS], check=True)
    _warm_up(interpreter)
    marker.write_text("\n".join(SIDECAR_PINS))
    return interpreter


def _warm_up(interpreter: Path) -> None:
    """One small run, so that numba compiles (and caches) anonymeter's kernels at setup time
    rather than in the first evaluation (on rows made here: evaluation does not depend on demo/)."""
    import numpy as np
    import pandas as pd

    from ..schema import parse_schema
    from .tables import prepare_tables

    rng = np.random.default_rng(0)
    rows = pd.DataFrame(
        {
            "age": rng.integers(18, 90, 900),
            "income": rng.lognormal(10, 1, 900),
            "plan": rng.choice(["basic", "plus", "pro"], 900),
            "churned": rng.choice(["no", "yes"], 900),
        }
    )
    schema = parse_schema(
        {
            "target": "churned",
            "columns": [
                {"name": "age", "type": "numerical"},
                {"name": "income", "type": "numerical"},
                {"name": "plan", "type": "categorical"},
                {"name": "churned", "type": "categorical"},
            ],
        }
    )
    tables = prepare_tables(rows[:300], rows[300:600], rows[600:], schema, max_rows=300, seed=0)
    with AnonymeterRun(interpreter, tables, seed=0) as run:
        _, problems = run.collect()
    if problems:
        raise RuntimeError(f"the anonymeter sidecar at {interpreter} does not work: {problems[0]}")


class AnonymeterRun:
    """One background run of the runner; use as a context manager so the temporary folder and
    a still-running process are cleaned up whatever happens."""

    def __init__(self, interpreter: Path, tables: Tables, seed: int):
        self._dir = Path(tempfile.mkdtemp(prefix="synthroom-anonymeter-"))
        rng = np.random.default_rng([seed, 3])
        for key, df in tables.items():
            take = rng.permutation(len(df))[:MAX_ROWS]
            df.iloc[np.sort(take)].reset_index(drop=True).to_parquet(self._dir / f"{key}.parquet", index=False)
        columns = list(tables.kinds)
        n_attacks = min(N_ATTACKS, *(min(len(df), MAX_ROWS) for _, df in tables.items()))
        self.job = {
            "n_attacks": n_attacks,
            "n_cols": min(N_COLS, len(columns)),
            "max_attempts": MAX_ATTEMPTS,
            "seed": seed,
            "secret": tables.target,
            "regression": tables.kinds[tables.target] != "categorical",
            "aux_cols": [columns[0::2], columns[1::2]],
        }
        (self._dir / "job.json").write_text(json.dumps(self.job), encoding="utf-8")
        self._stderr = open(self._dir / "stderr.txt", "wb")
        self._process = subprocess.Popen(
            [str(interpreter), str(RUNNER), str(self._dir)],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
        )

    def __enter__(self) -> "AnonymeterRun":
        return self

    def __exit__(self, *_exc) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def collect(self, timeout: float = TIMEOUT_S) -> tuple[list[Attack], list[str]]:
        """Wait for the runner; its risks as attacks, and notes on whatever failed."""
        try:
            code = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return [], [f"anonymeter risks not computed: the sidecar took longer than {timeout:.0f} s"]
        result_path = self._dir / "result.json"
        if code != 0 or not result_path.is_file():
            self._stderr.flush()
            tail = (self._dir / "stderr.txt").read_text(encoding="utf-8", errors="replace").strip().splitlines()
            return [], [
                f"anonymeter risks not computed: the sidecar exited with code {code}: "
                f"{tail[-1] if tail else 'no message'}"
            ]
        result = json.loads(result_path.read_text(encoding="utf-8"))
        attacks, notes = [], []
        for name, (version, description) in ATTACKS.items():
            if name in result["results"]:
                risk = result["results"][name]
                details = {**risk, "configuration": self._configuration(name)}
                attacks.append(Attack(version, float(risk["risk"]), description, details))
            else:
                notes.append(f"{version} not computed: {result['errors'].get(name, 'no result')}")
        return attacks, notes

    def _configuration(self, name: str) -> dict:
        job = self.job
        config = {"n_attacks": job["n_attacks"], "rows_per_table_at_most": MAX_ROWS}
        if name == "singling_out_multivariate":
            config["n_cols"] = job["n_cols"]
            config["max_attempts"] = job["max_attempts"]
        if name == "linkability":
            config["aux_cols"] = job["aux_cols"]
            config["n_neighbors"] = 1
        if name == "inference":
            config["secret"] = job["secret"]
        return config
