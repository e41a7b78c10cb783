"""Completeness waivers (豁免): a reviewer accepts a missing item of a case, with a reason.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "completeness_waivers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("item", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("waived_by", sa.String(length=36), nullable=False),
        sa.Column("waived_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_completeness_waivers_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["waived_by"], ["users.id"], name=op.f("fk_completeness_waivers_waived_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_completeness_waivers")),
    )
    with op.batch_alter_table("completeness_waivers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_completeness_waivers_case_id"), ["case_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("completeness_waivers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_completeness_waivers_case_id"))
    op.drop_table("completeness_waivers")
