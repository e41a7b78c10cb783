# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Publication of decisions (执法决定信息公开): ``/api/v1/publications``.

Reviewers and admins preview and confirm the redacted record, publish, exempt, withdraw
and correct; everyone of the agency reads the list with today's state (待公开 / 即将到期
/ 已逾期 / 已公开 / 已撤回 / 不予公开).
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from core.calendar import WorkingCalendar
from core.publication import PublicationState
from core.redaction import SourceField
from server.api.common import NOT_BLANK, BaseSchema, Blueprint, QuerySchema, call
from server.components import components
from server.services import publication
from server.services.completeness import calendar_for
from server.services.publication import RedactionInput

blp = Blueprint(
    "publication", __name__, url_prefix="/publications", description="决定信息公开 Publication"
)


def _calendar() -> WorkingCalendar:
    return calendar_for(components().settings.calendar_file)


class FieldSchema(BaseSchema):
    label = fields.String(required=True, validate=validate.Length(min=1, max=100))
    value = fields.String(required=True, validate=validate.Length(max=20000))
    trade_secret = fields.Boolean(
        load_default=False, metadata={"description": "商业秘密：不予公开"}
    )


class RedactionSchema(BaseSchema):
    doc_no = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={**NOT_BLANK, "description": "文书号"},
    )
    conclusion = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=20000),
        metadata={"description": "执法结论; the decision's summary when omitted"},
    )
    decided_on = fields.Date(
        load_default=None,
        allow_none=True,
        metadata={"description": "决定书落款日期 when earlier than the day it was recorded"},
    )
    fields_ = fields.List(
        fields.Nested(FieldSchema),
        data_key="fields",
        load_default=list,
        validate=validate.Length(max=30),
    )


class CorrectionSchema(RedactionSchema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={**NOT_BLANK, "description": "更正理由"},
    )


class ExemptSchema(BaseSchema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={**NOT_BLANK, "description": "不予公开的法律、行政法规依据"},
    )


class WithdrawSchema(BaseSchema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={**NOT_BLANK, "description": "撤回理由（向社会公开）"},
    )
    revoked_on = fields.Date(
        load_default=None,
        allow_none=True,
        metadata={"description": "处罚决定被变更、撤销、确认违法或无效之日; today when omitted"},
    )


class ListQuerySchema(QuerySchema):
    state = fields.String(validate=validate.OneOf([s.value for s in PublicationState]))
    case_id = fields.String()
    as_of = fields.Date(metadata={"description": "compute states as on this day (default today)"})


class VersionSchema(BaseSchema):
    version = fields.Integer()
    record = fields.Dict()
    reason = fields.String()
    published_at = fields.String()


class PublicationSchema(BaseSchema):
    id = fields.String()
    decision_id = fields.String()
    case_id = fields.String()
    case_no = fields.String()
    decision_type = fields.String()
    category = fields.String()
    category_zh = fields.String()
    decided_on = fields.String()
    due_on = fields.String()
    due_estimated = fields.Boolean(
        metadata={"description": "no calendar covers part of the count: Mon–Fri assumed"}
    )
    status = fields.String()
    state = fields.String(metadata={"description": "pending | due_soon | overdue | published …"})
    state_zh = fields.String()
    doc_no = fields.String()
    draft = fields.Dict(allow_none=True)
    confirmed_at = fields.String(allow_none=True)
    exempt_reason = fields.String(allow_none=True)
    version = fields.Integer()
    first_published_on = fields.String(allow_none=True)
    revoked_on = fields.String(allow_none=True)
    withdraw_due_on = fields.String(allow_none=True)
    withdrawn_on = fields.String(allow_none=True)
    withdraw_reason = fields.String(allow_none=True)
    versions = fields.List(fields.Nested(VersionSchema))


class FindingSchema(BaseSchema):
    field = fields.String()
    rule = fields.String()
    rule_zh = fields.String()
    count = fields.Integer()


class PreviewSchema(BaseSchema):
    record = fields.Dict()
    findings = fields.List(fields.Nested(FindingSchema))


def _input(body: dict[str, Any]) -> RedactionInput:
    extra = tuple(SourceField(f["label"], f["value"], f["trade_secret"]) for f in body["fields_"])
    return RedactionInput(body["doc_no"], body["conclusion"], body["decided_on"], extra)


@blp.route("")
@blp.arguments(ListQuerySchema, location="query")
@blp.response(200, PublicationSchema(many=True))
def list_publications(query: dict[str, Any]) -> Any:
    """The agency's decision publications with today's state, earliest due first."""
    views = call(
        publication.list_publications,
        _calendar(),
        today=query.get("as_of"),
        state=query.get("state"),
        case_id=query.get("case_id"),
    )
    return [v.to_json() for v in views]


@blp.route("/<publication_id>")
@blp.arguments(ListQuerySchema, location="query")
@blp.response(200, PublicationSchema)
def get_publication(query: dict[str, Any], publication_id: str) -> Any:
    """One publication with its state and every published version."""
    found = call(publication.get_publication, publication_id, _calendar(), today=query.get("as_of"))
    return found.to_json()


@blp.route("/<publication_id>/preview", methods=["POST"])
@blp.arguments(RedactionSchema)
@blp.response(200, PreviewSchema)
def preview(body: dict[str, Any], publication_id: str) -> Any:
    """Exactly what the public would see, and what redaction removed (stores nothing)."""
    return call(publication.preview, publication_id, _input(body), _calendar())


@blp.route("/<publication_id>/redaction", methods=["POST"])
@blp.arguments(RedactionSchema)
@blp.response(200, PublicationSchema)
def confirm_redaction(body: dict[str, Any], publication_id: str) -> Any:
    """Confirm the redacted record (reviewer); it waits to be published."""
    found = call(publication.confirm_redaction, publication_id, _input(body), _calendar())
    return found.to_json()


@blp.route("/<publication_id>/publish", methods=["POST"])
@blp.response(200, PublicationSchema)
def publish(publication_id: str) -> Any:
    """Publish the confirmed record on the public site (version 1)."""
    return call(publication.publish, publication_id, _calendar()).to_json()


@blp.route("/<publication_id>/exempt", methods=["POST"])
@blp.arguments(ExemptSchema)
@blp.response(200, PublicationSchema)
def exempt(body: dict[str, Any], publication_id: str) -> Any:
    """Do not publish this decision (法律、行政法规另有规定), with the reason."""
    return call(publication.exempt, publication_id, body["reason"], _calendar()).to_json()


@blp.route("/<publication_id>/withdraw", methods=["POST"])
@blp.arguments(WithdrawSchema)
@blp.response(200, PublicationSchema)
def withdraw(body: dict[str, Any], publication_id: str) -> Any:
    """Withdraw (撤回) a published decision that was changed or revoked; the reason is public."""
    found = call(
        publication.withdraw, publication_id, body["reason"], body["revoked_on"], _calendar()
    )
    return found.to_json()


@blp.route("/<publication_id>/corrections", methods=["POST"])
@blp.arguments(CorrectionSchema)
@blp.response(200, PublicationSchema)
def correct(body: dict[str, Any], publication_id: str) -> Any:
    """Publish a corrected version (更正); earlier versions stay visible."""
    found = call(publication.correct, publication_id, _input(body), body["reason"], _calendar())
    return found.to_json()
