"""reconcile_dialect: how an uploaded extract is written, kept on its job

The upload recognises the file once (its format, headers, encoding, delimiter and header
line); the run reads the kept result instead of recognising the file again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases; jobs sent before it have {} (their run sniffs).
    op.add_column(
        "reconcile_job",
        sa.Column("dialect", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )


def downgrade() -> None:
    with op.batch_alter_table("reconcile_job", schema=None) as batch_op:
        batch_op.drop_column("dialect")
