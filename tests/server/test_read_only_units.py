"""A read-only unit of work reads a snapshot and never makes a writer wait (SQLite)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from server.db import make_engine, make_session_factory
from server.models import LogHead
from server.services.unit_of_work import SqlUnitOfWork


def _write_log_head(path: Path) -> None:
    """Another process's writer, unwilling to wait more than 0.2 s for the lock."""
    conn = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE log_head SET size = size + 1")
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_a_read_only_unit_never_takes_the_write_lock(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "casetrail.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    try:
        with SqlUnitOfWork(factory).reading() as reader:
            before = reader.session.scalar(select(LogHead.size))
            _write_log_head(path)  # goes through at once
            assert reader.session.scalar(select(LogHead.size)) == before  # its snapshot
        with SqlUnitOfWork(factory) as writer:  # an ordinary unit holds the lock throughout
            writer.session.scalar(select(LogHead.size))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                _write_log_head(path)
    finally:
        engine.dispose()
