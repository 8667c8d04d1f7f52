"""Request bodies of the REST API (pydantic); responses are the domain layer's JSON views.

Every text anywhere in a request body (names, paths, SQL, the classification's keys and values)
is refused with 422 when it holds a control character other than tab and line breaks: NUL cannot
be stored by PostgreSQL nor opened as a path, and no honest request needs one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from ..privacy.accountant import DEFAULT_DELTA
from ..room.service import MAX_ID, has_control


def _control_free(value: Any) -> Any:
    """``value`` unchanged if no text inside it holds a control character; else ValueError."""
    if isinstance(value, str) and has_control(value):
        raise ValueError("text must not hold control characters (NUL included) other than tabs and line breaks")
    if isinstance(value, dict):
        for key, item in value.items():
            _control_free(key)
            _control_free(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _control_free(item)
    return value


class Body(BaseModel):
    """A request body: no control characters in any of its texts."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_controls(cls, value: Any) -> Any:
        return _control_free(value)


class MemberIn(Body):
    name: str = Field(description="Unique member name.")
    data_roots: list[str] = Field(
        default_factory=list,
        description="Server folders this member's data sources may lie in; also cluster path prefixes "
        "(hdfs://, s3a://, file:// URIs) and Spark tables (spark-table:db.name or spark-table:db.*).",
    )


class MemberAbilities(Body):
    name: str
    can_run: bool = False
    can_receive: bool = False


class CollaborationIn(Body):
    name: str
    members: list[MemberAbilities] = Field(
        description="Members and their abilities; the creator is always a member (list it too to give it abilities)."
    )
    payer: str = Field(description="The member charged for synthetic-data generation.")
    retention_days: int = Field(7, description="Days a job's artifacts are kept (1 to 30).")
    model_policy: dict[str, Any] | None = Field(
        None,
        description="Models: allow_export, max_artifact_mib, "
        "model_providers, inference_runners, inference_receivers, "
        "inference_payer (docs/cleanroom.md, 'Models').",
    )
    engine: Literal["duckdb", "spark"] | None = Field(
        None, description="Where its templates run (default: the room's engine setting; docs/engines.md)."
    )


class TableIn(Body):
    name: str
    source_kind: Literal["csv", "parquet", "duckdb", "spark_parquet", "spark_csv", "spark_table"]
    source_path: str = Field(
        "",
        description="Path on the server, inside one of your data folders; or, for spark_parquet and spark_csv, "
        "a cluster URI inside one of your granted cluster paths (empty for spark_table).",
    )
    source_table: str | None = Field(
        None, description="Table inside a DuckDB database; or, for spark_table, the granted Spark table (db.table)."
    )
    allowed_columns: list[str]
    epsilon_budget: float = Field(description="Total epsilon this table may spend across all jobs.")
    unit_column: str | None = Field(None, description="Privacy-unit column (e.g. user id); none: each row is a unit.")
    unit_cap: int = Field(1, description="At most this many output rows per privacy unit.")
    allowed_receivers: list[str] | None = Field(
        None, description="Members who may receive results; null: any receiver."
    )
    share_full_report: bool = Field(
        False, description="Receivers may read the full evaluation report (non-DP aggregates)."
    )
    delta_budget: float = Field(1e-6, description="Total delta this table may spend across all jobs.")
    share_scores: bool = Field(
        False,
        description="Every member sees jobs' non-DP scores and gate outcome; false: only the jobs' result receivers.",
    )
    max_gated_runs: int = Field(5, description="Charged jobs per template version that reads this table.")
    model_evaluations: int = Field(
        0, description="Models per job scored on this table's real holdout rows (non-DP, rounded metrics); 0: none."
    )
    column_types: dict[str, str] | None = Field(
        None,
        description="CSV only: a type per column (BIGINT, DOUBLE, VARCHAR, BOOLEAN, DATE, TIMESTAMP) instead of "
        "the type DuckDB's sniffer guesses from the rows.",
    )


class AssociationIn(Body):
    table_id: int = Field(ge=1, le=MAX_ID)
    name: str = Field(description="The name templates use for the table.")


class TemplateIn(Body):
    name: str
    sql: str
    epsilon: float
    classification: dict[str, Any] = Field(
        description="Column classification (Synthroom's or the reference product's spelling)."
    )
    max_mia_score: float | None = None
    delta: float = DEFAULT_DELTA
    rows: int | None = None


class ApprovalIn(Body):
    hash: str = Field(description="The content hash you reviewed.")


class AcceptIn(Body):
    pay: bool = Field(False, description="The paying member also accepts paying for synthetic-data generation.")


class HeadIn(Body):
    """An audit head the server signed (GET /collaborations/{id}/audit/head), kept by a member."""

    scope: str
    seq: int = Field(ge=0, le=MAX_ID)
    hash: str = Field(max_length=64)
    signature: str = Field(max_length=64)


class ModelIn(Body):
    trainer: Literal["auto", "logistic", "linear", "gbm", "script"] = "auto"
    script: str | None = Field(
        None, description="A training script's text (trainer 'script'; server must allow scripts)."
    )
    params: dict[str, int | float] | None = Field(
        None,
        description="Hyperparameters of a built-in trainer (gbm: max_iter, "
        "learning_rate, max_leaf_nodes, l2_regularization; logistic: C; linear: alpha).",
    )


