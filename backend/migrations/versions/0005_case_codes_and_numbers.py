"""case codes (aliases), the number per case, the filing's hash, one caller per national ID

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-23 11:30:00

Existing data: every case gets its caller's stored number (the best record there is of where the
case was filed from); callers duplicated by concurrent first calls are merged into the oldest row,
their cases moved to it, before the national ID hash becomes unique.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name=op.f("fk_case_code_case_id_case_file")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_code")),
        sa.UniqueConstraint("code", name=op.f("uq_case_code_code")),
    )
    with op.batch_alter_table("case_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_code_case_id"), ["case_id"], unique=False)

    with op.batch_alter_table("case_file", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("phone_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("phone_enc", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_case_file_phone_hash"), ["phone_hash"], unique=False)

    # Each case keeps the number its caller row holds now; later calls never change it again.
    op.execute(
        """
        UPDATE case_file SET
            phone_hash = (SELECT caller.phone_hash FROM caller WHERE caller.id = case_file.caller_id),
            phone_enc = (SELECT caller.phone_enc FROM caller WHERE caller.id = case_file.caller_id)
        WHERE caller_id IS NOT NULL
        """
    )
    # One caller per national ID: cases of duplicates move to the oldest row, duplicates go.
    keeper = (
        "(SELECT MIN(k.id) FROM caller k WHERE k.national_id_hash = "
        "(SELECT d.national_id_hash FROM caller d WHERE d.id = case_file.caller_id))"
    )
    op.execute(
        f"""
        UPDATE case_file SET caller_id = {keeper}
        WHERE caller_id IN (
            SELECT c.id FROM caller c WHERE c.national_id_hash IS NOT NULL AND c.id > (
                SELECT MIN(k.id) FROM caller k WHERE k.national_id_hash = c.national_id_hash))
        """
    )
    op.execute(
        """
        DELETE FROM caller WHERE national_id_hash IS NOT NULL AND id > (
            SELECT MIN(k.id) FROM caller k WHERE k.national_id_hash = caller.national_id_hash)
        """
    )
    with op.batch_alter_table("caller", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caller_national_id_hash"))
        batch_op.create_index(batch_op.f("ix_caller_national_id_hash"), ["national_id_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("caller", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caller_national_id_hash"))
        batch_op.create_index(batch_op.f("ix_caller_national_id_hash"), ["national_id_hash"], unique=False)
    with op.batch_alter_table("case_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_file_phone_hash"))
        batch_op.drop_column("phone_enc")
        batch_op.drop_column("phone_hash")
        batch_op.drop_column("request_hash")
    with op.batch_alter_table("case_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_code_case_id"))
    op.drop_table("case_code")
