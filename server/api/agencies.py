# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Agencies (执法机关): ``/api/v1/agencies`` — add and list (admins)."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from server.api.common import NOT_BLANK, BaseSchema, Blueprint, call, created
from server.services import agencies

blp = Blueprint("agencies", __name__, url_prefix="/agencies", description="执法机关 Agencies")


class AgencySchema(BaseSchema):
    id = fields.String(dump_only=True)
    code = fields.String(
        required=True,
        validate=validate.Length(min=2, max=64),
        metadata={"description": "机关代码, e.g. 统一社会信用代码"},
    )
    name = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata=NOT_BLANK
    )
    created_at = fields.DateTime(dump_only=True)


@blp.route("")
@blp.response(200, AgencySchema(many=True))
def list_agencies() -> Any:
    """Every agency (admin)."""
    return call(agencies.list_agencies)


@blp.route("", methods=["POST"])
@blp.arguments(AgencySchema)
@blp.response(201, AgencySchema)
def create_agency(body: dict[str, Any]) -> Any:
    """Add an agency (admin)."""
    return created(call(agencies.create_agency, body["code"], body["name"]))
