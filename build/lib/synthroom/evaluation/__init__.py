"""Evaluation: fidelity, ML utility and privacy attacks against real train/holdout rows.

    from synthroom.evaluation import evaluate
    report = evaluate(train_df, holdout_df, synthetic_df, schema, max_mia_score=0.6)
    report.passed, report.to_dict()

Every figure stands beside its ceiling (real holdout rows scored the same way). Definitions and
formulas: docs/evaluation.md.
"""

from .evaluate import evaluate, skipped_report
from .result import Attack, ColumnFidelity, EvaluationReport, Fidelity, GateResult, Utility
from .sidecar import ENV_VAR as ANONYMETER_ENV_VAR
from .sidecar import default_venv as default_anonymeter_venv
from .sidecar import find_sidecar, setup_anonymeter_venv
from .tables import MIN_ROWS

__all__ = [
    "ANONYMETER_ENV_VAR",
    "Attack",
    "ColumnFidelity",
    "EvaluationReport",
    "Fidelity",
    "GateResult",
    "MIN_ROWS",
    "Utility",
    "default_anonymeter_venv",
    "evaluate",
    "find_sidecar",
    "setup_anonymeter_venv",
    "skipped_report",
]
