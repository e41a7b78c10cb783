"""The legal clocks (法定期限) running on a case, from what the database holds.

Every applicable ``core.deadlines`` rule is attached to the case once its start event is
on file; the completeness report and the case itself show each clock. An event's date
is the capture time (``device_time``, China date) of the first stored record of its
type — the date on the document; stage entry dates and the decision's recording date
stand in where the category has no such record.

==========================  ==================================  ===============================
rule                        starts                              done
==========================  ==================================  ===============================
penalty-decision (Art. 60)  立案 (filing-approval / filing)     first penalty decision
preservation-decision (56)  先行登记保存 (preservation-notice)   handling-notice
hearing-request (64(一))    听证告知书 (hearing-rights-notice)   hearing-application (party's)
hearing-notice (64(二))     the hearing (hearing-transcript)    hearing-notice, before it
serve-absent-party (61)     the penalty decision                service-receipt
fine-payment (66)           service of a decision with a fine   payment-voucher (party's)
fine-handover (71)          fine-receipt (penalty-simple)       fine-handover
licensing-decision (42)     受理 (acceptance-notice/acceptance)  first licensing decision
correction-notice (32)      申请 (application-form/application)  correction-notice or 受理
licence-issue (44)          the licensing decision              service-receipt
licensing-hearing-*(47)     rights-notice / hearing-application hearing-application / transcript
seizure-duration (强制 25)  seizure-decision / seizure           handling- or release-decision
urgent-measure-report (19)  a seizure before its approval       urgent-report
==========================  ==================================  ===============================

行政许可法 Art. 45 (time of hearings, testing, expert review not counted) is counted by
``core.deadlines.due_date(paused=…)``, but not attached here yet: an exported case file
recomputes its deadlines from facts that do not carry the paused periods.

Publication deadlines (``publish-*``) belong to the publication records, and
``court-enforcement`` (强制法 Art. 53) starts on a date the handler fixes; neither is
derived here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.completeness import DeadlineCheck
from core.manifest import CaptureManifest, SignedManifest
from core.verify import parse_json
from server.models import CaptureManifest as CaptureManifestRow
from server.models import (
    Case,
    Decision,
    Evidence,
    EvidenceStatus,
    StageChange,
)
from server.services.unit_of_work import UnitOfWork

CHINA = timezone(timedelta(hours=8), "CST")


def china_date(moment: datetime) -> date:
    """The calendar date in China of an aware time."""
    return moment.astimezone(CHINA).date()


@dataclass(frozen=True)
class CaseEvents:
    """The dated events of a case the clocks start and stop on."""

    entered: dict[str, date]
    """Stage id → first day the case entered it."""
    filed: dict[str, date]
    """Record type id → capture date of its first stored record."""
    decided: date | None
    fine_imposed: bool

    def first(self, *keys: str) -> date | None:
        """The earliest date among record types, then stages, named in ``keys``."""
        found = [self.filed[k] for k in keys if k in self.filed]
        if found:
            return min(found)
        found = [self.entered[k] for k in keys if k in self.entered]
        return min(found) if found else None


def case_events(uow: UnitOfWork, case: Case) -> CaseEvents:
    """Stage entry dates, record capture dates and the first decision of ``case``."""
    session = uow.session
    entered: dict[str, date] = {}
    for change in session.scalars(
        select(StageChange).where(StageChange.case_id == case.id).order_by(StageChange.id)
    ):
        entered.setdefault(change.to_stage, china_date(change.changed_at))
    filed: dict[str, date] = {}
    for m in stored_records(session, case.id):
        if not m.record_type:
            continue
        day = china_date(datetime.fromisoformat(m.device_time.replace("Z", "+00:00")))
        if m.record_type not in filed or day < filed[m.record_type]:
            filed[m.record_type] = day
    first = session.scalars(
        select(Decision).where(Decision.case_id == case.id).order_by(Decision.decided_at).limit(1)
    ).first()
    decided = china_date(first.decided_at) if first is not None else None
    fine = first is not None and _amount(first.facts.get("fine_yuan")) > 0
    return CaseEvents(entered, filed, decided, fine)


def stored_records(session: Session, case_id: str) -> Iterator[CaptureManifest]:
    """The case's signed capture manifests with at least one stored file (records on file)."""
    rows = session.scalars(
        select(CaptureManifestRow.signed_json)
        .where(CaptureManifestRow.case_id == case_id)
        .where(
            select(Evidence.id)
            .where(
                Evidence.manifest_id == CaptureManifestRow.id,
                Evidence.status == EvidenceStatus.STORED.value,
            )
            .exists()
        )
    )
    for signed in rows:
        yield SignedManifest.from_json(parse_json(signed)).manifest


def _amount(value: object) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def case_clocks(uow: UnitOfWork, case: Case) -> tuple[DeadlineCheck, ...]:
    """Every deadline rule running (or run) on ``case`` (see the module docstring)."""
    ev = case_events(uow, case)
    if case.category == "penalty":
        return _penalty(ev)
    if case.category == "penalty-simple":
        return _clocks(("fine-handover", ev.first("fine-receipt"), ev.first("fine-handover")))
    if case.category == "licensing":
        return _licensing(ev)
    if case.category == "coercion":
        return _coercion(ev)
    return ()


def _clocks(*items: tuple[str, date | None, date | None]) -> tuple[DeadlineCheck, ...]:
    return tuple(DeadlineCheck(rule, start, done) for rule, start, done in items if start)


def _penalty(ev: CaseEvents) -> tuple[DeadlineCheck, ...]:
    decided = ev.first("decision-document") or ev.decided
    served = ev.first("service-receipt")
    hearing = ev.first("hearing-transcript")
    return _clocks(
        ("penalty-decision", ev.first("filing-approval", "filing"), decided),
        ("preservation-decision", ev.first("preservation-notice"), ev.first("handling-notice")),
        ("hearing-request", ev.first("hearing-rights-notice"), ev.first("hearing-application")),
        ("hearing-notice", hearing, ev.first("hearing-notice")),
        ("serve-absent-party", decided, served),
        ("fine-payment", served if ev.fine_imposed else None, ev.first("payment-voucher")),
    )


def _licensing(ev: CaseEvents) -> tuple[DeadlineCheck, ...]:
    decided = ev.first("licensing-decision") or ev.decided
    accepted = ev.first("acceptance-notice", "acceptance")
    corrected = [d for d in (ev.first("correction-notice"), accepted) if d]
    return _clocks(
        ("licensing-decision", accepted, decided),
        (
            "correction-notice",
            ev.first("application-form", "application"),
            min(corrected) if corrected else None,
        ),
        ("licence-issue", decided, ev.first("service-receipt")),
        ("licensing-hearing-request", ev.first("rights-notice"), ev.first("hearing-application")),
        ("licensing-hearing-held", ev.first("hearing-application"), ev.first("hearing-transcript")),
    )


def _coercion(ev: CaseEvents) -> tuple[DeadlineCheck, ...]:
    seized = ev.first("seizure-decision", "seizure")
    ended = [d for d in (ev.first("handling-decision"), ev.first("release-decision")) if d]
    approved = ev.first("measure-approval")
    urgent = seized is not None and (approved is None or approved > seized)
    out = list(_clocks(("seizure-duration", seized, min(ended) if ended else None)))
    if out and "extension-decision" in ev.filed:
        out[0] = DeadlineCheck("seizure-duration", out[0].start, out[0].done_on, extended=True)
    if urgent:
        out += _clocks(("urgent-measure-report", seized, ev.first("urgent-report")))
    return tuple(out)
