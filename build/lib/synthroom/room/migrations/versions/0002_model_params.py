"""trained models keep their hyperparameters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 13:52:48.916019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing models asked for no hyperparameters and recorded no details: "{}" (the models' default)
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("params", sa.Text(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("details", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("details")
        batch_op.drop_column("params")
