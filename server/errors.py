"""Errors raised by the server's services, and the one table mapping them to HTTP.

::

    ServiceError                 (500) base; never raised bare
    ├── BadRequest               400  a request that cannot be read (body cut short, …)
    ├── Unauthorized             401  no, unknown, expired or revoked token
    ├── Forbidden                403  authenticated, but the role may not do this
    ├── NotFound                 404  no such object — or one the caller may not see
    ├── Conflict                 409  clashes with existing state (duplicate 案号, …)
    ├── Gone                     410  existed once, ended for good (terminated upload)
    ├── PreconditionFailed       412  a protocol precondition fails (tus version)
    ├── PayloadTooLarge          413  request body over the configured limit
    ├── UnsupportedMediaType     415  body sent with the wrong Content-Type
    ├── Invalid                  422  well-formed but unacceptable; ``errors`` per field
    ├── Locked                   423  another request holds the object right now
    ├── ChecksumMismatch         460  the body does not match its declared checksum (tus)
    ├── Unavailable              503  a part (database, storage) is down
    │   └── StorageUnavailable   503  the evidence store is down; resume later
    └── StorageFull              507  the evidence store is full; free space, then resume

The tus protocol's own conditions (:mod:`server.tus`) subclass these. Storage errors
that reach a view become :class:`StorageUnavailable` / :class:`StorageFull` (details go
to the log, never to the client; see ``server.api.errors.FROM_STORAGE``); any other ``StorageError``
is a bug (500, logged). A class may carry protocol ``headers`` (e.g. ``Tus-Version`` on
412) that every response of it gets.

Services raise these without knowing about HTTP, and this module imports no web
framework; :mod:`server.api.errors` holds the one table of HTTP status codes and its
``register_error_handlers`` turns every error — these, Werkzeug's (404/405/413 …), webargs' validation errors, malformed
JSON and unexpected exceptions (500) — into flask-smorest's one JSON shape::

    {"code": 404, "status": "Not Found", "message": "…中文 (English)…", "errors": {…}}

Messages are Chinese first with English alongside and say what to do next.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ServiceError(Exception):
    """Base of every error a service raises; ``errors`` maps field names to messages."""

    default_message = "服务器内部错误 (internal error)"
    headers: Mapping[str, str] = {}

    def __init__(self, message: str | None = None, errors: Mapping[str, Any] | None = None):
        self.message = message or self.default_message
        self.errors = dict(errors) if errors else None
        super().__init__(self.message)


class BadRequest(ServiceError):
    """A request the server cannot read to the end or make sense of."""

    default_message = "请求格式错误，请检查后重试 (bad request: check it and retry)"


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


class Gone(ServiceError):
    """The object existed but has ended for good (terminated or expired)."""

    default_message = "已终止或已过期，请重新开始 (gone: ended or expired; start again)"


class PreconditionFailed(ServiceError):
    """A protocol precondition of the request fails."""

    default_message = "请求前提条件不满足 (precondition failed)"


class UnsupportedMediaType(ServiceError):
    """The body was sent with a Content-Type this operation does not take."""

    default_message = "请求体类型不受支持 (unsupported Content-Type for this request)"


class Locked(ServiceError):
    """Another request holds the object right now; retry shortly."""

    default_message = "对象正被另一请求使用，请稍后重试 (locked by another request; retry shortly)"


class ChecksumMismatch(ServiceError):
    """The body does not hash to the checksum sent with it; nothing of it was kept."""

    default_message = "校验和不符，请重新发送 (checksum mismatch: send the data again)"


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


class StorageUnavailable(Unavailable):
    """The evidence store cannot be reached; bytes already received are kept."""

    default_message = (
        "证据存储暂不可用，已收到的字节已保存；请稍后 HEAD 查询并续传 (the evidence store is "
        "unavailable; bytes received so far were kept — retry later: send HEAD and resume)"
    )


class StorageFull(ServiceError):
    """The evidence store is out of space; bytes already received are kept."""

    default_message = (
        "证据存储空间已满，已收到的字节已保存；请联系管理员释放空间后 HEAD 查询并续传 (evidence "
        "storage is full; bytes received so far were kept — ask the admin to free space, then "
        "send HEAD and resume)"
    )
