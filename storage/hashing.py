"""Streaming helpers shared by the adapters: fixed blocks, size limits, two digests.

SHA-256 and SHA-512 run in a worker thread (``hashlib`` releases the GIL on large
blocks), so hashing overlaps with writing instead of adding to it.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator

from storage.errors import TooLarge
from storage.port import BLOCK_SIZE, ByteStream


def format_digest(algorithm: str, hexdigest: str) -> str:
    """``sha256:<hex>`` style digest string."""
    return f"{algorithm}:{hexdigest}"


def read_blocks(
    stream: ByteStream, *, limit: int | None = None, key: str | None = None
) -> Iterator[bytes]:
    """Blocks of at most ``BLOCK_SIZE`` from ``stream``; ``TooLarge`` once past ``limit``."""
    total = 0
    while True:
        block = stream.read(BLOCK_SIZE)
        if not block:
            return
        total += len(block)
        if limit is not None and total > limit:
            raise TooLarge(
                f"数据超过大小上限 {limit} 字节，已丢弃 / stream exceeds the {limit}-byte limit; "
                "nothing was kept",
                key=key,
                limit=limit,
            )
        yield bytes(block)


_STOP = object()


class Digester:
    """SHA-256 + SHA-512 of a byte sequence, fed block by block, hashed in a thread.

    Use as a context manager around each feeding session; the hash state persists across
    sessions (e.g. across the parts of one upload in one process).
    """

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._sha512 = hashlib.sha512()
        self.size = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=8)
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while True:
            block = self._queue.get()
            if block is _STOP:
                return
            assert isinstance(block, bytes)
            self._sha256.update(block)
            self._sha512.update(block)

    def __enter__(self) -> Digester:
        self._thread = threading.Thread(target=self._run, name="digester", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._queue.put(_STOP)
        assert self._thread is not None
        self._thread.join()
        self._thread = None

    def update(self, block: bytes) -> None:
        """Queue ``block`` for hashing (blocks at most 8 blocks ahead: bounded memory)."""
        self.size += len(block)
        if self._thread is None:
            self._sha256.update(block)
            self._sha512.update(block)
        else:
            self._queue.put(block)

    @property
    def sha256(self) -> str:
        """``sha256:<hex>`` of everything fed so far (call outside a feeding session)."""
        return format_digest("sha256", self._sha256.hexdigest())

    @property
    def sha512(self) -> str:
        """``sha512:<hex>`` of everything fed so far (call outside a feeding session)."""
        return format_digest("sha512", self._sha512.hexdigest())


class RunningDigests:
    """Per-upload digests kept in memory while one process puts the parts in order.

    When another process resumed the upload (or a part was replaced), the state is
    unknown and the adapter re-derives the digests from the stored bytes.
    """

    def __init__(self) -> None:
        self._by_upload: dict[str, tuple[int, Digester]] = {}
        self._lock = threading.Lock()

    def for_part(self, upload_id: str, number: int) -> Digester | None:
        """The digester to feed part ``number`` into (fresh for part 1), or None if unknown."""
        with self._lock:
            count, digester = self._by_upload.pop(upload_id, (0, None))
        if number == 1:
            return Digester()
        return digester if count == number - 1 else None

    def keep(self, upload_id: str, number: int, digester: Digester) -> None:
        """Record that parts 1..``number`` have been fed to ``digester``."""
        with self._lock:
            self._by_upload[upload_id] = (number, digester)

    def complete(self, upload_id: str, parts: int) -> Digester | None:
        """The digests of all ``parts`` parts, if this process fed every one of them."""
        with self._lock:
            count, digester = self._by_upload.get(upload_id, (-1, None))
        return digester if count == parts else None

    def drop(self, upload_id: str) -> None:
        """Forget an upload (completed, aborted or quarantined)."""
        with self._lock:
            self._by_upload.pop(upload_id, None)
