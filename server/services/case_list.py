"""The workspace's case list (案件列表): search, filters, sort and pages over stored summaries.

A list request never assesses every case. Each case's completeness state and nearest
running legal deadline are kept in :class:`~server.models.CaseSummary`, stamped with
the case's last custody sequence number; a case with a newer custody event (evidence
stored, stage moved, waiver, review) is *stale*. A request first re-assesses at most
:data:`REFRESH_PER_REQUEST` stale visible cases (newest first) — those no one has looked
at since they changed — then filters, sorts and pages in SQL. Working days left are
counted for the page's rows only.

Assessing here records no custody event (it only reads); the case page's report does.

Each decision's publication (执法决定信息公开) is read from its stored
:class:`~server.models.Publication` (status and due date): the 公示 filter is one SQL
condition per state, drawn from :func:`core.publication.publication_state`'s rule, and
the state shown is computed for the page's rows only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import ColumnElement, String, Subquery, and_, cast, func, or_, select
from sqlalchemy.orm import selectinload

from core.calendar import WorkingCalendar
from core.completeness import Severity, assess
from core.errors import CoreError
from core.publication import (
    DUE_SOON_WORKING_DAYS as PUBLICATION_SOON,
)
from core.publication import (
    PublicationState,
    PublicationStatus,
    publication_state,
)
from server.auth import Principal, require_person, visible_cases
from server.models import Case, CaseOfficer, CaseSummary, CustodyEventRow, Publication, utcnow
from server.services.cases import pinned_standard
from server.services.completeness import case_facts
from server.services.publication_records import sync_publications
from server.services.unit_of_work import UnitOfWork

PAGE_SIZE = 25
REFRESH_PER_REQUEST = 50
DUE_SOON_WORKING_DAYS = 3
DEADLINE_CODES = (
    "deadline_overdue",
    "deadline_missed",
    "deadline_due_soon",
    "deadline_not_computable",
)


class Flag(StrEnum):
    """The list's quick filters."""

    MISSING = "missing"  # 缺项: a defect other than a deadline
    DUE_SOON = "due_soon"  # 即将到期: a running deadline within 3 working days
    OVERDUE = "overdue"  # 已逾期


class Sort(StrEnum):
    """Columns the list sorts by."""

    CREATED = "created"
    CASE_NO = "case_no"
    DEADLINE = "deadline"


@dataclass(frozen=True)
class ListQuery:
    """What the person asked for (every field optional)."""

    text: str = ""
    category: str = ""
    stage: str = ""
    status: str = ""
    officer_id: str = ""
    flag: str = ""
    publication: str = ""  # a core.publication.PublicationState value
    sort: str = Sort.CREATED.value
    descending: bool = True
    page: int = 1


@dataclass(frozen=True)
class PublicationBadge:
    """One decision's publication as a row shows it: today's state, due date, days left."""

    publication_id: str
    state: PublicationState
    due_on: date
    working_days_left: int | None  # pending ones only; negative: overdue
    version: int  # 2 and up: corrected (已更正)

    @property
    def label_zh(self) -> str:
        """待公开 / 即将到期 / 已逾期 / 已公开 / 已更正 / 已撤回 / 不予公开."""
        if self.state is PublicationState.PUBLISHED and self.version > 1:
            return "已更正"
        return self.state.label_zh


@dataclass(frozen=True)
class CaseRow:
    """One row of the list."""

    case: Case
    summary: CaseSummary | None
    working_days_left: int | None  # negative: overdue by that many working days
    deadline_tone: str  # overdue | soon | ok | none
    publications: tuple[PublicationBadge, ...] = ()


@dataclass(frozen=True)
class CaseListPage:
    """A page of rows and what the pager needs."""

    rows: list[CaseRow]
    total: int
    page: int
    pages: int
    refreshed: int
    stale_left: int


def _last_seq() -> Subquery:
    return (
        select(CustodyEventRow.case_id, func.max(CustodyEventRow.case_seq).label("seq"))
        .group_by(CustodyEventRow.case_id)
        .subquery()
    )


