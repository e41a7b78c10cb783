# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""双随机 draws: ``/api/v1/draws`` — commit a plan, draw, open the inspection cases (admin)."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from server.api.common import NOT_BLANK, BaseSchema, Blueprint, call, created
from server.components import components
from server.services import draws
from server.services.draws import NewDraw

blp = Blueprint("draws", __name__, url_prefix="/draws", description="双随机抽查 Random inspections")


class ExclusionSchema(BaseSchema):
    cert_no = fields.String(required=True, validate=validate.Length(min=1, max=64))
    target_code = fields.String(required=True, validate=validate.Length(min=1, max=80))
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "回避理由"},
    )


class NewDrawSchema(BaseSchema):
    title = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata=NOT_BLANK
    )
    item_codes = fields.List(
        fields.String(), required=True, validate=validate.Length(min=1, max=100)
    )
    target_count = fields.Integer(required=True, validate=validate.Range(1, 10000))
    per_target = fields.Integer(load_default=2, validate=validate.Range(1, 10))
    exclusions = fields.List(
        fields.Nested(ExclusionSchema), load_default=list, validate=validate.Length(max=1000)
    )


class DrawSchema(BaseSchema):
    id = fields.String()
    title = fields.String()
    status = fields.String(metadata={"description": "committed | drawn"})
    plan = fields.Dict()
    plan_hash = fields.String()
    commit_log_index = fields.Integer()
    checkpoint_size = fields.Integer(allow_none=True)
    result = fields.Dict(allow_none=True)
    case_ids = fields.List(fields.String())
    committed_at = fields.String()
    drawn_at = fields.String(allow_none=True)


@blp.route("", methods=["POST"])
@blp.arguments(NewDrawSchema)
@blp.response(201, DrawSchema)
def commit(body: dict[str, Any]) -> Any:
    """Commit a draw plan from today's pools to the custody log (admin)."""
    draft = NewDraw(
        body["title"],
        tuple(body["item_codes"]),
        body["target_count"],
        body["per_target"],
        draws.exclusions_from(body["exclusions"]),
    )
    return created(draws.draw_json(call(draws.commit_draw, draft)))


@blp.route("")
@blp.response(200, DrawSchema(many=True))
def list_draws() -> Any:
    """The agency's draws, newest first."""
    return [draws.draw_json(d) for d in call(draws.list_draws)]


@blp.route("/<draw_id>/perform", methods=["POST"])
@blp.response(200, DrawSchema)
def perform(draw_id: str) -> Any:
    """Draw, seeded by the first signed checkpoint after the commitment (admin)."""
    parts = components()
    return draws.draw_json(call(draws.perform_draw, draw_id, parts.signer()))


@blp.route("/<draw_id>/cases", methods=["POST"])
@blp.response(201, DrawSchema)
def open_cases(draw_id: str) -> Any:
    """Open one 行政检查 case per drawn target with its drawn inspectors (admin, once)."""
    return created(draws.draw_json(call(draws.open_inspection_cases, draw_id)))
