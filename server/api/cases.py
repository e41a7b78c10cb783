# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Cases (案件): ``/api/v1/cases`` — open, list, read, assign officers, change stage."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from server.api.common import NOT_BLANK, BaseSchema, Blueprint, PageQuerySchema, call, created
from server.components import components
from server.models import CaseStatus
from server.services import cases
from server.services.cases import CaseFilter, NewCase, StageMove
from server.services.completeness import calendar_for

blp = Blueprint("cases", __name__, url_prefix="/cases", description="案件 Cases")


class PartySchema(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(
        load_default="person",
        validate=validate.OneOf(["person", "organisation"]),
        metadata={"description": "person 自然人 | organisation 法人或其他组织"},
    )
    id_number = fields.String(
        allow_none=True,
        validate=validate.Length(max=64),
        metadata={"description": "身份证号 / 统一社会信用代码"},
    )
    address = fields.String(allow_none=True, validate=validate.Length(max=500))


class OfficerSchema(BaseSchema):
    user_id = fields.String()
    display_name = fields.Function(lambda o: o.user.display_name)
    cert_no = fields.Function(lambda o: o.user.cert_no, metadata={"description": "执法证号"})
    assigned_at = fields.DateTime()


class CaseSchema(BaseSchema):
    id = fields.String(dump_only=True)
    agency_id = fields.String(dump_only=True)
    case_no = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={**NOT_BLANK, "description": "案号"},
    )
    title = fields.String(
        required=True, validate=validate.Length(min=1, max=500), metadata=NOT_BLANK
    )
    category = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "recording standard id, e.g. penalty 行政处罚, inspection 行政检查"
        },
    )
    standard_id = fields.String(dump_only=True)
    standard_version = fields.String(
        load_default=None,
        allow_none=True,
        metadata={"description": "pinned standard version; newest when omitted"},
    )
    parties = fields.List(
        fields.Nested(PartySchema), load_default=list, validate=validate.Length(max=50)
    )
    officer_ids = fields.List(
        fields.String(), load_only=True, load_default=list, validate=validate.Length(max=50)
    )
    officers = fields.List(fields.Nested(OfficerSchema), dump_only=True)
    status = fields.String(dump_only=True, metadata={"description": "open | closed"})
    current_stage = fields.String(dump_only=True, allow_none=True)
    created_by = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    closed_at = fields.DateTime(dump_only=True, allow_none=True)


class ClockSchema(BaseSchema):
    rule = fields.String(metadata={"description": "deadline rule id (casetrail deadline --list)"})
    name_zh = fields.String()
    describe_zh = fields.String()
    obligor = fields.String(metadata={"description": "agency 机关 | party 当事人"})
    basis = fields.List(fields.String())
    start = fields.String(metadata={"description": "起算日 (China date)"})
    due = fields.String(allow_none=True, metadata={"description": "null: not computable"})
    state = fields.String(
        metadata={
            "description": "running | due_soon | overdue | done | done_late | lapsed | "
            "not_computable"
        }
    )
    done_on = fields.String(allow_none=True)
    rolled_from = fields.String(allow_none=True)
    note = fields.String(metadata={"description": "若遇法定节假日顺延, what to supply …"})


class CaseDetailSchema(CaseSchema):
    deadlines = fields.List(
        fields.Nested(ClockSchema),
        dump_only=True,
        metadata={"description": "every legal clock (法定期限) running or run on the case"},
    )


class CaseQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf([s.value for s in CaseStatus]))
    category = fields.String()
    stage = fields.String()
    officer_id = fields.String()
    q = fields.String(
        validate=validate.Length(max=200), metadata={"description": "text in 案号 or title"}
    )


class CasePageSchema(BaseSchema):
    items = fields.List(fields.Nested(CaseSchema))
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()


class AssignSchema(BaseSchema):
    officer_ids = fields.List(
        fields.String(), required=True, validate=validate.Length(min=1, max=50)
    )


class StageMoveSchema(BaseSchema):
    stage = fields.String(required=True, validate=validate.Length(min=1, max=64))
    out_of_order = fields.Boolean(load_default=False)
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class StageChangeSchema(BaseSchema):
    from_stage = fields.String(allow_none=True)
    to_stage = fields.String()
    out_of_order = fields.Boolean()
    reason = fields.String(allow_none=True)
    changed_by = fields.String()
    changed_at = fields.DateTime()


@blp.route("")
@blp.arguments(CaseQuerySchema, location="query")
@blp.response(200, CasePageSchema)
def list_cases(query: dict[str, Any]) -> Any:
    """List the cases you may see, filtered by status, category, stage, officer or text."""
    filters = CaseFilter(
        status=CaseStatus(query["status"]) if "status" in query else None,
        category=query.get("category"),
        stage=query.get("stage"),
        officer_id=query.get("officer_id"),
        text=query.get("q"),
        limit=query["limit"],
        offset=query["offset"],
    )
    return call(cases.list_cases, filters)


@blp.route("", methods=["POST"])
@blp.arguments(CaseSchema)
@blp.response(201, CaseSchema)
def create_case(body: dict[str, Any]) -> Any:
    """Open a case under the newest (or a given) version of its recording standard."""
    draft = NewCase(
        category=body["category"],
        case_no=body["case_no"],
        title=body["title"],
        parties=tuple(body["parties"]),
        standard_version=body["standard_version"],
        officer_ids=tuple(body["officer_ids"]),
    )
    return created(call(cases.create_case, draft))


@blp.route("/<case_id>")
@blp.response(200, CaseDetailSchema)
def get_case(case_id: str) -> Any:
    """Read a case you may see, with every legal clock (法定期限) running on it."""
    calendar = calendar_for(components().settings.calendar_file)
    return call(cases.get_case_with_clocks, case_id, calendar=calendar)


@blp.route("/<case_id>/officers", methods=["POST"])
@blp.arguments(AssignSchema)
@blp.response(200, CaseSchema)
def assign_officers(body: dict[str, Any], case_id: str) -> Any:
    """Assign inspectors (with 执法证号) of your agency to the case."""
    return call(cases.assign_officers, case_id, body["officer_ids"])


@blp.route("/<case_id>/stage", methods=["POST"])
@blp.arguments(StageMoveSchema)
@blp.response(200, CaseSchema)
def change_stage(body: dict[str, Any], case_id: str) -> Any:
    """Move the case to another stage of its pinned standard (out of order needs a reason)."""
    move = StageMove(body["stage"], body["out_of_order"], body["reason"])
    return call(cases.change_stage, case_id, move)


@blp.route("/<case_id>/stages")
@blp.response(200, StageChangeSchema(many=True))
def stage_history(case_id: str) -> Any:
    """The case's stage history, oldest first."""
    return call(cases.stage_history, case_id)
