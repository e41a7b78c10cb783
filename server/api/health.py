# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""``GET /api/v1/health``: is the database reachable, is the blob store reachable.

Open to anyone (load balancers, monitoring); the server's version is shown only to a
request with a valid token, so a scanner cannot match it against known defects.
"""

from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import fields

from server.api.common import BaseSchema, Blueprint
from server.auth import authenticate
from server.components import components
from server.services.health import check_health

blp = Blueprint("health", __name__, url_prefix="/health", description="服务状态 Health")


class PartSchema(BaseSchema):
    ok = fields.Boolean(required=True)
    detail = fields.String(required=True)


class HealthSchema(BaseSchema):
    status = fields.String(required=True, metadata={"description": "ok | degraded"})
    version = fields.String(metadata={"description": "only with a valid token"})
    database = fields.Nested(PartSchema, required=True)
    storage = fields.Nested(PartSchema, required=True)


@blp.route("")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="a part is down")
@blp.doc(security=[])
def health() -> Any:
    """Report database and storage reachability (503 when a part is down)."""
    report = check_health(components().engine, components().store)
    body = report.to_json()
    if not _has_valid_token():
        del body["version"]
    return body, (200 if report.ok else 503)


def _has_valid_token() -> bool:
    authorization = request.headers.get("Authorization")
    if not authorization:
        return False
    try:
        with components().unit_of_work() as uow:
            authenticate(uow.session, authorization)
            uow.commit()
    except Exception:  # an invalid token, or a database that is down (reported above)
        return False
    return True
