# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Completeness (完整性) of a case against its pinned recording standard, and waivers."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from server.api.common import NOT_BLANK, BaseSchema, Blueprint, call, created
from server.components import components
from server.services import completeness
from server.services.completeness import NewWaiver

blp = Blueprint("completeness", __name__, url_prefix="/cases", description="完整性 Completeness")


class WaiverSchema(BaseSchema):
    id = fields.String(dump_only=True)
    case_id = fields.String(dump_only=True)
    stage = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "stage id of the finding; null for case-wide (deadline) items"},
    )
    item = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={
            **NOT_BLANK,
            "description": "the finding's item (record type id, audio-video, credentials, …)",
        },
    )
    reason = fields.String(
        required=True, validate=validate.Length(min=1, max=2000), metadata=NOT_BLANK
    )
    waived_by = fields.String(dump_only=True)
    waived_at = fields.DateTime(dump_only=True)


@blp.route("/<case_id>/completeness")
@blp.response(
    200,
    description="the report (docs/completeness-report.md) plus case, pending, "
    "device_chain_gaps and custody",
)
def completeness_report(case_id: str) -> Any:
    """What the case still lacks under its recording standard (logged as a custody event)."""
    calendar = completeness.calendar_for(components().settings.calendar_file)
    return call(completeness.completeness_report, case_id, calendar=calendar)


@blp.route("/<case_id>/waivers", methods=["POST"])
@blp.arguments(WaiverSchema)
@blp.response(201, WaiverSchema)
def add_waiver(body: dict[str, Any], case_id: str) -> Any:
    """Waive an item of the completeness report with a reason (reviewer or admin)."""
    draft = NewWaiver(body["stage"], body["item"], body["reason"])
    return created(call(completeness.add_waiver, case_id, draft))
