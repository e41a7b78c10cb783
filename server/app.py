"""``create_app``: the Flask app of the sync server.

Nothing is wired at import time. ``create_app`` reads settings (or takes them), has
:func:`server.components.build_components` (the one composition root, shared with the
CLI) build every part, keeps them in ``app.extensions["casetrail"]``, and registers the
API blueprints and the error handlers. ``background=True`` (``casetrail serve``, in each
server process) also starts the background threads: leftover inspection, upload expiry
and periodic checkpoints.

To add an API module, append its dotted name to :data:`BLUEPRINTS`; the module must
expose a flask-smorest ``Blueprint`` named ``blp`` (its URL prefix is relative to
``/api/v1``). To add a group of pages, append its module to :data:`WEB_BLUEPRINTS`; the
module (under ``server/web/``) exposes a plain Flask ``Blueprint`` named ``bp`` with its
own absolute URL prefix (``/ui``, ``/capture``, ``/public``).
"""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from typing import Any

from flask import Flask, Response, request, send_from_directory
from werkzeug.exceptions import RequestEntityTooLarge

from server import cross_origin, logs, metrics
from server.api.errors import CaseTrailApi, register_error_handlers
from server.components import EXTENSION_KEY, build_components
from server.settings import Settings
from server.web.security import install as install_workspace

API_PREFIX = "/api/v1"
API_VERSION = "1"

# Blueprints whose requests stream large bodies (tus uploads) set their own limits; every
# other request body is capped at ``Settings.max_json_body``.
STREAMING_BLUEPRINTS: set[str] = {"uploads"}

BLUEPRINTS: list[str] = [
    "server.api.health",
    "server.api.me",
    "server.api.users",
    "server.api.devices",
    "server.api.cases",
    "server.api.custody",
    "server.api.manifests",
    "server.api.uploads",
    "server.api.evidence",
    "server.api.completeness",
    "server.api.legal_review",
    "server.api.export",
    "server.api.publication",
    "server.api.registries",
    "server.api.draws",
    "server.api.agencies",
]


# Server-rendered pages: thin views over the same services as the API (``server/web/``).
WEB_BLUEPRINTS: list[str] = [
    "server.web.public",
    "server.web.capture",
    "server.web.signin",
    "server.web.cases",
    "server.web.evidence",
    "server.web.exports",
    "server.web.admin",
    "server.web.verify",
    "server.web.publication",
    "server.web.registries",
]


class CaseTrailFlask(Flask):
    """Flask whose automatic ``OPTIONS`` answer lists the methods of the route asked about."""

    def make_default_options_response(self) -> Response:
        """``Allow``: the methods of the matched route's own path template.

        Werkzeug lists every rule the path fits, so ``/devices/enrol`` (POST) also
        advertised the GET of ``/devices/<device_id>``; routing prefers the literal
        route, and so does ``Allow`` now.
        """
        rule = request.url_rule
        if rule is None:
            return super().make_default_options_response()
        methods: set[str] = set()
        for other in self.url_map.iter_rules():
            if other.rule == rule.rule and other.methods:
                methods |= other.methods
        response = self.response_class()
        response.allow.update(methods)
        return response


def create_app(
    settings: Settings | None = None, *, store: Any = None, background: bool = False
) -> Flask:
    """Build a ready Flask app; ``store`` overrides the blob store ``settings`` would open.

    ``background`` starts the process's background threads (serve mode); tests leave it
    off, or call ``app.extensions["casetrail"].start_background()`` themselves.
    """
    settings = settings or Settings.from_env()
    app = CaseTrailFlask("server")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_json_body,
        API_TITLE="CaseTrail 执法全过程记录 API",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Swagger UI assets are served from the installed package: agency networks are
        # often cut off from public CDNs.
        OPENAPI_SWAGGER_UI_URL=f"{API_PREFIX}/docs/assets/",
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    parts = build_components(settings, store=store)
    app.extensions[EXTENSION_KEY] = parts

    api = CaseTrailApi(
        app,
        spec_kwargs={
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    for name in BLUEPRINTS:
        module = importlib.import_module(name)
        api.register_blueprint(module.blp, url_prefix=API_PREFIX + module.blp.url_prefix)
    for name in WEB_BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)
    register_error_handlers(app, api)
    install_workspace(app)  # /ui: security headers, Chinese error pages, Beijing-time filters
    _serve_swagger_ui_assets(app)
    cross_origin.install(app, settings, API_PREFIX)
    logs.install(app)
    metrics.install(app, settings, serve=background)
    app.before_request(_limit_unsized_body)
    app.after_request(_safety_headers)
    if background:
        logs.configure(settings)
        parts.start_background()
    return app


def _serve_swagger_ui_assets(app: Flask) -> None:
    """Serve the vendored Swagger UI (``server/static/swagger-ui``) under ``/docs/assets``."""
    folder = Path(__file__).parent / "static" / "swagger-ui"

    def swagger_ui_asset(filename: str) -> Any:
        return send_from_directory(folder, filename, max_age=86400)

    app.add_url_rule(f"{API_PREFIX}/docs/assets/<path:filename>", view_func=swagger_ui_asset)


def _safety_headers(response: Any) -> Any:
    """``nosniff`` on every answer; API answers not made to be cached are ``no-store``.

    API JSON is private (cases, custody, receipts, tokens): no browser or proxy keeps it.
    Answers that chose their own ``Cache-Control`` (Swagger UI assets, thumbnails) keep it.
    """
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.path.startswith(API_PREFIX) and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def _limit_unsized_body() -> None:
    """Refuse a chunked body over the limit with 413 before any view reads it.

    Werkzeug only caps a body without ``Content-Length`` by truncating it silently
    (the view would then see broken JSON), so the body is read here, in blocks, up to
    one byte past the limit, and handed on with its now known length.
    """
    limit = request.max_content_length
    environ = request.environ
    if (
        limit is None
        or request.blueprint in STREAMING_BLUEPRINTS
        or environ.get("CONTENT_LENGTH")
        or "wsgi.input_terminated" not in environ
    ):
        return
    raw = environ["wsgi.input"]
    body = bytearray()
    while len(body) <= limit:
        block = raw.read(min(64 * 1024, limit + 1 - len(body)))
        if not block:
            break
        body += block
    if len(body) > limit:
        raise RequestEntityTooLarge()
    environ["wsgi.input"] = io.BytesIO(bytes(body))
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)  # else Werkzeug ignores CONTENT_LENGTH
    del environ["wsgi.input_terminated"]
