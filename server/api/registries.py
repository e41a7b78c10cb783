# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""事前公开 registries kept by admins: ``/api/v1/registries/items`` and ``/targets``.

The inspector list needs no endpoint of its own: it is the agency's users with the
``inspector`` role (``/api/v1/users``), published at ``/public/inspectors``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from server.api.common import NOT_BLANK, BaseSchema, Blueprint, call, created
from server.services import registries
from server.services.registries import TARGET_KINDS, NewItem, NewTarget

blp = Blueprint(
    "registries", __name__, url_prefix="/registries", description="抽查事项与检查对象 Registries"
)


class ItemSchema(BaseSchema):
    id = fields.String(dump_only=True)
    code = fields.String(required=True, validate=validate.Length(min=1, max=64), metadata=NOT_BLANK)
    name = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata=NOT_BLANK
    )
    basis = fields.String(load_default="", validate=validate.Length(max=2000))
    subject = fields.String(load_default="", validate=validate.Length(max=200))
    method = fields.String(load_default="", validate=validate.Length(max=200))
    active = fields.Boolean(dump_only=True)


class TargetSchema(BaseSchema):
    id = fields.String(dump_only=True)
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={**NOT_BLANK, "description": "统一社会信用代码 or the agency's own number"},
    )
    name = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata=NOT_BLANK
    )
    kind = fields.String(load_default="organisation", validate=validate.OneOf(TARGET_KINDS))
    sector = fields.String(load_default="", validate=validate.Length(max=100))
    active = fields.Boolean(dump_only=True)


class TargetBatchSchema(BaseSchema):
    targets = fields.List(
        fields.Nested(TargetSchema), required=True, validate=validate.Length(min=1, max=5000)
    )


@blp.route("/items")
@blp.response(200, ItemSchema(many=True))
def list_items() -> Any:
    """The agency's 随机抽查事项清单."""
    return call(registries.list_items)


@blp.route("/items", methods=["POST"])
@blp.arguments(ItemSchema)
@blp.response(201, ItemSchema)
def add_item(body: dict[str, Any]) -> Any:
    """Add an item to the 随机抽查事项清单 (admin)."""
    return created(call(registries.add_item, NewItem(**body)))


@blp.route("/items/<item_id>/retire", methods=["POST"])
@blp.response(200, ItemSchema)
def retire_item(item_id: str) -> Any:
    """Retire an item (admin); it stays listed as retired."""
    return call(registries.retire_item, item_id)


@blp.route("/targets")
@blp.response(200, TargetSchema(many=True))
def list_targets() -> Any:
    """The agency's 检查对象名录库."""
    return call(registries.list_targets)


@blp.route("/targets", methods=["POST"])
@blp.arguments(TargetBatchSchema)
@blp.response(201, TargetSchema(many=True))
def add_targets(body: dict[str, Any]) -> Any:
    """Add targets to the 检查对象名录库 (admin; all or none)."""
    return created(call(registries.add_targets, [NewTarget(**t) for t in body["targets"]]))


@blp.route("/targets/<target_id>/retire", methods=["POST"])
@blp.response(200, TargetSchema)
def retire_target(target_id: str) -> Any:
    """Retire a target (admin): it leaves every later draw pool."""
    return call(registries.retire_target, target_id)
