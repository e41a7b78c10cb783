"""Evidence bytes for the workspace: originals (HTTP Range), thumbnails and posters.

The same service calls as the API (:mod:`server.services.evidence_reads`), so every
view and download is the same custody event (``downloaded`` with its byte range,
``viewed`` for a thumbnail or poster), committed before the first byte is sent.
Safety: only audio, video and raster images are shown inline; everything else (PDF,
SVG, HTML, office files) is sent as an attachment, with ``nosniff`` and a sandboxing
CSP, so no active content ever runs from our origin.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Response, render_template, request

from server.evidence_http import (
    derivative_response,
    original_response,
    requested_range,
    sniffed_type,
)
from server.services import evidence_reads, evidence_view
from server.web.common import run, workspace_blueprint

bp = workspace_blueprint("ui_evidence", __name__)

INLINE_TYPES = (
    "video/mp4",
    "video/webm",
    "video/quicktime",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
)
SANDBOX = "sandbox; default-src 'none'; media-src 'self'; img-src 'self'"


def attachment(name: str) -> str:
    """``Content-Disposition`` for a download under its (client-given) file name."""
    plain = "".join(c for c in name if c.isascii() and c.isalnum() or c in "._-") or "evidence"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


@bp.get("/evidence/<evidence_id>")
def detail(evidence_id: str) -> Any:
    """An evidence item: facts, flags, derivatives, custody events; plays or offers it."""
    v = run(evidence_view.evidence_page, evidence_id)
    return render_template("evidence/detail.html", v=v, e=v.evidence, case=v.case)


@bp.get("/evidence/<evidence_id>/content")
def content(evidence_id: str) -> Response:
    """The original: inline for audio/video/images (Range for seeking), else a download."""

    readable = run(evidence_reads.open_content, evidence_id, requested_range)
    inline = readable.media_type in INLINE_TYPES and not request.args.get("download")
    # A download carries the type read from its bytes (never the device's claim alone);
    # attachment + nosniff + the sandbox keep it from running in our origin.
    return original_response(
        readable,
        media_type=readable.media_type if inline else sniffed_type(readable),
        headers={
            "Content-Disposition": "inline" if inline else attachment(readable.name),
            "Content-Security-Policy": SANDBOX,
        },
    )


def _derivative(evidence_id: str, role: str) -> Response:
    readable = run(evidence_reads.open_derivative, evidence_id, role)
    return derivative_response(
        readable,
        media_type=readable.media_type if readable.media_type in INLINE_TYPES else "image/jpeg",
        headers={"Content-Security-Policy": SANDBOX},
    )


@bp.get("/evidence/<evidence_id>/thumbnail")
def thumbnail(evidence_id: str) -> Response:
    """A photo's thumbnail (a ``viewed`` custody event)."""
    return _derivative(evidence_id, "thumbnail")


@bp.get("/evidence/<evidence_id>/poster")
def poster(evidence_id: str) -> Response:
    """A video's poster frame (a ``viewed`` custody event)."""
    return _derivative(evidence_id, "poster")
