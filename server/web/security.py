"""Workspace-wide response rules: security headers, Chinese error pages, Beijing time.

:func:`install` is called once by ``create_app`` after the API's error handlers are in
place: it adds the headers to every ``/ui`` response (a strict Content-Security-Policy
— scripts, styles and media from our own origin only, no inline script or style —
plus ``nosniff``, no framing, no referrer to other sites), and wraps the app's error
handlers so a request under ``/ui`` gets a Chinese HTML page while ``/api`` keeps its
one JSON error shape. ``GET /`` goes to the workspace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from server.api.errors import status_for
from server.errors import ServiceError
from server.services.completeness import CHINA

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; font-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

ERROR_TITLES = {
    400: "请求有误",
    401: "请先登录",
    403: "无权进行此操作",
    404: "页面不存在",
    405: "不支持此操作方式",
    409: "与现有记录冲突",
    413: "上传的内容过大",
    422: "填写的内容有误",
    423: "暂时无法操作",
    500: "服务器内部错误",
    503: "服务暂时不可用",
}
ERROR_HINTS = {
    403: "您的角色不能进行此操作，或表单已过期。请返回上一页刷新后重试。",
    404: "您要找的案件或页面不存在，或您无权查看。",
    405: "此地址不支持这种请求方式，请从页面上的按钮或链接进入。",
    422: "请返回上一页，按上面的提示修改后重新提交。",
    500: "错误已记录。请稍后重试；如果一直出现，请联系系统管理员。",
}


def is_page_request() -> bool:
    """Whether this request is for the workspace (HTML) rather than the API."""
    return request.path == "/ui" or request.path.startswith("/ui/")


def beijing(moment: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """Jinja filter: an aware time as Beijing time text (``2026-12-05 18:04``)."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CHINA).strftime(pattern)


def beijing_iso(text: str | None) -> str:
    """Jinja filter: an ISO 8601 time text (custody events) as Beijing time."""
    if not text:
        return "—"
    try:
        return beijing(datetime.fromisoformat(text.replace("Z", "+00:00")), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text


def _add_headers(response: Response) -> Response:
    if is_page_request():
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def error_page(
    code: int, message: str | None = None, errors: dict[str, Any] | None = None
) -> tuple[str, int]:
    """The Chinese error page for ``code`` (a service error's message and field errors)."""
    title = ERROR_TITLES.get(code, "出错了")
    problems = [
        str(text)
        for texts in (errors or {}).values()
        for text in (texts if isinstance(texts, list) else [texts])
    ]
    return render_template(
        "error.html",
        code=code,
        title=title,
        message=message,
        problems=problems,
        hint=ERROR_HINTS.get(code, ""),
    ), code


def _page_error(error: Exception) -> Any:
    if isinstance(error, ServiceError):
        return error_page(status_for(error), error.message, error.errors)
    if isinstance(error, HTTPException):
        code = error.code or 500
        response = error_page(code)
        headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
        return (*response, headers)
    log.exception("unhandled error on a workspace page", exc_info=error)
    return error_page(500)


def _wrap(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def for_pages_or_api(error: Any) -> Any:
        if is_page_request():
            return _page_error(error)
        return handler(error)

    return for_pages_or_api


def install(app: Flask) -> None:
    """Security headers and HTML error pages for ``/ui``; ``/`` redirects to ``/ui/``."""
    app.after_request(_add_headers)
    app.add_template_filter(beijing, "beijing")
    app.add_template_filter(beijing_iso, "beijing_iso")
    for handlers in app.error_handler_spec[None].values():
        for exc_class, handler in list(handlers.items()):
            handlers[exc_class] = _wrap(handler)

    def root() -> Any:
        return redirect("/ui/")

    app.add_url_rule("/", "workspace_root", root)
