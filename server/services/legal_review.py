"""Legal review (法制审核) and the decision gates (the law's procedure before a decision).

A reviewer records a review of a case's intended decision: ``passed`` (通过) or
``returned`` (退回), with the opinion and the decision draft reviewed; the review keeps
the draft's digest, so a pass covers that draft only. A decision is recorded by the
case's inspectors, an admin, or the agency's head (负责人). Before it is recorded:

* ``core.procedure.derive_conditions`` derives ``hearing_eligible``,
  ``complex_or_serious`` and ``major_case`` from the facts, the agency's hearing
  thresholds and the review catalogue (the handler may add one with a reason);
* ``core.procedure.check_procedure`` checks 行政处罚法 Arts. 62 (告知, 陈述申辩), 57 ¶2
  (集体讨论 by the head), 63/64 (听证告知书, a requested hearing held, its chair) and 51
  (简易程序 limits) against the case's stored records;
* ``core.legal_review.check_decision_allowed`` refuses a major decision unless the latest
  review passed on this very draft (Art. 58).

A refusal is a 409 naming every article and what is missing; it records nothing but a
``decision_refused`` custody event, committed by this service before the error is
raised. Reviews and decisions are custody events (``legal_review_recorded``,
``decision_recorded``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select

from core.custody import EventType
from core.errors import LegalReviewRequired
from core.legal_review import (
    DecisionFacts,
    MajorDecisionAssessment,
    MajorReason,
    ReviewCatalogue,
    check_decision_allowed,
    default_catalogue,
    draft_digest,
    is_major_decision,
)
from core.legal_review import LegalReview as ReviewFact
from core.procedure import (
    MAJOR_CASE,
    DecisionContext,
    Refusal,
    ThresholdTable,
    check_procedure,
    default_thresholds,
    derive_conditions,
)
from server.auth import (
    Principal,
    get_visible_case,
    require_case_write,
    require_person,
    require_role,
)
from server.errors import Conflict, Invalid
from server.models import (
    Agency,
    Case,
    CaseStatus,
    CustodyEventRow,
    Decision,
    LegalReview,
    Role,
    User,
    utcnow,
)
from server.services.clocks import stored_records
from server.services.custody import record_custody, stored_event
from server.services.unit_of_work import UnitOfWork

OUTCOMES = ("passed", "returned")
"""通过 / 退回 (returned for correction)."""


@dataclass(frozen=True)
class NewDecision:
    """An intended decision: its type, a summary and the facts the gates weigh.

    ``facts.category`` is taken from the case, whatever the caller put there.
    ``added_conditions`` maps a condition (``hearing_eligible``, ``complex_or_serious``,
    ``major_case``) the handler adds to the reason; derived ones cannot be removed.
    ``hearing_chair_user_id`` names who chaired the hearing (Art. 64 (四)).
    """

    decision_type: str
    facts: DecisionFacts
    summary: str = ""
    added_conditions: Mapping[str, str] = field(default_factory=dict)
    hearing_chair_user_id: str | None = None


@dataclass(frozen=True)
class NewReview:
    """A review to record: ``passed`` or ``returned``, the opinion, its document number,
    and the decision draft reviewed (a pass covers that draft only)."""

    outcome: str
    opinion: str
    opinion_ref: str = ""
    draft: NewDecision | None = None


def record_review(
    uow: UnitOfWork, principal: Principal, case_id: str, draft: NewReview
) -> LegalReview:
    """A reviewer of the case's agency records a 法制审核 opinion (logged)."""
    require_role(principal, Role.REVIEWER)
    case = get_visible_case(uow.session, principal, case_id, for_update=True)
    details: dict[str, Any] = {"opinion_ref": draft.opinion_ref.strip()}
    if draft.draft is not None:
        facts = replace(draft.draft.facts, category=case.category)
        details["draft_digest"] = draft_digest(draft.draft.decision_type, facts)
        details["draft"] = {"decision_type": draft.draft.decision_type, "facts": facts.to_json()}
    review = LegalReview(
        case_id=case.id,
        reviewer_user_id=principal.user_id,
        outcome=draft.outcome,
        opinion=draft.opinion.strip(),
        details=details,
        reviewed_at=utcnow(),
    )
    uow.session.add(review)
    uow.session.flush()
    record_custody(
        uow,
        case,
        EventType.LEGAL_REVIEW_RECORDED,
        principal,
        {
            "review_id": review.id,
            "outcome": review.outcome,
            "opinion_ref": draft.opinion_ref.strip() or None,
            "opinion": review.opinion,
            "draft_digest": details.get("draft_digest"),
        },
    )
    return review


