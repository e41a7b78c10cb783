"""Publication of decisions (执法决定信息公开): due dates, redaction, publish, withdraw, correct.

Every recorded decision has one :class:`~server.models.Publication`, created the first
time any publication use case runs after the decision (:func:`sync_publications`), due
7 or 20 working days after the decision (:mod:`core.publication`, agency calendar).
A reviewer (or admin) of the decision's agency:

1. previews the redacted record (:func:`preview`; nothing is stored) and confirms it
   (:func:`confirm_redaction`, with the 文书号 and the date on the 决定书) — or exempts
   the decision with a reason (:func:`exempt`, 法律、行政法规另有规定);
2. publishes the confirmed record as version 1 (:func:`publish`);
3. withdraws a published decision that was changed or revoked, with a public reason
   (:func:`withdraw`; 3 working days from the revocation for penalties), or corrects it
   (:func:`correct`): a new version, the old ones stay visible.

Each of these writes a custody event on the decision's case, in the same transaction.
Only redacted records ever reach ``publication_versions`` or ``draft``; the public site
reads nothing else (:mod:`server.services.public_decisions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.calendar import WorkingCalendar
from core.custody import EventType
from core.publication import (
    PublicationState,
    PublicationStatus,
    category_zh,
    publication_due,
    publication_state,
    withdrawal_due,
)
from core.redaction import DecisionSource, Party, PublicRecord, SourceField, redact_decision
from server.auth import Principal, require_role, sees_all_agency_cases, visible_cases
from server.errors import Conflict, Invalid, NotFound
from server.models import (
    Agency,
    Case,
    Decision,
    Publication,
    PublicationVersion,
    Role,
    utcnow,
)
from server.services.clocks import china_date
from server.services.custody import record_custody
from server.services.publication_records import sync_publications
from server.services.unit_of_work import UnitOfWork

EDITORS = (Role.REVIEWER, Role.ADMIN)
"""Who confirms redaction, publishes, withdraws and corrects (法制机构 / 管理员)."""


@dataclass(frozen=True)
class RedactionInput:
    """What the reviewer supplies for the public record.

    ``conclusion`` replaces the decision's summary as 执法结论 when given; ``fields`` are
    further labelled fields (违法事实, 处罚依据 …), any of them marked 商业秘密.
    ``decided_on`` is the date on the 决定书 when it differs from the day it was recorded.
    """

    doc_no: str
    conclusion: str | None = None
    decided_on: date | None = None
    fields: tuple[SourceField, ...] = ()


@dataclass(frozen=True)
class PublicationView:
    """A publication with today's state and its published versions (newest last)."""

    publication: Publication
    state: PublicationState
    case_no: str
    decision_type: str
    versions: Sequence[PublicationVersion] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The workspace/API form."""
        p = self.publication
        return {
            "id": p.id,
            "decision_id": p.decision_id,
            "case_id": p.case_id,
            "case_no": self.case_no,
            "decision_type": self.decision_type,
            "category": p.category,
            "category_zh": category_zh(p.category),
            "decided_on": p.decided_on.isoformat(),
            "due_on": p.due_on.isoformat(),
            "due_estimated": p.due_estimated,
            "status": p.status,
            "state": self.state.value,
            "state_zh": self.state.label_zh,
            "doc_no": p.doc_no,
            "draft": p.draft,
            "confirmed_at": p.confirmed_at.isoformat() if p.confirmed_at else None,
            "exempt_reason": p.exempt_reason,
            "version": p.version,
            "first_published_on": _iso(p.first_published_on),
            "revoked_on": _iso(p.revoked_on),
            "withdraw_due_on": _iso(p.withdraw_due_on),
            "withdrawn_on": _iso(p.withdrawn_on),
            "withdraw_reason": p.withdraw_reason,
            "versions": [version_json(v) for v in self.versions],
        }


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def version_json(v: PublicationVersion) -> dict[str, Any]:
    """A published version: number, redacted record, correction reason, when."""
    return {
        "version": v.version,
        "record": v.record,
        "reason": v.reason,
        "published_at": v.published_at.isoformat(),
    }


def _visible(principal: Principal) -> Select[Publication]:
    """Publications the principal may see: the agency's, or an inspector's own cases'."""
    query = select(Publication).where(Publication.agency_id == principal.agency_id)
    if not sees_all_agency_cases(principal):
        query = query.where(
            Publication.case_id.in_(visible_cases(principal).with_only_columns(Case.id))
        )
    return query


