"""Anonymeter's three privacy risks, run by the *sidecar* interpreter as a plain script:

    <sidecar python> anonymeter_runner.py JOB_DIR

anonymeter 1.1.0 pins numpy < 1.27, which cannot share a virtual environment with Synthroom's
numpy 2, so this file imports only the standard library, numpy, pandas and anonymeter (never
synthroom).

JOB_DIR holds ``train.parquet`` (the original rows anonymeter attacks), ``holdout.parquet`` (its
control rows, never used for fitting), ``synthetic.parquet`` and ``job.json``::

    {"n_attacks": 500, "n_cols": 3, "max_attempts": 50000, "seed": 0, "secret": "income",
     "regression": false, "aux_cols": [["age", ...], ["sex", ...]]}

It writes ``JOB_DIR/result.json``: ``{"results": {name: risk}, "errors": {name: message}}`` where
each risk is ``{"risk", "ci": [lo, hi], "attack_rate", "baseline_rate", "control_rate",
"n_attacks", "seconds"}`` (rates are success rates with their error bars; singling out adds
"n_queries", the predicates found). One failing evaluator does not stop the others.
"""

import json
import sys
import time
import warnings
from pathlib import Path


def _summary(evaluator, **extra):
    risk = evaluator.risk()
    results = evaluator.results()

    def rate(success_rate):
        return {"value": float(success_rate.value), "error": float(success_rate.error)}

    return {
        "risk": float(risk.value),
        "ci": [float(risk.ci[0]), float(risk.ci[1])],
        "attack_rate": rate(results.attack_rate),
        "baseline_rate": rate(results.baseline_rate),
        "control_rate": rate(results.control_rate) if results.control_rate is not None else None,
        "n_attacks": int(results.n_attacks_ori),
        **extra,
    }


def _singling_out(evaluator, mode):
    """Singling-out risk; also how many distinct predicates were found (at most n_attacks: with
    few, the attack is weaker, since the risk counts successes out of n_attacks)."""
    evaluator.evaluate(mode=mode)
    return _summary(evaluator, n_queries=len(evaluator.queries()))


def _cache_numba_compilation():
    """anonymeter's distance kernels are numba functions compiled on every start (about 5-10 s,
    most of a run on small tables). Turning on numba's on-disk cache before anonymeter imports
    ``jit`` compiles them once per sidecar environment instead."""
    import numba

    plain_jit = numba.jit

    def cached_jit(*args, **kwargs):
        kwargs.setdefault("cache", True)
        return plain_jit(*args, **kwargs)

    numba.jit = cached_jit


def run(job_dir):
    import numpy as np
    import pandas as pd

    _cache_numba_compilation()
    from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator

    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    ori, control, syn = (pd.read_parquet(job_dir / f"{name}.parquet") for name in ("train", "holdout", "synthetic"))
    n, seed = int(job["n_attacks"]), int(job["seed"])
    secret = job["secret"]
    evaluators = {
        "singling_out_univariate": lambda: _singling_out(
            SinglingOutEvaluator(ori=ori, syn=syn, control=control, n_attacks=n, seed=seed), "univariate"
        ),
        "singling_out_multivariate": lambda: _singling_out(
            SinglingOutEvaluator(
                ori=ori,
                syn=syn,
                control=control,
                n_attacks=n,
                n_cols=int(job["n_cols"]),
                seed=seed,
                max_attempts=int(job["max_attempts"]),
            ),
            "multivariate",
        ),
        "linkability": lambda: _summary(
            LinkabilityEvaluator(
                ori=ori, syn=syn, control=control, aux_cols=tuple(job["aux_cols"]), n_attacks=n, n_neighbors=1
            ).evaluate(n_jobs=1)
        ),
        "inference": lambda: _summary(
            InferenceEvaluator(
                ori=ori,
                syn=syn,
                control=control,
                aux_cols=[c for c in ori.columns if c != secret],
                secret=secret,
                regression=bool(job["regression"]),
                n_attacks=n,
            ).evaluate(n_jobs=1)
        ),
    }
    results, errors = {}, {}
    for name, evaluate in evaluators.items():
        np.random.seed(seed)  # evaluators without a seed argument draw from numpy's global state
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results[name] = evaluate()
            results[name]["seconds"] = round(time.perf_counter() - started, 2)
        except Exception as exc:  # one evaluator's failure is reported, not fatal
            errors[name] = f"{type(exc).__name__}: {exc}"
    out = job_dir / "result.json"
    out.write_text(json.dumps({"results": results, "errors": errors}), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: anonymeter_runner.py JOB_DIR")
    run(Path(sys.argv[1]))
