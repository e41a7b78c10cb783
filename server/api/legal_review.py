# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Legal review (法制审核) of a case's decision, and the decision gate for major decisions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from core.legal_review import MEASURES, DecisionFacts, PartyKind
from core.procedure import CONDITIONS
from server.api.common import BaseSchema, Blueprint, call, created
from server.errors import Invalid
from server.services import legal_review
from server.services.legal_review import OUTCOMES, NewDecision, NewReview

blp = Blueprint("legal_review", __name__, url_prefix="/cases", description="法制审核 Legal review")


class AddedConditionSchema(BaseSchema):
    condition = fields.String(
        required=True,
        validate=validate.OneOf(list(CONDITIONS)),
        metadata={"description": "hearing_eligible | complex_or_serious | major_case"},
    )
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class DraftSchema(BaseSchema):
    """The decision draft: its type and the facts the gates weigh."""

    decision_type = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "e.g. penalty 行政处罚决定, no-penalty 不予处罚"},
    )
    party = fields.String(
        load_default=PartyKind.INDIVIDUAL.value,
        load_only=True,
        validate=validate.OneOf([PartyKind.INDIVIDUAL.value, PartyKind.ORGANISATION.value]),
    )
    fine_yuan = fields.Decimal(
        load_default=Decimal(0),
        load_only=True,
        as_string=True,
        validate=validate.Range(min=0),
        metadata={"minimum": 0},  # else apispec renders the bound as the string "0"
    )
    property_value_yuan = fields.Decimal(
        load_default=Decimal(0),
        load_only=True,
        as_string=True,
        validate=validate.Range(min=0),
        metadata={"minimum": 0},  # else apispec renders the bound as the string "0"
    )
    measures = fields.List(
        fields.String(validate=validate.OneOf(list(MEASURES))), load_default=list, load_only=True
    )
    hearing_held = fields.Boolean(load_default=False, load_only=True)
    hearing_requested = fields.Boolean(
        load_default=False, load_only=True, metadata={"description": "当事人要求听证"}
    )
    other_severe = fields.Boolean(
        load_default=False, load_only=True, metadata={"description": "其他较重的行政处罚"}
    )
    major_public_interest = fields.Boolean(load_default=False, load_only=True)
    major_social_impact = fields.Boolean(load_default=False, load_only=True)
    affects_major_rights = fields.Boolean(load_default=False, load_only=True)
    complex_case = fields.Boolean(load_default=False, load_only=True)
    required_by_law = fields.Boolean(load_default=False, load_only=True)
    enforcement_level = fields.String(
        load_default="",
        load_only=True,
        validate=validate.Length(max=32),
        metadata={"description": "执法层级, e.g. 省级、市级、县级"},
    )
    field = fields.String(
        load_default="",
        load_only=True,
        validate=validate.Length(max=64),
        metadata={"description": "所属领域, e.g. 市场监管"},
    )


def facts_from(body: dict[str, Any]) -> DecisionFacts:
    """Core's decision facts from a loaded draft (the service sets the category)."""
    return DecisionFacts(
        category="",
        party=PartyKind(body["party"]),
        fine_yuan=body["fine_yuan"],
        property_value_yuan=body["property_value_yuan"],
        measures=frozenset(body["measures"]),
        hearing_held=body["hearing_held"],
        major_public_interest=body["major_public_interest"],
        major_social_impact=body["major_social_impact"],
        affects_major_rights=body["affects_major_rights"],
        complex_case=body["complex_case"],
        required_by_law=body["required_by_law"],
        hearing_requested=body["hearing_requested"],
        other_severe=body["other_severe"],
        enforcement_level=body["enforcement_level"],
        field=body["field"],
    )


DRAFT_LABELS = {
    "decision_type": "决定类型",
    "party": "当事人类型",
    "fine_yuan": "罚款金额",
    "property_value_yuan": "没收、查封、扣押财物价值",
    "measures": "处罚措施",
}
"""Chinese names of the draft's fields, for a web form's error page."""


