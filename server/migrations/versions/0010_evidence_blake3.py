"""Evidence keeps the BLAKE3 of its original: ``evidence.blake3``.

Found with SHA-512 by the original's first re-read whose SHA-256 and size match the
record (the inspection job, or an export's stocktake for originals not inspected yet).
An export re-checks each original on the way out against it — a cryptographic digest
like SHA-256, five times faster here — instead of SHA-256. Rows from before this
revision get theirs at their next export's stocktake (``NULL`` until then).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("evidence", sa.Column("blake3", sa.String(length=71), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("blake3")