def _get(
    uow: UnitOfWork, principal: Principal, publication_id: str, *, for_update: bool = False
) -> Publication:
    query = _visible(principal).where(Publication.id == publication_id)
    if for_update:
        query = query.with_for_update()
    found = uow.session.scalar(query)
    if found is None:
        raise NotFound(f"公开记录不存在 (publication {publication_id} not found)")
    return found


def _view(session: Session, p: Publication, today: date, cal: WorkingCalendar) -> PublicationView:
    case = session.get(Case, p.case_id)
    decision = session.get(Decision, p.decision_id)
    assert case is not None and decision is not None
    versions = session.scalars(
        select(PublicationVersion)
        .where(PublicationVersion.publication_id == p.id)
        .order_by(PublicationVersion.version)
    ).all()
    state = publication_state(PublicationStatus(p.status), p.due_on, today, cal)
    return PublicationView(p, state, case.case_no, decision.decision_type, versions)


def list_publications(
    uow: UnitOfWork,
    principal: Principal,
    calendar: WorkingCalendar,
    *,
    today: date | None = None,
    state: str | None = None,
    case_id: str | None = None,
) -> list[PublicationView]:
    """The agency's publications with today's state (``today`` = another day to look at)."""
    require_role(principal, Role.REVIEWER, Role.ADMIN, Role.ARCHIVIST, Role.INSPECTOR)
    sync_publications(uow.session, calendar, principal.agency_id)
    today = today or china_date(utcnow())
    query = _visible(principal)
    if case_id:
        query = query.where(Publication.case_id == case_id)
    views = [
        _view(uow.session, p, today, calendar)
        for p in uow.session.scalars(query.order_by(Publication.due_on, Publication.id))
    ]
    return [v for v in views if state is None or v.state.value == state]


def get_publication(
    uow: UnitOfWork,
    principal: Principal,
    publication_id: str,
    calendar: WorkingCalendar,
    *,
    today: date | None = None,
) -> PublicationView:
    """One publication of the caller's agency, with its versions."""
    require_role(principal, Role.REVIEWER, Role.ADMIN, Role.ARCHIVIST, Role.INSPECTOR)
    sync_publications(uow.session, calendar, principal.agency_id)
    p = _get(uow, principal, publication_id)
    return _view(uow.session, p, today or china_date(utcnow()), calendar)


# --------------------------------------------------------------------------- redaction


def decision_source(session: Session, p: Publication, given: RedactionInput) -> DecisionSource:
    """The unredacted facts of the decision, as the reviewer completed them."""
    case = session.get(Case, p.case_id)
    decision = session.get(Decision, p.decision_id)
    agency = session.get(Agency, p.agency_id)
    assert case is not None and decision is not None and agency is not None
    conclusion = given.conclusion if given.conclusion is not None else decision.summary
    return DecisionSource(
        agency=agency.name,
        category=category_zh(case.category),
        case_no=case.case_no,
        doc_no=given.doc_no.strip(),
        decided_on=given.decided_on or p.decided_on,
        parties=tuple(Party.from_json(dict(x)) for x in case.parties or ()),
        conclusion=conclusion.strip(),
        fields=given.fields,
    )


def _check_input(session: Session, p: Publication, given: RedactionInput) -> None:
    errors: dict[str, list[str]] = {}
    if not given.doc_no.strip():
        errors["doc_no"] = ["须填写决定书文书号 (the decision document number is required)"]
    decision = session.get(Decision, p.decision_id)
    assert decision is not None
    recorded_on = china_date(decision.decided_at)
    if given.decided_on and given.decided_on > recorded_on:
        errors["decided_on"] = [
            "决定书日期不能晚于决定登记日期 "
            f"(the document date cannot be after the day it was recorded, {recorded_on})"
        ]
    if errors:
        raise Invalid(errors=errors)


