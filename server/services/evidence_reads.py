"""Reading evidence (证据调阅): receipts, content downloads, thumbnails and posters.

Every read of bytes is a custody event written BEFORE the first byte is sent: a
``downloaded`` event for the original (with the byte range), ``viewed`` for a thumbnail
or poster. The event commits in its own unit of work; the caller then streams from
storage. Authorization as everywhere: evidence of a case the caller may not see is
*not found*.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.custody import EventType, ObjectRef
from server.auth import Principal, get_visible_case
from server.errors import NotFound
from server.models import Evidence, EvidenceStatus
from server.services.custody import record_custody
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
    )
