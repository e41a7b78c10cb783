"""A fake unit of work for service tests (the cosmicpython ``FakeUnitOfWork``, over real SQL).

A service test needs the schema and the use case, not the Flask app, the blob store or a
database file: :meth:`FakeUnits.in_memory` makes the schema in an in-memory SQLite
database (one connection shared by every unit, so each sees what earlier ones committed)
with the log head a migrated database starts with. A service that frames its own units
takes the :class:`FakeUnits` as its factory; a use case that takes a unit is handed one
(``units()``). Each :class:`FakeUnitOfWork` counts its ``commits`` and ``rollbacks``, so a
test asserts "committed once" or "rolled back on error" — and ``units.opened`` lists
every unit handed out, in order.

Adapter and end-to-end tests keep using real SQLite files and PostgreSQL (STYLE.md, 14).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from core.merkle import EMPTY_ROOT
from server.db import make_session_factory
from server.models import Base, LogHead, utcnow
from server.services.unit_of_work import SqlUnitOfWork


class FakeUnitOfWork(SqlUnitOfWork):
    """A unit of work that records how it ended: ``commits`` and ``rollbacks``."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        super().__init__(session_factory)
        self.commits = 0
        self.rollbacks = 0

    def commit(self) -> None:
        """Commit, and count it."""
        super().commit()
        self.commits += 1

    def rollback(self) -> None:
        """Count the rollback, then roll back (and run the cleanups)."""
        self.rollbacks += 1
        super().rollback()


class FakeUnits:
    """A unit-of-work factory over one in-memory database; ``opened`` keeps every unit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session_factory = make_session_factory(engine)
        self.opened: list[FakeUnitOfWork] = []

    @classmethod
    def in_memory(cls) -> FakeUnits:
        """A fresh in-memory database with CaseTrail's schema and an empty custody log."""
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        event.listen(engine, "connect", _foreign_keys_on)
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add(LogHead(id=1, size=0, root=EMPTY_ROOT, updated_at=utcnow()))
            session.commit()
        return cls(engine)

    def __call__(self) -> FakeUnitOfWork:
        unit = FakeUnitOfWork(self.session_factory)
        self.opened.append(unit)
        return unit

    @property
    def commits(self) -> int:
        """Commits over every unit handed out."""
        return sum(u.commits for u in self.opened)

    @property
    def rollbacks(self) -> int:
        """Rollbacks over every unit handed out."""
        return sum(u.rollbacks for u in self.opened)

    def close(self) -> None:
        """Drop the database."""
        self.engine.dispose()


def _foreign_keys_on(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