def list_reviews(uow: UnitOfWork, principal: Principal, case_id: str) -> list[LegalReview]:
    """The case's legal reviews, oldest first."""
    case = get_visible_case(uow.session, principal, case_id)
    return list(
        uow.session.scalars(
            select(LegalReview)
            .where(LegalReview.case_id == case.id)
            .order_by(LegalReview.reviewed_at)
        )
    )


@dataclass(frozen=True)
class RefusedDraft:
    """The case's latest refused decision draft, as its ``decision_refused`` event keeps it.

    ``facts`` is core's JSON form (:meth:`DecisionFacts.to_json`); ``refusals`` each name
    the article, the message and what is missing; ``reviewed`` is true when the case's
    latest review passed on this very draft (its digest).
    """

    decision_type: str
    facts: dict[str, Any]
    digest: str
    refusals: list[dict[str, Any]]
    refused_at: str
    """RFC 3339 UTC, as the event has it."""
    reviewed: bool


def refused_draft(uow: UnitOfWork, principal: Principal, case_id: str) -> RefusedDraft | None:
    """The draft last refused on the case, unless a decision was recorded after it."""
    case = get_visible_case(uow.session, principal, case_id)
    latest = uow.session.scalars(
        select(CustodyEventRow)
        .where(
            CustodyEventRow.case_id == case.id,
            CustodyEventRow.event_type.in_(
                (EventType.DECISION_REFUSED.value, EventType.DECISION_RECORDED.value)
            ),
        )
        .order_by(CustodyEventRow.case_seq.desc())
        .limit(1)
    ).first()
    if latest is None or latest.event_type != EventType.DECISION_REFUSED.value:
        return None
    event = stored_event(latest).event
    details = event.details
    reviews = list_reviews(uow, principal, case.id)
    last = reviews[-1] if reviews else None
    digest = str(details["draft_digest"])
    return RefusedDraft(
        decision_type=str(details["decision_type"]),
        facts=dict(details["facts"]),
        digest=digest,
        refusals=[dict(r) for r in details.get("refusals", [])],
        refused_at=event.time,
        reviewed=last is not None
        and last.outcome == "passed"
        and last.details.get("draft_digest") == digest,
    )


