"""collaboration engine

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 16:00:15.498906
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite rebuilding collaborations in a batch would break the keys that point at it).
    # Existing rows: NULL, the room's engine setting (as before: DuckDB unless the operator set spark).
    op.add_column("collaborations", sa.Column("engine", sa.String(length=20), nullable=True))


def downgrade() -> None:
    op.drop_column("collaborations", "engine")
