"""Ingest state: tus upload progress (parts, tail, status) and evidence receipt/inspection.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="active")
        )
        batch_op.add_column(sa.Column("storage_key", sa.String(length=512), nullable=True))
        batch_op.add_column(
            sa.Column("parts_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("parts_size", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("tail_size", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("filename", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("created_by", sa.String(length=100), nullable=True))
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("inspection_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("inspection", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("inspection_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("inspection_lease_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_evidence_inspection_status"), ["inspection_status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_inspection_status"))
        for name in (
            "inspection_lease_until",
            "inspection_attempts",
            "inspection",
            "inspection_status",
            "receipt",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        for name in (
            "created_by",
            "filename",
            "tail_size",
            "parts_size",
            "parts_count",
            "storage_key",
            "status",
        ):
            batch_op.drop_column(name)