def record_decision(
    uow: UnitOfWork,
    principal: Principal,
    case_id: str,
    draft: NewDecision,
    catalogue: ReviewCatalogue | None = None,
    thresholds: ThresholdTable | None = None,
) -> Decision:
    """Record a decision once the law's procedure allows it (else 409, refusal logged)."""
    case = get_visible_case(uow.session, principal, case_id, for_update=True)
    if principal.role == Role.HEAD:
        require_person(principal)  # the head's own token, never a device acting for them
    else:
        require_case_write(uow.session, principal, case)
    if case.status != CaseStatus.OPEN.value:
        raise Conflict(
            "案件已结案，不能再作出决定 (the case is closed; no decision can be recorded)"
        )
    catalogue = catalogue or default_catalogue()
    facts = replace(draft.facts, category=case.category)
    agency = uow.session.get(Agency, case.agency_id)
    assert agency is not None
    try:
        conditions = derive_conditions(
            facts,
            (thresholds or default_thresholds()).for_agency(agency.code),
            catalogue,
            draft.added_conditions,
        )
    except ValueError as exc:
        raise Invalid(errors={"added_conditions": [str(exc)]}) from exc
    chair = _hearing_chair(uow, case, draft.hearing_chair_user_id)
    ctx = DecisionContext(
        category=case.category,
        decision_type=draft.decision_type,
        facts=facts,
        conditions=conditions,
        record_types=stored_record_types(uow, case),
        investigators=frozenset(o.user_id for o in case.officers),
        decided_by_head=principal.role == Role.HEAD,
        hearing_chair=chair,
    )
    refusals = list(check_procedure(ctx))
    assessment = is_major_decision(facts, catalogue)
    major_reasons = list(assessment.reasons) + [
        MajorReason("handler", r.message_zh, ())
        for r in conditions.reasons
        if r.condition == MAJOR_CASE and r.added_by_handler
    ]
    major = MajorDecisionAssessment(tuple(major_reasons))
    digest = draft_digest(draft.decision_type, facts)
    reviews = list_reviews(uow, principal, case.id)
    review_facts = [
        ReviewFact(
            r.reviewer_user_id,
            r.reviewed_at,
            r.outcome == "passed",
            draft_digest=r.details.get("draft_digest"),
        )
        for r in reviews
    ]
    review_refusal: LegalReviewRequired | None = None
    try:
        check_decision_allowed(major, review_facts, digest)
    except LegalReviewRequired as exc:
        review_refusal = exc
        refusals.append(
            Refusal(
                "apl-58",
                "中华人民共和国行政处罚法第五十八条",
                exc.message,
                ("通过的法制审核意见（针对本决定草案）",),
            )
        )
    if refusals:
        _refuse(uow, principal, case, draft, facts, conditions.to_json(), digest, refusals)
        errors: dict[str, Any] = {"procedure": [r.message_zh for r in refusals]}
        if review_refusal is not None:
            errors["legal_review"] = [r.message_zh for r in major.reasons]
        raise Conflict(
            "不能作出该决定，法定程序未满足（"
            + "、".join(r.article_zh.removeprefix("中华人民共和国") for r in refusals)
            + "）：\n"
            + "\n".join(r.message_zh for r in refusals)
            + "\n(the law's procedure is not complete: "
            + ", ".join(r.code for r in refusals)
            + "; record what is missing, then decide"
            + (
                "; a major decision needs a passed legal review of this draft"
                if review_refusal
                else ""
            )
            + ")",
            errors=errors,
        )
    passed = reviews[-1] if major.is_major and reviews else None
    reasons = [{"code": r.code, "message_zh": r.message_zh} for r in major.reasons]
    decision = Decision(
        case_id=case.id,
        decision_type=draft.decision_type,
        summary=draft.summary.strip(),
        facts=facts.to_json(),
        major=major.is_major,
        major_reasons=reasons,
        legal_review_id=passed.id if passed else None,
        decided_by=principal.user_id,
        decided_at=utcnow(),
        conditions=conditions.to_json(),
    )
    uow.session.add(decision)
    uow.session.flush()
    record_custody(
        uow,
        case,
        EventType.DECISION_RECORDED,
        principal,
        {
            "decision_id": decision.id,
            "decision_type": decision.decision_type,
            "major": decision.major,
            "major_reasons": [r["code"] for r in reasons],
            "legal_review_id": decision.legal_review_id,
            "facts": decision.facts,
            "conditions": decision.conditions,
            "draft_digest": digest,
        },
    )
    return decision


def _refuse(
    uow: UnitOfWork,
    principal: Principal,
    case: Case,
    draft: NewDecision,
    facts: DecisionFacts,
    conditions: dict[str, Any],
    digest: str,
    refusals: list[Refusal],
) -> None:
    """Log the refusal (``decision_refused``) and commit it: nothing else is recorded."""
    record_custody(
        uow,
        case,
        EventType.DECISION_REFUSED,
        principal,
        {
            "decision_type": draft.decision_type,
            "facts": facts.to_json(),
            "conditions": conditions,
            "draft_digest": digest,
            "refusals": [r.to_json() for r in refusals],
        },
    )
    uow.commit()


def _hearing_chair(uow: UnitOfWork, case: Case, user_id: str | None) -> str | None:
    if user_id is None:
        return None
    user = uow.session.get(User, user_id)
    if user is None or user.agency_id != case.agency_id:
        raise Invalid(
            errors={
                "hearing_chair_user_id": [
                    f"{user_id}: 本机关没有此用户 (no such user in the case's agency)"
                ]
            }
        )
    return user.id


def stored_record_types(uow: UnitOfWork, case: Case) -> frozenset[str]:
    """Record type ids of the case's stored records (what is on file before a decision)."""
    return frozenset(m.record_type for m in stored_records(uow.session, case.id) if m.record_type)
