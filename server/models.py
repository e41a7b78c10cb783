"""The sync server's data model (SQLAlchemy 2, SQLite and PostgreSQL alike).

Public objects have UUID text ids (``str``), so ids leak nothing about counts and are
the same on both databases. Times are timezone-aware UTC (:class:`UTCDateTime`).
Enumerations are stored as short strings with CHECK constraints, digests as
``sha256:<hex>`` text, Merkle hashes as raw 32 bytes.

Schema changes go through Alembic (``server/migrations``); ``tests/server/
test_migrations.py`` fails when these models and the migrations drift apart.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    """A fresh public id (UUID4 text)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; CaseTrail stores aware UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_in(column: str, values: type[StrEnum]) -> CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_allowed")


class Role(StrEnum):
    """What a user does (角色)."""

    INSPECTOR = "inspector"  # 执法人员, holds a 执法证号
    REVIEWER = "reviewer"  # 法制审核 / 案卷评查
    ARCHIVIST = "archivist"  # 档案管理
    ADMIN = "admin"  # 系统管理员
    HEAD = "head"  # 行政机关负责人: 集体讨论, decisions where the law needs one (处罚法 Art. 57)


class DeviceStatus(StrEnum):
    """Lifecycle of a capture device (采集设备)."""

    PENDING = "pending"  # registered, waiting for its enrolment code
    ACTIVE = "active"  # enrolled: public key known, token issued
    REVOKED = "revoked"


class CaseStatus(StrEnum):
    """Whether a case (案件) is still being worked on."""

    OPEN = "open"
    CLOSED = "closed"


class EvidenceStatus(StrEnum):
    """Where an announced file stands."""

    EXPECTED = "expected"  # announced by a manifest, no byte yet
    UPLOADING = "uploading"
    STORED = "stored"  # durable, digests match the manifest
    MISMATCH = "mismatch"  # quarantined: size or digest differs from the manifest


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (Alembic batch mode needs them)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Agency(Base):
    """An enforcement agency (执法机关); every user, device and case belongs to one."""

    __tablename__ = "agencies"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A person with a role in an agency; inspectors carry their 执法证号 (``cert_no``)."""

    __tablename__ = "users"
    __table_args__ = (
        _check_in("role", Role),
        CheckConstraint("role <> 'inspector' OR cert_no IS NOT NULL", name="inspector_cert_no"),
        UniqueConstraint("agency_id", "cert_no"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    cert_no: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None]

    agency: Mapped[Agency] = relationship(lazy="joined")


class ApiToken(Base):
    """A bearer token (``ct_…``); only its SHA-256 is kept, its prefix is shown to humans."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (device_id IS NULL)", name="one_owner"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(71), unique=True)  # sha256:<hex>
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Device(Base):
    """A capture device or docking station (采集设备/采集站) acting for its owner."""

    __tablename__ = "devices"
    __table_args__ = (_check_in("status", DeviceStatus),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    owner_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=DeviceStatus.PENDING.value)
    enrol_code_hash: Mapped[str | None] = mapped_column(String(71))
    enrol_code_expires_at: Mapped[datetime | None]
    public_key: Mapped[str | None] = mapped_column(Text)  # base64 raw (Ed25519) / SPKI (ES256)
    key_alg: Mapped[str | None] = mapped_column(String(16))
    key_id: Mapped[str | None] = mapped_column(String(71), unique=True)
    device_seq_head: Mapped[int] = mapped_column(BigInteger, default=0)
    last_manifest_hash: Mapped[str | None] = mapped_column(String(71))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enrolled_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    owner: Mapped[User] = relationship(lazy="joined")


