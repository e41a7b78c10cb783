"""Case-file exports as background jobs (导出任务): start, run with progress, read back.

:func:`start_export` checks the archivist (or admin) and the case and records a queued
:class:`~server.models.ExportJob`; :func:`run_export` (in a background thread of the
server process, see :func:`run_in_background`) seals the bag with the archive
exporter, then streams the sealed archive once end to end — re-hashing every original
as the exporter does for a download — counting bytes and files and computing the
archive's SHA-256. Progress is written to the job row at most every
:data:`PROGRESS_EVERY`, so any page, in any server process, after a reload, shows it.
A job whose row has not moved for :data:`STALLED_AFTER` (its process died) reads as
failed (中断) and may simply be started again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from server.archive.bag import BagFormat
from server.archive.export import EXPORT_ROLES, CaseExporter
from server.auth import Principal, get_visible_case, require_role
from server.errors import Invalid, NotFound, ServiceError
from server.models import ExportJob, Role, User, utcnow
from server.services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.5  # seconds between progress writes
STALLED_AFTER = timedelta(minutes=2)
RECENT_JOBS = 20

UowFactory = Callable[[], AbstractContextManager[UnitOfWork]]


@dataclass(frozen=True)
class JobView:
    """A job as people read it: progress in %, time left, Chinese state."""

    job: ExportJob
    percent: int
    seconds_left: int | None
    state_zh: str


STATE_ZH = {"queued": "排队中", "running": "导出中", "done": "已完成", "failed": "失败"}


def start_export(uow: UnitOfWork, principal: Principal, case_id: str, fmt: str) -> ExportJob:
    """Record a queued export of ``case_id`` (archivist or admin; another's case → 404)."""
    require_role(principal, *EXPORT_ROLES)
    if fmt not in {f.value for f in BagFormat}:
        raise Invalid(errors={"format": ["须为 tar 或 zip (tar or zip)"]})
    case = get_visible_case(uow.session, principal, case_id)
    job = ExportJob(case_id=case.id, requested_by=principal.user_id, format=fmt, status="queued")
    uow.session.add(job)
    uow.session.flush()
    return job


def view(job: ExportJob, now: datetime | None = None) -> JobView:
    """Progress of ``job`` for a page or the API."""
    now = now or utcnow()
    percent = 100 if job.status == "done" else 0
    seconds_left = None
    if job.status == "running" and job.bytes_total:
        percent = min(99, job.bytes_done * 100 // job.bytes_total)
        if job.started_at and job.bytes_done:
            elapsed = (now - job.started_at).total_seconds()
            rate = job.bytes_done / max(elapsed, 0.001)
            seconds_left = int((job.bytes_total - job.bytes_done) / max(rate, 1))
    return JobView(job, percent, seconds_left, STATE_ZH.get(job.status, job.status))


def _mark_stalled(job: ExportJob, now: datetime) -> None:
    if job.status in ("queued", "running") and now - job.updated_at > STALLED_AFTER:
        job.status = "failed"
        job.error = "导出进程已中断，请重新导出 (the exporting process stopped; start it again)"
        job.finished_at = now


def get_job(uow: UnitOfWork, principal: Principal, job_id: str) -> JobView:
    """One export job of a case the principal may see (else NotFound)."""
    require_role(principal, *EXPORT_ROLES)
    job = uow.session.get(ExportJob, job_id)
    missing = NotFound(f"导出任务不存在 (export job {job_id} not found)")
    if job is None:
        raise missing
    try:
        get_visible_case(uow.session, principal, job.case_id)
    except NotFound:
        raise missing from None
    _mark_stalled(job, utcnow())
    return view(job)


def case_jobs(uow: UnitOfWork, principal: Principal, case_id: str) -> list[JobView]:
    """The case's recent export jobs, newest first."""
    require_role(principal, *EXPORT_ROLES)
    case = get_visible_case(uow.session, principal, case_id)
    now = utcnow()
    jobs = list(
        uow.session.scalars(
            select(ExportJob)
            .where(ExportJob.case_id == case.id)
            .order_by(ExportJob.created_at.desc())
            .limit(RECENT_JOBS)
        )
    )
    for job in jobs:
        _mark_stalled(job, now)
    return [view(job, now) for job in jobs]


class _CountingStore:
    """The blob store, telling ``on_open`` each key opened (one per payload file)."""

    def __init__(self, store: Any, on_open: Callable[[str], None]) -> None:
        self._store = store
        self._on_open = on_open

    def open(self, key: str, *args: Any, **kwargs: Any) -> Any:
        self._on_open(key)
        return self._store.open(key, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def run_export(
    job_id: str,
    *,
    uow_factory: UowFactory,
    exporter: CaseExporter,
    streaming_exporter: Callable[[Any], CaseExporter],
    store: Any,
) -> None:
    """Seal and verify-stream one queued job, writing progress; failures land on the row."""
    with uow_factory() as uow:
        job = uow.session.get(ExportJob, job_id)
        if job is None or job.status != "queued":
            return
        user = uow.session.get(User, job.requested_by)
        assert user is not None
        principal = Principal(user.id, user.agency_id, Role(user.role), f"export-job:{job.id}")
        case_id, fmt = job.case_id, BagFormat(job.format)
        job.status, job.started_at, job.updated_at = "running", utcnow(), utcnow()
        uow.commit()
    try:
        sealed = exporter.seal(principal, case_id, fmt)
        payload_keys = {p.storage_key for p in sealed.recipe.payload}
        opened: set[str] = set()
        progress = {"bytes": 0, "files": 0}
        _update(uow_factory, job_id, export_id=sealed.export_id, bytes_total=sealed.length,
                files_total=len(sealed.recipe.payload))  # fmt: skip

        def on_open(key: str) -> None:
            if key in payload_keys and key not in opened:
                opened.add(key)
                progress["files"] = len(opened) - 1  # the file just opened is not done yet

        digest = hashlib.sha256()
        last = time.monotonic()
        blocks: Iterator[bytes] = streaming_exporter(_CountingStore(store, on_open)).stream(
            principal, sealed
        )
        for block in blocks:
            digest.update(block)
            progress["bytes"] += len(block)
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                _update(uow_factory, job_id, bytes_done=progress["bytes"],
                        files_done=progress["files"])  # fmt: skip
        _update(
            uow_factory,
            job_id,
            bytes_done=progress["bytes"],
            files_done=len(sealed.recipe.payload),
            sha256="sha256:" + digest.hexdigest(),
            status="done",
            finished_at=utcnow(),
        )
    except Exception as exc:  # the job records every failure; the thread must not die silently
        message = exc.message if isinstance(exc, ServiceError) else str(exc)
        if not isinstance(exc, ServiceError):
            log.exception("export job %s failed", job_id)
        _update(uow_factory, job_id, status="failed", error=message[:2000], finished_at=utcnow())


def _update(uow_factory: UowFactory, job_id: str, **values: Any) -> None:
    with uow_factory() as uow:
        job = uow.session.get(ExportJob, job_id)
        if job is None:
            return
        for name, value in values.items():
            setattr(job, name, value)
        job.updated_at = utcnow()
        uow.commit()


def run_in_background(job_id: str, **parts: Any) -> threading.Thread:
    """Run :func:`run_export` in a daemon thread of this process (returns it)."""
    thread = threading.Thread(
        target=run_export, args=(job_id,), kwargs=parts, name=f"export-{job_id[:8]}", daemon=True
    )
    thread.start()
    return thread
