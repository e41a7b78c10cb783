"""The agency head role (负责人): ``users.role`` may be ``head``; decisions keep their conditions.

行政处罚法 Art. 57 ¶2: 情节复杂或者重大违法行为 are decided by the agency's 负责人
after collective discussion, so a head records those decisions. Only the CHECK
constraint on ``users.role`` changes; on SQLite it is edited in place (a batch copy
would drop ``users`` while other tables refer to it, which foreign keys refuse).
``decisions.conditions`` holds the conditions derived for the decision (听证范围, 集体讨论,
法制审核) with their reasons.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OLD = "role IN ('inspector', 'reviewer', 'archivist', 'admin')"
_NEW = "role IN ('inspector', 'reviewer', 'archivist', 'admin', 'head')"


def _replace(old: str, new: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _replace_sqlite(old, new)
        return
    op.drop_constraint(op.f("ck_users_role_allowed"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role_allowed"), "users", new)


def _replace_sqlite(old: str, new: str) -> None:
    # SQLite's documented way to change a CHECK constraint in place (sqlite.org/lang_altertable
    # "making other kinds of table schema changes"): edit the stored CREATE TABLE text and
    # bump schema_version. A batch copy would drop ``users`` under the tables referring to it.
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'"
    ).scalar_one()
    if old not in sql:
        raise RuntimeError(f"users.role CHECK is not {old!r}; refusing to edit the schema")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'users'",
        (sql.replace(old, new),),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _replace(_OLD, _NEW)
    op.add_column("decisions", sa.Column("conditions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("conditions")
    _replace(_NEW, _OLD)
