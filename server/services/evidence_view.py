"""Everything the workspace's evidence detail page shows, gathered in one read-only unit.

The page itself reads only facts already on file (no custody event, like the API's
inspection read); its bytes — the original, a thumbnail or poster — are fetched by the
browser from :mod:`server.services.evidence_reads`, where each read is a custody event.
Authorization as everywhere: evidence of a case the caller may not see is *not found*.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from server.auth import Principal, get_visible_case, require_person
from server.errors import NotFound
from server.models import CaptureManifest, Case, CustodyEventRow, Device, Evidence, User
from server.services.cases import pinned_standard
from server.services.custody import StoredEvent, stored_event
from server.services.unit_of_work import UnitOfWork

MAX_EVENTS_SHOWN = 200
INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})


@dataclass(frozen=True)
class Officer:
    """An officer named in the capture manifest: 执法证号 and, when on file, the name."""

    cert_no: str
    name: str | None


@dataclass(frozen=True)
class CaptureOrigin:
    """What the signed capture manifest says: device, sequence, time, place, officers."""

    device_name: str
    device_seq: int
    manifest_id: str
    manifest_hash: str
    record_type: str | None
    record_name: str | None  # the record type's Chinese name in the case's standard
    device_time: str | None
    gnss_time: str | None
    lat: str | None
    lon: str | None
    accuracy_m: str | None
    officers: list[Officer]


@dataclass(frozen=True)
class EvidencePageValues:
    """What the evidence detail page draws."""

    evidence: Evidence
    case: Case
    origin: CaptureOrigin
    sniffed_type: str | None  # from the leading bytes (inspection), not the device's claim
    show_as: str  # "video" | "audio" | "image" | "thumbnail" | "download" | "none" (not stored)
    facts: dict[str, Any]  # the inspection's image / av / pdf facts
    flags: list[dict[str, Any]]
    derivatives: list[tuple[str, dict[str, Any]]]
    inspection_error: str | None
    events: list[StoredEvent]  # this evidence's custody events, newest first


def evidence_page(uow: UnitOfWork, principal: Principal, evidence_id: str) -> EvidencePageValues:
    """The detail page of ``evidence_id`` for ``principal`` (NotFound when not visible)."""
    require_person(principal)
    session = uow.session
    evidence = session.get(Evidence, evidence_id)
    if evidence is None:
        raise NotFound(f"证据不存在或您无权查看 (evidence {evidence_id} not found or not visible)")
    try:
        case = get_visible_case(session, principal, evidence.case_id)
    except NotFound:
        raise NotFound(
            f"证据不存在或您无权查看 (evidence {evidence_id} not found or not visible)"
        ) from None
    inspection = evidence.inspection or {}
    derivatives = inspection.get("derivatives") or {}
    sniffed = inspection.get("media_type")
    return EvidencePageValues(
        evidence=evidence,
        case=case,
        origin=_origin(session, evidence, case),
        sniffed_type=sniffed,
        show_as=_show_as(evidence, sniffed, derivatives),
        facts=inspection.get("image") or inspection.get("av") or inspection.get("pdf") or {},
        flags=list(inspection.get("flags") or []),
        derivatives=sorted(derivatives.items()),
        inspection_error=inspection.get("error"),
        events=_events(session, evidence),
    )


def _show_as(evidence: Evidence, sniffed: str | None, derivatives: dict[str, Any]) -> str:
    """How the page presents the original: play, show as an image, or only offer it."""
    if evidence.status != "stored":
        return "none"
    declared = evidence.media_type or ""
    # Trust a type only when the bytes agree (sniffed) or were not inspected yet.
    kind = sniffed or declared
    if kind.startswith("video/") and declared.startswith("video/"):
        return "video"
    if kind.startswith("audio/") and declared.startswith("audio/"):
        return "audio"
    if "thumbnail" in derivatives:
        return "thumbnail"
    if sniffed in INLINE_IMAGES and declared == sniffed:
        return "image"
    return "download"


def _origin(session: Any, evidence: Evidence, case: Case) -> CaptureOrigin:
    manifest = session.get(CaptureManifest, evidence.manifest_id)
    device = session.get(Device, manifest.device_id)
    try:
        body = json.loads(manifest.signed_json).get("manifest") or {}
    except ValueError:
        body = {}
    loc = body.get("location") or {}
    certs = [str(c) for c in body.get("officers") or []]
    names = dict(
        session.execute(
            select(User.cert_no, User.display_name).where(
                User.agency_id == case.agency_id, User.cert_no.in_(certs)
            )
        ).all()
    )
    record_type = body.get("record_type")
    stage = pinned_standard(case).stage(body.get("stage") or "") if record_type else None
    record = stage.record(record_type) if stage is not None and record_type else None
    return CaptureOrigin(
        device_name=device.name if device is not None else manifest.device_id,
        device_seq=manifest.device_seq,
        manifest_id=manifest.manifest_id,
        manifest_hash=manifest.manifest_hash,
        record_type=record_type,
        record_name=record.name_zh if record is not None else None,
        device_time=body.get("device_time"),
        gnss_time=body.get("gnss_time"),
        lat=loc.get("lat"),
        lon=loc.get("lon"),
        accuracy_m=loc.get("accuracy"),
        officers=[Officer(c, names.get(c)) for c in certs],
    )


def _events(session: Any, evidence: Evidence) -> list[StoredEvent]:
    """The case's custody events about this evidence (by its id or its original's digest)."""
    rows = session.scalars(
        select(CustodyEventRow)
        .where(CustodyEventRow.case_id == evidence.case_id)
        .order_by(CustodyEventRow.case_seq.desc())
    )
    found: list[StoredEvent] = []
    for row in rows:
        stored = stored_event(row)
        event = stored.event
        about = event.details.get("evidence_id") == evidence.id or (
            event.object is not None and event.object.sha256 == evidence.expected_sha256
        )
        if about:
            found.append(stored)
            if len(found) >= MAX_EVENTS_SHOWN:
                break
    return found
