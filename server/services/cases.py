"""Cases (案件): create, list, read, assign officers, change stage.

A case pins the recording standard version it was opened under; a newer shipped
version never changes it. Stages move forward through the pinned standard's stage
list; skipping a required stage or going back is allowed only when marked
``out_of_order`` with a reason, and every change is kept in the stage history.
Opening a case, assigning officers and changing the stage are custody events.

A case read with :func:`get_case_with_clocks` carries its legal clocks (法定期限):
every deadline rule attached by :mod:`server.services.clocks`, with its due date on the
working-day calendar and its state today.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from core.calendar import WorkingCalendar
from core.completeness import deadline_results
from core.deadlines import DEADLINE_RULES
from core.errors import UnknownStandard
from core.standards import load_standard
from core.standards.model import RecordingStandard, Requirement
from server.auth import (
    Principal,
    get_visible_case,
    require_case_write,
    require_person,
    require_role,
    visible_cases,
)
from server.errors import Conflict, Invalid
from server.models import Case, CaseOfficer, CaseStatus, Role, StageChange, User, utcnow
from server.services.clocks import case_clocks, china_date
from server.services.custody import record_custody
from server.services.unit_of_work import UnitOfWork

MAX_PAGE = 200


@dataclass(frozen=True)
class NewCase:
    """What a caller supplies to open a case; ``standard_version`` None pins the newest."""

    category: str
    case_no: str
    title: str
    parties: tuple[dict[str, Any], ...] = ()
    standard_version: str | None = None
    officer_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseFilter:
    """Filters of the case list; every given one must match."""

    status: CaseStatus | None = None
    category: str | None = None
    stage: str | None = None
    officer_id: str | None = None
    text: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class CasePage:
    """One page of cases and the total matching count."""

    items: list[Case]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class StageMove:
    """A requested stage change."""

    stage: str
    out_of_order: bool = False
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def pinned_standard(case: Case) -> RecordingStandard:
    """The recording standard exactly as pinned on ``case``."""
    return load_standard(case.standard_id, case.standard_version)


def create_case(uow: UnitOfWork, principal: Principal, draft: NewCase) -> Case:
    """Admins and inspectors open cases in their agency; an inspector is assigned to it."""
    require_role(principal, Role.ADMIN, Role.INSPECTOR)
    errors: dict[str, list[str]] = {}
    standard: RecordingStandard | None = None
    try:
        standard = load_standard(draft.category, draft.standard_version)
    except UnknownStandard as exc:
        key = "standard_version" if draft.standard_version else "category"
        errors[key] = [exc.message]
    if not draft.case_no.strip():
        errors["case_no"] = ["案号不能为空 (case_no must not be empty)"]
    if not draft.title.strip():
        errors["title"] = ["案件名称不能为空 (title must not be empty)"]
    officer_ids = list(dict.fromkeys(draft.officer_ids))
    if principal.role == Role.INSPECTOR and principal.user_id not in officer_ids:
        officer_ids.insert(0, principal.user_id)
    officers, officer_errors = _inspectors(uow, principal.agency_id, officer_ids)
    if officer_errors:
        errors["officer_ids"] = officer_errors
    if errors:
        raise Invalid(errors=errors)
    assert standard is not None
    session = uow.session
    if session.scalar(
        select(Case.id).where(Case.agency_id == principal.agency_id, Case.case_no == draft.case_no)
    ):
        raise Conflict(
            f"本机关已有案号 {draft.case_no} (case_no {draft.case_no!r} already exists)",
            errors={"case_no": ["已存在 (exists)"]},
        )
    first_stage = standard.stages[0].id if standard.stages else None
    case = Case(
        agency_id=principal.agency_id,
        category=standard.id,
        standard_id=standard.id,
        standard_version=standard.version,
        case_no=draft.case_no.strip(),
        title=draft.title.strip(),
        parties=[dict(p) for p in draft.parties],
        status=CaseStatus.OPEN.value,
        current_stage=first_stage,
        created_by=principal.user_id,
        officers=[],
    )
    session.add(case)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request used the same 案号 first
        raise Conflict(f"案号已存在 (case_no {draft.case_no!r} already exists)") from exc
    now = utcnow()
    for officer in officers:
        case.officers.append(
            CaseOfficer(user=officer, assigned_by=principal.user_id, assigned_at=now)
        )
    if first_stage is not None:
        session.add(
            StageChange(
                case_id=case.id, from_stage=None, to_stage=first_stage, changed_by=principal.user_id
            )
        )
    session.flush()
    record_custody(
        uow,
        case,
        "case_opened",
        principal,
        {
            "case_no": case.case_no,
            "category": case.category,
            "standard": f"{case.standard_id}@{case.standard_version}",
            "stage": first_stage,
            "officers": [o.cert_no for o in officers],
        },
    )
    return case


def _inspectors(
    uow: UnitOfWork, agency_id: str, user_ids: list[str]
) -> tuple[list[User], list[str]]:
    """The users as officers, and one message per id that is not an active inspector."""
    found: list[User] = []
    problems: list[str] = []
    for user_id in user_ids:
        user = uow.session.get(User, user_id)
        if user is None or user.agency_id != agency_id:
            problems.append(f"{user_id}: 本机关没有此用户 (no such user in your agency)")
        elif user.role != Role.INSPECTOR or not user.cert_no:
            problems.append(
                f"{user_id}: 只有持执法证号的执法人员可以承办案件 "
                "(only inspectors with a 执法证号 can be assigned)"
            )
        elif not user.active:
            problems.append(f"{user_id}: 用户已停用 (user is deactivated)")
        else:
            found.append(user)
    return found, problems


def list_cases(uow: UnitOfWork, principal: Principal, filters: CaseFilter) -> CasePage:
    """The cases ``principal`` may see that match ``filters``, newest first."""
    require_person(principal)
    query = visible_cases(principal)
    if filters.status is not None:
        query = query.where(Case.status == filters.status.value)
    if filters.category:
        query = query.where(Case.category == filters.category)
    if filters.stage:
        query = query.where(Case.current_stage == filters.stage)
    if filters.officer_id:
        query = query.where(Case.officers.any(CaseOfficer.user_id == filters.officer_id))
    if filters.text:
        pattern = (
            "%" + filters.text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        )
        query = query.where(
            or_(Case.case_no.ilike(pattern, escape="\\"), Case.title.ilike(pattern, escape="\\"))
        )
    total = uow.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    limit = max(1, min(filters.limit, MAX_PAGE))
    items = uow.session.scalars(
        query.options(selectinload(Case.officers))
        .order_by(Case.created_at.desc(), Case.id)
        .limit(limit)
        .offset(max(0, filters.offset))
    )
    return CasePage(list(items), total, limit, max(0, filters.offset))


def get_case(uow: UnitOfWork, principal: Principal, case_id: str) -> Case:
    """One case the principal may see (else NotFound), with its officers loaded."""
    case = get_visible_case(uow.session, principal, case_id)
    _ = case.officers  # load before the session closes
    return case


class CaseWithClocks:
    """A case and its legal clocks; reads every other attribute from the case."""

    def __init__(self, case: Case, deadlines: list[dict[str, Any]]) -> None:
        self.case = case
        self.deadlines = deadlines

    def __getattr__(self, name: str) -> Any:
        return getattr(self.case, name)


def get_case_with_clocks(
    uow: UnitOfWork,
    principal: Principal,
    case_id: str,
    *,
    calendar: WorkingCalendar,
    today: date | None = None,
) -> CaseWithClocks:
    """One case the principal may see, with every legal clock running on it."""
    case = get_case(uow, principal, case_id)
    today = today or china_date(utcnow())
    results, _ = deadline_results(case_clocks(uow, case), today=today, calendar=calendar)
    clocks = []
    for r in results:
        rule = DEADLINE_RULES[r.rule_id]
        clocks.append(
            {
                "rule": r.rule_id,
                "name_zh": rule.name_zh,
                "describe_zh": rule.describe_zh(),
                "obligor": rule.obligor.value,
                "basis": [b.cite() for b in rule.basis],
                "start": r.start.isoformat(),
                "due": r.due.isoformat() if r.due else None,
                "state": r.state,
                "done_on": r.done_on.isoformat() if r.done_on else None,
                "rolled_from": r.rolled_from.isoformat() if r.rolled_from else None,
                "note": r.note,
            }
        )
    return CaseWithClocks(case, clocks)


def stage_history(uow: UnitOfWork, principal: Principal, case_id: str) -> list[StageChange]:
    """The case's stage changes, oldest first."""
    case = get_visible_case(uow.session, principal, case_id)
    query = select(StageChange).where(StageChange.case_id == case.id).order_by(StageChange.id)
    return list(uow.session.scalars(query))


