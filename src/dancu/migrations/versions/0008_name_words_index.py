"""Search by name on PostgreSQL: a GIN index on the folded name's words
(``string_to_array(name_key, ' ')``), so a common full name ("nguyen van hung", thousands of
people at national scale) is found through the index instead of by walking the name order.
See ``registry/search.py`` and decision 0007.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE INDEX ix_person_current_name_words ON person_current "
        "USING gin (string_to_array(name_key, ' '))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_person_current_name_words")
