"""Request bodies of the REST API (pydantic); responses are the domain layer's JSON views."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class MemberIn(BaseModel):
    name: str = Field(description="Unique member name.")
    data_roots: list[str] = Field(default_factory=list, description="Server folders this member's data sources may lie in.")


class MemberAbilities(BaseModel):
    name: str
    can_run: bool = False
    can_receive: bool = False


class CollaborationIn(BaseModel):
    name: str
    members: list[MemberAbilities] = Field(description="Members and their abilities; the creator is always a member "
                                                       "(list it too to give it abilities).")
    payer: str = Field(description="The member charged for synthetic-data generation.")
    retention_days: int = Field(7, description="Days a job's artifacts are kept (1 to 30).")


class TableIn(BaseModel):
    name: str
    source_kind: Literal["csv", "parquet", "duckdb"]
    source_path: str = Field(description="Path on the server, inside one of your data folders.")
    source_table: str | None = Field(None, description="Table inside a DuckDB database.")
    allowed_columns: list[str]
    epsilon_budget: float = Field(description="Total epsilon this table may spend across all jobs.")
    unit_column: str | None = Field(None, description="Privacy-unit column (e.g. user id); none: each row is a unit.")
    unit_cap: int = Field(1, description="At most this many output rows per privacy unit.")
    allowed_receivers: list[str] | None = Field(None, description="Members who may receive results; null: any receiver.")
    share_full_report: bool = Field(False, description="Receivers may read the full evaluation report (non-DP aggregates).")


class AssociationIn(BaseModel):
    table_id: int
    name: str = Field(description="The name templates use for the table.")


class TemplateIn(BaseModel):
    name: str
    sql: str
    epsilon: float
    classification: dict[str, Any] = Field(description="Column classification (Synthroom's or the reference product's spelling).")
    max_mia_score: float | None = None
    delta: float = 1e-9
    rows: int | None = None


class ApprovalIn(BaseModel):
    hash: str = Field(description="The content hash you reviewed.")


class ModelIn(BaseModel):
    trainer: Literal["auto", "logistic", "linear", "gbm", "script"] = "auto"
    script: str | None = Field(None, description="A training script's text (trainer 'script'; server must allow scripts).")
