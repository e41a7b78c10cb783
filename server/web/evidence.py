"""Evidence bytes for the workspace: originals (HTTP Range), thumbnails and posters.

The same service calls as the API (:mod:`server.services.evidence_reads`), so every
view and download is the same custody event (``downloaded`` with its byte range,
``viewed`` for a thumbnail or poster), committed before the first byte is sent.
Safety: only audio, video and raster images are shown inline; everything else (PDF,
SVG, HTML, office files) is sent as an attachment, with ``nosniff`` and a sandboxing
CSP, so no active content ever runs from our origin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from flask import Response, render_template, request, stream_with_context
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import quote_etag

from server.components import components
from server.services import evidence_reads, evidence_view
from server.services.evidence_reads import Readable
from server.web.common import run, workspace_blueprint
from storage.errors import NotFound as BlobNotFound

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


def _stream(
    readable: Readable, start: int, end: int | None, missing: Callable[[], Exception]
) -> Iterator[bytes]:
    # The custody event is committed; an object gone by now is answered by ``missing()``.
    try:
        blocks: Iterator[bytes] = components().store.open(readable.key, start, end)
    except BlobNotFound:
        raise missing() from None
    streamed: Iterator[bytes] = stream_with_context(blocks)
    return streamed


@bp.get("/evidence/<evidence_id>/content")
def content(evidence_id: str) -> Response:
    """The original: inline for audio/video/images (Range for seeking), else a download."""

    def pick(size: int) -> tuple[int, int] | None:
        if request.range is None:
            return None
        found = request.range.range_for_length(size)
        if found is None:
            raise RequestedRangeNotSatisfiable(length=size)
        return found

    readable = run(evidence_reads.open_content, evidence_id, pick)
    inline = readable.media_type in INLINE_TYPES and not request.args.get("download")
    # A download carries the type read from its bytes (never the device's claim alone);
    # attachment + nosniff + the sandbox keep it from running in our origin.
    media_type = (
        readable.media_type if inline else readable.sniffed_type or "application/octet-stream"
    )
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": quote_etag(readable.sha256.partition(":")[2]),
        "Content-Disposition": "inline" if inline else attachment(readable.name),
        "Cache-Control": "private, no-store",
        "Content-Length": str(readable.end - readable.start),
        "Content-Security-Policy": SANDBOX,
    }
    status = 200
    if (readable.start, readable.end) != (0, readable.size):
        status = 206
        headers["Content-Range"] = f"bytes {readable.start}-{readable.end - 1}/{readable.size}"
    return Response(
        _stream(
            readable,
            readable.start,
            readable.end,
            lambda: evidence_reads.original_missing(components().unit_of_work, readable),
        ),
        status=status,
        mimetype=media_type,
        headers=headers,
        direct_passthrough=True,
    )


def _derivative(evidence_id: str, role: str) -> Response:
    readable = run(evidence_reads.open_derivative, evidence_id, role)

    def missing() -> Exception:
        return evidence_reads.derivative_missing(readable)

    try:
        stat = components().store.stat(readable.key)
    except BlobNotFound:
        raise missing() from None
    return Response(
        _stream(readable, 0, None, missing),
        mimetype=readable.media_type if readable.media_type in INLINE_TYPES else "image/jpeg",
        headers={
            "Content-Length": str(stat.size),
            "Cache-Control": "private, max-age=3600",
            "Content-Security-Policy": SANDBOX,
        },
        direct_passthrough=True,
    )


@bp.get("/evidence/<evidence_id>/thumbnail")
def thumbnail(evidence_id: str) -> Response:
    """A photo's thumbnail (a ``viewed`` custody event)."""
    return _derivative(evidence_id, "thumbnail")


@bp.get("/evidence/<evidence_id>/poster")
def poster(evidence_id: str) -> Response:
    """A video's poster frame (a ``viewed`` custody event)."""
    return _derivative(evidence_id, "poster")
