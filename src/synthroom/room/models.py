"""The clean room's persisted objects (SQLAlchemy 2 ORM).

Lists and mappings (allowed columns, template parameters, audit details) are JSON text: they
are read and written whole, never queried into.
"""

from __future__ import annotations

import json

from datetime import datetime, timezone

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Timezone-naive UTC (what SQLite stores and returns)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Member(Base):
    """A party: a name, a hashed API key, and the folders its data sources may lie in."""

    __tablename__ = "members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    data_roots: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of grants (room/grants.py)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Collaboration(Base):
    """Members with abilities, who pays for generation (and whether it accepted to), how long job
    artifacts are kept."""

    __tablename__ = "collaborations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    creator_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    payer_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    payer_accepted: Mapped[bool] = mapped_column(Boolean, default=False)  # the payer accepted paying for generation
    retention_days: Mapped[int] = mapped_column(Integer)
    model_policy: Mapped[str] = mapped_column(Text, default="{}")  # JSON: room.mlpolicy.ModelPolicy
    inference_payer_accepted: Mapped[bool] = mapped_column(Boolean, default=False)  # when not the payer
    engine: Mapped[str | None] = mapped_column(String(20), nullable=True)  # None: the room's setting
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


MEMBERSHIP_STATES = ("invited", "active", "declined")


class Membership(Base):
    """A member's place in a collaboration: invited until it accepts (then active) or declines.
    Only an active member acts in the collaboration; the creator is active from the start."""

    __tablename__ = "memberships"
    collaboration_id: Mapped[int] = mapped_column(ForeignKey("collaborations.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    can_run: Mapped[bool] = mapped_column(Boolean, default=False)
    can_receive: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="invited")  # one of MEMBERSHIP_STATES


class ConfiguredTable(Base):
    """A member's data source, the columns templates may use, and its analysis rule."""

    __tablename__ = "configured_tables"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    name: Mapped[str] = mapped_column(String(200))
    source_kind: Mapped[str] = mapped_column(
        String(20)
    )  # csv | parquet | duckdb | spark_parquet | spark_csv | spark_table
    source_path: Mapped[str] = mapped_column(Text)  # a local path, a cluster URI, or "" (spark_table)
    source_table: Mapped[str | None] = mapped_column(String(200), nullable=True)
    columns: Mapped[str] = mapped_column(Text)  # JSON list of every source column
    allowed_columns: Mapped[str] = mapped_column(Text)  # JSON list
    allowed_receivers: Mapped[str | None] = mapped_column(
        Text, nullable=True
    )  # JSON list of names; null = any receiver
    share_full_report: Mapped[bool] = mapped_column(Boolean, default=False)
    unit_column: Mapped[str | None] = mapped_column(String(200), nullable=True)
    unit_cap: Mapped[int] = mapped_column(Integer, default=1)
    epsilon_budget: Mapped[float] = mapped_column(Float)
    epsilon_spent: Mapped[float] = mapped_column(Float, default=0.0)
    delta_budget: Mapped[float] = mapped_column(Float, default=1e-6)  # total delta across all jobs
    delta_spent: Mapped[float] = mapped_column(Float, default=0.0)
    share_scores: Mapped[bool] = mapped_column(Boolean, default=False)  # non-DP scores to every member too
    max_gated_runs: Mapped[int] = mapped_column(Integer, default=5)  # charged jobs per template version
    model_evaluations: Mapped[int] = mapped_column(Integer, default=0)  # models per job scored on real rows (0: none)
    snapshot_path: Mapped[str | None] = mapped_column(Text, nullable=True)  # room's Parquet copy of the allowed columns
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # jobs read only this exact copy
    column_types: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: the owner's declared CSV types
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Association(Base):
    """A configured table in a collaboration, under the name templates use."""

    __tablename__ = "associations"
    __table_args__ = (UniqueConstraint("collaboration_id", "name"), UniqueConstraint("collaboration_id", "table_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collaboration_id: Mapped[int] = mapped_column(ForeignKey("collaborations.id"))
    table_id: Mapped[int] = mapped_column(ForeignKey("configured_tables.id"))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Template(Base):
    """An analysis template; immutable: an edit is a new version with a new hash."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("collaboration_id", "name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collaboration_id: Mapped[int] = mapped_column(ForeignKey("collaborations.id"))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    sql: Mapped[str] = mapped_column(Text)
    params: Mapped[str] = mapped_column(Text)  # JSON: epsilon, delta, max_mia_score, rows, classification
    tables: Mapped[str] = mapped_column(Text)  # JSON {association name: configured table id}
    content_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Approval(Base):
    __tablename__ = "approvals"
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """A synthetic-data job: queued -> running -> succeeded | failed (with the reason)."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collaboration_id: Mapped[int] = mapped_column(ForeignKey("collaborations.id"))
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"))
    content_hash: Mapped[str] = mapped_column(String(64))
    started_by: Mapped[int] = mapped_column(ForeignKey("members.id"))
    receivers: Mapped[str] = mapped_column(Text)  # JSON list of member ids
    state: Mapped[str] = mapped_column(String(20), default="queued")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # legacy free text; views show the category's text
    category: Mapped[str | None] = mapped_column(String(30), nullable=True)  # a key of errors.FAILURE_CATEGORIES
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)  # may quote data or server details: operator only
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # only an operator's reproducible run has one
    reproducible: Mapped[bool] = mapped_column(Boolean, default=False)  # explicit seed: never released
    epsilon: Mapped[float] = mapped_column(Float)  # charged to every table read
    delta: Mapped[float] = mapped_column(Float)
    synth_epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)  # given to the synthesizer
    unit_cap: Mapped[int] = mapped_column(Integer, default=1)
    budget_released: Mapped[bool] = mapped_column(Boolean, default=False)
    released: Mapped[bool] = mapped_column(Boolean, default=False)  # synthetic data passed the gate
    share_full_report: Mapped[bool] = mapped_column(Boolean, default=False)
    share_scores: Mapped[bool] = mapped_column(Boolean, default=False)  # every member sees the non-DP summary
    model_evaluations: Mapped[int] = mapped_column(Integer, default=0)  # the smallest of its tables' rules
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: non-DP scores, gates (rounded)
    rows_real: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows_synthetic: Mapped[int | None] = mapped_column(Integer, nullable=True)
    compute_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    artifacts_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    artifacts_deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the worker that claimed it
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)  # its worker's heartbeat extends this


