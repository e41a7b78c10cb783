"""``custody_events`` loses ``ix_custody_events_case_id``, an index nothing needs.

Its one column leads two other indexes of the table — the unique ``(case_id,
case_seq)`` and ``ix_custody_events_case_type`` (``case_id, event_type``) — which serve
every lookup by case. It only cost: every sequencer batch wrote one more B-tree page to
the write-ahead log (on SQLite, inside the database's only write lock).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("custody_events") as batch:
        batch.drop_index("ix_custody_events_case_id")


def downgrade() -> None:
    with op.batch_alter_table("custody_events") as batch:
        batch.create_index("ix_custody_events_case_id", ["case_id"], unique=False)
