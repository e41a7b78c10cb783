"""The reconciler (对账): make the database and the blob store agree after crashes.

:func:`reconcile` compares upload and evidence rows with what the store holds, repairs
what is safe to repair and reports everything (every finding, not the first):

=========================  ==========================================================
finding                    what the reconciler does
=========================  ==========================================================
stale_lease                the write lease of a request whose server process on this
                           host is gone (kill -9): released, so the client resumes now
                           rather than after the lease expires
interrupted_completion     every byte durable, completion cut off (a crash between the
                           store and the commit): finished through the ingest path —
                           verified, ``stored``, custody events, signed receipt
superseded_upload          active upload of evidence another upload already stored:
                           ended, its parts discarded (the evidence is untouched)
expired_upload             past ``Upload-Expires``: ended, storage upload aborted
lost_upload                the parts or tail behind its offset are gone: ended (absent),
                           so no client resumes from bytes that are not there
orphan_multipart           a storage upload with no live row, older than the grace
                           period: aborted (a younger one is kept — a create may be
                           committing right now)
orphan_scratch             a tus tail of an ended upload: deleted (scratch, never
                           evidence); a tail with no row at all is quarantined
orphan_object              an original or derivative no stored evidence refers to,
                           older than the grace period: moved to quarantine with a
                           note, never deleted; re-checked after the move, and copied
                           back if a completion adopted it and committed meanwhile
missing_object             a stored evidence row whose object is gone: EVIDENCE AT
                           RISK — a ``fixity_failed`` custody event (once) and a
                           non-zero exit on every run until resolved
unknown_object             a key outside the CaseTrail layout: reported, untouched
                           (quarantine/ and exports/ recipes are known and skipped)
=========================  ==========================================================

Uploads held by a live request (an unexpired lease) are left alone. Every repair of an
upload goes through :class:`server.services.ingest.Ingest` under its lease, so the
reconciler is safe to run while servers serve. A second run changes nothing. With
``dry_run`` nothing changes and the actions read "would …".
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from server.errors import Locked, ServiceError
from server.models import Evidence, EvidenceStatus, FixityCheck, Upload, utcnow
from server.services.custody import SYSTEM_ACTOR
from server.services.fixity import FixitySource, record_fixity_failure
from server.services.ingest import ACTIVE, ENDED_ABANDONED, ENDED_EXPIRED, Ingest, lease
from server.services.reconcile_report import Finding as Finding
from server.services.reconcile_report import Kind as Kind
from server.services.reconcile_report import ReconcileReport as ReconcileReport
from server.services.unit_of_work import UnitOfWork
from storage import errors as storage_errors
from storage.keys import (
    DERIVATIVES_PREFIX,
    EXPORTS_PREFIX,
    ORIGINALS_PREFIX,
    QUARANTINE_PREFIX,
    UPLOADS_PREFIX,
    upload_key,
)
from storage.port import BlobStore

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)
"""Storage uploads and scratch objects younger than this are never touched."""


Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``."""


