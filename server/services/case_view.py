"""Everything the workspace's case page shows, gathered in one unit of work.

The completeness report comes from :func:`server.services.completeness.completeness_report`
(so opening the page is a ``completeness_checked`` custody event, as the API's report
is); the case's summary for the list is refreshed from the same assessment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select

from core.calendar import WorkingCalendar
from core.custody import verify_case_chain
from server.auth import Principal, get_visible_case, require_person
from server.models import (
    CaptureManifest,
    Case,
    CustodyEventRow,
    Device,
    Evidence,
    LegalReview,
    StageChange,
    User,
)
from server.services import completeness
from server.services.case_list import summarise
from server.services.cases import pinned_standard
from server.services.custody import StoredEvent, stored_event
from server.services.unit_of_work import UnitOfWork

MAX_EVENTS_SHOWN = 200


@dataclass(frozen=True)
class StageLine:
    """One stage of the procedure on the timeline."""

    id: str
    name_zh: str
    status: str
    entered: str | None
    current: bool


@dataclass(frozen=True)
class CaptureFacts:
    """What the signed capture manifest says about a capture: device, time, place, officers."""

    device_name: str
    device_time: str | None
    location: str | None
    officers: str
    record_type: str | None


@dataclass(frozen=True)
class CasePageValues:
    """What the case page draws."""

    case: Case
    standard_name: str
    stages: list[StageLine]
    findings_by_stage: list[tuple[str, str, list[dict[str, Any]]]]  # (stage id, name, findings)
    report: dict[str, Any]
    evidence: list[Evidence]
    reviews: list[tuple[LegalReview, str]]
    events: list[StoredEvent]
    event_total: int
    history: list[StageChange]
    chain_breaks: list[str]  # every break of the case's custody chain (empty: intact)
    captures: dict[str, CaptureFacts]  # by capture manifest row id


def case_page(
    uow: UnitOfWork,
    principal: Principal,
    case_id: str,
    *,
    calendar: WorkingCalendar,
    today: date | None = None,
) -> CasePageValues:
    """The case page of ``case_id`` for ``principal`` (NotFound when not visible)."""
    require_person(principal)
    session = uow.session
    case = get_visible_case(session, principal, case_id)
    report = completeness.completeness_report(
        uow, principal, case.id, calendar=calendar, today=today
    )
    standard = pinned_standard(case)
    names = {s.id: s.name_zh for s in standard.stages}
    stages = [
        StageLine(
            s["id"], s["name_zh"], s["status"], s.get("entered"), s["id"] == case.current_stage
        )
        for s in report["stages"]
    ]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        grouped.setdefault(finding.get("stage") or "", []).append(finding)
    order = [s.id for s in standard.stages]
    findings_by_stage = [
        (stage, names.get(stage, stage) if stage else "全案（期限等）", items)
        for stage, items in sorted(
            grouped.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)
        )
    ]
    evidence = list(
        session.scalars(
            select(Evidence)
            .where(Evidence.case_id == case.id)
            .order_by(Evidence.created_at, Evidence.file_index)
        )
    )
    reviews = [
        (review, _name(session, review.reviewer_user_id))
        for review in session.scalars(
            select(LegalReview)
            .where(LegalReview.case_id == case.id)
            .order_by(LegalReview.reviewed_at)
        )
    ]
    total = (
        session.scalar(
            select(func.count())
            .select_from(CustodyEventRow)
            .where(CustodyEventRow.case_id == case.id)
        )
        or 0
    )
    rows = list(
        session.scalars(
            select(CustodyEventRow)
            .where(CustodyEventRow.case_id == case.id)
            .order_by(CustodyEventRow.case_seq.desc())
            .limit(MAX_EVENTS_SHOWN)
        )
    )
    events = [stored_event(r) for r in rows]
    history = list(
        session.scalars(
            select(StageChange).where(StageChange.case_id == case.id).order_by(StageChange.id)
        )
    )
    last_seq = rows[0].case_seq if rows else 0
    whole_chain = [
        stored_event(r).event
        for r in session.scalars(
            select(CustodyEventRow)
            .where(CustodyEventRow.case_id == case.id)
            .order_by(CustodyEventRow.case_seq)
        )
    ]
    chain_breaks = [b.message for b in verify_case_chain(whole_chain, case.id)]
    summarise(uow, case, last_seq, date.fromisoformat(report["assessed_on"]), calendar)
    _ = case.officers
    return CasePageValues(
        case=case,
        standard_name=standard.name_zh,
        stages=stages,
        findings_by_stage=findings_by_stage,
        report=report,
        evidence=evidence,
        reviews=reviews,
        events=events,
        event_total=total,
        history=history,
        chain_breaks=chain_breaks,
        captures=_captures(session, case.id),
    )


def _name(session: Any, user_id: str) -> str:
    user = session.get(User, user_id)
    return user.display_name if user is not None else user_id


def _captures(session: Any, case_id: str) -> dict[str, CaptureFacts]:
    found: dict[str, CaptureFacts] = {}
    rows = session.execute(
        select(CaptureManifest, Device)
        .join(Device, Device.id == CaptureManifest.device_id)
        .where(CaptureManifest.case_id == case_id)
    )
    for manifest, device in rows:
        try:
            body = json.loads(manifest.signed_json).get("manifest") or {}
        except ValueError:
            body = {}
        loc = body.get("location") or {}
        where = f"{loc.get('lat')}, {loc.get('lon')}" if loc.get("lat") else None
        found[manifest.id] = CaptureFacts(
            device_name=device.name,
            device_time=body.get("device_time"),
            location=where,
            officers="、".join(body.get("officers") or []),
            record_type=body.get("record_type"),
        )
    return found
