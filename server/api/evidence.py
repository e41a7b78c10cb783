# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Evidence reads (证据调阅): receipt, inspection, content (ranges), thumbnail, poster.

Metadata (``GET /evidence/{id}``) lives with the manifests API. Bytes are streamed
from storage in blocks after the custody event (``downloaded`` / ``viewed``) is
committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, request, stream_with_context
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import quote_etag

from server.api.common import call
from server.components import components
from server.services import evidence_reads
from server.services.evidence_reads import Readable
from storage.errors import NotFound as BlobNotFound

blp = Blueprint("evidence", __name__, url_prefix="/evidence", description="证据调阅 Evidence reads")


@blp.route("/<evidence_id>/receipt")
def get_receipt(evidence_id: str) -> Any:
    """The signed ingest receipt (入库回执) of a stored evidence item."""
    return call(evidence_reads.receipt, evidence_id)


@blp.route("/<evidence_id>/inspection")
def get_inspection(evidence_id: str) -> Any:
    """Inspection status, facts and flags (media type, EXIF, duration, warnings)."""
    return call(evidence_reads.inspection, evidence_id)


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


def _etag(readable: Readable) -> str:
    return quote_etag(readable.sha256.partition(":")[2])


@blp.route("/<evidence_id>/content")
def get_content(evidence_id: str) -> Response:
    """Download the original; supports one byte range (206, Accept-Ranges, 416)."""

    def pick(size: int) -> tuple[int, int] | None:
        if request.range is None:
            return None
        found = request.range.range_for_length(size)
        if found is None:
            raise RequestedRangeNotSatisfiable(length=size)
        return found

    readable = call(evidence_reads.open_content, evidence_id, pick)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": _etag(readable),
        "Content-Disposition": "attachment",
        "Cache-Control": "private, no-store",
        "Content-Length": str(readable.end - readable.start),
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
        mimetype=readable.media_type,
        headers=headers,
        direct_passthrough=True,
    )


def _derivative(evidence_id: str, role: str) -> Response:
    readable = call(evidence_reads.open_derivative, evidence_id, role)

    def missing() -> Exception:
        return evidence_reads.derivative_missing(readable)

    try:
        stat = components().store.stat(readable.key)
    except BlobNotFound:
        raise missing() from None
    return Response(
        _stream(readable, 0, None, missing),
        mimetype=readable.media_type,
        headers={"Content-Length": str(stat.size), "Cache-Control": "private, max-age=3600"},
        direct_passthrough=True,
    )


@blp.route("/<evidence_id>/thumbnail")
def get_thumbnail(evidence_id: str) -> Response:
    """The orientation-corrected thumbnail of a photo (records a ``viewed`` event)."""
    return _derivative(evidence_id, "thumbnail")


@blp.route("/<evidence_id>/poster")
def get_poster(evidence_id: str) -> Response:
    """The poster frame of a video (records a ``viewed`` event)."""
    return _derivative(evidence_id, "poster")
