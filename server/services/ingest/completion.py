"""Completion: verify against the manifest, complete write-once (or adopt an object already
there), quarantine a mismatch, and commit in the log's sequencer batch."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm.attributes import set_committed_value

from core.canonical import canonical_json
from core.custody import Actor, EventType, ObjectRef
from server import hashstate
from server.auth import Principal
from server.errors import (
    Conflict,
    Invalid,
    Unavailable,
)
from server.faults import fault_point
from server.models import (
    Evidence,
    EvidenceStatus,
    Upload,
    utcnow,
)
from server.services.custody import record_custody
from server.services.ingest.common import (
    ACTIVE,
    COMPLETED,
    FAILED,
    MISMATCH_MESSAGE,
    UploadView,
    _lock_evidence,
    _Progress,
    _Recorded,
)
from server.services.ingest.pump import PartPump
from server.services.receipts import build_receipt
from server.services.sequencer import CheckpointOf
from server.services.unit_of_work import UnitOfWork
from storage import errors as storage_errors
from storage.hashing import digest_object
from storage.keys import original_key
from storage.port import PartInfo

log = logging.getLogger(__name__)


class Completion(PartPump):
    """Finishes an upload whose bytes are all durable (idempotent)."""

    def _finish_locked(self, upload_id: str, principal: Principal | Actor) -> UploadView:
        lock = self._acquire(upload_id)
        try:
            return self._finish(upload_id, principal, lock)
        finally:
            self._release(upload_id, lock)

    def _finish(self, upload_id: str, principal: Principal | Actor, lock: str) -> UploadView:
        """Verify and complete an upload whose bytes are all durable (idempotent)."""
        with self.uow_factory() as uow:
            upload = uow.session.get(Upload, upload_id)
            assert upload is not None
            evidence = uow.session.get(Evidence, upload.evidence_id)
            assert evidence is not None
            if upload.status != ACTIVE:
                return self._view(upload, evidence)
            expected = evidence.expected_sha256
            key = upload.storage_key or original_key(expected)
            sid = upload.storage_upload_id
            running = hashstate.restore(upload.hash_state, upload.length)
            parts_count, length = upload.parts_count, upload.length
            recorded = self._recorded_parts(uow, upload_id, parts_count)
        return self._complete(
            upload_id,
            principal,
            key,
            sid,
            expected,
            running,
            _Recorded(parts_count, length, recorded),
        )

    def _finish_recorded(self, p: _Progress, principal: Principal | Actor) -> UploadView:
        """:meth:`_finish` for the PATCH that recorded the last byte: everything it needs
        was read with that record, and the completion's commit also ends the lease."""
        if p.recorded is None:  # nothing new was recorded by this PATCH
            return self._finish(p.upload_id, principal, p.lock)
        return self._complete(
            p.upload_id,
            principal,
            p.storage_key or original_key(p.expected_sha256),
            p.storage_upload_id,
            p.expected_sha256,
            hashstate.restore(p.hash_state, p.length),
            _Recorded(p.parts_count, p.length, p.recorded),
            progress=p,
        )

    def _complete(
        self,
        upload_id: str,
        principal: Principal | Actor,
        key: str,
        sid: str | None,
        expected: str,
        running: hashstate.RunningSha256 | None,
        recorded: _Recorded,
        progress: _Progress | None = None,
    ) -> UploadView:
        """Verify, complete in the store (or quarantine) and commit; see :meth:`_finish`."""
        parts_count = recorded.count
        actual = running.digest if running is not None else None
        if actual is not None and actual != expected:
            return self._mismatch(upload_id, principal, key, sid, parts_count, actual)
        try:
            sha512, adopted = self._complete_in_store(key, sid, recorded, expected, actual)
        except storage_errors.DigestMismatch as exc:
            return self._mismatch(upload_id, principal, key, sid, parts_count, exc.actual)
        fault_point("ingest.after_store")
        view = self._commit_stored(upload_id, principal, key, sha512, progress)
        if adopted is not None:
            assert sid is not None
            self._settle_adopted(key, sid, adopted, expected)
        fault_point("ingest.after_commit")
        return view

    def _complete_in_store(
        self, key: str, sid: str | None, recorded: _Recorded, expected: str, verified: str | None
    ) -> tuple[str | None, list[PartInfo] | None]:
        """Make the original appear at ``key``; return its SHA-512 if the store computed one,
        and the parts still open when an object already there was adopted instead.

        An object already at ``key`` (an earlier attempt, another upload, an old orphan)
        is re-read and adopted; our own parts are kept open until the commit succeeded
        (:meth:`_settle_adopted`): the reconciler may be moving an old orphan away
        right now.

        The store completes exactly the parts the database recorded (number, size, ETag).
        ``verified``: our running SHA-256 (already equal to ``expected``); the store trusts
        it instead of re-reading the bytes — only when the store's parts are the recorded
        ones and they add up to the length. Otherwise ``verified`` is dropped and the store
        re-hashes what it completed (a mismatch is then quarantined as usual). SHA-512 is
        left to the inspection job.
        """
        if sid is None:  # a zero-byte file
            with contextlib.suppress(storage_errors.AlreadyExists):
                return self.store.write(key, [], expected_sha256=expected).sha512, None
            self._reread(key, expected)
            return None, None
        try:
            listed = [p for p in self.store.list_parts(key, sid) if p.number <= recorded.count]
        except storage_errors.UploadNotFound:
            # Completed in storage by an earlier attempt that crashed before its commit.
            self._reread(key, expected)
            return None, None
        parts = recorded.parts if recorded.complete else listed
        if not (recorded.complete and listed == recorded.parts):
            log.warning("upload at %s: stored parts differ from the recorded ones; re-hashing", key)
            verified = None
        try:
            try:
                info = self.store.complete_upload(
                    key, sid, parts, expected_sha256=expected, verified_sha256=verified
                )
            except storage_errors.InvalidParts:
                if parts is listed:
                    raise
                # the recorded parts are not all in the store: complete what it holds and
                # let the store re-hash it (a mismatch is quarantined and refused)
                parts = listed
                info = self.store.complete_upload(key, sid, listed, expected_sha256=expected)
            return info.sha512, None
        except storage_errors.AlreadyExists:
            # Same verified content already stored (another file or an earlier attempt).
            self._reread(key, expected)
            return None, parts

    def _settle_adopted(self, key: str, sid: str, parts: list[PartInfo], expected: str) -> None:
        """After the commit: drop our parts if the adopted object is still there, else
        complete them into ``key`` (it was moved away between the re-read and the commit)."""
        if self.store.exists(key):
            self._quietly(self.store.abort_upload, key, sid)
            return
        log.warning("adopted object %s vanished before the commit; storing ours there", key)
        try:
            self.store.complete_upload(key, sid, parts, expected_sha256=expected)
        except storage_errors.AlreadyExists:
            self._quietly(self.store.abort_upload, key, sid)

    def _reread(self, key: str, expected: str) -> None:
        """Check that the object at ``key`` hashes to ``expected`` (SHA-256 only)."""
        try:
            digester = digest_object(self.store, key, sha512=False)
        except storage_errors.NotFound:
            raise Unavailable(
                "上传的数据在存储中缺失，请重新上传该文件 (the uploaded bytes are missing from "
                "storage; create a new upload for this file)"
            ) from None
        if digester.sha256 != expected:
            raise storage_errors.DigestMismatch(
                f"对象 {key} 的摘要不符 (object at {key} does not hash to its key)",
                key=key,
                expected=expected,
                actual=digester.sha256,
            )

    def _commit_stored(
        self,
        upload_id: str,
        principal: Principal | Actor,
        key: str,
        sha512: str | None,
        progress: _Progress | None = None,
    ) -> UploadView:
        """Commit the stored original (in the sequencer's next batch); with ``progress``
        the same commit ends that PATCH's lease."""

        locked: list[Any] = []  # held here: the session keeps rows only weakly

        def lock(uow: UnitOfWork) -> None:
            upload = uow.session.get(Upload, upload_id)
            assert upload is not None
            locked[:] = [upload, *_lock_evidence(uow, upload.evidence_id)]

        def work(uow: UnitOfWork) -> Callable[[CheckpointOf], tuple[UploadView, bool]]:
            upload, evidence = locked[0], locked[1]  # read (the evidence locked) by ``lock``
            newly = evidence.status != EvidenceStatus.STORED  # else a concurrent upload won
            add_receipt = (
                self._record_stored(uow, upload, evidence, locked[2], principal, key, sha512)
                if newly
                else None
            )
            upload.status, upload.offset, upload.expires_at = COMPLETED, upload.length, None
            if progress is not None and upload.lock_owner == progress.lock:
                upload.lock_owner, upload.lock_expires_at = None, None

            return self._answer(upload, evidence, newly, add_receipt)

        view, newly = self.sequencer.run(work, lock)
        if progress is not None:
            progress.released = True
        if not newly:
            return view
        self._drop_tail(upload_id)
        self._schedule_inspection(view.evidence_id)
        return view

    def _answer(
        self,
        upload: Upload,
        evidence: Evidence,
        newly: bool,
        add_receipt: Callable[[CheckpointOf], dict[str, Any]] | None,
    ) -> Callable[[CheckpointOf], tuple[UploadView, bool]]:
        """A completion job's last step (after every job's work in the batch): the receipt,
        when this completion stored the evidence, then the upload's view."""

        def finish(checkpoint: CheckpointOf) -> tuple[UploadView, bool]:
            if add_receipt is None:
                return self._view(upload, evidence), newly
            return self._view(upload, evidence, add_receipt(checkpoint)), newly

        return finish

    def _record_stored(
        self,
        uow: UnitOfWork,
        upload: Upload,
        evidence: Evidence,
        manifest_id: str,
        principal: Principal | Actor,
        key: str,
        sha512: str | None,
    ) -> Callable[[CheckpointOf], dict[str, Any]]:
        """Evidence ``stored`` and its two custody events; the returned step adds (and
        returns) the signed receipt once the (batch's) checkpoint is there. ``manifest_id``: the
        public id of the evidence's manifest (read with the locked row)."""
        # the row changes once, with its receipt, as one plain UPDATE (the ORM's flush of
        # it cost more than the statement); the loaded row is told at once, so a later job
        # of the same batch sees the evidence stored
        stored_values: dict[str, Any] = {
            "status": EvidenceStatus.STORED.value,
            "storage_key": key,
            "sha512": sha512,
            "received_at": utcnow(),
            "inspection_status": "pending",
        }
        for name, value in stored_values.items():
            set_committed_value(evidence, name, value)
        obj = ObjectRef(evidence.expected_sha256, evidence.expected_size)
        details = {
            "evidence_id": evidence.id,
            "manifest_id": manifest_id,
            "file_index": evidence.file_index,
            "upload_id": upload.id,
        }
        record_custody(
            uow, evidence.case_id, EventType.INGEST_VERIFIED, principal, details, object=obj
        )
        stored = record_custody(
            uow,
            evidence.case_id,
            EventType.STORED,
            principal,
            {**details, "storage_key": key},
            object=obj,
        )

        def add_receipt(checkpoint: CheckpointOf) -> dict[str, Any]:
            signer = self.signer()
            receipt = build_receipt(uow, signer, evidence, manifest_id, stored, checkpoint())
            stored_values["receipt"] = canonical_json(receipt).decode("utf-8")
            set_committed_value(evidence, "receipt", stored_values["receipt"])
            uow.session.connection().execute(
                _EVIDENCE_STORED, {"evidence_id": evidence.id, **stored_values}
            )
            return receipt

        return add_receipt

    def _mismatch(
        self,
        upload_id: str,
        principal: Principal | Actor,
        key: str,
        sid: str | None,
        parts_count: int,
        actual: str | None,
        *,
        moved: str | None = None,
    ) -> UploadView:
        reason = f"摘要与采集清单不符 / digest differs from the manifest: {actual}"
        if sid is not None:
            try:
                parts = [p for p in self.store.list_parts(key, sid) if p.number <= parts_count]
                moved = self.store.quarantine_upload(key, sid, parts, reason)
            except storage_errors.UploadNotFound:
                moved = None  # the store already quarantined it while verifying
        with self.uow_factory() as uow:
            upload = uow.session.get(Upload, upload_id)
            assert upload is not None
            evidence = uow.session.get(Evidence, upload.evidence_id, with_for_update=True)
            assert evidence is not None
            upload.status = FAILED
            if evidence.status != EvidenceStatus.STORED:
                evidence.status = EvidenceStatus.MISMATCH.value
            record_custody(
                uow,
                evidence.case_id,
                EventType.INGEST_MISMATCH,
                principal,
                {
                    "evidence_id": evidence.id,
                    "upload_id": upload.id,
                    "expected_sha256": evidence.expected_sha256,
                    "actual_sha256": actual,
                    "quarantine_key": moved,
                },
                object=ObjectRef(evidence.expected_sha256, evidence.expected_size),
            )
            uow.commit()
            stored_already = evidence.status == EvidenceStatus.STORED
        self._drop_tail(upload_id)
        if stored_already:
            raise Conflict(
                "该证据已以其他内容入库，本次数据已隔离，原证据未改变 (this evidence is already "
                "stored with other content; your bytes were quarantined and nothing changed)"
            )
        raise Invalid(MISMATCH_MESSAGE, {"sha256": [f"expected manifest digest, got {actual}"]})


_EVIDENCE_STORED = (
    update(Evidence)
    .where(Evidence.id == bindparam("evidence_id"))
    .values(
        {c: bindparam(c) for c in ("status", "storage_key", "sha512", "received_at",
                                   "inspection_status", "receipt")}
    )
)  # fmt: skip