def summarise(
    uow: UnitOfWork, case: Case, seq: int, today: date, calendar: WorkingCalendar
) -> CaseSummary:
    """Assess ``case`` (no custody event) and store its summary as of custody ``seq``."""
    try:
        report = assess(
            pinned_standard(case), case_facts(uow, case).facts, today=today, calendar=calendar
        )
        status = report.status.value
        defects = sum(
            1
            for f in report.findings
            if f.severity is Severity.DEFECT and f.code not in DEADLINE_CODES
        )
        running = sorted(
            (d for d in report.deadlines if d.due is not None and d.done_on is None),
            key=lambda d: d.due or today,
        )
        # a deadline no calendar covers yet: named, without a date ("无法计算")
        unknown = [d for d in report.deadlines if d.due is None and d.done_on is None]
    except CoreError:
        status, defects, running, unknown = "not_assessable", 0, [], []
    row = uow.session.get(CaseSummary, case.id)
    if row is None:
        row = CaseSummary(case_id=case.id)
        uow.session.add(row)
    row.custody_seq = seq
    row.status = status
    row.defects = defects
    row.deadline_rule = running[0].rule_id if running else unknown[0].rule_id if unknown else None
    row.deadline_due = running[0].due.isoformat() if running and running[0].due else None
    row.computed_at = utcnow()
    return row


def refresh_stale(
    uow: UnitOfWork,
    principal: Principal,
    today: date,
    calendar: WorkingCalendar,
    limit: int = REFRESH_PER_REQUEST,
) -> tuple[int, int]:
    """Re-assess up to ``limit`` stale visible cases; ``(refreshed, still stale)``."""
    last = _last_seq()
    stale = (
        visible_cases(principal)
        .join(last, last.c.case_id == Case.id, isouter=True)
        .join(CaseSummary, CaseSummary.case_id == Case.id, isouter=True)
        .where(
            or_(
                CaseSummary.case_id.is_(None),
                CaseSummary.custody_seq < func.coalesce(last.c.seq, 0),
            )
        )
    )
    count = uow.session.scalar(select(func.count()).select_from(stale.subquery())) or 0
    picked = uow.session.execute(
        stale.add_columns(func.coalesce(last.c.seq, 0))
        .order_by(Case.created_at.desc())
        .limit(limit)
    ).all()
    for case, seq in picked:
        summarise(uow, case, int(seq), today, calendar)
    uow.session.flush()
    return len(picked), count - len(picked)


def _working_days_between(calendar: WorkingCalendar, today: date, due: date) -> int | None:
    """Working days from ``today`` to ``due`` (0 on the day; negative after it)."""
    try:
        step = 1 if due >= today else -1
        days, cursor = 0, today
        while cursor != due:
            cursor = date.fromordinal(cursor.toordinal() + step)
            if calendar.is_working_day(cursor):
                days += step
        return days
    except CoreError:
        return None


def _like(text: str) -> str:
    """A LIKE pattern containing ``text`` literally (``!`` escapes)."""
    return "%" + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


def publication_condition(
    state: str, today: date, calendar: WorkingCalendar
) -> ColumnElement[bool] | None:
    """SQL for "a publication in ``state`` today" (:func:`publication_state` as a query)."""
    pending = Publication.status == PublicationStatus.PENDING.value
    try:
        horizon = calendar.add_working_days(today, PUBLICATION_SOON)
    except CoreError:
        horizon = today
    match state:
        case PublicationState.OVERDUE:
            return and_(pending, Publication.due_on < today)
        case PublicationState.DUE_SOON:
            return and_(pending, Publication.due_on >= today, Publication.due_on <= horizon)
        case PublicationState.PENDING:
            return and_(pending, Publication.due_on > horizon)
        case PublicationState.PUBLISHED | PublicationState.WITHDRAWN | PublicationState.EXEMPT:
            return Publication.status == state
    return None


