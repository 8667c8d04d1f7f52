"""model policy, real-data scoring, inference jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 14:04:27.370888
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite rebuilding collaborations in a batch would break the keys that point at it).
    # Existing rows: the strict defaults (no export, no inference, no real-data scoring), as the models' own.
    op.create_table(
        "inference_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collaboration_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=False),
        sa.Column("receivers", sa.Text(), nullable=False),
        sa.Column("payer_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("rows_scored", sa.Integer(), nullable=True),
        sa.Column("compute_seconds", sa.Float(), nullable=True),
        sa.Column("artifacts_dir", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("artifacts_deleted_at", sa.DateTime(), nullable=True),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["collaboration_id"],
            ["collaborations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(
            ["started_by"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["configured_tables.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.add_column("collaborations", sa.Column("model_policy", sa.Text(), nullable=False, server_default="{}"))
    op.add_column(
        "collaborations", sa.Column("inference_payer_accepted", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("configured_tables", sa.Column("model_evaluations", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("model_evaluations", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("models", sa.Column("scored_on_real", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("models", sa.Column("real_metrics", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("models", "real_metrics")
    op.drop_column("models", "scored_on_real")
    op.drop_column("jobs", "model_evaluations")
    op.drop_column("configured_tables", "model_evaluations")
    op.drop_column("collaborations", "inference_payer_accepted")
    op.drop_column("collaborations", "model_policy")
    op.drop_table("inference_jobs")
