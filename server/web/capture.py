"""The capture app (现场采集) at ``/capture/``: an offline-first web app for any phone.

The app itself is static (``server/web/capture/``: page, ES modules, stylesheet, web
app manifest, icons, service worker); all its logic runs in the browser and talks to
the same JSON API as ``field_client`` (enrol, register manifests, tus uploads,
receipts). This blueprint only serves it:

* ``/capture/`` and ``/capture/<file>`` — the app files;
* ``/capture/sw.js`` — the service worker, scope ``/capture/``, with its cache name
  derived from the app files' contents, so a changed app replaces the offline copy;
* ``/capture/vendor/<package>@<version>/<file>`` — scripts vendored from npm
  (``server/web/static/vendor/``, listed with licence and checksums in VENDORED.toml);
* ``/capture/api/assignments`` — for a device token, the open cases its owner is
  assigned to, each with the stages and record types of its pinned recording standard
  (device tokens may not list cases through ``/api/v1/cases``;
  :mod:`server.services.assignments`).

Every answer carries a strict Content-Security-Policy: no inline script or style, no
third-party origin (``'wasm-unsafe-eval'`` lets the vendored SHA-256 hasher compile).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from flask import Blueprint, Response, abort, jsonify, send_from_directory

from server.api.common import call
from server.services.assignments import device_assignments

APP_DIR = Path(__file__).with_name("capture")
VENDOR_DIR = Path(__file__).with_name("static") / "vendor"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

bp = Blueprint("capture", __name__, url_prefix="/capture")


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@functools.cache
def app_version() -> str:
    """Short digest of every app and vendored file: the service worker's cache name."""
    digest = hashlib.sha256()
    for root in (APP_DIR, VENDOR_DIR):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _no_cache(response: Response) -> Response:
    # The service worker decides what is kept offline; the HTTP cache must not hide a
    # new version from it.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/")
def index() -> Response:
    """The app page."""
    return _no_cache(send_from_directory(APP_DIR, "index.html"))


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker with its versioned cache name."""
    text = (APP_DIR / "sw.js").read_text("utf-8").replace("__APP_VERSION__", app_version())
    response = Response(text, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/capture/"
    return _no_cache(response)


@bp.get("/manifest.webmanifest")
def web_app_manifest() -> Response:
    """The web app manifest (installable app)."""
    response = send_from_directory(APP_DIR, "manifest.webmanifest")
    response.mimetype = "application/manifest+json"
    return _no_cache(response)


@bp.get("/vendor/<path:filename>")
def vendored(filename: str) -> Response:
    """A vendored third-party file (only under ``<package>@<version>/dist/``)."""
    if "/dist/" not in filename:
        abort(404)
    return _no_cache(send_from_directory(VENDOR_DIR, filename))


@bp.get("/<path:filename>")
def app_file(filename: str) -> Response:
    """A file of the app (modules, stylesheet, icons)."""
    if filename in ("sw.js", "index.html"):
        abort(404)
    response = send_from_directory(APP_DIR, filename)
    if filename.endswith(".js"):
        response.mimetype = "text/javascript"
    return _no_cache(response)


@bp.get("/api/assignments")
def assignments() -> Response:
    """The open cases the device's owner is assigned to, with their pinned standard."""
    response = jsonify({"cases": call(device_assignments)})
    response.headers["Cache-Control"] = "no-store"
    return response