class LedgerEntry(Base):
    """One change of a table's spent epsilon and delta: a reservation (+) or its release (-)."""

    __tablename__ = "ledger"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("configured_tables.id"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    kind: Mapped[str] = mapped_column(String(20))  # reserve | release
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeterEntry(Base):
    """Compute time and rows of one job, charged to the collaboration's paying member."""

    __tablename__ = "metering"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collaboration_id: Mapped[int] = mapped_column(ForeignKey("collaborations.id"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    payer_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    compute_seconds: Mapped[float] = mapped_column(Float)
    rows_real: Mapped[int] = mapped_column(Integer)
    rows_synthetic: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainedModel(Base):
    """A model trained on a succeeded job's synthetic rows, with its file and metrics."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    collaboration_id: Mapped[int] = mapped_column(ForeignKey("collaborations.id"))
    created_by: Mapped[int] = mapped_column(ForeignKey("members.id"))
    trainer: Mapped[str] = mapped_column(String(100))  # built-in estimator name, or "script"
    task: Mapped[str] = mapped_column(String(20))  # classification | regression
    target: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))  # succeeded | failed
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    metrics: Mapped[str] = mapped_column(Text, default="{}")  # on the synthetic validation split
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON: the hyperparameters asked for
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON: the trainer auto chose, its scores
    scored_on_real: Mapped[bool] = mapped_column(Boolean, default=False)  # took one of the job's real scorings
    real_metrics: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON, rounded: on the real holdout
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)  # as for jobs
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)


class InferenceJob(Base):
    """A trained model scoring the rows of its runner's own configured table; the predictions go
    to the collaboration's inference receivers. queued -> running -> succeeded | failed."""

    __tablename__ = "inference_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collaboration_id: Mapped[int] = mapped_column(ForeignKey("collaborations.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    table_id: Mapped[int] = mapped_column(ForeignKey("configured_tables.id"))
    started_by: Mapped[int] = mapped_column(ForeignKey("members.id"))
    receivers: Mapped[str] = mapped_column(Text)  # JSON list of member ids
    payer_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    state: Mapped[str] = mapped_column(String(20), default="queued")
    category: Mapped[str | None] = mapped_column(String(30), nullable=True)  # a key of errors.FAILURE_CATEGORIES
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)  # operator only
    rows_scored: Mapped[int | None] = mapped_column(Integer, nullable=True)
    compute_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    artifacts_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    artifacts_deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)

    def shows_row_count_to(self, viewer: int | None) -> bool:
        """Whether member ``viewer`` may see ``rows_scored``, the exact size of the runner's table:
        the runner owns the table and the receivers get one prediction per row; no other member
        learns it (``None``: the operator or a worker)."""
        return viewer is None or viewer == self.started_by or viewer in json.loads(self.receivers)


class AuditHead(Base):
    """The last entry of each audit chain: the row appenders lock (see :func:`.audit.append`)."""

    __tablename__ = "audit_heads"
    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    """Append-only, hash-chained: ``entry_hash`` covers the fields and the previous entry's hash;
    ``mac`` is the server's HMAC of ``entry_hash`` under the audit key (kept outside the database).

    One chain per collaboration (``scope`` = "collaboration:<id>") and one for actions outside
    any collaboration (``scope`` = "room")."""

    __tablename__ = "audit"
    __table_args__ = (UniqueConstraint("scope", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(100))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[str] = mapped_column(String(40))  # ISO time, part of the hash
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