class Case(Base):
    """An enforcement case (案件) under the recording standard version pinned at creation."""

    __tablename__ = "cases"
    __table_args__ = (
        _check_in("status", CaseStatus),
        UniqueConstraint("agency_id", "case_no"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    category: Mapped[str] = mapped_column(String(64))
    standard_id: Mapped[str] = mapped_column(String(64))
    standard_version: Mapped[str] = mapped_column(String(32))
    case_no: Mapped[str] = mapped_column(String(100))  # 案号
    title: Mapped[str] = mapped_column(String(500))
    parties: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN.value)
    current_stage: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]

    officers: Mapped[list[CaseOfficer]] = relationship(
        back_populates="case",
        cascade="all, delete-orphan",
        order_by="CaseOfficer.assigned_at",
        lazy="selectin",
    )


class CaseOfficer(Base):
    """An inspector assigned to a case (承办人员)."""

    __tablename__ = "case_officers"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    assigned_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="officers")
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class StageChange(Base):
    """One entry of a case's stage history (环节变更记录)."""

    __tablename__ = "stage_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(64))
    to_stage: Mapped[str] = mapped_column(String(64))
    out_of_order: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaptureManifest(Base):
    """A signed capture manifest as received from a device (采集清单)."""

    __tablename__ = "capture_manifests"
    __table_args__ = (UniqueConstraint("device_id", "device_seq"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    manifest_id: Mapped[str] = mapped_column(String(64), unique=True)  # chosen by the device
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    device_seq: Mapped[int] = mapped_column(BigInteger)
    manifest_hash: Mapped[str] = mapped_column(String(71), unique=True)
    signed_json: Mapped[str] = mapped_column(Text)  # the wire form, canonical JSON
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    verification: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Evidence(Base):
    """One file a manifest announced; the ingest path fills it when the bytes arrive."""

    __tablename__ = "evidence"
    __table_args__ = (
        _check_in("status", EvidenceStatus),
        UniqueConstraint("manifest_id", "file_index"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    manifest_id: Mapped[str] = mapped_column(ForeignKey("capture_manifests.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    file_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)  # metadata only, never a storage path
    expected_size: Mapped[int] = mapped_column(BigInteger)
    expected_sha256: Mapped[str] = mapped_column(String(71), index=True)
    status: Mapped[str] = mapped_column(String(16), default=EvidenceStatus.EXPECTED.value)
    storage_key: Mapped[str | None] = mapped_column(String(512))
    sha512: Mapped[str | None] = mapped_column(String(135))
    # BLAKE3 of the same bytes, found with SHA-512 by the first re-read whose SHA-256
    # matched (inspection, or an export's stocktake): what an export re-checks as it
    # streams, at five times SHA-256's speed (server/archive/bag.py)
    blake3: Mapped[str | None] = mapped_column(String(71))
    media_type: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Ingest (server/services/ingest.py): the signed receipt, and the inspection job whose
    # queue is this row (pending → running → done | failed; lease for crashed workers).
    receipt: Mapped[str | None] = mapped_column(Text)
    inspection_status: Mapped[str | None] = mapped_column(String(16), index=True)
    inspection: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    inspection_attempts: Mapped[int] = mapped_column(Integer, default=0)
    inspection_lease_until: Mapped[datetime | None]


class Upload(Base):
    """A resumable (tus) upload of one evidence file; state and lock live here."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    evidence_id: Mapped[str] = mapped_column(ForeignKey("evidence.id"), index=True)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    length: Mapped[int] = mapped_column(BigInteger)
    storage_upload_id: Mapped[str | None] = mapped_column(String(512))
    lock_owner: Mapped[str | None] = mapped_column(String(100))
    lock_expires_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    hash_state: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Ingest state (server/services/ingest.py): durable parts + the tail kept as a scratch
    # object below the store's minimum part size; offset = parts_size + tail_size.
    status: Mapped[str] = mapped_column(String(16), default="active")
    storage_key: Mapped[str | None] = mapped_column(String(512))
    parts_count: Mapped[int] = mapped_column(Integer, default=0)
    parts_size: Mapped[int] = mapped_column(BigInteger, default=0)
    tail_size: Mapped[int] = mapped_column(BigInteger, default=0)
    filename: Mapped[str | None] = mapped_column(Text)  # metadata only, never a storage key
    created_by: Mapped[str | None] = mapped_column(String(100))


class UploadPart(Base):
    """One part an upload recorded: the size and ETag the store answered when it was put.

    Completion hands the store exactly these (never "whatever it lists now").
    """

    __tablename__ = "upload_parts"
    upload_id: Mapped[str] = mapped_column(ForeignKey("uploads.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str] = mapped_column(String(512))


class CustodyEventRow(Base):
    """One custody event: a leaf of its case chain and of the global Merkle log."""

    __tablename__ = "custody_events"
    __table_args__ = (UniqueConstraint("case_id", "case_seq"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    log_index: Mapped[int] = mapped_column(BigInteger, unique=True)
    # no index of its own: (case_id, case_seq) and ix_custody_events_case_type lead with it
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    case_seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    event_hash: Mapped[str] = mapped_column(String(71))
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    canonical_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MerkleNode(Base):
    """Hash of the complete aligned subtree ``[index·2^level, (index+1)·2^level)``."""

    __tablename__ = "merkle_nodes"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogHead(Base):
    """The single row holding the log's size and root; appends lock it (FOR UPDATE)."""

    __tablename__ = "log_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=1)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    peaks: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The hashes of the complete subtrees that make up the tree, left to right (derived
    from ``merkle_nodes``; an append checks them against ``root`` before using them)."""


class Checkpoint(Base):
    """A signed checkpoint (C2SP signed note) of the log at ``size``."""

    __tablename__ = "checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LegalReview(Base):
    """A recorded 法制审核 opinion on a case's intended decision."""

    __tablename__ = "legal_reviews"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    reviewer_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(32))
    opinion: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reviewed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Decision(Base):
    """An enforcement decision (执法决定) on a case; major ones need a passed review."""

    __tablename__ = "decisions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    decision_type: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, default="")
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    major: Mapped[bool] = mapped_column(Boolean, default=False)
    major_reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    legal_review_id: Mapped[str | None] = mapped_column(ForeignKey("legal_reviews.id"))
    decided_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    # 0007: the conditions that held ({condition: [{reason, added_by_handler}]}, core.procedure)
    conditions: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CompletenessWaiver(Base):
    """A reviewer's acceptance of a missing item (豁免) in a case's completeness report."""

    __tablename__ = "completeness_waivers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    stage: Mapped[str | None] = mapped_column(String(64))  # None: case-wide (deadlines)
    item: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    waived_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    waived_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_custody_events_case_type", CustodyEventRow.case_id, CustodyEventRow.event_type)


class FixityCheck(Base):
    """The latest fixity (完整性核验) result of one stored original, by the sweep or reconciler."""

    __tablename__ = "fixity_checks"
    evidence_id: Mapped[str] = mapped_column(ForeignKey("evidence.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # ok | failed | missing
    detail: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)


class FixitySweep(Base):
    """One fixity sweep; ``cursor`` is the last evidence id checked, so a killed sweep resumes."""

    __tablename__ = "fixity_sweeps"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    case_id: Mapped[str | None] = mapped_column(String(36))  # None = every case
    cursor: Mapped[str | None] = mapped_column(String(36))
    checked: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Publication(Base):
    """The public release (执法决定信息公开) of one decision: due date, redaction, status.

    ``due_on`` follows ``decided_on`` (决定书落款日期) on the agency calendar
    (:mod:`core.publication`); ``draft`` is the reviewer-confirmed redacted record
    waiting to be published; what the public sees lives in :class:`PublicationVersion`.
    """

    __tablename__ = "publications"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'published', 'withdrawn', 'exempt')", name="status_allowed"
        ),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decisions.id"), unique=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    category: Mapped[str] = mapped_column(String(64))
    decided_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    due_estimated: Mapped[bool] = mapped_column(Boolean, default=False)  # calendar ran out
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    doc_no: Mapped[str] = mapped_column(String(200), default="")
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    confirmed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None]
    exempt_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)
    first_published_at: Mapped[datetime | None]
    first_published_on: Mapped[date | None] = mapped_column(Date)
    revoked_on: Mapped[date | None] = mapped_column(Date)
    withdraw_due_on: Mapped[date | None] = mapped_column(Date)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_on: Mapped[date | None] = mapped_column(Date)
    withdraw_reason: Mapped[str | None] = mapped_column(Text)
    public_text: Mapped[str | None] = mapped_column(Text)  # redacted, for the public search
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PublicationVersion(Base):
    """One published version of a decision's public record; a correction (更正) adds one."""

    __tablename__ = "publication_versions"
    __table_args__ = (UniqueConstraint("publication_id", "version"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    publication_id: Mapped[str] = mapped_column(ForeignKey("publications.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # core.redaction.PublicRecord
    reason: Mapped[str] = mapped_column(Text, default="")  # why it was corrected
    published_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class InspectionItem(Base):
    """An entry of the agency's 随机抽查事项清单: what may be inspected, on which basis."""

    __tablename__ = "inspection_items"
    __table_args__ = (UniqueConstraint("agency_id", "code"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    basis: Mapped[str] = mapped_column(Text, default="")  # 抽查依据
    subject: Mapped[str] = mapped_column(String(200), default="")  # 抽查对象
    method: Mapped[str] = mapped_column(String(200), default="")  # 检查方式
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InspectionTarget(Base):
    """An entry of the agency's 检查对象名录库 (an organisation, or a person shown masked)."""

    __tablename__ = "inspection_targets"
    __table_args__ = (UniqueConstraint("agency_id", "code"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # 统一社会信用代码 or the agency's own number
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="organisation")
    sector: Mapped[str] = mapped_column(String(100), default="")  # 行业 / 类别
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Draw(Base):
    """A 双随机 draw: the committed plan, the checkpoint that seeded it, and the result."""

    __tablename__ = "draws"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    ledger_case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    title: Mapped[str] = mapped_column(String(200))
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)  # core.draw.DrawPlan.to_json()
    plan_hash: Mapped[str] = mapped_column(String(71))
    commit_event_id: Mapped[str] = mapped_column(String(36))
    commit_log_index: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="committed")  # committed | drawn
    checkpoint_note: Mapped[str | None] = mapped_column(Text)
    checkpoint_size: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    case_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    committed_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    committed_at: Mapped[datetime] = mapped_column(default=utcnow)
    drawn_at: Mapped[datetime | None]


class UserPassword(Base):
    """A person's sign-in password for the web workspace (argon2id hash only)."""

    __tablename__ = "user_passwords"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A signed-in browser (登录会话): the cookie holds a secret, the row only its SHA-256.

    ``csrf_token`` is the form token of this session (synchroniser pattern).
    """

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(71), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    client_ip: Mapped[str] = mapped_column(String(64), default="")


class SignInAttempt(Base):
    """One sign-in attempt, kept so failures are throttled per user and per address."""

    __tablename__ = "sign_in_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    client_ip: Mapped[str] = mapped_column(String(64), index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CaseSummary(Base):
    """What the case list shows per case, kept so a page never assesses every case.

    Written when the case's completeness is assessed; ``custody_seq`` is the case's last
    custody sequence number then — a newer event (new evidence, stage, waiver) makes the
    row stale and the next list request assesses that case again. ``deadline_due`` is the
    nearest running legal deadline (ISO date, China time); its working days left are
    counted when the page is drawn, so the row does not age with the calendar.
    """

    __tablename__ = "case_summaries"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    custody_seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(32))
    defects: Mapped[int] = mapped_column(Integer)  # defects other than deadlines (缺项)
    deadline_rule: Mapped[str | None] = mapped_column(String(64))
    deadline_due: Mapped[str | None] = mapped_column(String(10), index=True)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExportJob(Base):
    """A case-file export running in the background (导出任务): progress kept for any page."""

    __tablename__ = "export_jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    requested_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    format: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # running | done | failed
    export_id: Mapped[str | None] = mapped_column(String(36))
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    files_total: Mapped[int] = mapped_column(Integer, default=0)
    files_done: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str | None] = mapped_column(String(71))  # of the whole archive
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
