"""The tus use cases: create (with a whole photo in one request), status (HEAD), append (PATCH)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert

from core.custody import EventType
from server import hashstate, tus
from server.auth import Principal, note_token_use
from server.errors import (
    Conflict,
    Gone,
    Invalid,
    PayloadTooLarge,
)
from server.faults import fault_point
from server.models import (
    Evidence,
    EvidenceStatus,
    Upload,
    utcnow,
)
from server.services.custody import record_custody
from server.services.ingest.bodies import WholeBody, _body_blocks, _capped
from server.services.ingest.common import (
    ACTIVE,
    COMPLETED,
    FAILED,
    TERMINATED,
    AnnouncedFile,
    Caller,
    UploadView,
    _keep_token_use,
    _lock_evidence,
    _past_length,
    _principal,
    _token,
)
from server.services.ingest.ending import Ending
from server.services.sequencer import CheckpointOf
from server.services.unit_of_work import UnitOfWork
from storage import errors as storage_errors
from storage.keys import original_key, upload_key
from storage.port import ByteStream

log = logging.getLogger(__name__)


class Ingest(Ending):
    """The ingest use cases over a unit-of-work factory and a blob store."""

    def create(
        self,
        who: Caller,
        length: int,
        metadata: dict[str, str],
        *,
        body: ByteStream | None = None,
        body_length: int | None = None,
        checksum: tus.Checksum | None = None,
    ) -> UploadView:
        """tus creation (and creation-with-upload when ``body`` is given)."""
        if length > self.config.max_size:
            raise PayloadTooLarge(
                f"文件超过服务器上限 {self.config.max_size} 字节 "
                f"(Upload-Length exceeds Tus-Max-Size {self.config.max_size})"
            )
        if checksum is not None:
            self._check_checksum_chunk(body_length)
        whole = (
            body is not None
            and checksum is None
            and body_length == length
            and 0 < length <= self.config.whole_body_max
        )
        if whole:
            assert body is not None
            # a photo: the lookup reads a snapshot (never SQLite's write lock); its one
            # write transaction is the completion's
            with self._reading() as uow:
                principal, announced = self._announced(uow, who, metadata, length)
                token_used = bool(uow.session.dirty)
                target = (announced.id, announced.expected_sha256)
                stored = announced.status == EvidenceStatus.STORED
            if not stored:
                return self._create_whole(principal, token_used, *target, length, metadata, body)
        with self.uow_factory() as uow:
            principal, announced = self._announced(uow, who, metadata, length)
            evidence = uow.session.get(Evidence, announced.id)
            assert evidence is not None
            upload = self._new_upload(evidence, principal, length, metadata)
            key = upload.storage_key or ""
            evidence_id, expected = evidence.id, evidence.expected_sha256
            stored = evidence.status == EvidenceStatus.STORED
            stored_key = (evidence.storage_key or key) if stored else None
            if stored_key is not None and body is None:
                # Already safe: the same evidence and receipt, nothing to send again.
                return self._completed_again(uow, upload, evidence)
            if stored_key is not None:
                _keep_token_use(uow)
            else:
                if length > 0:
                    sid = self.store.start_upload(key)
                    upload.storage_upload_id = sid
                    uow.on_rollback(lambda: self._quietly(self.store.abort_upload, key, sid))
                self._start(uow, upload, evidence, principal)
                uow.commit()
            upload_id = upload.id
        if stored_key is not None:
            # a body sent to stored evidence (the transaction above changed nothing): the
            # same bytes → the same result, different ones → 409, compared outside any
            # transaction
            assert body is not None
            self._check_same_as_stored(body, body_length, length, stored_key, expected)
            with self.uow_factory() as uow:
                again = uow.session.get(Evidence, evidence_id)
                assert again is not None
                return self._completed_again(uow, upload, again)
        if length == 0:
            return self._finish_locked(upload_id, principal)
        if body is not None:
            return self.append(principal, upload_id, 0, body, body_length, checksum)
        return self.status(principal, upload_id)

    def _announced(
        self, uow: UnitOfWork, who: Caller, metadata: dict[str, str], length: int
    ) -> tuple[Principal, AnnouncedFile]:
        """The caller and the announced file the upload names, refused unless ``length``
        is its size."""
        principal, evidence = self._bound_evidence(uow, who, metadata)
        if length != evidence.expected_size:
            raise Invalid(
                f"Upload-Length {length} 与采集清单所述大小 {evidence.expected_size} 不符；"
                "请上传清单中登记的原始文件 (Upload-Length differs from the size in the "
                "signed manifest; upload the original file the manifest lists)",
                {"Upload-Length": [f"expected {evidence.expected_size}, got {length}"]},
            )
        return principal, evidence

    def _completed_again(self, uow: UnitOfWork, upload: Upload, evidence: Evidence) -> UploadView:
        """Commit ``upload`` as completed at once: its evidence is already stored."""
        upload.status, upload.offset, upload.expires_at = COMPLETED, upload.length, None
        uow.session.add(upload)
        uow.commit()
        return self._view(upload, evidence)

    def _check_same_as_stored(
        self, body: ByteStream, body_length: int | None, length: int, key: str, expected: str
    ) -> None:
        """``Conflict`` unless ``body`` is the stored original (or, cut short by the
        client's chunk size, its first bytes); nothing is written either way."""
        limit = length if body_length is None else body_length
        sent = hashlib.sha256()
        size = 0
        for block in _body_blocks(body, limit, body_length is not None):
            sent.update(block)
            size += len(block)
        if size == length:
            same = "sha256:" + sent.hexdigest() == expected
        else:
            kept = hashlib.sha256()
            for block in self.store.open(key, 0, size):
                kept.update(block)
            same = kept.digest() == sent.digest()
        if not same:
            raise Conflict(
                "该证据已入库，本次发送的内容与之不同，未作任何更改；请核对设备上的文件 (this "
                "evidence is already stored and the bytes sent differ from it; nothing was "
                "changed — check the file on the device)",
                {"body": ["differs from the stored original"]},
            )

    def _new_upload(
        self,
        evidence: Evidence,
        principal: Principal,
        length: int,
        metadata: dict[str, str],
        *,
        whole: bool = False,
    ) -> Upload:
        """A new upload of ``evidence``; ``whole``: one that arrived complete (a photo)."""
        return Upload(
            id=str(uuid.uuid4()),
            evidence_id=evidence.id,
            offset=length if whole else 0,
            length=length,
            expires_at=None if whole else utcnow() + self.config.upload_ttl,
            storage_key=original_key(evidence.expected_sha256),
            filename=metadata.get("filename"),
            created_by=principal.actor_id,
            status=COMPLETED if whole else ACTIVE,
            hash_state=None if whole else hashstate.RunningSha256().save(),
        )

    @staticmethod
    def _start(uow: UnitOfWork, upload: Upload, evidence: Evidence, principal: Principal) -> None:
        """Add ``upload`` and its ``upload_started`` event (the caller commits)."""
        if evidence.status != EvidenceStatus.STORED:
            evidence.status = EvidenceStatus.UPLOADING.value
        uow.session.add(upload)
        _record_started(uow, upload, evidence, principal)

    def _create_whole(
        self,
        principal: Principal,
        token_used: bool,
        evidence_id: str,
        expected: str,
        length: int,
        metadata: dict[str, str],
        body: ByteStream,
    ) -> UploadView:
        """creation-with-upload carrying the whole (small) file: one write, one commit.

        The body is received into one buffer (at most ``whole_body_max``) and streamed
        from it as it arrives, write-once at the content key with the manifest's SHA-256
        as the condition (one PutObject on S3); only then are the upload, its custody
        events, checkpoint and receipt committed, in the log's next sequencer batch. A
        body cut short creates nothing (the client never got a Location to resume from);
        a mismatch keeps the bytes in quarantine. SHA-512 is left to the inspection job,
        as for resumable uploads (it re-reads the original anyway).
        """
        with WholeBody(body, length) as received:
            key = original_key(expected)
            adopted = False
            try:
                self.store.write(
                    key, received.blocks(), max_size=length, expected_sha256=expected, sha512=False
                )
            except storage_errors.DigestMismatch as exc:
                return self._whole_mismatch(
                    principal, evidence_id, length, metadata, received.received, exc.actual
                )
            except storage_errors.AlreadyExists:
                actual = "sha256:" + hashlib.sha256(received.rest()).hexdigest()
                if actual != expected:
                    return self._whole_mismatch(
                        principal, evidence_id, length, metadata, received.received, actual
                    )
                self._reread(key, expected)  # the same verified content is already stored
                adopted = True
            fault_point("ingest.after_store")

            locked: list[Any] = []  # held here: the session keeps rows only weakly

            def lock(uow: UnitOfWork) -> None:
                locked[:] = _lock_evidence(uow, evidence_id)

            def work(uow: UnitOfWork) -> Callable[[CheckpointOf], tuple[UploadView, bool]]:
                evidence: Evidence = locked[0]  # read and locked by ``lock``
                if token_used:
                    note_token_use(uow.session, principal)
                upload = self._new_upload(evidence, principal, length, metadata, whole=True)
                # the row goes in as it ends (a plain INSERT: the ORM's flush of one new
                # object cost more than the statement); ``upload`` stays out of the session
                uow.session.connection().execute(insert(Upload), [_columns(upload)])
                newly = evidence.status != EvidenceStatus.STORED
                add_receipt = None
                if newly:  # else a concurrent upload won with the same bytes
                    _record_started(uow, upload, evidence, principal)
                    add_receipt = self._record_stored(
                        uow, upload, evidence, locked[1], principal, key, None
                    )
                return self._answer(upload, evidence, newly, add_receipt)

            view, newly_stored = self.sequencer.run(work, lock)
            if adopted and not self.store.exists(key):  # moved away before our commit
                with contextlib.suppress(storage_errors.AlreadyExists):
                    self.store.write(
                        key, [received.received], max_size=length, expected_sha256=expected
                    )
            fault_point("ingest.after_commit")
            if newly_stored:
                self._schedule_inspection(view.evidence_id)
            return view

    def _whole_mismatch(
        self,
        principal: Principal,
        evidence_id: str,
        length: int,
        metadata: dict[str, str],
        received: memoryview,
        actual: str | None,
    ) -> UploadView:
        """Keep a whole body that differs from the manifest in quarantine, log it, refuse."""
        with self.uow_factory() as uow:
            evidence = uow.session.get(Evidence, evidence_id, with_for_update=True)
            assert evidence is not None
            upload = self._new_upload(evidence, principal, length, metadata)
            upload_id = upload.id
            self._start(uow, upload, evidence, principal)
            uow.commit()
        scratch = upload_key(_token(upload_id))
        self.store.write(scratch, [received], write_once=False)
        moved = self.store.quarantine(scratch, f"摘要与采集清单不符 / digest mismatch: {actual}")
        return self._mismatch(upload_id, principal, "", None, 0, actual, moved=moved)

    def status(self, who: Caller, upload_id: str) -> UploadView:
        """tus HEAD: the durable offset; converges an upload whose last step crashed.

        Every byte durable but not completed (a process died between its last part and
        its completion): this request completes it and answers with the receipt. While
        another live request holds the upload (it is completing it, or a dead process of
        another host holds a lease not yet expired) the answer is ``Locked`` (423, retry
        after a while), never ``Upload-Offset`` = ``Upload-Length`` without a receipt: a
        tus client takes that for "done" and would give the file up.
        """
        with self.uow_factory() as uow:
            principal = _principal(uow, who)
            upload, evidence = self._visible_upload(uow, principal, upload_id)
            view = self._view(upload, evidence)
            _keep_token_use(uow)
        if view.status == ACTIVE and view.offset == view.length:
            return self._finish_locked(upload_id, principal)
        return view

    def append(
        self,
        who: Caller,
        upload_id: str,
        offset: int,
        body: ByteStream,
        body_length: int | None,
        checksum: tus.Checksum | None = None,
    ) -> UploadView:
        """tus PATCH: stream ``body`` at ``offset`` into storage; finish on the last byte."""
        if checksum is not None:
            self._check_checksum_chunk(body_length)
        with self.uow_factory() as uow:
            principal = _principal(uow, who)
            # read to write: no other PATCH moves the row before the lease is ours
            upload, evidence = self._visible_upload(uow, principal, upload_id, to_write=True)
            if upload.status == COMPLETED and offset == upload.length and not body_length:
                _keep_token_use(uow)
                return self._view(upload, evidence)  # a re-sent final PATCH
            self._check_patch(upload, offset, body_length)
            lock, taken_at = self._take_lease(uow, upload_id)
            progress = self._progress(upload, lock, taken_at)
            progress.expected_sha256 = evidence.expected_sha256
            view = self._view(upload, evidence)
            uow.commit()
        try:
            fault_point("ingest.before_first_byte")
            limit = progress.length - progress.offset if body_length is None else body_length
            # the lease is renewed (when due) after every read of the body, however slow,
            # and while a checksummed chunk is spooled too
            received = _body_blocks(
                body, limit, body_length is not None, lambda: self._renew_if_due(progress)
            )
            if checksum is not None:
                cap = self.config.checksum_chunk_max
                if body_length is None and limit > cap:  # chunked: stop reading at the cap
                    received = _capped(received, cap, self._chunk_too_large)
                with self._verified_spool(received, checksum) as spool:
                    spool.seek(0)
                    self._pump(progress, _body_blocks(spool, limit, False))
            else:
                self._pump(progress, received)
            if progress.offset == progress.length:
                fault_point("ingest.after_last_part")
                return self._finish_recorded(progress, principal)
        finally:
            if not progress.released:
                self._release(upload_id, lock)
        return dataclasses.replace(view, offset=progress.offset)

    def _check_patch(self, upload: Upload, offset: int, body_length: int | None) -> None:
        if upload.status in (TERMINATED, FAILED) or self._expired(upload):
            raise Gone(
                "此上传已终止或过期，请重新创建上传 (this upload was terminated or has expired; "
                "create a new upload with POST /api/v1/uploads)"
            )
        if offset != upload.offset:
            raise Conflict(
                f"Upload-Offset {offset} 与服务器已保存的字节数 {upload.offset} 不符；请先 HEAD "
                f"查询后从该位置续传 (Upload-Offset {offset} does not match the server's "
                f"offset {upload.offset}; send HEAD and resume from there)",
                {"Upload-Offset": [f"expected {upload.offset}, got {offset}"]},
            )
        if body_length is not None and offset + body_length > upload.length:
            raise PayloadTooLarge(_past_length(upload.length))


def _record_started(
    uow: UnitOfWork, upload: Upload, evidence: Evidence, principal: Principal
) -> None:
    record_custody(
        uow,
        evidence.case_id,
        EventType.UPLOAD_STARTED,
        principal,
        {"evidence_id": evidence.id, "upload_id": upload.id, "length": upload.length},
    )


_UPLOAD_COLUMNS = frozenset(Upload.__table__.columns.keys())


def _columns(upload: Upload) -> dict[str, Any]:
    """The columns set on a new ``upload`` (the others take their defaults)."""
    return {k: v for k, v in vars(upload).items() if k in _UPLOAD_COLUMNS}
