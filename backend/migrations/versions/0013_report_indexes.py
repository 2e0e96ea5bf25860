"""report indexes: a service's cases by creation time, returned referrals by closing time

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_case_file_service_created_at", "case_file", ["service", "created_at"], unique=False)
    op.create_index("ix_referral_state_closed_at", "referral", ["state", "closed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_referral_state_closed_at", table_name="referral")
    op.drop_index("ix_case_file_service_created_at", table_name="case_file")
