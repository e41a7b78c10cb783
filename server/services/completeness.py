"""Completeness (完整性) of a case, assessed by ``core.completeness`` from what the database holds.

:func:`case_facts` builds ``CaseFacts`` from the rows:

* **stages reached** — the stage history (date entered, China time, UTC+8);
* **records** — one record per *stored* evidence file (``status = stored``), carrying
  its manifest's stage, record type, officers (执法证号), 亮证 (``credentials_shown``),
  interruptions and ``av_reason``;
  the media kind comes from the file's media type. Files a manifest announced but that
  have not arrived are not evidence yet: they are listed under ``pending``;
* **conditions** — every condition a recorded decision held (``hearing_eligible``,
  ``complex_or_serious``, ``major_case``, derived by ``core.procedure``), and
  ``major_case`` once a legal review was recorded;
* **registered officers** — the 执法证号 of the agency's inspectors, with the day each
  was deactivated, so an unknown or deactivated officer on a capture is a finding;
* **waivers** — ``completeness_waivers`` rows (reviewer/admin, with reason);
* **deadlines** — every clock :func:`server.services.clocks.case_clocks` attaches
  (penalty, simple procedure, licensing, coercion rules; start and end from the
  records' capture dates, stage entry and the decisions).

Every report request is a custody event (``completeness_checked``, with the status and
the number of defects); so is every waiver (``completeness_checked`` with
``details.action = "waiver_added"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from core.calendar import WorkingCalendar
from core.completeness import (
    CaseFacts,
    Interruption,
    MediaKind,
    RecordFact,
    StageReached,
    Waiver,
    assess,
    capture_sanity,
)
from core.custody import EventType
from core.manifest import SignedManifest
from core.verify import parse_json
from server.auth import Principal, get_visible_case, require_person, require_role
from server.errors import Invalid
from server.models import (
    CaptureManifest,
    Case,
    CompletenessWaiver,
    Decision,
    Evidence,
    EvidenceStatus,
    LegalReview,
    Role,
    StageChange,
    User,
    utcnow,
)
from server.services.cases import pinned_standard
from server.services.clocks import CHINA as CHINA  # re-exported: legal dates are China dates
from server.services.clocks import case_clocks, china_date
from server.services.custody import record_custody
from server.services.unit_of_work import UnitOfWork


def media_kind(media_type: str | None) -> MediaKind:
    """What a file is for the assessment, from its media type."""
    major = (media_type or "").split("/", 1)[0]
    if major == "image":
        return MediaKind.PHOTO
    if major == "audio":
        return MediaKind.AUDIO
    if major == "video":
        return MediaKind.VIDEO
    if media_type in ("application/pdf", "text/plain") or (media_type or "").startswith(
        ("application/msword", "application/vnd.openxmlformats", "application/ofd")
    ):
        return MediaKind.DOCUMENT
    return MediaKind.OTHER


@dataclass(frozen=True)
class Facts:
    """The assessment input and what the report shows beside it."""

    facts: CaseFacts
    pending: list[dict[str, Any]]
    device_chain_gaps: list[dict[str, Any]]


def _interruptions(raw: Iterable[Any]) -> tuple[Interruption, ...]:
    return tuple(
        Interruption(
            datetime.fromisoformat(i.at.replace("Z", "+00:00")),
            i.reason or "",
            i.resumption_note or "",
        )
        for i in raw
    )


def case_facts(uow: UnitOfWork, case: Case) -> Facts:
    """``CaseFacts`` of ``case`` from the database (see the module docstring)."""
    session = uow.session
    history = session.scalars(
        select(StageChange).where(StageChange.case_id == case.id).order_by(StageChange.id)
    )
    reached: list[StageReached] = []
    for change in history:
        reached.append(StageReached(change.to_stage, china_date(change.changed_at)))

    records: list[RecordFact] = []
    pending: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    manifests = session.scalars(
        select(CaptureManifest)
        .where(CaptureManifest.case_id == case.id)
        .order_by(CaptureManifest.received_at)
    )
    for row in manifests:
        m = SignedManifest.from_json(parse_json(row.signed_json)).manifest
        if row.verification.get("chain") == "gap":
            gaps.append(
                {
                    "device_id": row.device_id,
                    "manifest_id": row.manifest_id,
                    "missing": row.verification.get("missing"),
                }
            )
        files = session.scalars(
            select(Evidence).where(Evidence.manifest_id == row.id).order_by(Evidence.file_index)
        )
        for e in files:
            if e.status != EvidenceStatus.STORED.value:
                pending.append(
                    {
                        "evidence_id": e.id,
                        "name": e.name,
                        "stage": m.stage,
                        "record_type": m.record_type,
                        "status": e.status,
                    }
                )
                continue
            captured = datetime.fromisoformat(m.device_time.replace("Z", "+00:00"))
            records.append(
                RecordFact(
                    record_id=e.id,
                    stage=m.stage,
                    record_type=m.record_type,
                    media=media_kind(e.media_type),
                    officers=m.officers,
                    credentials_shown=m.credentials_shown,
                    interruptions=_interruptions(m.interruptions),
                    av_reason=m.av_reason or "",
                    captured_on=china_date(captured),
                    captured_at=captured,
                )
            )

    decisions = list(
        session.scalars(
            select(Decision).where(Decision.case_id == case.id).order_by(Decision.decided_at)
        )
    )
    reviewed = session.scalar(select(LegalReview.id).where(LegalReview.case_id == case.id))
    conditions = {"major_case"} if reviewed or any(d.major for d in decisions) else set()
    for d in decisions:
        conditions.update(d.conditions or {})

    waivers = []
    for w, user in session.execute(
        select(CompletenessWaiver, User)
        .join(User, User.id == CompletenessWaiver.waived_by)
        .where(CompletenessWaiver.case_id == case.id)
        .order_by(CompletenessWaiver.waived_at)
    ):
        waivers.append(
            Waiver(
                w.stage,
                w.item,
                f"{user.display_name} ({user.username})",
                w.reason,
                china_date(w.waived_at),
            )
        )

    deadlines = case_clocks(uow, case)
    registered: dict[str, date | None] = {}
    for cert, active, gone in session.execute(
        select(User.cert_no, User.active, User.deactivated_at).where(
            User.agency_id == case.agency_id,
            User.role == Role.INSPECTOR.value,
            User.cert_no.is_not(None),
        )
    ):
        if cert is None:
            continue
        if active:
            registered[cert] = None
        else:  # deactivated: from that day on (no day recorded: never counts)
            registered[cert] = china_date(gone) if gone is not None else date.min
    facts = CaseFacts(
        category=case.standard_id,
        standard_version=case.standard_version,
        stages_reached=tuple(reached),
        conditions=frozenset(conditions),
        records=tuple(records),
        waivers=tuple(waivers),
        deadlines=deadlines,
        registered_officers=registered,
    )
    return Facts(facts, pending, gaps)


def completeness_report(
    uow: UnitOfWork,
    principal: Principal,
    case_id: str,
    *,
    calendar: WorkingCalendar,
    today: date | None = None,
) -> dict[str, Any]:
    """The case's completeness report (``docs/completeness-report.md`` form) plus context.

    Extra keys beside the documented report: ``case`` (id, 案号), ``pending`` (announced
    files not stored yet), ``device_chain_gaps``, ``capture_findings`` (officers not
    registered or active, executions at night or on holidays: ``core.completeness.
    capture_sanity``) and ``custody`` (the
    ``completeness_checked`` event this request appended).
    """
    require_person(principal)
    case = get_visible_case(uow.session, principal, case_id)
    found = case_facts(uow, case)
    today = today or china_date(utcnow())
    standard = pinned_standard(case)
    report = assess(standard, found.facts, today=today, calendar=calendar)
    sanity = capture_sanity(standard, found.facts, calendar=calendar)
    defects = len(report.defects)
    event = record_custody(
        uow,
        case,
        EventType.COMPLETENESS_CHECKED,
        principal,
        {
            "status": report.status.value,
            "defects": defects,
            "waived": len(report.waived),
            "pending": len(found.pending),
            "standard": f"{report.standard_id}@{report.standard_version}",
            "assessed_on": report.assessed_on.isoformat(),
        },
    )
    return {
        **report.to_json(),
        "case": {"id": case.id, "case_no": case.case_no, "title": case.title},
        "pending": found.pending,
        "device_chain_gaps": found.device_chain_gaps,
        "capture_findings": [f.to_json() for f in sanity],
        "custody": {
            "event_id": event.event.event_id,
            "event_hash": event.event_hash,
            "log_index": event.log_index,
        },
    }


@dataclass(frozen=True)
class NewWaiver:
    """A waiver request: stage (None for case-wide items such as deadlines), item, reason."""

    stage: str | None
    item: str
    reason: str


def add_waiver(
    uow: UnitOfWork, principal: Principal, case_id: str, draft: NewWaiver
) -> CompletenessWaiver:
    """A reviewer or admin waives an item of the case's report, with a reason (logged)."""
    require_role(principal, Role.REVIEWER, Role.ADMIN)
    case = get_visible_case(uow.session, principal, case_id, for_update=True)
    errors: dict[str, list[str]] = {}
    if draft.stage is not None and pinned_standard(case).stage(draft.stage) is None:
        known = ", ".join(s.id for s in pinned_standard(case).stages)
        errors["stage"] = [
            f"{draft.stage!r} 不是本案标准的环节 (not a stage of the pinned standard); "
            f"可选 choose from: {known}"
        ]
    if not draft.item.strip():
        errors["item"] = ["豁免项不能为空，填写报告中 finding 的 item (give the finding's item)"]
    if not draft.reason.strip():
        errors["reason"] = ["豁免必须说明理由 (a waiver needs a reason)"]
    if errors:
        raise Invalid(errors=errors)
    waiver = CompletenessWaiver(
        case_id=case.id,
        stage=draft.stage,
        item=draft.item.strip(),
        reason=draft.reason.strip(),
        waived_by=principal.user_id,
        waived_at=utcnow().astimezone(UTC),
    )
    uow.session.add(waiver)
    uow.session.flush()
    record_custody(
        uow,
        case,
        EventType.COMPLETENESS_CHECKED,
        principal,
        {
            "action": "waiver_added",
            "waiver_id": waiver.id,
            "stage": waiver.stage,
            "item": waiver.item,
            "reason": waiver.reason,
        },
    )
    return waiver


def calendar_for(calendar_file: Any) -> WorkingCalendar:
    """The working-day calendar: bundled data plus the agency file when configured."""
    return WorkingCalendar.from_files([calendar_file]) if calendar_file else WorkingCalendar()
