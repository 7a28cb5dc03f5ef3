"""person_merge: two records of one person merged (and undone); the duplicate pair's merge

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dancu.core.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "person_merge",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("survivor_id", _ID, nullable=False),
        sa.Column("merged_id", _ID, nullable=False),
        sa.Column("survivor_number", sa.String(length=12), nullable=False),
        sa.Column("merged_number", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("merged_by", sa.String(length=80), nullable=False),
        sa.Column("merged_at", dancu.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("undo_event_id", _ID, nullable=True),
        sa.Column("undone_by", sa.String(length=80), nullable=False),
        sa.Column("undone_at", dancu.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("undo_reason", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["civil_event.id"], name=op.f("fk_person_merge_event_id_civil_event")
        ),
        sa.ForeignKeyConstraint(
            ["merged_id"], ["person.id"], name=op.f("fk_person_merge_merged_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["survivor_id"], ["person.id"], name=op.f("fk_person_merge_survivor_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["undo_event_id"],
            ["civil_event.id"],
            name=op.f("fk_person_merge_undo_event_id_civil_event"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_merge")),
    )
    with op.batch_alter_table("person_merge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_person_merge_merged_id"), ["merged_id"])
        batch_op.create_index(batch_op.f("ix_person_merge_survivor_id"), ["survivor_id"])
        batch_op.create_index(
            "uq_person_merge_open",
            ["merged_id"],
            unique=True,
            sqlite_where=sa.text("status = 'merged'"),
            postgresql_where=sa.text("status = 'merged'"),
        )
    # Plain ADD COLUMNs on both databases (no constraint: SQLite keeps the table).
    op.add_column("reconcile_duplicate", sa.Column("merge_id", _ID, nullable=True))
    op.add_column(
        "reconcile_duplicate",
        sa.Column("survivor_personal_id", sa.String(length=12), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("reconcile_duplicate", schema=None) as batch_op:
        batch_op.drop_column("survivor_personal_id")
        batch_op.drop_column("merge_id")
    with op.batch_alter_table("person_merge", schema=None) as batch_op:
        batch_op.drop_index("uq_person_merge_open")
        batch_op.drop_index(batch_op.f("ix_person_merge_survivor_id"))
        batch_op.drop_index(batch_op.f("ix_person_merge_merged_id"))
    op.drop_table("person_merge")
