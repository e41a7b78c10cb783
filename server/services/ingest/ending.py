"""Ending uploads: tus DELETE, expiry, and the reconciler's entries (finish, abandon)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from core.custody import Actor, EventType
from server.auth import Principal
from server.errors import Gone, Locked
from server.models import (
    Evidence,
    EvidenceStatus,
    Upload,
    utcnow,
)
from server.services.custody import SYSTEM_ACTOR, record_custody
from server.services.ingest.common import (
    ACTIVE,
    ENDED_ABANDONED,
    ENDED_EXPIRED,
    ENDED_TERMINATED,
    TERMINATED,
    Caller,
    UploadView,
    _keep_token_use,
    _principal,
)
from server.services.ingest.completion import Completion

log = logging.getLogger(__name__)


class Ending(Completion):
    """Ends uploads with an ``upload_ended`` custody event, then drops their bytes."""

    def terminate(self, who: Caller, upload_id: str) -> None:
        """tus DELETE: discard the bytes received so far (a stored original is never touched)."""
        with self.uow_factory() as uow:
            principal = _principal(uow, who)
            upload, _evidence = self._visible_upload(uow, principal, upload_id)
            _keep_token_use(uow)
            if upload.status != ACTIVE:
                raise Gone("此上传已结束 (this upload has already ended)")
        lock = self._acquire(upload_id)
        try:
            self._end(upload_id, principal, ENDED_TERMINATED)
        finally:
            self._release(upload_id, lock)

    def expire(self, now: datetime | None = None) -> int:
        """End every active upload past its ``Upload-Expires``; return how many."""
        now = now or utcnow()
        with self.uow_factory() as uow:
            ids = list(
                uow.session.scalars(
                    select(Upload.id).where(Upload.status == ACTIVE, Upload.expires_at < now)
                )
            )
        ended = 0
        for upload_id in ids:
            try:
                lock = self._acquire(upload_id)
            except Locked:
                continue
            try:
                self._end(upload_id, SYSTEM_ACTOR, ENDED_EXPIRED)
                ended += 1
            finally:
                self._release(upload_id, lock)
        return ended

    def finish_interrupted(self, upload_id: str, actor: Actor) -> UploadView:
        """Finish an upload whose bytes are all durable but whose completion was cut off.

        The reconciler's entry (``server.services.reconcile``); ``Locked`` while a
        live request still holds the upload.
        """
        return self._finish_locked(upload_id, actor)

    def abandon(self, upload_id: str, reason: str = ENDED_ABANDONED) -> None:
        """End an active upload that can no longer complete and discard its stored parts.

        The reconciler's entry (``reason``: ``abandoned`` or ``expired``, for the
        ``upload_ended`` event); ``Locked`` while a live request holds the upload.
        """
        lock = self._acquire(upload_id)
        try:
            self._end(upload_id, SYSTEM_ACTOR, reason)
        finally:
            self._release(upload_id, lock)

    def _end(self, upload_id: str, actor: Principal | Actor, reason: str) -> None:
        """End an active upload with an ``upload_ended`` custody event, then drop its bytes.

        ``reason``: ``terminated`` (tus DELETE), ``expired`` or ``abandoned`` (reconciler).
        The event records the bytes received, in the same transaction as the end.
        """
        with self.uow_factory() as uow:
            upload = uow.session.get(Upload, upload_id)
            assert upload is not None
            if upload.status != ACTIVE:
                return
            key, sid = upload.storage_key or "", upload.storage_upload_id
            upload.status = TERMINATED
            evidence = uow.session.get(Evidence, upload.evidence_id, with_for_update=True)
            assert evidence is not None
            record_custody(
                uow,
                evidence.case_id,
                EventType.UPLOAD_ENDED,
                actor,
                {
                    "evidence_id": evidence.id,
                    "upload_id": upload.id,
                    "reason": reason,
                    "bytes_received": upload.offset,
                    "length": upload.length,
                },
            )
            if evidence.status == EvidenceStatus.UPLOADING:
                others = uow.session.scalar(
                    select(Upload.id).where(
                        Upload.evidence_id == evidence.id,
                        Upload.status == ACTIVE,
                        Upload.id != upload_id,
                    )
                )
                if others is None:
                    evidence.status = EvidenceStatus.EXPECTED.value
            uow.commit()
        if sid is not None:
            self._quietly(self.store.abort_upload, key, sid)
        self._drop_tail(upload_id)
