"""Capture manifests (采集清单): register a signed manifest, list a case's, read evidence metadata.

Registration checks, in this order, reporting every problem of a kind at once:

1. the wire JSON (``core.manifest.SignedManifest``) — malformed → 422 listing every fault;
2. the signing device: the manifest's ``key_id`` must be an active enrolled device of the
   caller's agency (a device token must be that very device) and the signature must
   verify with its key → else 422;
3. idempotency: the same ``manifest_id`` with the same manifest hash answers the first
   result again (200); with another hash → 409;
4. the case, by 案号 (``case_ref``) in the device owner's agency; the owner (or the
   inspector registering it) must be assigned to it → else 404; category, stage and
   record type must exist in the case's pinned standard → else 422 listing each;
5. the device chain (``device_seq``/``device_prev``, device row locked): the next seq
   must link to the last manifest (broken link → 409), an already used seq → 409
   (replay); a jump ahead is accepted and flagged — ``verification.chain = "gap"`` with
   the missing numbers, and a ``device_chain_gap`` custody event on the case; a late
   manifest filling a gap must link to its stored neighbours.

Then one ``evidence`` placeholder (status ``expected``) per file and a
``capture_registered`` custody event carrying ``manifest_hash`` are written in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from core.canonical import canonical_json
from core.custody import EventType
from core.errors import CoreError, ManifestInvalid, SignatureInvalid
from core.manifest import SignedManifest, verify_manifest
from core.verify import load_public_key, parse_json
from server.auth import Principal, get_visible_case, require_role
from server.errors import Conflict, Forbidden, Invalid, NotFound
from server.models import (
    CaptureManifest,
    Case,
    CaseOfficer,
    Device,
    DeviceStatus,
    Evidence,
    EvidenceStatus,
    Role,
)
from server.services.cases import pinned_standard
from server.services.custody import record_custody
from server.services.unit_of_work import UnitOfWork

UPLOAD_URL = "/api/v1/uploads"
"""Where announced files are uploaded (tus 1.0; the ingest issue serves it)."""


@dataclass(frozen=True)
class Registration:
    """The outcome of registering a manifest: the row, its files, and whether it is new."""

    manifest: CaptureManifest
    files: list[Evidence]
    created: bool
    case_no: str


def register_manifest(
    uow: UnitOfWork, principal: Principal, wire: Mapping[str, Any]
) -> Registration:
    """Verify and register a signed capture manifest; idempotent for the same manifest."""
    if not principal.is_device:
        require_role(principal, Role.INSPECTOR)
    try:
        signed = SignedManifest.from_json(wire)
    except ManifestInvalid as exc:
        raise Invalid(
            "采集清单格式有误，请按 errors 修正后重新签名提交 (malformed manifest: fix every "
            "listed problem, re-sign and resend)",
            errors={"manifest": list(exc.problems) or [exc.message]},
        ) from exc
    m = signed.manifest
    session = uow.session
    device = _signing_device(uow, principal, signed)
    try:
        verify_manifest(signed, load_public_key(device.key_alg or "", device.public_key or ""))
    except (SignatureInvalid, CoreError) as exc:
        raise Invalid(
            "清单签名无效：请确认用本设备密钥对规范化 JSON 签名 (signature does not verify: sign the "
            "canonical JSON of the manifest with this device's key)",
            errors={"signature": [exc.message]},
        ) from exc
    digest = m.manifest_hash()
    existing = session.scalar(
        select(CaptureManifest).where(CaptureManifest.manifest_id == m.manifest_id)
    )
    if existing is not None:
        return _repeat(uow, principal, existing, digest)

    owner_id = device.owner_user_id if principal.is_device else principal.user_id
    case = session.scalar(
        select(Case)
        .where(Case.agency_id == device.agency_id, Case.case_no == m.case_ref)
        .with_for_update(of=Case)
    )
    if case is None or session.get(CaseOfficer, (case.id, owner_id)) is None:
        raise NotFound(
            f"案号 {m.case_ref} 的案件不存在或您未承办 (no case {m.case_ref!r} you are assigned to)"
        )
    _check_against_standard(case, signed)
    chain = _link_into_device_chain(uow, device, signed, digest)

    row = CaptureManifest(
        manifest_id=m.manifest_id,
        device_id=device.id,
        case_id=case.id,
        device_seq=m.device_seq,
        manifest_hash=digest,
        signed_json=canonical_json(signed.to_json()).decode("utf-8"),
        verification={"signature": "ok", "alg": signed.alg, "key_id": signed.key_id, **chain},
    )
    session.add(row)
    session.flush()
    files = [
        Evidence(
            manifest_id=row.id,
            case_id=case.id,
            file_index=i,
            name=f.name,
            expected_size=f.size,
            expected_sha256=f.sha256,
            status=EvidenceStatus.EXPECTED.value,
            media_type=f.media_type,
        )
        for i, f in enumerate(m.files)
    ]
    session.add_all(files)
    session.flush()
    if chain["chain"] == "gap":
        record_custody(
            uow,
            case,
            EventType.DEVICE_CHAIN_GAP,
            principal,
            {
                "device_id": device.id,
                "missing_seqs": chain["missing"],
                "manifest_id": m.manifest_id,
                "device_seq": m.device_seq,
            },
        )
    event = record_custody(
        uow,
        case,
        EventType.CAPTURE_REGISTERED,
        principal,
        {
            "manifest_id": m.manifest_id,
            "manifest_hash": digest,
            "device_id": device.id,
            "device_seq": m.device_seq,
            "stage": m.stage,
            "record_type": m.record_type,
            "files": [
                {
                    "evidence_id": e.id,
                    "name": e.name,
                    "size": e.expected_size,
                    "sha256": e.expected_sha256,
                }
                for e in files
            ],
        },
    )
    row.verification = {**row.verification, "custody_event_id": event.event.event_id}
    session.flush()
    return Registration(row, files, True, case.case_no)


def _signing_device(uow: UnitOfWork, principal: Principal, signed: SignedManifest) -> Device:
    """The enrolled device whose key signed the manifest, locked; 422 when unusable."""
    device = uow.session.scalar(
        select(Device).where(Device.key_id == signed.key_id).with_for_update(of=Device)
    )
    unknown = Invalid(
        "签名密钥不属于本机关已登记的有效设备 (the signing key is not an active enrolled device "
        "of your agency): enrol the device first",
        errors={"signature": [f"key_id {signed.key_id}: 未知或已吊销 (unknown or revoked)"]},
    )
    if device is None or device.agency_id != principal.agency_id:
        raise unknown
    if device.status != DeviceStatus.ACTIVE.value:
        raise unknown
    if principal.is_device and device.id != principal.device_id:
        raise Forbidden(
            "设备只能提交自己签名的清单 (a device may only register manifests signed with its own key)"
        )
    problems = []
    if signed.manifest.device_id != device.id:
        problems.append(
            f"device_id {signed.manifest.device_id!r} 不是签名设备的编号 {device.id} "
            "(is not the id of the signing device)"
        )
    if signed.alg != device.key_alg:
        problems.append(
            f"alg {signed.alg} 与设备登记的 {device.key_alg} 不符 (differs from enrolment)"
        )
    if problems:
        raise Invalid(errors={"manifest": problems})
    return device


def _repeat(
    uow: UnitOfWork, principal: Principal, existing: CaptureManifest, digest: str
) -> Registration:
    """The first registration's result for a retry; 409 for a different manifest."""
    case = get_visible_case(uow.session, principal, existing.case_id)
    if existing.manifest_hash != digest:
        raise Conflict(
            f"清单编号 {existing.manifest_id} 已登记过另一份内容，请换用新的 manifest_id "
            f"(manifest id already registered with different content; use a new manifest_id)",
            errors={"manifest_id": ["已被另一份清单使用 (used by another manifest)"]},
        )
    files = list(
        uow.session.scalars(
            select(Evidence)
            .where(Evidence.manifest_id == existing.id)
            .order_by(Evidence.file_index)
        )
    )
    return Registration(existing, files, False, case.case_no)


