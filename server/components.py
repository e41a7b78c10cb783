"""The one composition root: :func:`build_components` wires every part of the server.

``create_app`` and every ``casetrail`` command call :func:`build_components` (commands
through :func:`server.cli.common.open_components`); nothing else builds an engine, a
store, the ingest service, the inspection runner, the exporter or the checkpointer.
The parts live in ``app.extensions["casetrail"]``; :func:`components` finds them.

Background work — inspection left over by a crash, upload expiry (``thread`` mode) and
periodic log checkpoints — starts only when asked
(:meth:`Components.start_background`, done by ``casetrail serve`` in each server
process after the fork), never at import and never inside a request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.checkpoint import NoteSigner
from server.archive.export import CaseExporter
from server.db import make_engine, make_session_factory
from server.errors import Unavailable
from server.jobs.checkpointer import Checkpointer
from server.jobs.inspection import InspectionJobs
from server.jobs.periodic import Every
from server.services.completeness import calendar_for
from server.services.custody import note_signer
from server.services.ingest import Ingest, IngestConfig
from server.services.unit_of_work import SqlUnitOfWork
from server.settings import Settings
from server.signing_key import load_signing_key
from storage import open_store

EXTENSION_KEY = "casetrail"
UPLOAD_EXPIRY_POLL_S = 600.0


@dataclass(frozen=True)
class Components:
    """Settings, database, blob store, signing key and the services built on them."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    store: Any  # storage.BlobStore
    signing_key: Ed25519PrivateKey | None
    ingest: Ingest
    jobs: InspectionJobs
    checkpointer: Checkpointer
    exporter: CaseExporter | None  # None without a signing key
    _background: list[Every] = field(default_factory=list, compare=False, repr=False)

    def unit_of_work(self) -> SqlUnitOfWork:
        """A fresh unit of work (use as a context manager, commit explicitly)."""
        return SqlUnitOfWork(self.session_factory)

    def require_signing_key(self) -> Ed25519PrivateKey:
        """The log-signing key, or :class:`Unavailable` saying how to create it."""
        if self.signing_key is None:
            raise _key_missing(self.settings)
        return self.signing_key

    def signer(self) -> NoteSigner:
        """The log's signed-note signer, or :class:`Unavailable` without a key."""
        return note_signer(self.require_signing_key(), self.settings.log_origin)

    def require_exporter(self) -> CaseExporter:
        """The case-file exporter, or :class:`Unavailable` without a signing key."""
        if self.exporter is None:
            self.require_signing_key()
        assert self.exporter is not None
        return self.exporter

    def start_background(self) -> None:
        """Start this process's background threads (serve mode; idempotent).

        ``thread`` inspection: leftover jobs at once and every ``jobs_poll_seconds``,
        expired uploads every 10 minutes. With a signing key: a checkpoint every
        ``checkpoint_seconds`` when the log grew.
        """
        if self._background:
            return
        try:  # after a crash: leases of this host's gone processes end now, not at expiry
            self.ingest.release_dead_leases()
        except Exception:  # the reconciler and the lease expiry still end them
            logging.getLogger(__name__).exception("could not release dead upload leases")
        s = self.settings
        if s.inspection == "thread":
            self._background.append(
                Every("inspect-pending", s.jobs_poll_seconds, self.jobs.run_pending).start()
            )
            self._background.append(
                Every("expire-uploads", UPLOAD_EXPIRY_POLL_S, self.ingest.expire).start()
            )
        if self.signing_key is not None:
            self._background.append(
                Every("checkpoint", s.checkpoint_seconds, self.checkpointer.run_once).start()
            )

    def close(self) -> None:
        """Stop background threads and the inspection pool; release database connections."""
        while self._background:
            self._background.pop().stop()
        self.jobs.shutdown()
        self.engine.dispose()


def build_components(
    settings: Settings, *, store: Any = None, inspection: str | None = None
) -> Components:
    """Wire every part from ``settings``.

    ``store`` replaces the blob store the settings name (tests, fault injection);
    ``inspection`` overrides ``settings.inspection`` for one process (``casetrail
    reconcile`` only queues, for instance). Nothing starts running here.
    """
    engine = make_engine(settings.database_url)
    session_factory = make_session_factory(engine)
    if store is None:
        store = open_store(settings.storage_options())
    key = load_signing_key(settings.signing_key_file)
    spool = settings.data_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)

    def unit_of_work() -> SqlUnitOfWork:
        return SqlUnitOfWork(session_factory)

    signers: list[NoteSigner] = []  # made once: deriving the public key is not free

    def signer() -> NoteSigner:
        if key is None:
            raise _key_missing(settings)
        if not signers:
            signers.append(note_signer(key, settings.log_origin))
        return signers[0]

    jobs = InspectionJobs(
        unit_of_work, store, mode=inspection or settings.inspection, work_dir=str(spool)
    )
    ingest = Ingest(
        uow_factory=unit_of_work,
        store=store,
        signer=signer,
        config=IngestConfig(
            max_size=settings.max_upload_size,
            checksum_chunk_max=settings.checksum_chunk_max,
            upload_ttl=timedelta(hours=settings.upload_expiry_hours),
            lock_ttl=timedelta(seconds=settings.upload_lease_seconds),
            spool_dir=str(spool),
        ),
        on_stored=jobs.submit,
    )
    exporter = None
    if key is not None:
        exporter = CaseExporter(
            unit_of_work, store, signer(), calendar=calendar_for(settings.calendar_file)
        )
    return Components(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        store=store,
        signing_key=key,
        ingest=ingest,
        jobs=jobs,
        checkpointer=Checkpointer(
            unit_of_work, signer, max_age=timedelta(seconds=settings.checkpoint_seconds)
        ),
        exporter=exporter,
    )


def _key_missing(settings: Settings) -> Unavailable:
    return Unavailable(
        "服务器签名密钥不存在，请先运行 `casetrail serve --init` "
        f"(log-signing key missing at {settings.signing_key_file}; "
        "run `casetrail serve --init` once)"
    )


def components() -> Components:
    """The components of the current Flask app (inside a request or app context)."""
    found: Components = current_app.extensions[EXTENSION_KEY]
    return found
