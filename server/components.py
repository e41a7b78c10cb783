"""The parts ``create_app`` wires together, kept in ``app.extensions["casetrail"]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from server.errors import Unavailable
from server.services.unit_of_work import SqlUnitOfWork
from server.settings import Settings

EXTENSION_KEY = "casetrail"


@dataclass(frozen=True)
class Components:
    """Settings, database, blob store and signing key of one running app."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    store: Any  # storage.BlobStore
    signing_key: Ed25519PrivateKey | None

    def unit_of_work(self) -> SqlUnitOfWork:
        """A fresh unit of work (use as a context manager, commit explicitly)."""
        return SqlUnitOfWork(self.session_factory)

    def require_signing_key(self) -> Ed25519PrivateKey:
        """The log-signing key, or :class:`Unavailable` saying how to create it."""
        if self.signing_key is None:
            raise Unavailable(
                "服务器签名密钥不存在，请先运行 `casetrail serve --init` "
                f"(log-signing key missing at {self.settings.signing_key_file}; "
                "run `casetrail serve --init` once)"
            )
        return self.signing_key


def components() -> Components:
    """The components of the current Flask app (inside a request or app context)."""
    found: Components = current_app.extensions[EXTENSION_KEY]
    return found
