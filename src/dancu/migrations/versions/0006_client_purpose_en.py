"""a client's purpose in English, beside the Vietnamese shown to citizens

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 12:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing clients keep their one purpose (now read as the Vietnamese); the English
    # pages show it until an English one is given.
    with op.batch_alter_table("identity_client") as batch:
        batch.add_column(
            sa.Column("purpose_en", sa.String(length=300), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_client") as batch:
        batch.drop_column("purpose_en")
