# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""``GET /api/v1/me``: who the token belongs to."""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from server.api.common import BaseSchema, Blueprint, call
from server.api.users import UserSchema
from server.auth import Principal
from server.services.unit_of_work import UnitOfWork
from server.services.users import current_user

blp = Blueprint("me", __name__, url_prefix="/me", description="当前身份 Who am I")


class MeSchema(BaseSchema):
    user = fields.Nested(UserSchema, required=True)
    device_id = fields.String(allow_none=True, metadata={"description": "set for device tokens"})
    token_id = fields.String(required=True)


def _me(uow: UnitOfWork, principal: Principal) -> dict[str, Any]:
    user = current_user(uow, principal)
    return {"user": user, "device_id": principal.device_id, "token_id": principal.token_id}


@blp.route("")
@blp.response(200, MeSchema)
def me() -> Any:
    """The user (and device) behind the bearer token."""
    return call(_me)
