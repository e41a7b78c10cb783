"""Reading evidence (证据调阅): receipts, content downloads, thumbnails and posters.

Every read of bytes is a custody event written BEFORE the first byte is sent: a
``downloaded`` event for the original (with the byte range), ``viewed`` for a thumbnail
or poster. The event commits in its own unit of work; the caller then streams from
storage. Authorization as everywhere: evidence of a case the caller may not see is
*not found*.

If the object is gone when the stream opens (after the event committed), the answer is
a 503 that says so, not a 500: a missing original is flagged as evidence at risk once
(:func:`original_missing`, the reconciler's ``fixity_failed`` record); a missing
thumbnail or poster is only reported (it can be made again from the original).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from core.custody import EventType, ObjectRef
from server.auth import Principal, get_visible_case
from server.errors import NotFound, Unavailable
from server.models import Evidence, EvidenceStatus
from server.services.custody import record_custody
from server.services.reconcile import flag_missing
from server.services.unit_of_work import UnitOfWork

DERIVATIVE_ROLES = ("thumbnail", "poster")


@dataclass(frozen=True)
class Readable:
    """What to stream after the custody event is committed."""

    key: str
    size: int
    sha256: str
    media_type: str
    name: str
    start: int
    end: int  # exclusive
    evidence_id: str
    sniffed_type: str | None = None  # from the leading bytes (inspection), when inspected


def _stored_evidence(uow: UnitOfWork, principal: Principal, evidence_id: str) -> Evidence:
    evidence = uow.session.get(Evidence, evidence_id)
    if evidence is None:
        raise NotFound(f"证据不存在或您无权查看 (evidence {evidence_id} not found or not visible)")
    get_visible_case(uow.session, principal, evidence.case_id)
    if evidence.status != EvidenceStatus.STORED or not evidence.storage_key:
        raise NotFound(
            f"证据尚未入库，请待上传完成后再试 (evidence {evidence_id} is not stored yet; "
            "retry after its upload completed)"
        )
    return evidence


def receipt(uow: UnitOfWork, principal: Principal, evidence_id: str) -> dict[str, Any]:
    """The signed ingest receipt of a stored evidence item."""
    evidence = _stored_evidence(uow, principal, evidence_id)
    if not evidence.receipt:
        raise NotFound("此证据没有入库回执 (no receipt recorded for this evidence)")
    found: dict[str, Any] = json.loads(evidence.receipt)
    return found


def inspection(uow: UnitOfWork, principal: Principal, evidence_id: str) -> dict[str, Any]:
    """Inspection status, facts and flags of a stored evidence item (no custody event)."""
    evidence = _stored_evidence(uow, principal, evidence_id)
    return {"status": evidence.inspection_status, "report": evidence.inspection}


def open_content(
    uow: UnitOfWork,
    principal: Principal,
    evidence_id: str,
    pick_range: Callable[[int], tuple[int, int] | None],
) -> Readable:
    """Record a ``downloaded`` event for the original; what to send.

    ``pick_range(size)`` returns the requested ``[start, end)`` or ``None`` for all of
    it, or raises (unsatisfiable range) before anything is recorded.
    """
    evidence = _stored_evidence(uow, principal, evidence_id)
    size = evidence.expected_size
    chosen = pick_range(size)
    start, end = chosen if chosen is not None else (0, size)
    case = get_visible_case(uow.session, principal, evidence.case_id)
    record_custody(
        uow,
        case,
        EventType.DOWNLOADED,
        principal,
        {"evidence_id": evidence.id, "range": f"bytes {start}-{max(start, end - 1)}/{size}"},
        object=ObjectRef(evidence.expected_sha256, size),
    )
    assert evidence.storage_key is not None
    return Readable(
        evidence.storage_key,
        size,
        evidence.expected_sha256,
        evidence.media_type or "application/octet-stream",
        evidence.name,
        start,
        end,
        evidence.id,
        (evidence.inspection or {}).get("media_type"),
    )


def open_derivative(uow: UnitOfWork, principal: Principal, evidence_id: str, role: str) -> Readable:
    """Record a ``viewed`` event for the thumbnail or poster of an evidence item."""
    evidence = _stored_evidence(uow, principal, evidence_id)
    derivatives = (evidence.inspection or {}).get("derivatives") or {}
    found = derivatives.get(role) if role in DERIVATIVE_ROLES else None
    if not isinstance(found, dict) or "key" not in found:
        raise NotFound(
            f"此证据没有{'缩略图' if role == 'thumbnail' else '封面帧'} (no {role} for this "
            "evidence: inspection pending, failed, or not an image/video)"
        )
    case = get_visible_case(uow.session, principal, evidence.case_id)
    record_custody(
        uow,
        case,
        EventType.VIEWED,
        principal,
        {"evidence_id": evidence.id, "view": role},
        object=ObjectRef(evidence.expected_sha256, evidence.expected_size),
    )
    return Readable(
        str(found["key"]),
        -1,
        str(found.get("derived_from", evidence.expected_sha256)),
        str(found.get("media_type", "image/jpeg")),
        f"{role}",
        0,
        -1,
        evidence.id,
    )


def original_missing(
    uow_factory: Callable[[], AbstractContextManager[UnitOfWork]], readable: Readable
) -> Unavailable:
    """Flag an original found missing while opening it for a download; the error to answer."""
    flag_missing(uow_factory, readable.evidence_id, readable.key, source="download")
    return Unavailable(
        "证据原件在存储中缺失，已登记为证据风险（fixity_failed）；重试无用，请立即联系管理员从备份恢复 "
        "(evidence at risk: the original is missing from storage and has been flagged; retrying "
        "will not help — contact the admin to restore it from backup)"
    )


def derivative_missing(readable: Readable) -> Unavailable:
    """The error to answer when a thumbnail or poster is gone from storage."""
    return Unavailable(
        f"{'缩略图' if readable.name == 'thumbnail' else '封面帧'}在存储中缺失，原件不受影响；"
        f"请联系管理员检查存储 (the {readable.name} is missing from storage; the original is "
        "not affected — contact the admin to check the store)"
    )
