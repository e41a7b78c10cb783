"""Background media inspection (媒体检查任务) after an original is safely stored.

The queue is the ``evidence`` row itself: completion sets ``inspection_status =
'pending'`` in the same transaction that stores the original, so a crash never loses
pending work. A runner *claims* a row with one atomic ``UPDATE … WHERE pending, or
running with an expired lease`` (so two processes never inspect the same item and a
dead worker's item is retried, at most :data:`MAX_ATTEMPTS` times), streams the
original from storage to a bounded temp file, runs :func:`server.media.inspect_media`,
stores derivatives as new objects (``derivatives/sha256/…/<name>``, derived from the
original's SHA-256) and saves facts and flags on the row (``done``), or the error
(``failed``). The original is only read, never touched.

The same read is the original's first full re-read after ingest, so it computes SHA-512
and BLAKE3 (ingest verifies SHA-256 only, off the hot path) and re-checks SHA-256 and
size: a match records ``evidence.sha512`` and ``evidence.blake3`` (what an export
re-checks the original against as it streams); a mismatch (the store changed the bytes
right after ingest) records neither, appends ``fixity_failed`` to the case's custody log
and flags the evidence ``fixity_failed``. Originals above the inspection size limit, or when ffmpeg is
missing, are still read once for this.

Modes (``CASETRAIL_INSPECTION``): ``thread`` (default: an in-process thread pool per
server process), ``worker`` (the web process only queues; run ``casetrail worker``),
``sync`` (inspect before the upload's response; for tests and tiny installs).

Work left over by a crash (``pending`` rows whose submit never ran, ``running`` rows
whose lease ran out) is picked up by :meth:`InspectionJobs.run_pending`: in ``thread``
mode each server process runs it in the background (:class:`server.jobs.periodic.Every`)
at start-up and every ``CASETRAIL_JOBS_POLL_SECONDS``; in ``worker`` mode ``casetrail
worker`` polls it.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update

from server.media import DeclaredFacts, FFmpegTools, MediaToolMissing, inspect_media
from server.media.report import Flag, FlagCode
from server.models import CaptureManifest, Evidence, EvidenceStatus, utcnow
from server.services.fixity import record_fixity_failure
from server.services.unit_of_work import UnitOfWork
from storage import errors as storage_errors
from storage.hashing import Digester, read_blocks
from storage.keys import derivative_key

log = logging.getLogger(__name__)

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
MAX_ATTEMPTS = 3


def _claimable(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """A stored original whose inspection waits, or was abandoned (its lease ran out),
    with attempts left."""
    return (
        Evidence.status == EvidenceStatus.STORED.value,
        Evidence.inspection_attempts < MAX_ATTEMPTS,
        or_(
            Evidence.inspection_status == PENDING,
            and_(
                Evidence.inspection_status == RUNNING,
                Evidence.inspection_lease_until < now,
            ),
        ),
    )


@dataclass
class InspectionJobs:
    """Claims and runs inspection jobs; ``submit`` schedules one after a completion."""

    uow_factory: Callable[[], AbstractContextManager[UnitOfWork]]
    store: Any  # storage.BlobStore
    mode: str = "thread"
    threads: int = 1
    max_bytes: int = 8 << 30
    lease: timedelta = timedelta(minutes=15)
    work_dir: str | None = None
    _pool: ThreadPoolExecutor | None = field(default=None, init=False)
    _futures: set[Future[bool]] = field(default_factory=set, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _tools: FFmpegTools | None = field(default=None, init=False)

    def submit(self, evidence_id: str) -> None:
        """Schedule the inspection of ``evidence_id`` according to the mode."""
        if self.mode == "sync":
            self.run_one(evidence_id)
        elif self.mode == "thread":
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="inspect")
                future = self._pool.submit(self.run_one, evidence_id)
                self._futures.add(future)
            future.add_done_callback(self._forget)

    def _forget(self, future: Future[bool]) -> None:
        with self._lock:
            self._futures.discard(future)
        error = None if future.cancelled() else future.exception()
        if error is not None:  # the row stays pending/running; run_pending retries it
            log.error("inspection job failed; it will be retried", exc_info=error)

    def claim(self, evidence_id: str, now: datetime | None = None) -> bool:
        """Take the job of ``evidence_id`` if pending or abandoned; True when ours."""
        now = now or utcnow()
        with self.uow_factory() as uow:
            result = uow.session.execute(
                update(Evidence)
                .where(Evidence.id == evidence_id, *_claimable(now))
                .values(
                    inspection_status=RUNNING,
                    inspection_lease_until=now + self.lease,
                    inspection_attempts=Evidence.inspection_attempts + 1,
                )
            )
            uow.commit()
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def run_pending(self, limit: int = 100) -> int:
        """Claim and run up to ``limit`` waiting jobs (a worker's loop body); how many ran."""
        now = utcnow()
        with self.uow_factory() as uow:
            ids = list(
                uow.session.scalars(
                    select(Evidence.id)
                    .where(*_claimable(now))
                    .order_by(Evidence.received_at)
                    .limit(limit)
                )
            )
        return sum(1 for evidence_id in ids if self.run_one(evidence_id))

    def run_one(self, evidence_id: str) -> bool:
        """Claim and inspect one evidence item; False if someone else has it or it is done."""
        if not self.claim(evidence_id):
            return False
        read = _OriginalRead()
        try:
            result = self._inspect(evidence_id, read)
            status = FAILED if result.get("error") else DONE
        except Exception as exc:  # recorded on the row; the original is untouched
            log.exception("inspection of %s failed", evidence_id)
            result = {
                "error": "检查未能完成，原件未受影响；管理员可按证据编号在服务器日志中查看原因 "
                f"(inspection could not finish: {type(exc).__name__}; the original is untouched "
                "— the admin finds the cause in the server log under this evidence id)"
            }
            status = FAILED
        with self.uow_factory() as uow:
            evidence = uow.session.get(Evidence, evidence_id)
            if evidence is not None:
                if read.complete:
                    self._record_digests(uow, evidence, read.digests, result)
                evidence.inspection = result
                evidence.inspection_status = status
                evidence.inspection_lease_until = None
                sniffed = result.get("media_type")
                if sniffed and not evidence.media_type:
                    evidence.media_type = sniffed
                uow.commit()
        return True

    def _ffmpeg(self) -> FFmpegTools:
        if self._tools is None:
            self._tools = FFmpegTools.resolve()
        return self._tools

    @staticmethod
    def _record_digests(
        uow: UnitOfWork, evidence: Evidence, read: Digester, result: dict[str, Any]
    ) -> None:
        """SHA-512 and BLAKE3 of a re-read that matches ingest; else ``fixity_failed``
        event + flag."""
        if read.sha256 == evidence.expected_sha256 and read.size == evidence.expected_size:
            evidence.sha512 = evidence.sha512 or read.sha512
            evidence.blake3 = evidence.blake3 or read.blake3
            return
        problem = (
            f"摘要不符 / recorded {evidence.expected_sha256} ({evidence.expected_size} B), "
            f"read {read.sha256} ({read.size} B)"
        )
        flag = Flag.of(FlagCode.FIXITY_FAILED, problem)
        result.setdefault("flags", []).append(
            {
                "code": flag.code.value,
                "message_zh": flag.message_zh,
                "message_en": flag.message_en,
                "detail": flag.detail,
            }
        )
        record_fixity_failure(uow, evidence, source="inspection", problems=[problem])

    def _read_original(self, key: str, read: _OriginalRead, out: Path | None) -> None:
        """Stream the original once, hashing it; copy it to ``out`` when given."""
        digests = read.digests
        with digests:
            if out is None:
                for block in self.store.open(key):
                    digests.update(block)
            else:
                with out.open("wb") as f:
                    for block in self.store.open(key):
                        digests.update(block)  # hashed in threads while the copy is written
                        f.write(block)
        read.complete = True

    def _inspect(self, evidence_id: str, read: _OriginalRead) -> dict[str, Any]:
        with self.uow_factory() as uow:
            evidence = uow.session.get(Evidence, evidence_id)
            assert evidence is not None and evidence.storage_key is not None
            manifest = uow.session.get(CaptureManifest, evidence.manifest_id)
            key, sha256, size = (
                evidence.storage_key,
                evidence.expected_sha256,
                evidence.expected_size,
            )
            declared_type, declared = _declared(manifest, evidence.file_index)
            declared_type = evidence.media_type or declared_type
        if size > self.max_bytes:
            self._read_original(key, read, None)
            return {
                "error": f"文件过大，未检查 (larger than the {self.max_bytes}-byte inspection limit)",
                "flags": [],
            }
        try:
            tools = self._ffmpeg()
        except MediaToolMissing as exc:
            self._read_original(key, read, None)
            return {"error": f"ffmpeg 不可用 (ffmpeg missing): {exc}", "flags": []}
        work = Path(tempfile.mkdtemp(prefix="inspect-", dir=self.work_dir))
        try:
            original = work / "original"
            self._read_original(key, read, original)
            report = inspect_media(
                original,
                declared_media_type=declared_type,
                declared=declared,
                ffmpeg=tools,
                out_dir=work / "derived",
            )
            result = report.to_json_dict()
            stored: dict[str, Any] = {}
            for derivative in report.derivatives:
                name = f"{derivative.role.value}{_suffix(derivative.media_type)}"
                dkey = derivative_key(sha256, name)
                try:
                    with derivative.path.open("rb") as f:
                        self.store.write(dkey, read_blocks(f))
                except storage_errors.AlreadyExists:
                    pass  # made by an earlier attempt: derivatives are reproducible views
                stored[derivative.role.value] = {
                    "key": dkey,
                    "media_type": derivative.media_type,
                    "width": derivative.width,
                    "height": derivative.height,
                    "derived_from": sha256,
                }
            result["derivatives"] = stored
            plain: dict[str, Any] = json.loads(json.dumps(result, default=str))
            return plain
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def shutdown(self) -> None:
        """Stop the thread pool after the running jobs."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


@dataclass
class _OriginalRead:
    """SHA-256, SHA-512 and BLAKE3 of the inspection's one read of an original."""

    digests: Digester = field(default_factory=lambda: Digester(blake3=True))
    complete: bool = False  # read to the end (a failed read proves nothing)


def _suffix(media_type: str) -> str:
    return {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}.get(media_type, "")


def _declared(manifest: CaptureManifest | None, index: int) -> tuple[str | None, DeclaredFacts]:
    """The declared media type and facts (time, GPS) of file ``index`` of a manifest."""
    if manifest is None:
        return None, DeclaredFacts()
    try:
        wire = json.loads(manifest.signed_json)
        body = wire.get("manifest", wire)
        files = body.get("files") or []
        media_type = files[index].get("media_type") if index < len(files) else None
        moment = body.get("device_time")
        device_time = datetime.fromisoformat(moment) if moment else None
        location = body.get("location") or {}
        lat = Decimal(location["lat"]) if location.get("lat") else None
        lon = Decimal(location["lon"]) if location.get("lon") else None
        return media_type, DeclaredFacts(device_time=device_time, lat=lat, lon=lon)
    except (ValueError, TypeError, AttributeError, KeyError, ArithmeticError):
        return None, DeclaredFacts()
