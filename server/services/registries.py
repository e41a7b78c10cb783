"""事前公开 registries: inspectors (执法人员名录), 随机抽查事项清单 and 检查对象名录库.

The inspector list is the ``users`` table itself (role ``inspector``: name, 执法证号,
agency, 在岗 / 已注销 after deactivation), kept by admins through the user API, so the
public list can never disagree with who may sign on site. Items and targets are kept by
admins here (API and ``casetrail registry …``); a retired entry stays listed as such and
leaves every later draw pool.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.redaction import is_credit_code, mask_person_name
from server.auth import Principal, require_admin
from server.errors import Conflict, Invalid, NotFound
from server.models import Agency, InspectionItem, InspectionTarget, Role, User, utcnow
from server.services.unit_of_work import UnitOfWork

TARGET_KINDS = ("organisation", "person")
T = TypeVar("T")


@dataclass(frozen=True)
class NewItem:
    """A 随机抽查事项: code, name, legal basis, who is inspected, how."""

    code: str
    name: str
    basis: str = ""
    subject: str = ""
    method: str = ""


@dataclass(frozen=True)
class NewTarget:
    """A 检查对象: its code (统一社会信用代码 for organisations), name, kind, sector."""

    code: str
    name: str
    kind: str = "organisation"
    sector: str = ""


def item_json(i: InspectionItem) -> dict[str, Any]:
    """API and public form of an item."""
    return {
        "id": i.id,
        "code": i.code,
        "name": i.name,
        "basis": i.basis,
        "subject": i.subject,
        "method": i.method,
        "active": i.active,
    }


def target_json(t: InspectionTarget, *, public: bool = False) -> dict[str, Any]:
    """API form of a target; the public form masks a person's name and drops their code."""
    person = t.kind == "person"
    return {
        "id": t.id,
        "code": None if public and person else t.code,
        "name": mask_person_name(t.name) if public and person else t.name,
        "kind": t.kind,
        "sector": t.sector,
        "active": t.active,
    }


def add_item(uow: UnitOfWork, principal: Principal, draft: NewItem) -> InspectionItem:
    """An admin adds an item to the agency's 随机抽查事项清单."""
    require_admin(principal)
    if not draft.code.strip() or not draft.name.strip():
        raise Invalid(errors={"code": ["须填写事项编码和名称 (code and name are required)"]})
    item = InspectionItem(
        agency_id=principal.agency_id,
        code=draft.code.strip(),
        name=draft.name.strip(),
        basis=draft.basis.strip(),
        subject=draft.subject.strip(),
        method=draft.method.strip(),
        active=True,
        created_at=utcnow(),
    )
    return _insert(uow, item, f"事项编码 {item.code} 已存在 (item code already used)")


def add_targets(
    uow: UnitOfWork, principal: Principal, drafts: Iterable[NewTarget]
) -> list[InspectionTarget]:
    """An admin adds targets to the 检查对象名录库 (all or none; every problem reported)."""
    require_admin(principal)
    errors: dict[str, list[str]] = {}
    rows: list[InspectionTarget] = []
    for n, d in enumerate(drafts):
        problems = []
        if d.kind not in TARGET_KINDS:
            problems.append(f"kind 须为 {'/'.join(TARGET_KINDS)}")
        if not d.name.strip() or not d.code.strip():
            problems.append("须填写名称和编码 (name and code are required)")
        elif d.kind == "organisation" and len(d.code.strip()) == 18 and not is_credit_code(d.code):
            problems.append(f"统一社会信用代码校验位错误 (bad check character): {d.code}")
        if problems:
            errors[str(n)] = problems
            continue
        rows.append(
            InspectionTarget(
                agency_id=principal.agency_id,
                code=d.code.strip().upper(),
                name=d.name.strip(),
                kind=d.kind,
                sector=d.sector.strip(),
                active=True,
                created_at=utcnow(),
            )
        )
    if errors:
        raise Invalid(errors=errors)
    for row in rows:
        _insert(uow, row, f"检查对象编码 {row.code} 已存在 (target code already used)")
    return rows


def _insert(uow: UnitOfWork, row: T, duplicate: str) -> T:
    try:
        with uow.session.begin_nested():
            uow.session.add(row)
            uow.session.flush()
    except IntegrityError:
        raise Conflict(duplicate) from None
    return row


def retire_item(uow: UnitOfWork, principal: Principal, item_id: str) -> InspectionItem:
    """An admin retires an item (it stays listed as retired)."""
    require_admin(principal)
    item = uow.session.get(InspectionItem, item_id)
    if item is None or item.agency_id != principal.agency_id:
        raise NotFound("没有该抽查事项 (no such item)")
    item.active = False
    return item


def retire_target(uow: UnitOfWork, principal: Principal, target_id: str) -> InspectionTarget:
    """An admin retires a target (closed, moved away): it leaves later draw pools."""
    require_admin(principal)
    target = uow.session.get(InspectionTarget, target_id)
    if target is None or target.agency_id != principal.agency_id:
        raise NotFound("没有该检查对象 (no such target)")
    target.active = False
    return target


def list_items(uow: UnitOfWork, principal: Principal) -> list[InspectionItem]:
    """The agency's items, by code."""
    return agency_items(uow.session, principal.agency_id)


def list_targets(uow: UnitOfWork, principal: Principal) -> list[InspectionTarget]:
    """The agency's targets, by code."""
    return agency_targets(uow.session, principal.agency_id)


def agency_items(session: Session, agency_id: str) -> list[InspectionItem]:
    """Every item of an agency, by code."""
    return list(
        session.scalars(
            select(InspectionItem)
            .where(InspectionItem.agency_id == agency_id)
            .order_by(InspectionItem.code)
        )
    )


def agency_targets(session: Session, agency_id: str) -> list[InspectionTarget]:
    """Every target of an agency, by code."""
    return list(
        session.scalars(
            select(InspectionTarget)
            .where(InspectionTarget.agency_id == agency_id)
            .order_by(InspectionTarget.code)
        )
    )


# --------------------------------------------------------------------------- public


@dataclass(frozen=True)
class PublicInspector:
    """An inspector as the public checks a 亮证 against: name, 执法证号, agency, status."""

    name: str
    cert_no: str
    agency: str
    active: bool

    def to_json(self) -> dict[str, Any]:
        """``{"name", "cert_no", "agency", "status", "status_zh"}``."""
        return {
            "name": self.name,
            "cert_no": self.cert_no,
            "agency": self.agency,
            "status": "active" if self.active else "revoked",
            "status_zh": "在岗" if self.active else "已注销",
        }


def public_inspectors(session: Session, q: str = "") -> list[PublicInspector]:
    """Every inspector of every agency (name or 执法证号 containing ``q``), by agency and 证号."""
    stmt = (
        select(User, Agency)
        .join(Agency, Agency.id == User.agency_id)
        .where(User.role == Role.INSPECTOR.value)
    )
    if q.strip():
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(User.display_name.like(like), User.cert_no.like(like)))
    rows = session.execute(stmt.order_by(Agency.name, User.cert_no)).all()
    return [PublicInspector(u.display_name, u.cert_no or "", a.name, u.active) for u, a in rows]


def public_registries(session: Session) -> list[dict[str, Any]]:
    """Per agency: its items and targets in public form."""
    found = []
    for agency in session.scalars(select(Agency).order_by(Agency.name)):
        items = agency_items(session, agency.id)
        targets = agency_targets(session, agency.id)
        if items or targets:
            found.append(
                {
                    "agency": agency.name,
                    "items": [item_json(i) for i in items],
                    "targets": [target_json(t, public=True) for t in targets],
                }
            )
    return found
