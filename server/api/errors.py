"""HTTP rendering of :mod:`server.errors`: the one status table and the one JSON shape.

Every error — service errors, Werkzeug's (404/405/413 …), webargs' validation errors,
malformed JSON and unexpected exceptions (500) — leaves as flask-smorest's shape::

    {"code": 404, "status": "Not Found", "message": "…中文 (English)…", "errors": {…}}

A service error's status is the entry of its nearest class in :data:`HTTP_STATUS`; its
class ``headers`` ride along (e.g. ``Tus-Version`` on 412) and every 423 carries
``Retry-After``. Storage errors a client may see become the service errors in
:data:`FROM_STORAGE` (details to the log only); any other is a bug (500, logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError, default_exceptions
from werkzeug.http import HTTP_STATUS_CODES

from server.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    Locked,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceError,
    StorageFull,
    StorageUnavailable,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from storage import errors as storage_errors

log = logging.getLogger(__name__)


HTTP_STATUS: dict[type[ServiceError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    Invalid: 422,
    Locked: 423,
    ChecksumMismatch: 460,
    Unavailable: 503,
    StorageFull: 507,
    ServiceError: 500,
}
"""The one table from errors to HTTP status codes (nearest class in the MRO wins)."""

LOCKED_RETRY_AFTER_S = 5
"""``Retry-After`` (seconds) on every 423: a lease is renewed or released within seconds."""

STATUS_NAMES: dict[int, str] = {460: "Checksum Mismatch"}
"""Reason phrases of the non-standard codes above (the rest are Werkzeug's)."""

FROM_STORAGE: dict[type[storage_errors.StorageError], type[ServiceError]] = {
    storage_errors.StorageFull: StorageFull,
    storage_errors.Unavailable: StorageUnavailable,
}
"""Storage errors a client may see, as the service errors that answer them."""

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


def status_for(error: ServiceError) -> int:
    """The HTTP status of a service error: the entry of its nearest class in the table."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


class _OtherStatus(HTTPException):
    """An HTTP error with a code Werkzeug has no class for (460, 507)."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    @property
    def name(self) -> str:
        return STATUS_NAMES.get(self.code or 0) or HTTP_STATUS_CODES.get(self.code or 0, "Error")


def _http_exception(
    code: int, message: str | None, errors: Mapping[str, Any] | None
) -> HTTPException:
    found = default_exceptions.get(code)
    exc = found() if found is not None else _OtherStatus(code)
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
        payload, code, headers = api.handle_http_exception(
            _http_exception(status_for(error), error.message, error.errors)
        )
        if code == 423:  # held by another request right now: say when to ask again
            headers = {**headers, "Retry-After": str(LOCKED_RETRY_AFTER_S)}
        return payload, code, {**headers, **error.headers}

    def on_unexpected(error: Exception) -> Any:
        if isinstance(error, HTTPException):
            return api.handle_http_exception(error)
        log.exception("unhandled error", exc_info=error)
        return api.handle_http_exception(InternalServerError())

    def on_storage_error(error: storage_errors.StorageError) -> Any:
        found = next((v for c, v in FROM_STORAGE.items() if isinstance(error, c)), None)
        if found is None:
            return on_unexpected(error)
        log.warning("storage error → %s: %s", found.__name__, error)
        return on_service_error(found())

    app.register_error_handler(ServiceError, on_service_error)
    app.register_error_handler(storage_errors.StorageError, on_storage_error)
    app.register_error_handler(Exception, on_unexpected)
