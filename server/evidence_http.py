"""Evidence bytes over HTTP, one way for both faces (``server.api.evidence``, ``server.web.evidence``).

The views open a read through :mod:`server.services.evidence_reads` (which commits the
custody event — ``downloaded`` with its byte range, ``viewed`` for a thumbnail or
poster — before anything is sent); this module turns that read into a streamed
response: one ``Range`` picked per request, the store's blocks streamed after the
event, a strong ``ETag`` from the SHA-256, and the type read from the stored bytes
(never the device's declared type) for anything that is not shown inline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from flask import Response, request, stream_with_context
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import quote_etag

from server.components import components
from server.media.sniff import OCTET_STREAM, SNIFF_BYTES, sniff
from server.services import evidence_reads
from server.services.evidence_reads import Readable
from storage.errors import NotFound as BlobNotFound

CONTENT_TYPES = (
    "image/jpeg", "image/png", "image/heic", "image/webp", "image/tiff", "image/gif",
    "video/mp4", "video/quicktime", "video/3gpp", "video/webm", "video/x-matroska",
    "video/x-msvideo", "video/mp2t", "audio/mp4", "audio/mpeg", "audio/aac", "audio/amr",
    "audio/amr-wb", "audio/wav", "audio/ogg", "audio/flac", "application/pdf",
    "text/plain", OCTET_STREAM,
)  # fmt: skip
"""What an original is served as: sniffed from the stored bytes, never the declared type."""


def requested_range(size: int) -> tuple[int, int] | None:
    """The request's one byte range for an object of ``size`` bytes (None: the whole).

    Passed to ``evidence_reads.open_content`` so the custody event names the range.
    """
    if request.range is None:
        return None
    found = request.range.range_for_length(size)
    if found is None:
        raise RequestedRangeNotSatisfiable(length=size)
    return found


def sniffed_type(readable: Readable) -> str:
    """The original's media type from its own first bytes (inspection's, else read now)."""
    found = readable.sniffed_type
    if found is None:
        try:
            head = components().store.open(readable.key, 0, min(readable.size, SNIFF_BYTES))
            found = sniff(b"".join(head)).media_type
        except BlobNotFound:
            return OCTET_STREAM  # the stream answers for the missing object
    return found if found in CONTENT_TYPES else OCTET_STREAM


def original_response(
    readable: Readable, *, media_type: str, headers: Mapping[str, str]
) -> Response:
    """The original (or its requested range) streamed, 200 or 206, ETag from its SHA-256."""
    full = (readable.start, readable.end) == (0, readable.size)
    all_headers = {
        "Accept-Ranges": "bytes",
        "ETag": quote_etag(readable.sha256.partition(":")[2]),
        "Cache-Control": "private, no-store",
        "Content-Length": str(readable.end - readable.start),
        **headers,
    }
    if not full:
        all_headers["Content-Range"] = f"bytes {readable.start}-{readable.end - 1}/{readable.size}"
    return Response(
        _stream(
            readable,
            readable.start,
            readable.end,
            lambda: evidence_reads.original_missing(components().unit_of_work, readable),
        ),
        status=200 if full else 206,
        content_type=media_type,
        headers=all_headers,
        direct_passthrough=True,
    )


def derivative_response(
    readable: Readable, *, media_type: str, headers: Mapping[str, str] = {}
) -> Response:
    """A thumbnail or poster streamed whole (a missing object is a plain 503)."""

    def missing() -> Exception:
        return evidence_reads.derivative_missing(readable)

    try:
        stat = components().store.stat(readable.key)
    except BlobNotFound:
        raise missing() from None
    return Response(
        _stream(readable, 0, None, missing),
        content_type=media_type,
        headers={
            "Content-Length": str(stat.size),
            "Cache-Control": "private, max-age=3600",
            **headers,
        },
        direct_passthrough=True,
    )


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
