"""Search by name and birth date: a btree on (birth_date, name_key, person_id), so the date
narrows to its few dozen people and the index already yields them in the search's order
(ORDER BY name_key, birth_date, person_id) instead of the planner walking the name order.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_person_current_birth_name",
        "person_current",
        ["birth_date", "name_key", "person_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_person_current_birth_name", table_name="person_current")
