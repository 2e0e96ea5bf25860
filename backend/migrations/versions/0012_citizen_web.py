"""the citizens' web: SMS codes proving a number, one-time evidence links

Revision ID: 0012
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Moment = backend.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "phone_challenge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handle_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("expires_at", Moment(timezone=True), nullable=False),
        sa.Column("verified_at", Moment(timezone=True), nullable=True),
        sa.Column("used_at", Moment(timezone=True), nullable=True),
        sa.Column("created_at", Moment(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_phone_challenge_case_id_case_file")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_challenge")),
        sa.UniqueConstraint("handle_hash", name=op.f("uq_phone_challenge_handle_hash")),
    )
    with op.batch_alter_table("phone_challenge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phone_challenge_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_phone_challenge_phone_hash"), ["phone_hash"], unique=False)
    op.create_table(
        "evidence_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", Moment(timezone=True), nullable=False),
        sa.Column("used_at", Moment(timezone=True), nullable=True),
        sa.Column("created_at", Moment(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_evidence_token_case_id_case_file")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_evidence_token_token_hash")),
    )
    with op.batch_alter_table("evidence_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_token_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_table("evidence_token")
    op.drop_table("phone_challenge")
