"""Migration 0007: the head role (负责人) on a database that already holds users and cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from server.db import make_engine, upgrade

USER = (
    "INSERT INTO users (id, agency_id, username, display_name, role, cert_no, active, created_at)"
    " VALUES (:id, 'a', :id, :id, :role, :cert, true, '2025-01-01')"
)


def test_0007_allows_the_head_role_and_keeps_every_row(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(engine, "0005")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO agencies VALUES ('a', 'A', '某局', '2025-01-01')"))
            conn.execute(text(USER), {"id": "insp", "role": "inspector", "cert": "A1"})
            conn.execute(
                text(
                    "INSERT INTO cases (id, agency_id, category, standard_id, standard_version,"
                    " case_no, title, parties, status, created_by, created_at) VALUES ('c', 'a',"
                    " 'penalty', 'penalty', '2026.1', '1', 't', '[]', 'open', 'insp', '2025-01-01')"
                )
            )
            with pytest.raises(IntegrityError), conn.begin_nested():
                conn.execute(text(USER), {"id": "early", "role": "head", "cert": None})
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text(USER), {"id": "head", "role": "head", "cert": None})
            assert conn.execute(text("SELECT count(*) FROM cases")).scalar() == 1
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
            with pytest.raises(IntegrityError), conn.begin_nested():
                conn.execute(text(USER), {"id": "boss", "role": "boss", "cert": None})
            roles = conn.execute(text("SELECT role FROM users ORDER BY id")).scalars().all()
        assert roles == ["head", "inspector"]
    finally:
        engine.dispose()
