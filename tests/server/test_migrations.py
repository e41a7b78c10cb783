"""The Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from server.db import alembic_config, current_revision, make_engine, upgrade
from server.models import Base

HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_migrated_schema_matches_the_models_and_starts_an_empty_log(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == HEAD
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            size, root = conn.execute(text("SELECT size, root FROM log_head")).one()
        assert size == 0
        # RFC 6962: the empty tree's root is SHA-256("")
        assert (
            bytes(root).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        upgrade(engine)  # running it again is harmless
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()
