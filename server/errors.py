"""Errors raised by the server's services, and the one table mapping them to HTTP.

::

    ServiceError                 (500) base; never raised bare
    ├── Unauthorized             401  no, unknown, expired or revoked token
    ├── Forbidden                403  authenticated, but the role may not do this
    ├── NotFound                 404  no such object — or one the caller may not see
    ├── Conflict                 409  clashes with existing state (duplicate 案号, …)
    ├── Invalid                  422  well-formed but unacceptable; ``errors`` per field
    ├── PayloadTooLarge          413  request body over the configured limit
    └── Unavailable              503  a part (database, storage) is down

Storage errors that reach a view keep their own message: ``storage.errors.Unavailable``
→ 503 (retry later), ``StorageFull`` → 507 (free space, then resume); any other
``StorageError`` is a bug (500, logged) — see :data:`STORAGE_STATUS`.

Services raise these without knowing about HTTP; :func:`register_error_handlers` turns
every error — these, Werkzeug's (404/405/413 …), webargs' validation errors, malformed
JSON and unexpected exceptions (500) — into flask-smorest's one JSON shape::

    {"code": 404, "status": "Not Found", "message": "…中文 (English)…", "errors": {…}}

Messages are Chinese first with English alongside and say what to do next.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError, default_exceptions

from storage import errors as storage_errors

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of every error a service raises; ``errors`` maps field names to messages."""

    default_message = "服务器内部错误 (internal error)"

    def __init__(self, message: str | None = None, errors: Mapping[str, Any] | None = None):
        self.message = message or self.default_message
        self.errors = dict(errors) if errors else None
        super().__init__(self.message)


class Unauthorized(ServiceError):
    """No valid bearer token."""

    default_message = (
        "未认证：请在 Authorization 头中提供有效令牌 "
        "(authentication required: send 'Authorization: Bearer ct_…' with a valid token)"
    )


class Forbidden(ServiceError):
    """The caller is known but its role or kind (device) may not do this."""

    default_message = "无权执行此操作 (forbidden: your role may not do this)"


class NotFound(ServiceError):
    """The object does not exist, or exists outside what the caller may see."""

    default_message = "未找到，或您无权查看 (not found, or not visible to you)"


class Conflict(ServiceError):
    """The request clashes with existing state."""

    default_message = "与现有数据冲突 (conflict with existing data)"


class Invalid(ServiceError):
    """Well-formed input that breaks a rule; ``errors`` says which field and why."""

    default_message = (
        "请求内容有误，请按 errors 修正后重试 (invalid request: fix the fields in errors)"
    )


class PayloadTooLarge(ServiceError):
    """Request body over the configured limit."""

    default_message = "请求体过大 (request body too large)"


class Unavailable(ServiceError):
    """A part the request needs is down; retry later."""

    default_message = "服务暂不可用，请稍后重试 (service unavailable, retry later)"


HTTP_STATUS: dict[type[ServiceError], int] = {
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    PayloadTooLarge: 413,
    Unavailable: 503,
    ServiceError: 500,
}

# Messages for errors Werkzeug or webargs raise without one of ours.
DEFAULT_MESSAGES: dict[int, str] = {
    400: "请求格式错误，请检查 JSON 与参数 (bad request: check the JSON body and parameters)",
    401: Unauthorized.default_message,
    403: Forbidden.default_message,
    404: NotFound.default_message,
    405: "此地址不支持该 HTTP 方法，请查阅 /api/v1/docs (method not allowed here; see /api/v1/docs)",
    409: Conflict.default_message,
    413: "请求体过大，请缩小后重试 (request body too large; send less)",
    415: "请以 application/json 发送请求体 (send the body as application/json)",
    422: Invalid.default_message,
    500: "服务器内部错误，已记录；请稍后重试或联系管理员 (internal error, logged; retry or contact the admin)",
    503: Unavailable.default_message,
}


STORAGE_STATUS: dict[type[storage_errors.StorageError], tuple[int, str]] = {
    storage_errors.StorageFull: (
        507,
        "证据存储空间已满，已收到的字节已保存；请联系管理员释放空间后 HEAD 查询并续传 (evidence "
        "storage is full; bytes received so far were kept — ask the admin to free space, then "
        "send HEAD and resume)",
    ),
    storage_errors.Unavailable: (
        503,
        "证据存储暂不可用，已收到的字节已保存；请稍后 HEAD 查询并续传 (the evidence store is "
        "unavailable; bytes received so far were kept — retry later: send HEAD and resume)",
    ),
}
"""HTTP status and client message per storage error (details go to the log, not the client)."""


class InsufficientStorage(HTTPException):
    """507: Werkzeug has no class for it."""

    code = 507
    description = STORAGE_STATUS[storage_errors.StorageFull][1]


def status_for(error: ServiceError) -> int:
    """The HTTP status of a service error: the entry of its nearest class in the table."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def _http_exception(
    code: int, message: str | None, errors: Mapping[str, Any] | None
) -> HTTPException:
    exc = default_exceptions.get(code, InternalServerError)()
    data: dict[str, Any] = {}
    if message:
        data["message"] = message
    if errors:
        data["errors"] = dict(errors)
    exc.data = data  # type: ignore[attr-defined]
    return exc


class CaseTrailApi(Api):  # type: ignore[misc]
    """flask-smorest ``Api`` whose error payloads always carry a bilingual ``message``."""

    def handle_http_exception(self, error: HTTPException) -> Any:
        """Render any HTTP error in the one shape, adding our message when there is none."""
        payload, code, headers = super().handle_http_exception(error)
        # keep the protocol headers werkzeug attaches (e.g. ``Allow`` on a 405)
        own = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers = {**own, **(headers or {})}
        if "message" not in payload:
            payload["message"] = DEFAULT_MESSAGES.get(code, error.description or error.name)
        if code == 401:
            headers = {**headers, "WWW-Authenticate": 'Bearer realm="casetrail"'}
        return payload, code, headers


def register_error_handlers(app: Flask, api: CaseTrailApi) -> None:
    """Route service errors and unexpected exceptions into the api's one error shape."""

    def on_service_error(error: ServiceError) -> Any:
        return api.handle_http_exception(
            _http_exception(status_for(error), error.message, error.errors)
        )

    def on_unexpected(error: Exception) -> Any:
        if isinstance(error, HTTPException):
            return api.handle_http_exception(error)
        log.exception("unhandled error", exc_info=error)
        return api.handle_http_exception(InternalServerError())

    def on_storage_error(error: storage_errors.StorageError) -> Any:
        found = next((v for c, v in STORAGE_STATUS.items() if isinstance(error, c)), None)
        if found is None:
            return on_unexpected(error)
        status, message = found
        log.warning("storage error → %s: %s", status, error)
        exc = InsufficientStorage() if status == 507 else _http_exception(status, None, None)
        exc.data = {"message": message}  # type: ignore[attr-defined]
        return api.handle_http_exception(exc)

    app.register_error_handler(ServiceError, on_service_error)
    app.register_error_handler(storage_errors.StorageError, on_storage_error)
    app.register_error_handler(Exception, on_unexpected)