def assign_officers(
    uow: UnitOfWork, principal: Principal, case_id: str, user_ids: list[str]
) -> Case:
    """Add inspectors of the agency to the case; already assigned ones are kept once."""
    case = get_visible_case(uow.session, principal, case_id, for_update=True)
    require_case_write(uow.session, principal, case)
    _require_open(case)
    current = {o.user_id for o in case.officers}
    wanted = [u for u in dict.fromkeys(user_ids) if u not in current]
    if not user_ids:
        raise Invalid(
            errors={"officer_ids": ["至少指定一名执法人员 (give at least one inspector)"]}
        )
    officers, problems = _inspectors(uow, case.agency_id, wanted)
    if problems:
        raise Invalid(errors={"officer_ids": problems})
    now = utcnow()
    for officer in officers:
        case.officers.append(
            CaseOfficer(user=officer, assigned_by=principal.user_id, assigned_at=now)
        )
    uow.session.flush()
    if officers:
        record_custody(
            uow,
            case,
            "officers_assigned",
            principal,
            {
                "added": [{"user_id": o.id, "cert_no": o.cert_no} for o in officers],
                "officers": [o.user.cert_no for o in case.officers],
            },
        )
    return case


def change_stage(uow: UnitOfWork, principal: Principal, case_id: str, move: StageMove) -> Case:
    """Move the case to another stage of its pinned standard, recorded in history."""
    case = get_visible_case(uow.session, principal, case_id, for_update=True)
    require_case_write(uow.session, principal, case)
    _require_open(case)
    standard = pinned_standard(case)
    target = standard.stage_index(move.stage)
    if target < 0:
        known = ", ".join(s.id for s in standard.stages)
        raise Invalid(
            errors={
                "stage": [
                    f"{move.stage!r} 不是 {standard.id}@{standard.version} 的环节 "
                    f"(not a stage of the pinned standard); 可选 choose from: {known}"
                ]
            }
        )
    if move.stage == case.current_stage:
        raise Conflict(f"案件已处于该环节 (case is already at stage {move.stage!r})")
    current = standard.stage_index(case.current_stage) if case.current_stage else -1
    skipped = [
        s for s in standard.stages[current + 1 : target] if s.requirement == Requirement.REQUIRED
    ]
    in_order = target > current and not skipped
    reason = (move.reason or "").strip()
    if not in_order and not move.out_of_order:
        why = (
            f"跳过了必经环节 {', '.join(s.id for s in skipped)} (skips required stages)"
            if target > current
            else "回退到之前的环节 (goes back to an earlier stage)"
        )
        raise Invalid(
            errors={
                "stage": [
                    f"{why}；如确需如此，请设置 out_of_order=true 并说明理由 "
                    "(set out_of_order=true and give a reason if this is intended)"
                ]
            }
        )
    if move.out_of_order and not reason:
        raise Invalid(
            errors={"reason": ["非顺序变更必须说明理由 (an out-of-order change needs a reason)"]}
        )
    previous = case.current_stage
    case.current_stage = move.stage
    uow.session.add(
        StageChange(
            case_id=case.id,
            from_stage=previous,
            to_stage=move.stage,
            out_of_order=not in_order,
            reason=reason or None,
            changed_by=principal.user_id,
        )
    )
    uow.session.flush()
    record_custody(
        uow,
        case,
        "stage_changed",
        principal,
        {
            "from": previous,
            "to": move.stage,
            "out_of_order": not in_order,
            "reason": reason or None,
        },
    )
    return case


def _require_open(case: Case) -> None:
    if case.status != CaseStatus.OPEN:
        raise Conflict("案件已结案，不能再修改 (the case is closed and cannot be changed)")
