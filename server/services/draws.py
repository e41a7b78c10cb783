"""双随机 draws: commit a plan, draw from the next checkpoint, publish, open the inspections.

1. :func:`commit_draw` (admin) takes the agency's active targets and inspectors and the
   chosen items into a :class:`core.draw.DrawPlan` and records its hash as a
   ``draw_committed`` custody event — on the agency's 双随机 ledger (a case of category
   ``inspection`` with 案号 :data:`LEDGER_CASE_NO`, opened on the first draw) since
   every custody event belongs to a case.
2. :func:`perform_draw` (admin) seeds the draw with the root of the first signed
   checkpoint whose tree contains that event (signing one when there is none yet),
   stores the result and records ``draw_performed``.
3. :func:`published_draw` is the public JSON: plan, commitment event with its inclusion
   proof, signed checkpoint, the log's verifier key and the result — all that
   ``casetrail draw verify`` needs, without any database.
4. :func:`open_inspection_cases` opens one 行政检查 case per drawn target, with the drawn
   inspectors assigned.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.checkpoint import NoteSigner, open_checkpoint
from core.custody import EventType
from core.draw import DrawInspector, DrawPlan, DrawTarget, Exclusion, result_json, run_draw
from core.merkle import inclusion_proof
from core.redaction import mask_person_name
from server.auth import Principal, require_admin
from server.errors import Conflict, Invalid, NotFound
from server.models import (
    Agency,
    Case,
    Checkpoint,
    CustodyEventRow,
    Draw,
    InspectionItem,
    InspectionTarget,
    Role,
    User,
    utcnow,
)
from server.services.cases import NewCase, create_case
from server.services.custody import record_custody, sign_checkpoint
from server.services.custody_log import DbTreeReader
from server.services.unit_of_work import UnitOfWork

LEDGER_CASE_NO = "双随机抽查登记簿"


@dataclass(frozen=True)
class NewDraw:
    """A draw to commit: title, item codes, how many targets, inspectors each, exclusions."""

    title: str
    item_codes: tuple[str, ...]
    target_count: int
    per_target: int = 2
    exclusions: tuple[Exclusion, ...] = ()


def _target(t: InspectionTarget) -> DrawTarget:
    if t.kind == "person":  # a person's name is published masked, never their number
        return DrawTarget(f"T-{t.id}", mask_person_name(t.name))
    return DrawTarget(t.code, t.name)


def _ledger(uow: UnitOfWork, principal: Principal) -> Case:
    found = uow.session.scalar(
        select(Case).where(Case.agency_id == principal.agency_id, Case.case_no == LEDGER_CASE_NO)
    )
    if found is not None:
        return found
    return create_case(
        uow,
        principal,
        NewCase("inspection", LEDGER_CASE_NO, "双随机抽查计划与抽取结果登记（系统台账）"),
    )


def commit_draw(uow: UnitOfWork, principal: Principal, draft: NewDraw) -> Draw:
    """Fix the plan from today's pools and commit its hash to the custody log (admin)."""
    require_admin(principal)
    session = uow.session
    agency = session.get(Agency, principal.agency_id)
    assert agency is not None
    items = {
        i.code: i
        for i in session.scalars(
            select(InspectionItem).where(
                InspectionItem.agency_id == agency.id, InspectionItem.active.is_(True)
            )
        )
    }
    errors: dict[str, list[str]] = {}
    unknown = [c for c in draft.item_codes if c not in items]
    if unknown or not draft.item_codes:
        errors["item_codes"] = [f"不在有效的抽查事项清单中 (not an active item): {unknown or '—'}"]
    targets = session.scalars(
        select(InspectionTarget).where(
            InspectionTarget.agency_id == agency.id, InspectionTarget.active.is_(True)
        )
    )
    inspectors = session.scalars(
        select(User).where(
            User.agency_id == agency.id,
            User.role == Role.INSPECTOR.value,
            User.active.is_(True),
        )
    )
    plan = DrawPlan.build(
        agency.name,
        draft.title.strip(),
        [f"{c} {items[c].name}" for c in draft.item_codes if c in items],
        [_target(t) for t in targets],
        [DrawInspector(u.cert_no or "", u.display_name) for u in inspectors],
        draft.target_count,
        draft.per_target,
        draft.exclusions,
    )
    if plan.problems():
        errors["plan"] = plan.problems()
    if not draft.title.strip():
        errors["title"] = ["须填写抽查任务名称 (a title is required)"]
    if errors:
        raise Invalid(errors=errors)
    ledger = _ledger(uow, principal)
    draw = Draw(
        agency_id=agency.id,
        ledger_case_id=ledger.id,
        title=plan.title,
        plan=plan.to_json(),
        plan_hash=plan.plan_hash(),
        commit_event_id="",
        commit_log_index=-1,
        status="committed",
        case_ids=[],
        committed_by=principal.user_id,
        committed_at=utcnow(),
    )
    session.add(draw)
    session.flush()
    event = record_custody(
        uow,
        ledger,
        EventType.DRAW_COMMITTED,
        principal,
        {"draw_id": draw.id, "title": plan.title, "plan_hash": draw.plan_hash},
    )
    draw.commit_event_id = event.event.event_id
    draw.commit_log_index = event.log_index
    return draw


def _get(session: Session, principal: Principal, draw_id: str) -> Draw:
    draw = session.get(Draw, draw_id)
    if draw is None or draw.agency_id != principal.agency_id:
        raise NotFound(f"没有该抽查 (no draw {draw_id})")
    return draw


