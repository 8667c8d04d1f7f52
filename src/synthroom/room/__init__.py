"""The clean room: members, collaborations, configured tables with analysis rules, approved
templates, synthetic-data jobs with a privacy-budget ledger, trained models, an audit chain,
metering and retention. Usable without HTTP; :mod:`synthroom.api` serves it."""

from .errors import BudgetExhausted, Conflict, Forbidden, NotFound
from .jobs import (
    audit_log,
    get_job,
    list_jobs,
    metering,
    purge_expired,
    recover_interrupted,
    report_path,
    result_path,
    run_job,
    start_job,
)
from .service import Actor, Room
from .training import get_model, list_models, model_file, run_training, train_model
from .worker import Worker

__all__ = [
    "Actor",
    "BudgetExhausted",
    "Conflict",
    "Forbidden",
    "NotFound",
    "Room",
    "Worker",
    "audit_log",
    "get_job",
    "get_model",
    "list_jobs",
    "list_models",
    "metering",
    "model_file",
    "purge_expired",
    "recover_interrupted",
    "report_path",
    "result_path",
    "run_job",
    "run_training",
    "start_job",
    "train_model",
]