def publication_badges(
    uow: UnitOfWork, case_ids: list[str], today: date, calendar: WorkingCalendar
) -> dict[str, tuple[PublicationBadge, ...]]:
    """The publications of ``case_ids`` as the list shows them, by case id (one query)."""
    found: dict[str, list[PublicationBadge]] = {}
    rows = uow.session.scalars(
        select(Publication)
        .where(Publication.case_id.in_(case_ids))
        .order_by(Publication.due_on, Publication.id)
    )
    for p in rows:
        status = PublicationStatus(p.status)
        try:
            state = publication_state(status, p.due_on, today, calendar)
        except CoreError:
            state = PublicationState.OVERDUE if today > p.due_on else PublicationState.PENDING
        left = None
        if status is PublicationStatus.PENDING:
            left = _working_days_between(calendar, today, p.due_on)
        badge = PublicationBadge(p.id, state, p.due_on, left, p.version)
        found.setdefault(p.case_id, []).append(badge)
    return {case_id: tuple(badges) for case_id, badges in found.items()}


def list_page(
    uow: UnitOfWork,
    principal: Principal,
    query: ListQuery,
    *,
    today: date,
    calendar: WorkingCalendar,
) -> CaseListPage:
    """The page of cases ``principal`` may see that match ``query``."""
    require_person(principal)
    refreshed, stale_left = refresh_stale(uow, principal, today, calendar)
    sync_publications(uow.session, calendar, principal.agency_id)
    sql = visible_cases(principal).join(CaseSummary, CaseSummary.case_id == Case.id, isouter=True)
    if query.text.strip():
        text = query.text.strip()
        pattern = _like(text)
        # parties are stored as JSON text with non-ASCII escaped (\uXXXX): match that form
        in_json = _like(json.dumps(text)[1:-1])
        sql = sql.where(
            or_(
                Case.case_no.ilike(pattern, escape="!"),
                Case.title.ilike(pattern, escape="!"),
                cast(Case.parties, String).ilike(in_json, escape="!"),
                cast(Case.parties, String).ilike(pattern, escape="!"),
            )
        )
    if query.category:
        sql = sql.where(Case.category == query.category)
    if query.stage:
        sql = sql.where(Case.current_stage == query.stage)
    if query.status:
        sql = sql.where(Case.status == query.status)
    if query.officer_id:
        sql = sql.where(Case.officers.any(CaseOfficer.user_id == query.officer_id))
    if query.flag == Flag.MISSING:
        sql = sql.where(CaseSummary.defects > 0)
    elif query.flag == Flag.OVERDUE:
        sql = sql.where(CaseSummary.deadline_due < today.isoformat())
    elif query.flag == Flag.DUE_SOON:
        try:
            horizon = calendar.add_working_days(today, DUE_SOON_WORKING_DAYS)
        except CoreError:
            horizon = today
        sql = sql.where(
            CaseSummary.deadline_due >= today.isoformat(),
            CaseSummary.deadline_due <= horizon.isoformat(),
        )
    if query.publication:
        condition = publication_condition(query.publication, today, calendar)
        if condition is not None:
            sql = sql.where(
                select(Publication.id).where(Publication.case_id == Case.id, condition).exists()
            )
    total = uow.session.scalar(select(func.count()).select_from(sql.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, query.page), pages)
    column = {
        Sort.CASE_NO.value: Case.case_no,
        Sort.DEADLINE.value: CaseSummary.deadline_due,
    }.get(query.sort, Case.created_at)
    order = column.desc() if query.descending else column.asc()
    if query.sort == Sort.DEADLINE.value:
        order = order.nulls_last()
    found = uow.session.execute(
        sql.add_columns(CaseSummary)
        .options(selectinload(Case.officers))
        .order_by(order, Case.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    badges = publication_badges(uow, [case.id for case, _ in found], today, calendar)
    rows = []
    for case, summary in found:
        left = None
        tone = "none"
        if summary is not None and summary.deadline_due:
            left = _working_days_between(calendar, today, date.fromisoformat(summary.deadline_due))
            if left is not None:
                tone = "overdue" if left < 0 else "soon" if left <= DUE_SOON_WORKING_DAYS else "ok"
        rows.append(CaseRow(case, summary, left, tone, badges.get(case.id, ())))
    return CaseListPage(rows, total, page, pages, refreshed, stale_left)
