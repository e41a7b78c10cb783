"""公示: publication of decisions (one record per decision and its versions), the
registries (随机抽查事项清单, 检查对象名录库) and 双随机 draws.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "publications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("due_estimated", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("doc_no", sa.String(length=200), nullable=False),
        sa.Column("draft", sa.JSON(), nullable=True),
        sa.Column("confirmed_by", sa.String(length=36), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exempt_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("first_published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_published_on", sa.Date(), nullable=True),
        sa.Column("revoked_on", sa.Date(), nullable=True),
        sa.Column("withdraw_due_on", sa.Date(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_on", sa.Date(), nullable=True),
        sa.Column("withdraw_reason", sa.Text(), nullable=True),
        sa.Column("public_text", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'published', 'withdrawn', 'exempt')",
            name=op.f("ck_publications_status_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_publications_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_publications_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by"], ["users.id"], name=op.f("fk_publications_confirmed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_publications_decision_id_decisions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publications")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_publications_decision_id")),
    )
    op.create_index(op.f("ix_publications_agency_id"), "publications", ["agency_id"])
    op.create_index(op.f("ix_publications_case_id"), "publications", ["case_id"])
    op.create_index(op.f("ix_publications_due_on"), "publications", ["due_on"])
    op.create_index(op.f("ix_publications_status"), "publications", ["status"])
    op.create_table(
        "publication_versions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("publication_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("published_by", sa.String(length=36), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publications.id"],
            name=op.f("fk_publication_versions_publication_id_publications"),
        ),
        sa.ForeignKeyConstraint(
            ["published_by"], ["users.id"], name=op.f("fk_publication_versions_published_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publication_versions")),
        sa.UniqueConstraint(
            "publication_id", "version", name=op.f("uq_publication_versions_publication_id")
        ),
    )
    op.create_index(
        op.f("ix_publication_versions_publication_id"), "publication_versions", ["publication_id"]
    )
    op.create_table(
        "inspection_items",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_inspection_items_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_items")),
        sa.UniqueConstraint("agency_id", "code", name=op.f("uq_inspection_items_agency_id")),
    )
    op.create_index(op.f("ix_inspection_items_agency_id"), "inspection_items", ["agency_id"])
    op.create_table(
        "inspection_targets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sector", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_inspection_targets_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_targets")),
        sa.UniqueConstraint("agency_id", "code", name=op.f("uq_inspection_targets_agency_id")),
    )
    op.create_index(op.f("ix_inspection_targets_agency_id"), "inspection_targets", ["agency_id"])
    op.create_table(
        "draws",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=36), nullable=False),
        sa.Column("ledger_case_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("plan_hash", sa.String(length=71), nullable=False),
        sa.Column("commit_event_id", sa.String(length=36), nullable=False),
        sa.Column("commit_log_index", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("checkpoint_note", sa.Text(), nullable=True),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("case_ids", sa.JSON(), nullable=False),
        sa.Column("committed_by", sa.String(length=36), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_draws_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["committed_by"], ["users.id"], name=op.f("fk_draws_committed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["ledger_case_id"], ["cases.id"], name=op.f("fk_draws_ledger_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draws")),
    )
    op.create_index(op.f("ix_draws_agency_id"), "draws", ["agency_id"])


def downgrade() -> None:
    op.drop_table("draws")
    op.drop_table("inspection_targets")
    op.drop_table("inspection_items")
    op.drop_table("publication_versions")
    op.drop_table("publications")
