"""The unit of work: one framed transaction per use case, rolled back unless committed.

Use it as a context manager; call :meth:`commit` explicitly when the use case is done::

    with components.unit_of_work() as uow:
        case = cases.create_case(uow, principal, draft)
        uow.commit()

Leaving the block without ``commit()`` — normally or by an exception — rolls back, then
runs the ``on_rollback`` callbacks (e.g. deleting a blob written before the row failed).
On SQLite the transaction holds the write lock from its first statement (``BEGIN
IMMEDIATE``, see ``server.db``); on PostgreSQL services lock rows they read-then-write
with ``SELECT … FOR UPDATE``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker


class UnitOfWork(Protocol):
    """What services need: a session inside one transaction, and explicit commit."""

    session: Session

    def commit(self) -> None:
        """Make every change of this unit durable."""

    def rollback(self) -> None:
        """Discard every change of this unit."""

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` if this unit ends without committing (cleanup of side effects)."""


class SqlUnitOfWork:
    """A :class:`UnitOfWork` over a SQLAlchemy session from ``session_factory``."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._cleanups: list[Callable[[], None]] = []
        self._committed = False

    def __enter__(self) -> SqlUnitOfWork:
        self.session = self._session_factory()
        self._cleanups = []
        self._committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                self.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        """Commit; afterwards the unit is finished (a later change needs a new unit)."""
        self.session.commit()
        self._committed = True
        self._cleanups.clear()

    def rollback(self) -> None:
        """Roll back, then run the registered cleanups (each at most once)."""
        self.session.rollback()
        cleanups, self._cleanups = self._cleanups, []
        for cleanup in reversed(cleanups):
            cleanup()

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Register ``callback`` to run if this unit rolls back."""
        self._cleanups.append(callback)