@dataclass
class Reconciler:
    """One reconciliation pass over a database (unit-of-work factory) and a blob store."""

    uow_factory: Callable[[], AbstractContextManager[UnitOfWork]]
    store: BlobStore
    ingest: Ingest
    grace: timedelta = DEFAULT_GRACE
    dry_run: bool = False
    progress: Progress | None = None

    def run(self, now: datetime | None = None) -> ReconcileReport:
        """Reconcile once; every finding in the report (``StorageError`` if the store is down)."""
        now = now or utcnow()
        self.store.ping()
        findings: list[Finding] = []
        findings += self._uploads(now)
        findings += self._storage_uploads(now)
        keys = list(self.store.list(""))
        findings += self._objects(keys, now)
        findings += self._missing(set(keys))
        return ReconcileReport(tuple(findings), self.dry_run)

    # ------------------------------------------------------------------ upload rows

    def _uploads(self, now: datetime) -> list[Finding]:
        with self.uow_factory() as uow:
            rows = uow.session.execute(
                select(Upload, Evidence.status)
                .join(Evidence, Evidence.id == Upload.evidence_id)
                .where(Upload.status == ACTIVE)
                .order_by(Upload.created_at)
            ).all()
            uploads = [(u.id, u, status) for u, status in rows]
            uow.session.expunge_all()
        findings: list[Finding] = []
        for done, (upload_id, upload, evidence_status) in enumerate(uploads, 1):
            self._tick("uploads", done, len(uploads))
            if upload.lock_owner and upload.lock_expires_at and upload.lock_expires_at > now:
                if not lease.owner_gone(upload.lock_owner):
                    continue  # a live request holds it and will finish or fail it itself
                findings.append(self._release_lease(upload_id, upload.lock_owner))
            finding = self._upload_finding(upload, evidence_status, now)
            if finding is not None:
                findings.append(self._apply_upload(upload_id, finding))
        return findings

    def _release_lease(self, upload_id: str, owner: str) -> Finding:
        message = (
            f"写入租约的持有进程已不存在，租约已释放，可立即续传 (the process holding the write "
            f"lease is gone; lease released so the upload resumes now): {owner}"
        )
        if self.dry_run:
            return Finding(Kind.STALE_LEASE, upload_id, "would release", message, False)
        with self.uow_factory() as uow:
            lease.release(uow.session, upload_id, owner)
            uow.commit()
        return Finding(Kind.STALE_LEASE, upload_id, "released", message, True)

    def _upload_finding(
        self, upload: Upload, evidence_status: str, now: datetime
    ) -> tuple[Kind, str] | None:
        if evidence_status == EvidenceStatus.STORED:
            return Kind.SUPERSEDED_UPLOAD, (
                "证据已由另一上传入库，此上传不再需要 (the evidence was already stored by another "
                "upload; this one is no longer needed)"
            )
        if upload.offset == upload.length:
            return Kind.INTERRUPTED_COMPLETION, (
                "全部字节已保存但入库未完成（崩溃于存储与提交之间） (every byte is durable but the "
                "completion was cut off — a crash between storage and the database commit)"
            )
        if upload.expires_at is not None and upload.expires_at < now:
            return Kind.EXPIRED_UPLOAD, (
                f"上传已于 {upload.expires_at.isoformat(timespec='seconds')} 过期 "
                "(the upload expired; the client must start a new one)"
            )
        lost = self._lost_bytes(upload)
        if lost:
            return Kind.LOST_UPLOAD, (
                f"已确认的字节在存储中缺失，无法续传 (bytes behind Upload-Offset are gone from "
                f"storage, it cannot resume): {lost}"
            )
        return None

    def _lost_bytes(self, upload: Upload) -> str:
        """Why the stored bytes cannot back ``upload.offset`` (empty when they can)."""
        if upload.storage_upload_id is None or not upload.storage_key:
            return "" if upload.offset == 0 else "no storage upload"
        try:
            parts = self.store.list_parts(upload.storage_key, upload.storage_upload_id)
        except storage_errors.UploadNotFound:
            return "storage upload not open"
        counted = [p for p in parts if p.number <= upload.parts_count]
        if len(counted) != upload.parts_count or sum(p.size for p in counted) != upload.parts_size:
            return f"parts 1..{upload.parts_count} ({upload.parts_size} bytes) not all stored"
        if upload.tail_size:
            try:
                tail = self.store.stat(upload_key(upload.id.replace("-", "")))
            except storage_errors.NotFound:
                return "tail object missing"
            if tail.size < upload.tail_size:
                return f"tail has {tail.size} of {upload.tail_size} bytes"
        return ""

    def _apply_upload(self, upload_id: str, found: tuple[Kind, str]) -> Finding:
        kind, message = found
        if self.dry_run:
            verb = "would complete" if kind == Kind.INTERRUPTED_COMPLETION else "would end"
            return Finding(kind, upload_id, verb, message, False)
        try:
            if kind == Kind.INTERRUPTED_COMPLETION:
                view = self.ingest.finish_interrupted(upload_id, SYSTEM_ACTOR)
                action = f"completed → {view.status}"
            else:
                expired = kind == Kind.EXPIRED_UPLOAD
                self.ingest.abandon(upload_id, ENDED_EXPIRED if expired else ENDED_ABANDONED)
                action = "ended"
        except Locked:
            return Finding(kind, upload_id, "skipped: in use", message, False)
        except ServiceError as exc:  # e.g. a digest mismatch: quarantined by ingest
            return Finding(kind, upload_id, "failed (ended by ingest)", f"{message}; {exc}", True)
        return Finding(kind, upload_id, action, message, True)

    # ------------------------------------------------------------------ storage uploads

    def _storage_uploads(self, now: datetime) -> list[Finding]:
        open_uploads = self.store.list_incomplete_uploads("")
        with self.uow_factory() as uow:
            live = set(
                uow.session.scalars(
                    select(Upload.storage_upload_id).where(
                        Upload.status == ACTIVE, Upload.storage_upload_id.is_not(None)
                    )
                )
            )
        findings: list[Finding] = []
        for done, info in enumerate(open_uploads, 1):
            self._tick("storage uploads", done, len(open_uploads))
            if info.upload_id in live:
                continue
            message = (
                "存储中的分片上传没有对应的进行中上传 (a storage multipart upload with no live "
                f"upload row) for {info.key}"
            )
            if info.started is None or now - info.started < self.grace:
                continue  # maybe a create committing right now; a later run decides
            if self.dry_run:
                findings.append(
                    Finding(Kind.ORPHAN_MULTIPART, info.upload_id, "would abort", message, False)
                )
                continue
            if self._upload_is_live(info.upload_id):
                continue
            try:
                self.store.abort_upload(info.key, info.upload_id)
            except storage_errors.UploadNotFound:
                continue
            findings.append(
                Finding(Kind.ORPHAN_MULTIPART, info.upload_id, "aborted", message, True)
            )
        return findings

    def _upload_is_live(self, storage_upload_id: str) -> bool:
        with self.uow_factory() as uow:
            return (
                uow.session.scalar(
                    select(Upload.id).where(
                        Upload.storage_upload_id == storage_upload_id, Upload.status == ACTIVE
                    )
                )
                is not None
            )

    # ------------------------------------------------------------------ objects

    def _objects(self, keys: list[str], now: datetime) -> list[Finding]:
        with self.uow_factory() as uow:
            stored = {
                key: sha
                for key, sha in uow.session.execute(
                    select(Evidence.storage_key, Evidence.expected_sha256).where(
                        Evidence.status == EvidenceStatus.STORED.value
                    )
                )
            }
            targets = set(
                uow.session.scalars(select(Upload.storage_key).where(Upload.status == ACTIVE))
            )
        stored_hex = {sha.removeprefix("sha256:") for sha in stored.values()}
        findings: list[Finding] = []
        for done, key in enumerate(keys, 1):
            self._tick("objects", done, len(keys))
            if key.startswith((QUARANTINE_PREFIX, EXPORTS_PREFIX)):
                continue  # moved aside with a note, or a sealed export's recipe
            if key.startswith(ORIGINALS_PREFIX):
                if key in stored or key in targets or self._young(key, now):
                    continue  # young: a whole-file upload may be committing its row now
                finding = self._quarantine(key, "原始对象无证据记录 (original without a row)")
            elif key.startswith(DERIVATIVES_PREFIX):
                parts = key.split("/")
                if (len(parts) >= 6 and parts[4] in stored_hex) or self._young(key, now):
                    continue
                finding = self._quarantine(key, "派生文件无对应证据 (derivative without evidence)")
            elif key.startswith(UPLOADS_PREFIX):
                finding = self._scratch(key, now)
            else:
                finding = Finding(
                    Kind.UNKNOWN_OBJECT,
                    key,
                    "kept",
                    "键不在 CaseTrail 布局内，未处理 (a key outside the CaseTrail layout; untouched)",
                    False,
                )
            if finding is not None:
                findings.append(finding)
        return findings

    def _young(self, key: str, now: datetime) -> bool:
        try:
            return now - self.store.stat(key).modified < self.grace
        except storage_errors.NotFound:
            return True  # gone meanwhile: nothing to do

    def _quarantine(self, key: str, what: str) -> Finding | None:
        message = f"{what}；已移入隔离区，未删除 (moved to quarantine, never deleted)"
        if self.dry_run:
            return Finding(Kind.ORPHAN_OBJECT, key, "would quarantine", what, False)
        if self._referenced(key):  # committed since we listed: not an orphan after all
            return None
        try:
            moved = self.store.quarantine(key, f"reconciler: {what}")
        except storage_errors.NotFound:
            return None
        if self._referenced(key):
            # check-then-act: a completion adopted this object and committed meanwhile —
            # put a copy back (the quarantined one stays, with its note; never deleted)
            self._restore(moved, key)
            return None
        log.warning("quarantined orphan object %s → %s", key, moved)
        return Finding(Kind.ORPHAN_OBJECT, key, f"quarantined → {moved}", message, True)

    def _restore(self, moved: str, key: str) -> None:
        """Copy a just-quarantined object back to ``key`` (write-once, digest checked)."""
        expected = None
        if key.startswith(ORIGINALS_PREFIX):
            expected = "sha256:" + key.rsplit("/", 1)[1]
        with contextlib.suppress(storage_errors.AlreadyExists):  # restored by ingest itself
            self.store.write(key, self.store.open(moved), expected_sha256=expected)
        log.warning("orphan %s was referenced meanwhile: copied back from %s", key, moved)

    def _referenced(self, key: str) -> bool:
        with self.uow_factory() as uow:
            if key.startswith(DERIVATIVES_PREFIX):
                sha = "sha256:" + key.split("/")[4]
                clause = (Evidence.expected_sha256 == sha) & (
                    Evidence.status == EvidenceStatus.STORED.value
                )
                return uow.session.scalar(select(Evidence.id).where(clause)) is not None
            evidence = uow.session.scalar(
                select(Evidence.id).where(
                    Evidence.storage_key == key, Evidence.status == EvidenceStatus.STORED.value
                )
            )
            upload = uow.session.scalar(
                select(Upload.id).where(Upload.storage_key == key, Upload.status == ACTIVE)
            )
            return evidence is not None or upload is not None

    def _scratch(self, key: str, now: datetime) -> Finding | None:
        token = key.split("/")[1]
        try:
            upload_id = str(uuid.UUID(token))
        except ValueError:
            upload_id = ""
        with self.uow_factory() as uow:
            status = uow.session.scalar(select(Upload.status).where(Upload.id == upload_id))
        if status == ACTIVE:
            return None
        try:
            age = now - self.store.stat(key).modified
        except storage_errors.NotFound:
            return None
        if age < self.grace:
            return None
        if status is None:
            return self._quarantine(
                key, "临时对象无上传记录 (scratch object without an upload row)"
            )
        message = (
            f"已结束上传 ({status}) 的临时尾部数据，不是证据 (scratch tail of an ended upload; "
            "not evidence)"
        )
        if self.dry_run:
            return Finding(Kind.ORPHAN_SCRATCH, key, "would delete", message, False)
        try:
            self.store.delete(key)
        except storage_errors.NotFound:
            return None
        return Finding(Kind.ORPHAN_SCRATCH, key, "deleted", message, True)

    # ------------------------------------------------------------------ rows without objects

    def _missing(self, keys: set[str]) -> list[Finding]:
        with self.uow_factory() as uow:
            rows = uow.session.execute(
                select(Evidence.id, Evidence.storage_key)
                .where(Evidence.status == EvidenceStatus.STORED.value)
                .order_by(Evidence.id)
            ).all()
        findings: list[Finding] = []
        for done, (evidence_id, key) in enumerate(rows, 1):
            self._tick("evidence", done, len(rows))
            if key and key in keys:
                continue
            if key and self.store.exists(key):  # written after we listed
                continue
            findings.append(self._at_risk(evidence_id, key or ""))
        return findings

    def _at_risk(self, evidence_id: str, key: str) -> Finding:
        message = (
            f"证据已入库但存储中找不到其原始文件，证据面临风险！请立即从备份恢复 {key} 并联系管理员 "
            f"(EVIDENCE AT RISK: stored evidence {evidence_id} has no object at {key}; restore "
            "it from backup now and contact the admin)"
        )
        if self.dry_run:
            return Finding(Kind.MISSING_OBJECT, evidence_id, "flag (dry run)", message, False)
        changed = flag_missing(self.uow_factory, evidence_id, key)
        action = "flagged: fixity_failed recorded" if changed else "flagged earlier"
        return Finding(Kind.MISSING_OBJECT, evidence_id, action, message, changed)

    def _tick(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)


def flag_missing(
    uow_factory: Callable[[], AbstractContextManager[UnitOfWork]],
    evidence_id: str,
    key: str,
    source: FixitySource = "reconcile",
) -> bool:
    """Record a missing original once: ``fixity_failed`` event + ``fixity_checks`` row.

    ``source`` says who found it (the reconciler, or a download). Returns False (and
    changes nothing) when it is already flagged as missing.
    """
    with uow_factory() as uow:
        check = uow.session.get(FixityCheck, evidence_id)
        if check is not None and check.status == "missing":
            return False
        evidence = uow.session.get(Evidence, evidence_id)
        assert evidence is not None
        record_fixity_failure(
            uow,
            evidence,
            source=source,
            problems=[f"对象缺失 (object missing): {key}"],
            missing=True,
        )
        uow.commit()
    return True