def preview(
    uow: UnitOfWork,
    principal: Principal,
    publication_id: str,
    given: RedactionInput,
    calendar: WorkingCalendar,
) -> dict[str, Any]:
    """What the public would see, and what redaction removed (nothing is stored)."""
    require_role(principal, *EDITORS)
    sync_publications(uow.session, calendar, principal.agency_id)
    p = _get(uow, principal, publication_id)
    _check_input(uow.session, p, given)
    record = redact_decision(decision_source(uow.session, p, given))
    return {"record": record.to_json(), "findings": [f.to_json() for f in record.findings]}


def confirm_redaction(
    uow: UnitOfWork,
    principal: Principal,
    publication_id: str,
    given: RedactionInput,
    calendar: WorkingCalendar,
) -> PublicationView:
    """The reviewer confirms the redacted record; it waits for :func:`publish` (logged)."""
    require_role(principal, *EDITORS)
    sync_publications(uow.session, calendar, principal.agency_id)
    p = _get(uow, principal, publication_id, for_update=True)
    if p.status != PublicationStatus.PENDING.value:
        raise Conflict(
            f"该决定信息已{PublicationStatus(p.status).label_zh}；如需修改请更正 "
            f"(already {p.status}; publish a correction instead)"
        )
    _check_input(uow.session, p, given)
    record = redact_decision(decision_source(uow.session, p, given))
    if given.decided_on and given.decided_on != p.decided_on:
        due = publication_due(p.category, given.decided_on, calendar)
        p.decided_on, p.due_on, p.due_estimated = given.decided_on, due.on, due.estimated
    p.doc_no = record.doc_no
    p.draft = record.to_json()
    p.confirmed_by = principal.user_id
    p.confirmed_at = utcnow()
    _log(
        uow,
        p,
        EventType.PUBLICATION_REDACTION_CONFIRMED,
        principal,
        {
            "doc_no": p.doc_no,
            "decided_on": p.decided_on.isoformat(),
            "due_on": p.due_on.isoformat(),
            "findings": [f.to_json() for f in record.findings],
        },
    )
    return _view(uow.session, p, china_date(utcnow()), calendar)


def exempt(
    uow: UnitOfWork,
    principal: Principal,
    publication_id: str,
    reason: str,
    calendar: WorkingCalendar,
) -> PublicationView:
    """Mark a pending decision as not to be published, with the legal reason (logged)."""
    require_role(principal, *EDITORS)
    sync_publications(uow.session, calendar, principal.agency_id)
    p = _get(uow, principal, publication_id, for_update=True)
    if p.status != PublicationStatus.PENDING.value:
        raise Conflict(
            f"只有待公开的决定可以豁免 (only a pending publication; this one is {p.status})"
        )
    if not reason.strip():
        raise Invalid(errors={"reason": ["须写明不予公开的法律依据 (give the legal reason)"]})
    p.status = PublicationStatus.EXEMPT.value
    p.exempt_reason = reason.strip()
    _log(uow, p, EventType.PUBLICATION_EXEMPTED, principal, {"reason": p.exempt_reason})
    return _view(uow.session, p, china_date(utcnow()), calendar)


# --------------------------------------------------------------------------- publish


def publish(
    uow: UnitOfWork, principal: Principal, publication_id: str, calendar: WorkingCalendar
) -> PublicationView:
    """Publish the confirmed record as version 1 (logged, with whether it was on time)."""
    require_role(principal, *EDITORS)
    p = _get(uow, principal, publication_id, for_update=True)
    if p.status != PublicationStatus.PENDING.value:
        raise Conflict(f"该决定信息已{PublicationStatus(p.status).label_zh} (already {p.status})")
    if p.draft is None:
        raise Conflict(
            "公开前须先确认技术处理（脱敏）结果 "
            "(confirm the redacted record first: POST …/redaction)"
        )
    now = utcnow()
    p.status = PublicationStatus.PUBLISHED.value
    p.version = 1
    p.first_published_at = now
    p.first_published_on = china_date(now)
    _add_version(uow, p, principal, PublicRecord.from_json(p.draft), "")
    _log(
        uow,
        p,
        EventType.DECISION_PUBLISHED,
        principal,
        {
            "version": 1,
            "doc_no": p.doc_no,
            "due_on": p.due_on.isoformat(),
            "on_time": p.first_published_on <= p.due_on,
        },
    )
    return _view(uow.session, p, p.first_published_on, calendar)