def _check_against_standard(case: Case, signed: SignedManifest) -> None:
    m = signed.manifest
    standard = pinned_standard(case)
    problems: dict[str, list[str]] = {}
    if m.category != case.category:
        problems["category"] = [
            f"{m.category!r} 不是案件的类别 {case.category!r} (is not the case's category)"
        ]
    stage = standard.stage(m.stage)
    if stage is None:
        known = ", ".join(s.id for s in standard.stages)
        problems["stage"] = [
            f"{m.stage!r} 不是 {standard.id}@{standard.version} 的环节 (not a stage of the "
            f"pinned standard); 可选 choose from: {known}"
        ]
    elif stage.record(m.record_type) is None:
        known = ", ".join(f"{r.id} {r.name_zh}" for r in stage.records)
        problems["record_type"] = [
            f"{m.record_type!r} 不是「{stage.name_zh}」环节的记录类型 (not a record type of stage "
            f"{stage.id}); 可选 choose from: {known}"
        ]
    if problems:
        raise Invalid(
            "清单与案件的记录标准不符 (the manifest does not fit the case's recording standard)",
            errors=problems,
        )


def _link_into_device_chain(
    uow: UnitOfWork, device: Device, signed: SignedManifest, digest: str
) -> dict[str, Any]:
    """Check ``device_seq``/``device_prev`` against what is stored; move the head on."""
    m = signed.manifest
    session = uow.session
    seq, head = m.device_seq, device.device_seq_head
    if session.scalar(
        select(CaptureManifest.id).where(
            CaptureManifest.device_id == device.id, CaptureManifest.device_seq == seq
        )
    ):
        raise Conflict(
            f"设备序号 {seq} 已被另一份清单使用，疑似重放 (device_seq {seq} was already used by "
            "another manifest: replay refused)",
            errors={"device_seq": ["已使用 (already used)"]},
        )
    if seq == head + 1:
        expected = device.last_manifest_hash
        if m.device_prev != expected:
            raise Conflict(
                f"设备链断裂：device_prev 应为 {expected} (broken device chain: device_prev must be "
                f"{expected}, the hash of manifest {head})",
                errors={"device_prev": [f"expected {expected}, got {m.device_prev}"]},
            )
        device.device_seq_head, device.last_manifest_hash = seq, digest
        return {"chain": "linked"}
    if seq > head + 1:
        device.device_seq_head, device.last_manifest_hash = seq, digest
        return {"chain": "gap", "missing": [head + 1, seq - 1]}
    # A late manifest filling an earlier gap: it must fit between its stored neighbours.
    before = _manifest_at(uow, device, seq - 1)
    after = _manifest_at(uow, device, seq + 1)
    expected_prev = before.manifest_hash if before is not None else None
    problems = []
    if before is not None and m.device_prev != expected_prev:
        problems.append(
            f"device_prev 应为 {expected_prev} (must be the hash of manifest {seq - 1})"
        )
    if after is not None and SignedManifest.from_json(_wire(after)).manifest.device_prev != digest:
        problems.append(
            f"清单 {seq + 1} 并不链接到本清单 (manifest {seq + 1} does not link to this one)"
        )
    if problems:
        raise Conflict("设备链断裂 (broken device chain)", errors={"device_prev": problems})
    return {"chain": "filled_gap"}


