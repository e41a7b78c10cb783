"""The unit of work: one framed transaction per use case, rolled back unless committed.

Use it as a context manager; call :meth:`commit` explicitly when the use case is done::

    with components.unit_of_work() as uow:
        case = cases.create_case(uow, principal, draft)
        uow.commit()

Leaving the block without ``commit()`` — normally or by an exception — rolls back, then
runs the ``on_rollback`` callbacks (e.g. deleting a blob written before the row failed).
A callback that fails is logged and the others still run; it never replaces the error
that made the unit roll back (a blob left behind is found later by the reconciler).
On SQLite the transaction holds the write lock from its first statement (``BEGIN
IMMEDIATE``, see ``server.db``) — unless the unit is read-only (:meth:`SqlUnitOfWork.reading`:
a snapshot that never takes the lock, so it never makes a writer wait); on PostgreSQL
services lock rows they read-then-write with ``SELECT … FOR UPDATE``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from server.db import READ_ONLY

log = logging.getLogger(__name__)


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
        self._read_only = False

    def reading(self) -> SqlUnitOfWork:
        """This unit as a read-only snapshot (use before entering it): it must not write."""
        self._read_only = True
        return self

    def __enter__(self) -> SqlUnitOfWork:
        self.session = self._session_factory()
        if self._read_only:
            self.session.connection(execution_options={READ_ONLY: True})
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
        except Exception:
            if exc is None:
                raise
            # The use case's own error is the one to report; this one goes to the log.
            log.exception("rollback failed while handling %r", exc)
        finally:
            self.session.close()

    def commit(self) -> None:
        """Commit; afterwards the unit is finished (a later change needs a new unit)."""
        self.session.commit()
        self._committed = True
        self._cleanups.clear()

    def rollback(self) -> None:
        """Roll back, then run the registered cleanups (each at most once, every one).

        A cleanup that raises is logged and skipped; it does not stop the others.
        """
        cleanups, self._cleanups = self._cleanups, []
        try:
            self.session.rollback()
        finally:
            for cleanup in reversed(cleanups):
                try:
                    cleanup()
                except Exception:
                    log.exception("cleanup after rollback failed: %r", cleanup)

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Register ``callback`` to run if this unit rolls back."""
        self._cleanups.append(callback)
