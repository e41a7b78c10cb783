"""Browser apps on other sites: CORS by an allowlist, and ``X-HTTP-Method-Override``.

* CORS (跨域) is granted by flask-cors to the origins of ``CASETRAIL_CORS_ORIGINS`` only,
  on the whole API (``/api/v1/…``: enrol, manifests, uploads, receipts, the log's public
  key). The tus headers a browser client must read (``Location``, ``Upload-Offset``,
  ``Tus-*`` …) are exposed. An origin not on the list gets no ``Access-Control-*``
  header at all — including from the uploads blueprint, whose own CORS headers are
  removed before flask-cors decides.
* ``X-HTTP-Method-Override``: tus-js-client's ``overridePatchMethod`` (and proxies that
  only pass GET and POST) send ``POST`` with ``X-HTTP-Method-Override: PATCH``. The
  WSGI middleware :class:`MethodOverride` turns such a POST into the named method
  (``PATCH``, ``DELETE`` or ``HEAD``) before Flask routes it; any other value is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response
from flask_cors import CORS

from server import tus
from server.settings import Settings

OVERRIDABLE = frozenset({"PATCH", "DELETE", "HEAD"})
REQUEST_ID_HEADER = "X-Request-Id"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class MethodOverride:
    """WSGI middleware: ``POST`` + ``X-HTTP-Method-Override: PATCH|DELETE|HEAD``."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        wanted = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").strip().upper()
        if environ.get("REQUEST_METHOD") == "POST" and wanted in OVERRIDABLE:
            environ["REQUEST_METHOD"] = wanted
            environ["casetrail.method_overridden"] = "POST"
        return self.app(environ, start_response)


def install(app: Flask, settings: Settings, api_prefix: str) -> None:
    """Wire the allowlisted CORS and the method override into ``app``."""
    CORS(
        app,
        resources={f"{api_prefix}/*": {"origins": list(settings.cors_origins)}},
        methods=["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=[*tus.ALLOWED_HEADERS, REQUEST_ID_HEADER],
        expose_headers=[*tus.EXPOSED_HEADERS, REQUEST_ID_HEADER, "Content-Disposition"],
        supports_credentials=False,  # bearer tokens, never cookies, cross-site
        max_age=86400,
        vary_header=True,
    )
    # Registered after flask-cors, so it runs before it (Flask calls after-request
    # functions in reverse): the uploads blueprint's own CORS headers answer any origin.
    app.after_request(_drop_foreign_cors_headers)
    app.wsgi_app = MethodOverride(app.wsgi_app)  # type: ignore[method-assign]


def _drop_foreign_cors_headers(response: Response) -> Response:
    names = {name for name, _ in response.headers.items()}
    for name in names:
        if name.lower().startswith("access-control-"):
            del response.headers[name]
    return response