# -- responses (the domain layer's views; listing them documents the API and keeps any field
#    a view might gain by accident out of the answers) ------------------------------------------
class MemberCreated(BaseModel):
    id: int
    name: str
    api_key: str = Field(description="Shown once; only its hash is stored.")
    data_roots: list[str]


class MemberOut(BaseModel):
    id: int
    name: str


class MembershipOut(BaseModel):
    name: str
    can_run: bool
    can_receive: bool
    status: Literal["invited", "active", "declined"]


class TableRuleOut(BaseModel):
    """A table's analysis rule and budget, as every collaborator sees it."""

    allowed_columns: list[str]
    unit_column: str | None
    unit_cap: int
    epsilon_budget: float
    epsilon_spent: float
    epsilon_remaining: float
    delta_budget: float
    delta_spent: float
    delta_remaining: float
    allowed_receivers: list[str] | None
    share_full_report: bool
    share_scores: bool
    max_gated_runs: int
    model_evaluations: int


class TableOut(TableRuleOut):
    id: int
    name: str
    owner_id: int
    source_kind: str | None = Field(None, description="Owner only.")
    source_path: str | None = Field(None, description="Owner only.")
    source_table: str | None = Field(None, description="Owner only.")
    columns: list[str] | None = Field(None, description="Owner only: every column of the source.")
    snapshot_sha256: str | None = Field(None, description="Owner only: SHA-256 of the room's copy jobs read.")


class AssociatedTableOut(TableRuleOut):
    name: str
    table_id: int
    owner: str | None


class CollaborationOut(BaseModel):
    id: int
    name: str
    payer: str | None
    payer_accepted: bool = Field(description="The paying member accepted paying for synthetic-data generation.")
    retention_days: int
    model_policy: dict[str, Any]
    inference_payer_accepted: bool
    engine: str | None = Field(None, description="Where its templates run; null: the room's engine setting.")
    members: list[MembershipOut]
    tables: list[AssociatedTableOut]


class AssociationOut(BaseModel):
    collaboration_id: int
    name: str
    table_id: int


class TemplateOut(BaseModel):
    id: int
    collaboration_id: int
    name: str
    version: int
    sql: str
    params: dict[str, Any]
    tables: dict[str, int]
    hash: str
    approvers: list[str]
    approved_by: list[str]
    approved: bool


class JobOut(BaseModel):
    id: int
    collaboration_id: int
    template_id: int
    hash: str
    state: str = Field(
        description="queued, running, succeeded or failed; 'finished' for a job that reached the "
        "gate, to a member who may not see its scores."
    )
    category: str | None = Field(None, description="A failed job's fixed failure category.")
    reason: str | None = Field(None, description="The category's fixed text.")
    epsilon: float
    delta: float
    unit_cap: int
    synth_epsilon: float | None
    released: bool | None
    reproducible: bool
    budget_released: bool
    summary: dict[str, Any] | None = Field(
        None,
        description="Non-DP scores and gates (rounded): the result receivers, "
        "or every member when every table shares scores.",
    )
    rows_synthetic: int | None
    compute_seconds: int | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    expires_at: str | None
    artifacts_deleted_at: str | None


class ModelOut(BaseModel):
    id: int
    job_id: int
    trainer: str
    task: str
    target: str
    state: str
    reason: str | None
    params: dict[str, Any]
    chosen: str | None
    chosen_params: dict[str, Any] | None
    candidates: dict[str, float] | None
    metrics: dict[str, Any]
    real_metrics: dict[str, Any] | None = Field(
        description="Scored on the real holdout rows when every owner allows it (rounded to 2 decimals; not DP)."
    )
    created_at: str


class AuditOut(BaseModel):
    entries: list[dict[str, Any]]
    verified: bool
    problem: str | None
    head: str


class DeclinedOut(BaseModel):
    collaboration_id: int
    member: str
    status: Literal["declined"]


class HeadOut(BaseModel):
    scope: str
    seq: int
    hash: str
    signature: str = Field(description="The server's HMAC-SHA256 over scope, seq and hash.")


class HeadProofOut(BaseModel):
    extends: bool = Field(description="The current chain verifies and still holds the exported head where it was.")
    problem: str | None
    head: HeadOut


class InferenceIn(Body):
    table_id: int = Field(ge=1, le=MAX_ID, description="Your own configured table, associated with the collaboration.")


class InferenceOut(BaseModel):
    id: int
    collaboration_id: int
    model_id: int
    table_id: int
    state: str
    category: str | None
    reason: str | None
    rows_scored: int | None
    compute_seconds: int | None
    created_at: str | None
    finished_at: str | None
    expires_at: str | None
    artifacts_deleted_at: str | None


class MeteringOut(BaseModel):
    entries: list[dict[str, Any]]
    totals: dict[str, dict[str, int | float]]
    inference: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Inference jobs, metered to the inference payer: whole compute seconds and rows scored.",
    )
