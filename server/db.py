"""Database engine and migrations for SQLite (embedded default) and PostgreSQL (psycopg 3).

SQLite runs in WAL mode with foreign keys on and a busy timeout, and every transaction
starts with ``BEGIN IMMEDIATE``: writers are serialised by SQLite's own lock from the
first statement, so read-then-write sequences (the custody log head, device chain heads)
cannot interleave between processes — except a read-only unit (:data:`READ_ONLY`), which
reads a snapshot without the lock. On PostgreSQL the same sequences take row locks
(``SELECT … FOR UPDATE``).

SQLite's own wait for its write lock is a sleep-and-retry loop (1, 2, 5 … 100 ms): under
concurrent uploads a writer often sleeps long after the lock was freed, and latency grows
with the number of clients. So writers of one database file first pass a
:class:`WriterGate` — a thread lock inside the process and an ``flock`` on a sibling
``-writer`` file across processes, both of which wake the next writer the moment the
previous one commits — and only then issue ``BEGIN IMMEDIATE``, which then finds the lock
free. Read-only units never pass the gate.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL_SIZE = 10
SQLITE_POOL_OVERFLOW = 100
READ_ONLY = "casetrail_read_only"
"""Execution option of a read-only unit of work (``SqlUnitOfWork.reading()``): on SQLite
its transaction begins deferred, a snapshot that never takes (or waits for) the write lock."""
MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Make ``postgresql://`` and ``postgres://`` URLs use the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    """An engine configured for CaseTrail's transaction discipline on either database."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        parsed = make_url(url)
        if parsed.database and parsed.database != ":memory:":
            _private_database_file(Path(parsed.database))
        gate = (
            WriterGate(Path(parsed.database))
            if parsed.database and parsed.database != ":memory:"
            else None
        )
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                "factory": _GatedConnection,
            },
            # a request thread waiting for SQLite's write lock holds its connection: with
            # the default 5 + 10 a burst of uploads starting would queue even the health
            # probe for a connection (docs/serving.md)
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=SQLITE_POOL_OVERFLOW,
        )
        _configure_sqlite(engine, gate)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _private_database_file(path: Path) -> None:
    """Create the SQLite file owner-only (0600) before SQLite does, or make it so.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's mode, so all three
    are 0600 (docs/serving.md, "Files on disk").
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Never open (and so close) an existing database file here: closing any descriptor of
    # a file drops every POSIX lock this process holds on it, including SQLite's own in
    # another thread's connection — two writers at once, a corrupt database.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


class WriterGate:
    """Lets one writer of a SQLite database at a time through, waking the next at once.

    Inside the process a lock (acquired with SQLite's busy timeout, so a stuck writer ends
    in the same "database is locked" error as before); across processes an exclusive
    ``flock`` on ``<database>-writer``, taken by the thread holding the lock, opened once
    per process (a forked worker opens its own: a shared descriptor would not exclude).
    A writer that dies releases both (the thread lock with its connection's close, the
    ``flock`` with its process).
    """

    def __init__(self, database: Path) -> None:
        self._path = database.with_name(database.name + "-writer")
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def enter(self) -> None:
        """Wait (at most the busy timeout) until no other writer is inside."""
        if not self._lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise sqlite3.OperationalError("database is locked (writer gate)")
        try:
            fcntl.flock(self._descriptor(), fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise

    def leave(self) -> None:
        """Let the next writer in."""
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


class _GatedConnection(sqlite3.Connection):
    """A pysqlite connection that leaves its :class:`WriterGate` when its transaction ends."""

    gate: WriterGate | None = None
    inside = False

    def enter_gate(self) -> None:
        if self.gate is not None and not self.inside:
            self.gate.enter()
            self.inside = True

    def _leave_gate(self) -> None:
        if self.inside:
            self.inside = False
            assert self.gate is not None
            self.gate.leave()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._leave_gate()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._leave_gate()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._leave_gate()


def _configure_sqlite(engine: Engine, gate: WriterGate | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.gate = gate
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions would
        # otherwise defer the lock to the first write).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # a WAL snapshot: never the write lock
        else:
            gated = connection.connection.dbapi_connection
            gated.enter_gate()
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                gated.rollback()  # leaves the gate
                raise


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that never expire loaded objects on commit (views read them afterwards)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` without any ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of ``engine``'s database to ``revision`` (default: the newest)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or ``None`` before the first migration."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return None if row is None else str(row[0])
