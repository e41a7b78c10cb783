"""Reachability of the parts the server depends on."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import Engine


@dataclass(frozen=True)
class PartHealth:
    """One part: reachable or not, and a short reason."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class HealthReport:
    """The health of every part; ``ok`` only when all are."""

    version: str
    database: PartHealth
    storage: PartHealth

    @property
    def ok(self) -> bool:
        return self.database.ok and self.storage.ok

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "degraded",
            "version": self.version,
            "database": vars(self.database),
            "storage": vars(self.storage),
        }


def server_version() -> str:
    """The installed CaseTrail version."""
    try:
        return version("casetrail")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0+unknown"


def check_health(engine: Engine, store: Any) -> HealthReport:
    """Ping the database (``SELECT 1``) and the blob store (``store.ping()``).

    The ping runs on the driver's connection, outside a SQLAlchemy transaction: on
    SQLite every transaction begins ``IMMEDIATE`` and would queue the probe behind every
    writer (an upload's commit and fsync), which is not what "is it reachable" asks.
    """
    try:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
        finally:
            connection.close()
        database = PartHealth(True, engine.dialect.name)
    except Exception as exc:  # any driver error means "unreachable"
        database = PartHealth(False, f"数据库不可达 (database unreachable): {type(exc).__name__}")
    try:
        store.ping()
        storage = PartHealth(True, type(store).__name__)
    except Exception as exc:  # any storage error means "unreachable"
        storage = PartHealth(
            False, f"存储不可达 (storage unreachable): {type(exc).__name__}: {exc}"
        )
    return HealthReport(server_version(), database, storage)