def perform_draw(uow: UnitOfWork, principal: Principal, draw_id: str, signer: NoteSigner) -> Draw:
    """Draw from the first checkpoint covering the commitment (signed now if none) (admin)."""
    require_admin(principal)
    session = uow.session
    draw = _get(session, principal, draw_id)
    if draw.status != "committed":
        raise Conflict("该抽查已抽取 (this draw was already performed)")
    first = session.scalar(
        select(Checkpoint)
        .where(Checkpoint.size > draw.commit_log_index)
        .order_by(Checkpoint.id)
        .limit(1)
    )
    if first is None:
        stored = sign_checkpoint(uow, signer)
        note, size, root = stored.note, stored.size, stored.root
    else:
        note, size, root = first.note, first.size, bytes(first.root)
    result = result_json(run_draw(DrawPlan.from_json(draw.plan), root))
    draw.checkpoint_note = note
    draw.checkpoint_size = size
    draw.result = {"assignments": result}
    draw.status = "drawn"
    draw.drawn_at = utcnow()
    ledger = session.get(Case, draw.ledger_case_id)
    assert ledger is not None
    record_custody(
        uow,
        ledger,
        EventType.DRAW_PERFORMED,
        principal,
        {
            "draw_id": draw.id,
            "checkpoint_size": size,
            "seed": base64.b64encode(root).decode("ascii"),
            "targets": [a["target"]["code"] for a in result],
        },
    )
    return draw


def open_inspection_cases(uow: UnitOfWork, principal: Principal, draw_id: str) -> Draw:
    """One 行政检查 case per drawn target, its drawn inspectors assigned (admin, once)."""
    require_admin(principal)
    session = uow.session
    draw = _get(session, principal, draw_id)
    if draw.status != "drawn" or draw.result is None:
        raise Conflict("尚未抽取 (draw first)")
    if draw.case_ids:
        raise Conflict("已为该抽查立案 (cases were already opened for this draw)")
    by_cert = {
        u.cert_no: u.id
        for u in session.scalars(
            select(User).where(User.agency_id == draw.agency_id, User.role == Role.INSPECTOR.value)
        )
    }
    opened = []
    for n, a in enumerate(draw.result["assignments"], start=1):
        target = a["target"]
        case = create_case(
            uow,
            principal,
            NewCase(
                "inspection",
                f"{draw.title}-{n:03d}",
                f"双随机抽查：{target['name']}",
                parties=(
                    {"name": target["name"], "kind": "organisation", "id_number": target["code"]},
                )
                if not target["code"].startswith("T-")
                else ({"name": target["name"], "kind": "person"},),
                officer_ids=tuple(by_cert[i["cert_no"]] for i in a["inspectors"]),
            ),
        )
        opened.append(case)
    draw.case_ids = [c.id for c in opened]
    return draw


def list_draws(uow: UnitOfWork, principal: Principal) -> list[Draw]:
    """The agency's draws, newest first."""
    return list(
        uow.session.scalars(
            select(Draw)
            .where(Draw.agency_id == principal.agency_id)
            .order_by(Draw.committed_at.desc())
        )
    )


def draw_json(draw: Draw) -> dict[str, Any]:
    """The API form of a draw."""
    return {
        "id": draw.id,
        "title": draw.title,
        "status": draw.status,
        "plan": draw.plan,
        "plan_hash": draw.plan_hash,
        "commit_log_index": draw.commit_log_index,
        "checkpoint_size": draw.checkpoint_size,
        "result": draw.result,
        "case_ids": draw.case_ids,
        "committed_at": draw.committed_at.isoformat(),
        "drawn_at": draw.drawn_at.isoformat() if draw.drawn_at else None,
    }


# --------------------------------------------------------------------------- public


def public_draws(session: Session) -> list[Draw]:
    """Every performed draw, newest first."""
    return list(
        session.scalars(select(Draw).where(Draw.status == "drawn").order_by(Draw.drawn_at.desc()))
    )


def published_draw(session: Session, draw_id: str, verifier_key: str) -> dict[str, Any]:
    """Everything needed to re-run a performed draw anywhere (``casetrail draw verify``)."""
    draw = session.get(Draw, draw_id)
    if draw is None or draw.status != "drawn" or draw.checkpoint_note is None:
        raise NotFound("未找到该抽查结果 (no performed draw with this id)")
    event = session.get(CustodyEventRow, draw.commit_event_id)
    assert event is not None and draw.checkpoint_size is not None and draw.result is not None
    proof = inclusion_proof(DbTreeReader(session), event.log_index, draw.checkpoint_size)
    return {
        "id": draw.id,
        "title": draw.title,
        "drawn_at": draw.drawn_at.isoformat() if draw.drawn_at else None,
        "plan": draw.plan,
        "plan_hash": draw.plan_hash,
        "commitment": {
            "event": event.canonical_json,
            "log_index": event.log_index,
            "inclusion_proof": [base64.b64encode(h).decode("ascii") for h in proof],
        },
        "checkpoint": draw.checkpoint_note,
        "log_verifier_key": verifier_key,
        "result": draw.result["assignments"],
    }


def checkpoint_root(note: str, verifier_key: str) -> bytes:
    """The root hash of a stored checkpoint note (checked with the log's key)."""
    return open_checkpoint(note, verifier_key).root_hash


def exclusions_from(rows: Sequence[dict[str, str]]) -> tuple[Exclusion, ...]:
    """Exclusions from API rows ``{cert_no, target_code, reason}``."""
    return tuple(Exclusion(r["cert_no"], r["target_code"], r["reason"]) for r in rows)
