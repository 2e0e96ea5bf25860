"""reports: case milestones (first screening, referral, answer; late returns; handling unit) filled from
the history, and the public page's monthly notes

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The history already holds every milestone: fill the new columns from it, in the database.
BACKFILL = [
    """UPDATE case_file SET first_screened_at =
         (SELECT min(e.at) FROM case_event e WHERE e.case_id = case_file.id AND e.action = 'screen')""",
    """UPDATE case_file SET first_referred_at =
         (SELECT min(e.at) FROM case_event e WHERE e.case_id = case_file.id AND e.action = 'refer')""",
    """UPDATE case_file SET first_answered_at =
         (SELECT min(e.at) FROM case_event e WHERE e.case_id = case_file.id AND e.action = 'answer')""",
    """UPDATE case_file SET late_returns =
         (SELECT count(*) FROM case_event e WHERE e.case_id = case_file.id AND e.action = 'return_late')""",
    """UPDATE case_file SET handling_unit_id =
         (SELECT r.to_unit_id FROM referral r WHERE r.case_id = case_file.id ORDER BY r.id DESC LIMIT 1)""",
]


def upgrade() -> None:
    with op.batch_alter_table("case_file") as batch:
        batch.add_column(sa.Column("first_screened_at", backend.models.base.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("first_referred_at", backend.models.base.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("first_answered_at", backend.models.base.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("late_returns", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("handling_unit_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_case_file_handling_unit_id"), ["handling_unit_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_case_file_handling_unit_id_unit"), "unit", ["handling_unit_id"], ["id"]
        )
    for statement in BACKFILL:
        op.execute(statement)
    op.create_table(
        "public_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", backend.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_note")),
        sa.UniqueConstraint("service", "month", name=op.f("uq_public_note_service")),
    )


def downgrade() -> None:
    op.drop_table("public_note")
    with op.batch_alter_table("case_file") as batch:
        batch.drop_constraint(batch.f("fk_case_file_handling_unit_id_unit"), type_="foreignkey")
        batch.drop_index(batch.f("ix_case_file_handling_unit_id"))
        batch.drop_column("handling_unit_id")
        batch.drop_column("late_returns")
        batch.drop_column("first_answered_at")
        batch.drop_column("first_referred_at")
        batch.drop_column("first_screened_at")
