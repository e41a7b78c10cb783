"""Legal review (法制审核) and the decision gate (重大执法决定).

A reviewer records a review of a case's intended decision: ``passed`` (通过) or
``returned`` (退回), with the opinion. A decision is recorded by the case's inspectors or
an admin; ``core.legal_review.is_major_decision`` (Art. 58 criteria + the agency
catalogue) says whether it is major, and ``check_decision_allowed`` refuses a major one
unless the latest review passed (409, naming every reason that made it major). Both
are custody events (``legal_review_recorded``, ``decision_recorded``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select

from core.custody import EventType
from core.errors import LegalReviewRequired
from core.legal_review import (
    DecisionFacts,
    ReviewCatalogue,
    check_decision_allowed,
    default_catalogue,
    is_major_decision,
)
from core.legal_review import LegalReview as ReviewFact
from server.auth import Principal, get_visible_case, require_case_write, require_role
from server.errors import Conflict
from server.models import CaseStatus, Decision, LegalReview, Role, utcnow
from server.services.custody import record_custody
from server.services.unit_of_work import UnitOfWork

OUTCOMES = ("passed", "returned")
"""通过 / 退回 (returned for correction)."""


@dataclass(frozen=True)
class NewReview:
    """A review to record: ``passed`` or ``returned``, the opinion, its document number."""

    outcome: str
    opinion: str
    opinion_ref: str = ""


@dataclass(frozen=True)
class NewDecision:
    """An intended decision: its type, a summary and the facts the gate weighs.

    ``facts.category`` is taken from the case, whatever the caller put there.
    """

    decision_type: str
    facts: DecisionFacts
    summary: str = ""


def record_review(
    uow: UnitOfWork, principal: Principal, case_id: str, draft: NewReview
) -> LegalReview:
    """A reviewer of the case's agency records a 法制审核 opinion (logged)."""
    require_role(principal, Role.REVIEWER)
    case = get_visible_case(uow.session, principal, case_id, for_update=True)
    review = LegalReview(
        case_id=case.id,
        reviewer_user_id=principal.user_id,
        outcome=draft.outcome,
        opinion=draft.opinion.strip(),
        details={"opinion_ref": draft.opinion_ref.strip()},
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


def record_decision(
    uow: UnitOfWork,
    principal: Principal,
    case_id: str,
    draft: NewDecision,
    catalogue: ReviewCatalogue | None = None,
) -> Decision:
    """Record a decision; a major one needs the latest legal review to have passed (else 409)."""
    case = get_visible_case(uow.session, principal, case_id, for_update=True)
    require_case_write(uow.session, principal, case)
    if case.status != CaseStatus.OPEN.value:
        raise Conflict(
            "案件已结案，不能再作出决定 (the case is closed; no decision can be recorded)"
        )
    facts = replace(draft.facts, category=case.category)
    assessment = is_major_decision(facts, catalogue or default_catalogue())
    reviews = list_reviews(uow, principal, case.id)
    try:
        check_decision_allowed(
            assessment,
            [ReviewFact(r.reviewer_user_id, r.reviewed_at, r.outcome == "passed") for r in reviews],
        )
    except LegalReviewRequired as exc:
        raise Conflict(
            exc.message,
            errors={"legal_review": [r.message_zh for r in assessment.reasons]},
        ) from exc
    passed = reviews[-1] if assessment.is_major and reviews else None
    reasons = [{"code": r.code, "message_zh": r.message_zh} for r in assessment.reasons]
    decision = Decision(
        case_id=case.id,
        decision_type=draft.decision_type,
        summary=draft.summary.strip(),
        facts=facts.to_json(),
        major=assessment.is_major,
        major_reasons=reasons,
        legal_review_id=passed.id if passed else None,
        decided_by=principal.user_id,
        decided_at=utcnow(),
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
        },
    )
    return decision
