# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Users and their API tokens: ``/api/v1/users``."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from server.api.common import NOT_BLANK, BaseSchema, Blueprint, QuerySchema, call, created
from server.models import Role
from server.services import accounts, users
from server.services.users import NewUser, UserChange

blp = Blueprint("users", __name__, url_prefix="/users", description="用户与令牌 Users and tokens")

ROLES = [r.value for r in Role]


class UserSchema(BaseSchema):
    id = fields.String(dump_only=True)
    agency_id = fields.String(dump_only=True)
    username = fields.String(required=True, validate=validate.Length(min=2, max=64))
    display_name = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata=NOT_BLANK
    )
    role = fields.String(
        required=True,
        validate=validate.OneOf(ROLES),
        metadata={
            "description": "inspector 执法人员 | reviewer 法制审核 | archivist 档案管理 | "
            "head 负责人 | admin"
        },
    )
    cert_no = fields.String(
        allow_none=True, load_default=None, metadata={"description": "执法证号 (inspectors)"}
    )
    active = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class UserChangeSchema(BaseSchema):
    """Only the role and the 执法证号 can be changed; any other field is refused (422)."""

    role = fields.String(
        validate=validate.OneOf(ROLES),
        metadata={"description": "inspector 执法人员 | reviewer 法制审核 | archivist 档案管理 | "
                  "head 负责人 | admin"},
    )  # fmt: skip
    cert_no = fields.String(
        allow_none=True,
        validate=validate.Length(max=64),
        metadata={"description": "执法证号; null or empty removes it (not for inspectors)"},
    )


class UserQuerySchema(QuerySchema):
    role = fields.String(validate=validate.OneOf(ROLES))


class TokenCreateSchema(BaseSchema):
    name = fields.String(load_default="", validate=validate.Length(max=200))
    expires_in_days = fields.Integer(
        allow_none=True, load_default=None, validate=validate.Range(1, users.MAX_TOKEN_DAYS)
    )


class TokenSchema(BaseSchema):
    id = fields.String()
    prefix = fields.String(metadata={"description": "first characters, to tell tokens apart"})
    name = fields.String()
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)


class IssuedTokenSchema(TokenSchema):
    token = fields.String(metadata={"description": "the secret; shown only in this response"})


def _issued(issued: users.IssuedToken) -> dict[str, Any]:
    fields_of_row = {name: getattr(issued.row, name) for name in TokenSchema().fields}
    return {**fields_of_row, "token": issued.token}


@blp.route("")
@blp.arguments(UserQuerySchema, location="query")
@blp.response(200, UserSchema(many=True))
def list_users(query: dict[str, Any]) -> Any:
    """List the users of your agency (admin)."""
    role = Role(query["role"]) if "role" in query else None
    return call(users.list_users, role)


@blp.route("", methods=["POST"])
@blp.arguments(UserSchema)
@blp.response(201, UserSchema)
def create_user(body: dict[str, Any]) -> Any:
    """Create a user in your agency (admin); inspectors need a 执法证号."""
    draft = NewUser(body["username"], body["display_name"], Role(body["role"]), body["cert_no"])
    return created(call(users.create_user, draft))


@blp.route("/<user_id>")
@blp.response(200, UserSchema)
def get_user(user_id: str) -> Any:
    """Read a user (admin, or the user themselves)."""
    return call(users.get_user, user_id)


@blp.route("/<user_id>", methods=["PATCH"])
@blp.arguments(UserChangeSchema, required=False)  # no body: nothing changes
@blp.response(200, UserSchema)
def update_user(body: dict[str, Any], user_id: str) -> Any:
    """Change a user's role or 执法证号 (admin); a new role ends their web sessions."""
    change = UserChange(
        role=Role(body["role"]) if "role" in body else None,
        cert_no=(body["cert_no"] or "") if "cert_no" in body else None,
    )
    return call(users.update_user, user_id, change)


@blp.route("/<user_id>/deactivate", methods=["POST"])
@blp.response(200, UserSchema)
def deactivate_user(user_id: str) -> Any:
    """Deactivate a user and revoke all their tokens (admin)."""
    return call(users.deactivate_user, user_id)


@blp.route("/<user_id>/tokens")
@blp.response(200, TokenSchema(many=True))
def list_tokens(user_id: str) -> Any:
    """List a user's tokens, without their secrets."""
    return call(users.list_tokens, user_id)


@blp.route("/<user_id>/tokens", methods=["POST"])
@blp.arguments(TokenCreateSchema, required=False)  # no body: unnamed, no expiry
@blp.response(201, IssuedTokenSchema)
def create_token(body: dict[str, Any], user_id: str) -> Any:
    """Issue a token (for yourself, or as admin for a user); the secret is shown once."""
    issued = call(users.create_token, user_id, body["name"], body["expires_in_days"])
    return created(_issued(issued))


@blp.route("/<user_id>/tokens/<token_id>/revoke", methods=["POST"])
@blp.response(200, TokenSchema)
def revoke_token(user_id: str, token_id: str) -> Any:
    """Revoke a token; it stops working at once."""
    return call(users.revoke_token, user_id, token_id)


class PasswordSchema(BaseSchema):
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=accounts.MIN_PASSWORD, max=200),
        metadata={"description": "新的网页工作台登录密码 (new workspace sign-in password)"},
    )


@blp.route("/<user_id>/password", methods=["POST"])
@blp.arguments(PasswordSchema)
@blp.response(204)
def set_password(body: dict[str, Any], user_id: str) -> None:
    """Set a user's workspace sign-in password (admin); their open sessions end."""
    call(accounts.reset_password, user_id, body["password"])
