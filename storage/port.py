"""The ``BlobStore`` port: one small Protocol and the values it speaks.

Every adapter (``storage.local.LocalBlobStore``, ``storage.s3.S3BlobStore``) passes the
one contract suite in ``tests/storage/contract.py``. Errors are ``storage.errors``.

Resumable uploads (断点续传) are a sequence of *parts* numbered 1, 2, 3, … put in
order; putting the last part number again replaces that part (a retried chunk).
Upload state lives in the store, so parts are listable after a restart or from another
process. Backends may need a minimum size for every part but the last
(``Capabilities.min_part_size``: 5 MiB on S3) and cap the size of one part
(``Capabilities.max_part_size``): callers split and buffer accordingly.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

BLOCK_SIZE = 1 << 20
"""Bytes are read, hashed, written and yielded in blocks of this size."""

Block = bytes | bytearray | memoryview
"""What a store writes from: any bytes-like block (a view of a receive buffer is written
without a copy). ``open`` yields ``bytes``."""


class ByteStream(Protocol):
    """Anything with ``read(n)`` returning at most ``n`` bytes, ``b""`` at the end."""

    def read(self, size: int = -1, /) -> bytes:
        """Read at most ``size`` bytes."""
        ...


@dataclass(frozen=True)
class BlobInfo:
    """An object as written: its key, length and digests (``sha256:<hex>``, ``sha512:<hex>``).

    ``sha512`` is None when the store did not hash the bytes itself: a resumable upload
    completed with the caller's ``verified_sha256`` (the caller derives SHA-512 later).
    """

    key: str
    size: int
    sha256: str
    sha512: str | None


@dataclass(frozen=True)
class ObjectStat:
    """What the store knows about an object without reading it."""

    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class PartInfo:
    """One stored part of a resumable upload; ``etag`` is an opaque token for completion.

    ``checksum``: what the store checked the part's bytes against when it took them, as
    ``<algorithm>:<value>`` (S3: ``crc32:<base64>`` or ``sha256:<base64>``), for stores
    that want it back at completion; ``None`` where the store keeps none or did not say
    (a listing). Not part of a part's identity: a recorded part equals its listing.
    """

    number: int
    size: int
    etag: str
    checksum: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class UploadInfo:
    """An incomplete resumable upload and the key it will complete to."""

    key: str
    upload_id: str
    started: datetime | None


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, detected rather than assumed.

    ``write_once_native``: the backend refuses to overwrite atomically (local ``link``,
    S3 ``If-None-Match: *``); when False the adapter checks then writes, and the
    documented race window applies. ``object_lock``: originals get a retention lock.
    ``fsync``: a success means the bytes reached stable storage (power-loss safe).
    """

    backend: str
    write_once_native: bool
    object_lock: bool
    fsync: bool
    min_part_size: int
    max_part_size: int | None
    max_parts: int