def _add_version(
    uow: UnitOfWork, p: Publication, principal: Principal, record: PublicRecord, reason: str
) -> None:
    p.public_text = " ".join(
        [record.case_no, record.doc_no, record.category, record.conclusion]
        + [party.name for party in record.parties]
        + [party.credit_code or "" for party in record.parties]
    )
    uow.session.add(
        PublicationVersion(
            publication_id=p.id,
            version=p.version,
            record=record.to_json(),
            reason=reason,
            published_by=principal.user_id,
            published_at=utcnow(),
        )
    )
    uow.session.flush()


def withdraw(
    uow: UnitOfWork,
    principal: Principal,
    publication_id: str,
    reason: str,
    revoked_on: date | None,
    calendar: WorkingCalendar,
) -> PublicationView:
    """Withdraw a published decision changed or revoked on ``revoked_on``; the reason is public."""
    require_role(principal, *EDITORS)
    p = _get(uow, principal, publication_id, for_update=True)
    if p.status != PublicationStatus.PUBLISHED.value:
        raise Conflict(
            f"只有已公开的决定可以撤回 (only a published decision; this one is {p.status})"
        )
    if not reason.strip():
        raise Invalid(
            errors={"reason": ["须说明撤回理由，理由将向社会公开 (the reason is published)"]}
        )
    today = china_date(utcnow())
    revoked_on = revoked_on or today
    if revoked_on > today:
        raise Invalid(errors={"revoked_on": ["不能晚于今天 (cannot be in the future)"]})
    p.status = PublicationStatus.WITHDRAWN.value
    p.revoked_on = revoked_on
    p.withdraw_due_on = withdrawal_due(revoked_on, calendar).on
    p.withdrawn_at = utcnow()
    p.withdrawn_on = today
    p.withdraw_reason = reason.strip()
    _log(
        uow,
        p,
        EventType.PUBLICATION_WITHDRAWN,
        principal,
        {
            "reason": p.withdraw_reason,
            "revoked_on": revoked_on.isoformat(),
            "withdraw_due_on": p.withdraw_due_on.isoformat(),
            "on_time": today <= p.withdraw_due_on,
        },
    )
    return _view(uow.session, p, today, calendar)


def correct(
    uow: UnitOfWork,
    principal: Principal,
    publication_id: str,
    given: RedactionInput,
    reason: str,
    calendar: WorkingCalendar,
) -> PublicationView:
    """Publish a corrected version (redacted again); earlier versions stay public (logged)."""
    require_role(principal, *EDITORS)
    p = _get(uow, principal, publication_id, for_update=True)
    if p.status != PublicationStatus.PUBLISHED.value:
        raise Conflict(
            f"只有已公开的决定可以更正 (only a published decision; this one is {p.status})"
        )
    if not reason.strip():
        raise Invalid(errors={"reason": ["须说明更正理由 (give the reason for the correction)"]})
    given = RedactionInput(given.doc_no, given.conclusion, p.decided_on, given.fields)
    _check_input(uow.session, p, given)
    record = redact_decision(decision_source(uow.session, p, given))
    p.version += 1
    p.doc_no = record.doc_no
    _add_version(uow, p, principal, record, reason.strip())
    _log(
        uow,
        p,
        EventType.PUBLICATION_CORRECTED,
        principal,
        {"version": p.version, "reason": reason.strip(), "doc_no": p.doc_no},
    )
    return _view(uow.session, p, china_date(utcnow()), calendar)


def _log(
    uow: UnitOfWork,
    p: Publication,
    kind: EventType,
    principal: Principal,
    details: dict[str, Any],
) -> None:
    case = uow.session.get(Case, p.case_id)
    assert case is not None
    record_custody(
        uow,
        case,
        kind,
        principal,
        {"publication_id": p.id, "decision_id": p.decision_id, **details},
    )