def _manifest_at(uow: UnitOfWork, device: Device, seq: int) -> CaptureManifest | None:
    return uow.session.scalar(
        select(CaptureManifest).where(
            CaptureManifest.device_id == device.id, CaptureManifest.device_seq == seq
        )
    )


def _wire(row: CaptureManifest) -> Any:
    return parse_json(row.signed_json)


def case_manifests(uow: UnitOfWork, principal: Principal, case_id: str) -> list[Registration]:
    """The manifests registered for a case, in order received, with their files."""
    case = get_visible_case(uow.session, principal, case_id)
    rows = uow.session.scalars(
        select(CaptureManifest)
        .where(CaptureManifest.case_id == case.id)
        .order_by(CaptureManifest.received_at, CaptureManifest.device_seq)
    )
    out = []
    for row in rows:
        files = list(
            uow.session.scalars(
                select(Evidence).where(Evidence.manifest_id == row.id).order_by(Evidence.file_index)
            )
        )
        out.append(Registration(row, files, False, case.case_no))
    return out


def get_evidence(uow: UnitOfWork, principal: Principal, evidence_id: str) -> Evidence:
    """Metadata of one evidence item of a case the principal may see (else 404)."""
    evidence = uow.session.get(Evidence, evidence_id)
    missing = NotFound(f"证据不存在或您无权查看 (evidence {evidence_id} not found or not visible)")
    if evidence is None:
        raise missing
    try:
        get_visible_case(uow.session, principal, evidence.case_id)
    except NotFound:
        raise missing from None  # never name the case of evidence one may not see
    return evidence


def registration_json(reg: Registration) -> dict[str, Any]:
    """The API form of a registration: the manifest, its expected files, the upload URL."""
    row = reg.manifest
    return {
        "id": row.id,
        "manifest_id": row.manifest_id,
        "case_id": row.case_id,
        "case_no": reg.case_no,
        "device_id": row.device_id,
        "device_seq": row.device_seq,
        "manifest_hash": row.manifest_hash,
        "received_at": row.received_at,
        "verification": row.verification,
        "upload_url": UPLOAD_URL,
        "files": [evidence_json(e) for e in reg.files],
    }


def evidence_json(e: Evidence) -> dict[str, Any]:
    """The API form of an evidence item (metadata only; never bytes or storage keys)."""
    return {
        "evidence_id": e.id,
        "case_id": e.case_id,
        "file_index": e.file_index,
        "name": e.name,
        "size": e.expected_size,
        "sha256": e.expected_sha256,
        "media_type": e.media_type,
        "status": e.status,
        "sha512": e.sha512,
        "received_at": e.received_at,
    }
