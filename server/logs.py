"""Logs of the server (运行日志): JSON lines with a request id, configured once per process.

Every request gets a request id: the client's ``X-Request-Id`` when it is a plain token
(letters, digits, ``._:-``, at most 128), else a new one. It is sent back in the
response's ``X-Request-Id`` and carried by every log line written while the request
runs (``request_id``), so one request's lines can be picked out of many processes. The
last line of each request is ``request`` with method, route, status, duration, the
client's address and its ``User-Agent`` (the server's only access log: gunicorn's own is
off, it said the same in another format).

``casetrail serve`` writes to stderr, one JSON object a line (``CASETRAIL_LOG_FORMAT=json``,
the default; ``text`` for people at a terminal)::

    {"time": "2026-03-03T09:30:00.123+08:00", "level": "INFO", "logger": "casetrail.request",
     "message": "request", "request_id": "6f1c…", "method": "PATCH",
     "route": "/api/v1/uploads/<upload_id>", "status": 204, "duration_ms": 41.7,
     "client": "10.0.0.7", "user_agent": "tus-java-client/0.5"}

Times are Beijing time (Asia/Shanghai) with their offset. Lines written outside a
request (background inspection, checkpoints) have ``"request_id": null``.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

from server.settings import Settings

REQUEST_ID_HEADER = "X-Request-Id"
BEIJING = ZoneInfo("Asia/Shanghai")
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "casetrail_request_id", default=None
)
request_log = logging.getLogger("casetrail.request")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (the current request's, or None) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True


class BeijingJsonFormatter(JsonFormatter):
    """python-json-logger's formatter with ISO times in Beijing time."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, BEIJING)
        return moment.isoformat(timespec="milliseconds")


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (never a stale, replaced stream)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(settings: Settings) -> None:
    """Send this process's logs to stderr in the configured format (serve mode only)."""
    handler = StderrHandler()
    handler.addFilter(RequestIdFilter())
    if settings.log_format == "json":
        handler.setFormatter(
            BeijingJsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "casetrail", False)]:
        root.removeHandler(old)
    handler.casetrail = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level)


def install(app: Flask) -> None:
    """Give every request an id, echo it in the response and log one line per request."""
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_forget)


def _begin() -> None:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _ACCEPTED_ID.fullmatch(offered) else uuid.uuid4().hex
    g.request_id = request_id
    g.request_started = time.perf_counter()
    g.request_id_token = current_request_id.set(request_id)


def _finish(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id is None:  # a failure before _begin ran
        return response
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started", time.perf_counter())
    request_log.info(
        "request",
        extra={
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else None,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "client": request.remote_addr,
            "user_agent": request.headers.get("User-Agent", "")[:200] or None,
        },
    )
    return response


def _forget(_error: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        current_request_id.reset(token)
