"""tus 1.0.0 resumable-upload protocol helpers (断点续传协议): no I/O, no Flask of its own.

Header parsing and formatting for the extensions CaseTrail speaks (core, creation,
creation-with-upload, checksum, termination, expiration), and the protocol's refusals,
each a subclass of a :mod:`server.errors` class (whose one table gives the status)::

    server.errors class      tus error              when
    PreconditionFailed 412   VersionUnsupported     Tus-Resumable missing or not 1.0.0
                                                    (answers with ``Tus-Version``)
    UnsupportedMediaType 415 WrongContentType       body not application/offset+octet-stream
    ChecksumMismatch 460     ChecksumMismatch       Upload-Checksum does not match the chunk
    Locked 423               UploadLocked           another PATCH of this upload is running
    Gone 410                 UploadGone             terminated or expired upload

Errors carry a Chinese + English ``message`` saying what to do and ``errors`` per
header; the server's one error handler renders them in the one JSON error shape, and
the uploads blueprint adds the tus headers to every response, errors included.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from server import errors

TUS_VERSION = "1.0.0"
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "checksum",
    "termination",
    "expiration",
)
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"

# Every tus header a browser client must be able to read (CORS).
EXPOSED_HEADERS = (
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Location",
    "CaseTrail-Receipt",
    "CaseTrail-Checksum-Chunk-Max",
)
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Tus-Resumable",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Checksum",
    "Upload-Defer-Length",
    "Upload-Concat",
    "X-HTTP-Method-Override",
)

_DIGITS = re.compile(r"[0-9]{1,19}")
_META_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # visible ASCII without ',' (tus spec)
MAX_METADATA_BYTES = 16 * 1024


class VersionUnsupported(errors.PreconditionFailed):
    """``Tus-Resumable`` is missing or names a version other than 1.0.0."""

    headers = {"Tus-Version": TUS_VERSION}


class WrongContentType(errors.UnsupportedMediaType):
    """A PATCH body that is not ``application/offset+octet-stream``."""


class ChecksumMismatch(errors.ChecksumMismatch):
    """The chunk does not hash to ``Upload-Checksum``; it was discarded."""


class UploadLocked(errors.Locked):
    """Another PATCH of the same upload is in progress (any server process)."""


class UploadGone(errors.Gone):
    """The upload was terminated or has expired."""


def check_version(value: str | None) -> None:
    """Raise :class:`VersionUnsupported` unless ``value`` is ``1.0.0``."""
    if value != TUS_VERSION:
        raise VersionUnsupported(
            f"不支持的 tus 协议版本 {value!r}，请发送 Tus-Resumable: {TUS_VERSION} "
            f"(unsupported tus version {value!r}; send Tus-Resumable: {TUS_VERSION})",
            {"Tus-Resumable": [f"须为 {TUS_VERSION} / must be {TUS_VERSION}"]},
        )


def parse_size(value: str | None, header: str) -> int | None:
    """A non-negative decimal header value, ``None`` if absent; bad values → ``ValueError``."""
    if value is None:
        return None
    value = value.strip()
    if not _DIGITS.fullmatch(value):
        raise ValueError(
            f"{header} 须为非负整数 / {header} must be a non-negative integer, got {value!r}"
        )
    return int(value)


def parse_metadata(value: str | None) -> tuple[dict[str, str], list[str]]:
    """Decode ``Upload-Metadata`` into text values; returns ``(metadata, problems)``.

    Every malformed pair is reported (not just the first). Values must be base64 of
    UTF-8 text; a key without a value maps to ``""``.
    """
    if value is None or not value.strip():
        return {}, []
    problems: list[str] = []
    if len(value) > MAX_METADATA_BYTES:
        return {}, [f"Upload-Metadata 过长 / longer than {MAX_METADATA_BYTES} bytes"]
    result: dict[str, str] = {}
    for pair in value.split(","):
        pieces = pair.strip().split(" ")
        key = pieces[0]
        if not _META_KEY.fullmatch(key) or len(pieces) > 2:
            problems.append(f"元数据项格式错误 / malformed metadata pair {pair.strip()[:80]!r}")
            continue
        if key in result:
            problems.append(f"元数据键重复 / duplicate metadata key {key!r}")
            continue
        raw = pieces[1] if len(pieces) == 2 else ""
        try:
            result[key] = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            problems.append(
                f"元数据 {key!r} 的值须为 UTF-8 文本的 base64 / value of {key!r} must be "
                "base64 of UTF-8 text"
            )
    return result, problems


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """``Upload-Metadata`` header value for ``metadata`` (keys as given, values base64)."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode('utf-8')).decode('ascii')}" if value else key
        for key, value in metadata.items()
    )


@dataclass(frozen=True)
class Checksum:
    """A parsed ``Upload-Checksum``: algorithm name and the raw digest bytes."""

    algorithm: str
    digest: bytes

    def hasher(self) -> Any:
        """A fresh ``hashlib`` object for the algorithm."""
        return hashlib.new(self.algorithm)

    def matches(self, hasher: Any) -> bool:
        """Whether ``hasher`` (fed the chunk) produced this digest."""
        return bool(hasher.digest() == self.digest)


def parse_checksum(value: str | None) -> Checksum | None:
    """Parse ``Upload-Checksum: <alg> <base64 digest>``; ``None`` if absent.

    An unknown algorithm or malformed digest raises ``ValueError`` (the API answers 400).
    """
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ValueError(
            f"不支持的校验算法 {algorithm!r}，可用：{', '.join(CHECKSUM_ALGORITHMS)} "
            f"(unsupported checksum algorithm; use one of {', '.join(CHECKSUM_ALGORITHMS)})"
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("Upload-Checksum 的摘要须为 base64 / the digest must be base64") from None
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise ValueError(
            f"{algorithm} 摘要长度错误 / wrong {algorithm} digest length ({len(digest)} bytes)"
        )
    return Checksum(algorithm, digest)


def http_date(moment: datetime) -> str:
    """RFC 9110 date (``Upload-Expires``), e.g. ``Wed, 25 Jun 2025 08:00:00 GMT``."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def base_headers() -> dict[str, str]:
    """Headers every tus response carries."""
    return {"Tus-Resumable": TUS_VERSION}


def options_headers(max_size: int, checksum_chunk_max: int) -> dict[str, str]:
    """Discovery headers of ``OPTIONS``.

    ``CaseTrail-Checksum-Chunk-Max``: the largest PATCH body accepted with an
    ``Upload-Checksum`` (such a chunk is verified before any byte is stored); clients
    set their tus chunk size at most this.
    """
    return {
        **base_headers(),
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Max-Size": str(max_size),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        "CaseTrail-Checksum-Chunk-Max": str(checksum_chunk_max),
    }


def cors_headers(origin: str | None) -> dict[str, str]:
    """CORS headers so browser tus clients (tus-js-client, Uppy) can read the tus headers."""
    if not origin:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Vary": "Origin",
        "Access-Control-Allow-Methods": "POST, HEAD, PATCH, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
        "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
        "Access-Control-Max-Age": "86400",
    }
