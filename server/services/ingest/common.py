"""Shared parts of the ingest use cases: settings, views, progress, and
:class:`IngestBase` (what every step holds: units of work, the store, the signer)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVarTuple

from sqlalchemy import Select, bindparam, select

from core.checkpoint import NoteSigner
from server import hashstate
from server.auth import TOKEN_OWNER, Principal, authenticate, principal_of, token_digest
from server.errors import (
    BadRequest,
    Invalid,
    NotFound,
)
from server.models import (
    CaptureManifest,
    Case,
    CaseOfficer,
    Evidence,
    Upload,
    User,
    utcnow,
)
from server.services.ingest import lease
from server.services.sequencer import Sequencer
from server.services.unit_of_work import UnitOfWork
from storage import errors as storage_errors
from storage.keys import upload_key
from storage.port import BlobStore, PartInfo

if TYPE_CHECKING:
    from storage.hashing import HashWorker

log = logging.getLogger(__name__)


ACTIVE, COMPLETED, FAILED, TERMINATED = "active", "completed", "failed", "terminated"


ENDED_TERMINATED, ENDED_EXPIRED, ENDED_ABANDONED = "terminated", "expired", "abandoned"
"""Reasons an ``upload_ended`` custody event gives."""


EMPTY_SHA256 = "sha256:" + hashlib.sha256(b"").hexdigest()


MISMATCH_MESSAGE = (
    "设备上的文件与其签名清单所述不符，已隔离；请重新采集或检查设备后再上传 "
    "(the file on the device differs from what was signed; it was quarantined — "
    "recapture or check the device, then upload again)"
)


@dataclass(frozen=True)
class IngestConfig:
    """Limits and timings of the ingest path."""

    max_size: int = 64 << 30
    upload_ttl: timedelta = timedelta(days=7)
    lock_ttl: timedelta = timedelta(seconds=60)
    local_part_size: int = 64 << 20  # stores without a minimum part size stream straight in
    s3_part_size: int = 16 << 20  # one in-memory part buffer per upload in flight
    checksum_spool_memory: int = 8 << 20  # checksummed chunks above this spool to disk
    checksum_chunk_max: int = 64 << 20  # a checksummed chunk is spooled whole: at most this
    whole_body_max: int = 16 << 20  # a whole file up to this in one POST: one write, one commit
    spool_dir: str | None = None


@dataclass(frozen=True)
class UploadView:
    """What a tus response reports about an upload."""

    id: str
    evidence_id: str
    offset: int
    length: int
    status: str
    expires_at: datetime | None
    receipt: dict[str, Any] | None = None
    filename: str | None = None


@dataclass(frozen=True)
class Credentials:
    """A request's ``Authorization`` header, authenticated inside the use case's first
    unit of work (not in a transaction of its own)."""

    authorization: str | None


Caller = Principal | Credentials


def _principal(uow: UnitOfWork, who: Caller) -> Principal:
    if isinstance(who, Principal):
        return who
    return authenticate(uow.session, who.authorization)


def _keep_token_use(uow: UnitOfWork) -> None:
    """Commit a unit that only authenticated (the token's last use may have moved)."""
    if uow.session.dirty:
        uow.commit()


class ClientGone(BadRequest):
    """The request body ended early (client disconnected); stored bytes were kept."""


@dataclass
class _Progress:
    """The durable state of an upload while one PATCH holds its lease."""

    upload_id: str
    storage_key: str
    storage_upload_id: str | None
    length: int
    parts_count: int
    parts_size: int
    tail_size: int
    hasher: hashstate.RunningSha256 | None
    lock: str
    renewed_at: datetime | None = None
    pipe: HashWorker | None = None  # feeds ``hasher`` while a PATCH streams
    hash_state: bytes | None = None  # as last recorded
    expected_sha256: str = ""
    recorded: list[PartInfo] | None = None  # read with the last step's record
    released: bool = False  # the lease ended (with the last record, or the completion)

    @property
    def offset(self) -> int:
        return self.parts_size + self.tail_size


@dataclass(frozen=True)
class _Recorded:
    """The parts an upload recorded in the database, and whether they make the whole file."""

    count: int
    length: int
    parts: list[PartInfo]

    @property
    def complete(self) -> bool:
        """Parts 1..count, each recorded, adding up to the upload's length."""
        numbers = [p.number for p in self.parts]
        return numbers == list(range(1, self.count + 1)) and (
            sum(p.size for p in self.parts) == self.length
        )


def _token(upload_id: str) -> str:
    return upload_id.replace("-", "")


def _past_length(length: int | None) -> str:
    if length is None:
        return (
            "数据超出 Upload-Length，本块末段及超出部分均未保存；请 HEAD 查询偏移量后只发送剩余字节 "
            "(the body goes past Upload-Length; its last part and the bytes beyond were not "
            "stored — send HEAD and send only the remaining bytes)"
        )
    return (
        f"数据超出 Upload-Length ({length} 字节)，超出部分未保存 (the body goes past "
        f"Upload-Length {length}; bytes beyond it were not stored)"
    )


_Ts = TypeVarTuple("_Ts")


def _lock_evidence(uow: UnitOfWork, evidence_id: str) -> tuple[Evidence, str]:
    """The evidence row, locked until the unit ends (``FOR UPDATE`` on PostgreSQL), and
    its manifest's public id (its receipt names it), in one statement."""
    evidence, manifest_id = uow.session.execute(
        _LOCKED_EVIDENCE, {"evidence_id": evidence_id}
    ).one()
    return evidence, manifest_id


def _with_access(query: Select[*_Ts]) -> Select[Any]:
    """``query`` (which selects ``Evidence``) with the evidence's case's agency and the
    caller's assignment to it (``None`` when not assigned) added as two more columns; the
    caller's user id is the parameter ``user_id``."""
    return (
        query.add_columns(Case.agency_id, CaseOfficer.user_id)
        .join(Case, Case.id == Evidence.case_id)
        .outerjoin(
            CaseOfficer,
            (CaseOfficer.case_id == Evidence.case_id)
            & (CaseOfficer.user_id == bindparam("user_id")),
        )
    )


# built once: on a photo's path, building these cost as much as running them
_LOCKED_EVIDENCE = (
    select(Evidence, CaptureManifest.manifest_id)
    .join(CaptureManifest, CaptureManifest.id == Evidence.manifest_id)
    .where(Evidence.id == bindparam("evidence_id"))
    .with_for_update(of=Evidence)
    .execution_options(populate_existing=True)
)
_ANNOUNCED = (
    Evidence.id,
    Evidence.expected_sha256,
    Evidence.expected_size,
    Evidence.status,
    Case.agency_id.label("case_agency_id"),
    CaseOfficer.user_id.label("officer_id"),
)
"""An announced file's columns an upload needs, with who may upload it: its case's agency
and the caller's assignment to that case (``None`` when not assigned)."""


def _announced_file(query: Select[*_Ts], officer: Any) -> Select[Any]:
    """``query`` (from ``Evidence``) with the :data:`_ANNOUNCED` columns, ``officer`` the
    caller's user id (a parameter or the token's user)."""
    return (
        query.add_columns(*_ANNOUNCED)
        .outerjoin(Case, Case.id == Evidence.case_id)
        .outerjoin(
            CaseOfficer,
            (CaseOfficer.case_id == Evidence.case_id) & (CaseOfficer.user_id == officer),
        )
    )


_EVIDENCE_BY_ID = _announced_file(
    select().select_from(Evidence).where(Evidence.id == bindparam("evidence_id")),
    bindparam("user_id"),
)
_EVIDENCE_BY_INDEX = _announced_file(
    select()
    .select_from(Evidence)
    .join(CaptureManifest, CaptureManifest.id == Evidence.manifest_id)
    .where(
        CaptureManifest.manifest_id == bindparam("manifest_id"),
        Evidence.file_index == bindparam("file_index"),
    ),
    bindparam("user_id"),
)
_CALLER_AND_EVIDENCE = _announced_file(
    TOKEN_OWNER.outerjoin(Evidence, Evidence.id == bindparam("evidence_id")), User.id
)
"""The token's owner (:data:`server.auth.TOKEN_OWNER`) and the file, for the token's
user: a photo's lookup in one read of plain columns."""


@dataclass(frozen=True)
class AnnouncedFile:
    """The announced file an upload names, as its lookup read it."""

    id: str
    expected_sha256: str
    expected_size: int
    status: str


@dataclass
class IngestBase:
    """What every ingest step shares: the unit-of-work factory, the store, the signer, settings."""

    uow_factory: Callable[[], AbstractContextManager[UnitOfWork]]
    store: BlobStore
    signer: Callable[[], NoteSigner]
    config: IngestConfig = field(default_factory=IngestConfig)
    on_stored: Callable[[str], None] | None = None
    lock_prefix: str = field(default_factory=lease.owner_prefix)
    sequencer: Sequencer = field(init=False)  # completions commit in its batches

    def __post_init__(self) -> None:
        self.sequencer = Sequencer(self.uow_factory, self.signer)

    def _reading(self) -> AbstractContextManager[UnitOfWork]:
        """A read-only unit (a snapshot without SQLite's write lock) where the factory's
        units offer one, else an ordinary unit."""
        unit = self.uow_factory()
        reading = getattr(unit, "reading", None)
        return reading() if reading is not None else unit

    def _bound_evidence(
        self, uow: UnitOfWork, who: Caller, metadata: dict[str, str]
    ) -> tuple[Principal, AnnouncedFile]:
        """The caller, and the announced file ``metadata`` names if the caller may upload
        it: a file of a case of the caller's agency to which the caller (a device's owner)
        is assigned. Read with its case's agency and the assignment in one statement —
        and, for a header naming ``evidence_id`` (the photo path), with the token too."""
        params: dict[str, Any] = {}
        if metadata.get("evidence_id"):
            params["evidence_id"] = metadata["evidence_id"]
        elif metadata.get("manifest_id") and metadata.get("file_index", "").isdigit():
            params.update(
                manifest_id=metadata["manifest_id"], file_index=int(metadata["file_index"])
            )
        row: Any
        if isinstance(who, Credentials) and "evidence_id" in params:
            params["digest"] = token_digest(who.authorization)
            row = uow.session.connection().execute(_CALLER_AND_EVIDENCE, params).first()
            principal = principal_of(uow.session, row, params["digest"])
        else:
            principal = _principal(uow, who)
            if not params:
                raise Invalid(
                    "Upload-Metadata 须包含 evidence_id，或 manifest_id 与 file_index，用以指明"
                    "采集清单中的文件；请先登记采集清单 (Upload-Metadata must name the "
                    "announced file: evidence_id, or manifest_id + file_index; register the "
                    "manifest first)",
                    {"Upload-Metadata": ["evidence_id or manifest_id + file_index required"]},
                )
            params["user_id"] = principal.user_id
            found = _EVIDENCE_BY_ID if "evidence_id" in params else _EVIDENCE_BY_INDEX
            row = uow.session.connection().execute(found, params).first()
        # never name a case the caller may not see: one answer for all three
        if (
            row is None
            or row.id is None
            or row.case_agency_id != principal.agency_id
            or row.officer_id is None
        ):
            raise NotFound("所指证据不存在或您无权查看 (evidence not found or not visible to you)")
        return principal, AnnouncedFile(row.id, row.expected_sha256, row.expected_size, row.status)

    def _visible_upload(
        self, uow: UnitOfWork, principal: Principal, upload_id: str, *, to_write: bool = False
    ) -> tuple[Upload, Evidence]:
        """The upload and its evidence, if ``principal`` may see them. ``to_write``: the
        row stays as read until the unit ends (PostgreSQL locks it; a SQLite write unit
        holds the database's write lock already), so no other request moves it meanwhile."""
        missing = NotFound("上传不存在或您无权查看 (upload not found or not visible to you)")
        try:
            uuid.UUID(upload_id)
        except ValueError:
            raise missing from None
        mine = (
            select(Upload, Evidence)
            .join(Evidence, Evidence.id == Upload.evidence_id)
            .where(Upload.id == upload_id)
        )
        if to_write:
            mine = mine.with_for_update(of=Upload)
        row: Any = uow.session.execute(_with_access(mine), {"user_id": principal.user_id}).first()
        if row is None or row[2] != principal.agency_id or row[3] is None:
            raise missing
        return row[0], row[1]

    def _expired(self, upload: Upload) -> bool:
        return (
            upload.status == ACTIVE
            and upload.expires_at is not None
            and upload.expires_at < utcnow()
        )

    def _view(
        self, upload: Upload, evidence: Evidence, receipt: dict[str, Any] | None = None
    ) -> UploadView:
        """The upload as the client sees it (``receipt``: the one just made, if at hand)."""
        if receipt is None and upload.status == COMPLETED and evidence.receipt:
            receipt = json.loads(evidence.receipt)
        status = TERMINATED if self._expired(upload) else upload.status
        return UploadView(
            id=upload.id,
            evidence_id=evidence.id,
            offset=upload.offset,
            length=upload.length,
            status=status,
            expires_at=upload.expires_at,
            receipt=receipt,
            filename=upload.filename,
        )

    def _drop_tail(self, upload_id: str) -> None:
        with contextlib.suppress(storage_errors.StorageError):
            self.store.delete(upload_key(_token(upload_id)))

    @staticmethod
    def _quietly(action: Callable[..., Any], *args: Any) -> None:
        try:
            action(*args)
        except storage_errors.StorageError:
            log.warning("cleanup %s%r failed", getattr(action, "__name__", action), args)

    def _schedule_inspection(self, evidence_id: str) -> None:
        if self.on_stored is not None:
            try:
                self.on_stored(evidence_id)
            except Exception:  # the job row is durable; a worker picks it up later
                log.exception("could not schedule inspection of %s", evidence_id)
