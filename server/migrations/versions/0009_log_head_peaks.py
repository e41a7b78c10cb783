"""The log head keeps the tree's right edge: ``log_head.peaks``.

An append needs the hashes of the complete subtrees left of the next leaf (the
"peaks": one per set bit of the size, at most 64). They used to be read from
``merkle_nodes`` by every transaction that followed another process's append — on a
server with several processes, nearly every one. Now they travel with the head the append
already reads and locks: ``peaks`` is their hashes concatenated, left to right. It is
derived data: an append recomputes the root from them and reads ``merkle_nodes`` instead
whenever that root is not the head's (a head from before this revision: ``NULL``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("log_head", sa.Column("peaks", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("log_head") as batch:
        batch.drop_column("peaks")
