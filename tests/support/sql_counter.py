"""Count database transactions and statements through SQLAlchemy engine events.

``SqlCounter(engine)`` listens until :meth:`close`. Per thread it counts transactions
(``begin`` events), commits, rollbacks and statements, and how many statements ran while
the thread's transaction held the custody log's lock — from the statement that reads
``log_head`` (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the write lock was taken
at ``BEGIN IMMEDIATE`` and is held just as long) to the end of that transaction. A
read-only unit (``server.db.READ_ONLY``) holds no lock, whatever it reads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event

from server.db import READ_ONLY


@dataclass
class Counts:
    """What one thread (or all of them, summed) ran."""

    transactions: int = 0
    commits: int = 0
    rollbacks: int = 0
    statements: int = 0
    under_log_lock: int = 0
    log_transactions: int = 0
    statements_seen: list[str] = field(default_factory=list)
    under_log_lock_seen: list[str] = field(default_factory=list)


class SqlCounter:
    """Counts per thread; :meth:`reset` before a request, :meth:`mine` after it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._by_thread: dict[int, Counts] = {}
        self._in_log = threading.local()
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        event.listen(engine, "before_cursor_execute", self._statement)

    def close(self) -> None:
        """Stop listening."""
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)
        event.remove(self.engine, "before_cursor_execute", self._statement)

    def _counts(self) -> Counts:
        ident = threading.get_ident()
        with self._lock:
            return self._by_thread.setdefault(ident, Counts())

    def _begin(self, conn: Any) -> None:
        self._counts().transactions += 1
        self._in_log.value = False
        # a read-only unit reads a snapshot: it holds no lock whatever it reads
        self._in_log.read_only = bool(conn.get_execution_options().get(READ_ONLY))

    def _commit(self, conn: Any) -> None:
        self._counts().commits += 1
        self._in_log.value = False

    def _rollback(self, conn: Any) -> None:
        self._counts().rollbacks += 1
        self._in_log.value = False

    def _statement(self, conn: Any, cursor: Any, sql: str, *rest: Any) -> None:
        counts = self._counts()
        counts.statements += 1
        counts.statements_seen.append(sql.split("\n", 1)[0][:120])
        read_only = getattr(self._in_log, "read_only", False)
        if not read_only and not getattr(self._in_log, "value", False) and "FROM log_head" in sql:
            self._in_log.value = True
            counts.log_transactions += 1
        if getattr(self._in_log, "value", False):
            counts.under_log_lock += 1
            counts.under_log_lock_seen.append(sql.split("\n", 1)[0][:120])

    def reset(self) -> None:
        """Forget everything counted so far."""
        with self._lock:
            self._by_thread.clear()

    def mine(self) -> Counts:
        """This thread's counts."""
        return self._counts()

    def total(self) -> Counts:
        """Every thread's counts, summed."""
        with self._lock:
            out = Counts()
            for c in self._by_thread.values():
                out.transactions += c.transactions
                out.commits += c.commits
                out.rollbacks += c.rollbacks
                out.statements += c.statements
                out.under_log_lock += c.under_log_lock
                out.log_transactions += c.log_transactions
            return out