@runtime_checkable
class BlobStore(Protocol):
    """Streaming, write-once-capable object store for evidence (证据存储)."""

    @property
    def capabilities(self) -> Capabilities:
        """What this backend supports (see ``Capabilities``)."""
        ...

    def ping(self) -> None:
        """Return if the store is reachable and usable; raise ``Unavailable`` otherwise."""
        ...

    def write(
        self,
        key: str,
        blocks: Iterable[Block],
        *,
        max_size: int | None = None,
        expected_sha256: str | None = None,
        write_once: bool = True,
        sha512: bool = True,
    ) -> BlobInfo:
        """Write ``blocks`` (as ``open`` yields them; bytes-like, any size) to ``key``,
        hashing SHA-256 — and SHA-512 unless ``sha512=False`` (then ``BlobInfo.sha512`` is
        ``None``) — while writing. A caller holding a stream passes
        ``storage.hashing.read_blocks(stream)``.

        Nothing is ever visible half-written. Beyond ``max_size`` → ``TooLarge``; digest
        not ``expected_sha256`` → ``DigestMismatch``; ``write_once`` and the key exists →
        ``AlreadyExists``. In all three cases nothing new appears at the key.
        """
        ...

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``[start, end)`` of ``key`` in blocks of at most ``BLOCK_SIZE``.

        ``end=None`` means to the end; a range past the end is clipped (like slicing).
        Raises ``NotFound`` before returning if the key does not exist.
        """
        ...

    def stat(self, key: str) -> ObjectStat:
        """Size and modification time of ``key``; ``NotFound`` if absent."""
        ...

    def exists(self, key: str) -> bool:
        """True if an object is stored at ``key``."""
        ...

    def delete(self, key: str, *, retention_expired: bool = False) -> None:
        """Delete ``key``. Originals (``keys.is_original_key``) need ``retention_expired=True``
        (the retention-expiry path), else ``DeleteRefused``. ``NotFound`` if absent."""
        ...

    def quarantine(self, key: str, reason: str) -> str:
        """Move ``key`` to the quarantine prefix with a JSON note of ``reason``; return the
        new key. Never a silent delete."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in sorted order."""
        ...

    def start_upload(self, key: str) -> str:
        """Open a resumable upload that will complete to ``key``; return its upload id."""
        ...

    def put_part(self, key: str, upload_id: str, number: int, blocks: Iterable[Block]) -> PartInfo:
        """Store part ``number`` (1-based, in order; the last may be replaced) from ``blocks``.

        ``InvalidParts`` if out of order; ``TooLarge`` beyond ``max_part_size``;
        ``UploadNotFound`` if the upload is not open.
        """
        ...

    def list_parts(self, key: str, upload_id: str) -> builtins.list[PartInfo]:
        """Parts stored so far, by number (works after a restart / from another process)."""
        ...

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: builtins.list[PartInfo],
        *,
        expected_sha256: str | None = None,
        verified_sha256: str | None = None,
        write_once: bool = True,
    ) -> BlobInfo:
        """Make the parts appear at ``key`` as one object, atomically and write-once.

        ``parts`` must be exactly the stored parts 1..n (``InvalidParts`` otherwise).
        Parts are not hashed as they are put. ``verified_sha256`` is the caller's own
        running digest of exactly these bytes, already compared with what it expects:
        the store trusts it and returns ``BlobInfo(sha256=verified_sha256, sha512=None)``
        without reading the bytes again (``DigestMismatch`` if it differs from
        ``expected_sha256``). Without it the store derives both digests by reading the
        bytes back (the rare path: callers that kept no running digest).
        ``DigestMismatch`` / ``AlreadyExists`` leave nothing new at the key; the local
        store keeps the upload open so the caller can ``quarantine_upload`` or
        ``abort_upload`` it.
        """
        ...

    def quarantine_upload(
        self, key: str, upload_id: str, parts: builtins.list[PartInfo], reason: str
    ) -> str:
        """Complete the upload into the quarantine prefix instead of ``key``; return that key."""
        ...

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Discard an open upload and its parts; ``UploadNotFound`` if not open."""
        ...

    def list_incomplete_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]:
        """Open uploads whose key starts with ``prefix`` (for resume and reconciliation)."""
        ...


@runtime_checkable
class PartsInFlight(Protocol):
    """A store that can put a part while the one before it is still being put (S3).

    Optional beside :class:`BlobStore`: a caller that records parts in order keeps
    several going at once, yet never more than one stored part is left unrecorded.
    """

    def put_part_after(
        self,
        key: str,
        upload_id: str,
        number: int,
        blocks: Iterable[Block],
        previous: Callable[[], object],
    ) -> PartInfo:
        """``put_part``, but the part cannot be complete in the store before
        ``previous()`` returns (the caller's "part ``number - 1`` is recorded"); if it
        raises, nothing of this part is kept and the put fails."""
        ...


def completion_problems(
    given: builtins.list[PartInfo], stored: builtins.list[PartInfo]
) -> builtins.list[str]:
    """Every reason ``given`` is not exactly the stored parts 1..n (empty when it is)."""
    problems: builtins.list[str] = []
    numbers = [p.number for p in given]
    if numbers != list(range(1, len(given) + 1)):
        problems.append(f"分片编号须为 1..n 连续 / part numbers must be 1..n in order: {numbers}")
    by_number = {p.number: p for p in stored}
    for part in given:
        have = by_number.get(part.number)
        if have is None:
            problems.append(f"分片 {part.number} 未存储 / part {part.number} is not stored")
        elif (have.size, have.etag) != (part.size, part.etag):
            problems.append(
                f"分片 {part.number} 与存储不符 / part {part.number} differs from the stored one "
                f"(size {part.size} vs {have.size})"
            )
    missing = sorted(set(by_number) - set(numbers))
    if missing:
        problems.append(f"已存储的分片未列出 / stored parts not listed: {missing}")
    return problems