def draft_from_form(form: MultiDict[str, str]) -> NewDecision:
    """A decision draft from a web form's fields, loaded by :class:`DraftSchema` as the
    API loads JSON (empty fields take the defaults; 422 names each bad field)."""
    values: dict[str, Any] = {k: v for k, v in form.items() if v.strip()}
    values["measures"] = form.getlist("measures")
    try:
        body = DraftSchema(unknown=EXCLUDE).load(values)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"draft": exc.messages}
        raise Invalid(
            "决定草案有误，请修正后重试 (the decision draft has invalid fields)",
            errors={k: [f"{DRAFT_LABELS.get(k, k)}（{k}）：{v}"] for k, v in messages.items()},
        ) from exc
    return NewDecision(body["decision_type"], facts_from(body))


class ReviewSchema(BaseSchema):
    id = fields.String(dump_only=True)
    case_id = fields.String(dump_only=True)
    result = fields.String(
        required=True,
        attribute="outcome",
        validate=validate.OneOf(OUTCOMES),
        metadata={"description": "passed 通过 | returned 退回"},
    )
    opinion = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    opinion_ref = fields.String(
        load_default="",
        validate=validate.Length(max=200),
        metadata={"description": "法制审核意见书 document number"},
    )
    reviewer_user_id = fields.String(dump_only=True)
    reviewed_at = fields.DateTime(dump_only=True)
    draft = fields.Nested(
        DraftSchema,
        load_default=None,
        allow_none=True,
        load_only=True,
        metadata={"description": "the decision draft reviewed; a pass covers this draft only"},
    )
    draft_digest = fields.Function(
        lambda r: r.details.get("draft_digest"),
        dump_only=True,
        metadata={"description": "sha256 of the reviewed draft; null: no draft named"},
    )


class DecisionSchema(DraftSchema):
    id = fields.String(dump_only=True)
    case_id = fields.String(dump_only=True)
    summary = fields.String(load_default="", validate=validate.Length(max=20000))
    added_conditions = fields.List(
        fields.Nested(AddedConditionSchema),
        load_default=list,
        load_only=True,
        metadata={"description": "conditions the handler adds (never removes), with reasons"},
    )
    hearing_chair_user_id = fields.String(
        load_default=None,
        allow_none=True,
        load_only=True,
        metadata={"description": "听证主持人 (must not be one of the case's investigators)"},
    )
    facts = fields.Dict(dump_only=True)
    conditions = fields.Dict(dump_only=True, allow_none=True)
    major = fields.Boolean(dump_only=True)
    major_reasons = fields.List(fields.Dict(), dump_only=True)
    legal_review_id = fields.String(dump_only=True, allow_none=True)
    decided_by = fields.String(dump_only=True)
    decided_at = fields.DateTime(dump_only=True)


@blp.route("/<case_id>/legal-reviews", methods=["POST"])
@blp.arguments(ReviewSchema)
@blp.response(201, ReviewSchema)
def record_review(body: dict[str, Any], case_id: str) -> Any:
    """Record a 法制审核 opinion on the case (reviewer): passed or returned."""
    reviewed = body["draft"]
    decision = NewDecision(reviewed["decision_type"], facts_from(reviewed)) if reviewed else None
    draft = NewReview(body["outcome"], body["opinion"], body["opinion_ref"], decision)
    return created(call(legal_review.record_review, case_id, draft))


@blp.route("/<case_id>/legal-reviews")
@blp.response(200, ReviewSchema(many=True))
def list_reviews(case_id: str) -> Any:
    """The case's legal reviews, oldest first."""
    return call(legal_review.list_reviews, case_id)


@blp.route("/<case_id>/decisions", methods=["POST"])
@blp.arguments(DecisionSchema)
@blp.response(201, DecisionSchema)
def record_decision(body: dict[str, Any], case_id: str) -> Any:
    """Record a decision; refused (409, logged) until the law's procedure allows it.

    Gates: 行政处罚法 Art. 62 (告知, 陈述申辩), Art. 57 ¶2 (集体讨论 by the head), Arts.
    63/64 (听证), Art. 51 (简易程序 limits), Art. 58 (a passed review of this draft).
    """
    added = {c["condition"]: c["reason"] for c in body["added_conditions"]}
    draft = NewDecision(
        body["decision_type"],
        facts_from(body),
        summary=body["summary"],
        added_conditions=added,
        hearing_chair_user_id=body["hearing_chair_user_id"],
    )
    return created(call(legal_review.record_decision, case_id, draft))
