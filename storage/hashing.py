"""Streaming helpers shared by the adapters: fixed blocks, size limits, two digests.

:class:`Digester` hashes SHA-256 and SHA-512 of whole-object writes and fixity re-reads.
Inside a feeding session (``with digester:``) each algorithm runs in its own worker
thread once blocks are large (``hashlib`` releases the GIL above 2 KiB), so on two cores
the slower SHA-512 sets the pace and SHA-256 and the caller's I/O run beside it. Small
inputs (notes, thumbnails) are hashed inline: starting threads would cost more.

:func:`digest_blocks` / :func:`digest_object` are *the* way to read bytes and digest them
(ingest re-reads, inspection, export, fixity and the adapters' own re-hashes use them).

Resumable-upload parts are not hashed by the store: the caller keeps its own running
SHA-256 (the ingest layer saves it across processes) and hands it to
``complete_upload(..., verified_sha256=...)``.
"""

from __future__ import annotations

import _thread
import collections
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import blake3 as _blake3

from storage.errors import TooLarge
from storage.port import BLOCK_SIZE, BlobStore, Block, ByteStream

_THREADED_BLOCK = 256 << 10
"""Blocks at least this large start the worker threads (smaller ones hash inline)."""

_QUEUE_BLOCKS = 4
"""Blocks a worker may lag behind the feeder: bounded memory (blocks are shared, not copied)."""


def format_digest(algorithm: str, hexdigest: str) -> str:
    """``sha256:<hex>`` style digest string."""
    return f"{algorithm}:{hexdigest}"


def read_blocks(
    stream: ByteStream, *, limit: int | None = None, key: str | None = None
) -> Iterator[bytes]:
    """Blocks of at most ``BLOCK_SIZE`` from ``stream`` (a file, a response body) — what
    the store's ``write`` and ``put_part`` take; ``TooLarge`` once past ``limit``."""
    total = 0
    while block := stream.read(BLOCK_SIZE):
        total += len(block)
        if limit is not None and total > limit:
            raise _too_large(limit, key)
        yield block if type(block) is bytes else bytes(block)


def limited(
    blocks: Iterable[Block], *, limit: int | None = None, key: str | None = None
) -> Iterator[Block]:
    """``blocks`` as they come (bytes-like: a ``memoryview`` is handed on, not copied;
    empty ones are skipped); ``TooLarge`` once they add up to more than ``limit``.

    A stream is refused (``TypeError``): iterating a file yields its *lines*; pass
    :func:`read_blocks` of it instead."""
    if hasattr(blocks, "read"):
        raise TypeError("a stream is not blocks: pass storage.hashing.read_blocks(stream)")
    total = 0
    for block in blocks:
        if not block:
            continue
        total += len(block)
        if limit is not None and total > limit:
            raise _too_large(limit, key)
        yield block


def _too_large(limit: int, key: str | None) -> TooLarge:
    return TooLarge(
        f"数据超过大小上限 {limit} 字节，已丢弃 / stream exceeds the {limit}-byte limit; "
        "nothing was kept",
        key=key,
        limit=limit,
    )


class _Hasher(Protocol):
    def update(self, block: Any, /) -> object: ...


class _Lane:
    """A thread that runs the hash updates queued to it, one session (one
    :class:`HashWorker`) at a time; idle lanes wait in :data:`_IDLE` for the next one.

    A photo's write hashes in a worker thread; starting and joining a thread for each
    cost 0.2 ms of a photo's ~10 ms of CPU here, handing it to a waiting one a tenth.
    The hand-over is C all the way (``SimpleQueue``, plain locks): ``queue.Queue``'s
    conditions, in Python, were 5 % of a photo's time under the GIL.
    """

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="hasher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        get = self.queue.get
        while (item := get()) is not None:
            update, block, done, errors = item
            item = None
            try:
                update(block)
            except Exception as exc:  # the feeder raises it (settle); the lane lives on
                errors.append(exc)
            finally:
                # no reference to the block outlives the feeder being told it is hashed:
                # ingest receives into a buffer again only once nothing refers to it
                # (server.services.ingest.bodies._BlockBuffers)
                del block
                done.release()


_Item = tuple[Callable[[Block], object], Block, Any, list[Exception]]
"""A queued update: the hash's ``update``, the block, the lock released once it is hashed,
and where an error goes."""


_IDLE: list[_Lane] = []
"""Lanes waiting for a session (at most :data:`_IDLE_MAX`), this process's only."""

_IDLE_MAX = 8
_IDLE_LOCK = threading.Lock()


def _take_lane() -> _Lane:
    with _IDLE_LOCK:
        if _IDLE:
            return _IDLE.pop()
    return _Lane()


def _give_back(lane: _Lane) -> None:
    with _IDLE_LOCK:
        if len(_IDLE) < _IDLE_MAX:
            _IDLE.append(lane)
            return
    lane.queue.put(None)


def _forget_lanes() -> None:  # a forked child has none of the parent's threads
    _IDLE.clear()


os.register_at_fork(after_in_child=_forget_lanes)


class HashWorker:
    """One running hash fed block by block to a thread of its own while it runs — the one
    block worker (the :class:`Digester`'s algorithms, the ingest's resumable SHA-256, and
    the local store's writer, whose ``update`` writes the block).

    The feeding thread's reads and writes spend their time in system calls that release
    the GIL, and so does ``hashlib`` on large blocks: on two cores the two overlap. At most
    :data:`_QUEUE_BLOCKS` blocks are waiting or being hashed (they are not copied).
    """

    def __init__(self, hasher: _Hasher) -> None:
        self._update = hasher.update
        self._lane: _Lane | None = _take_lane()
        self._pending: collections.deque[Any] = collections.deque()
        self._errors: list[Exception] = []

    def update(self, block: Block) -> None:
        """Queue ``block``; wait first while :data:`_QUEUE_BLOCKS` are not hashed yet."""
        assert self._lane is not None, "update after close"
        done = _thread.allocate_lock()
        done.acquire()
        self._lane.queue.put((self._update, block, done, self._errors))
        pending = self._pending
        pending.append(done)
        if len(pending) > _QUEUE_BLOCKS:
            pending.popleft().acquire()

    def settle(self) -> None:
        """Wait until every block queued so far is hashed (an update's error is raised)."""
        pending = self._pending
        while pending:
            pending.popleft().acquire()
        if self._errors:
            raise self._errors[0]

    def close(self) -> None:
        """Hash what is queued, then let the thread go (to the next worker)."""
        lane, self._lane = self._lane, None
        if lane is not None:
            try:
                self.settle()
            finally:
                _give_back(lane)


class Digester:
    """SHA-256 (unless ``sha256=False``), SHA-512 (unless ``sha512=False``) and BLAKE3 (if
    ``blake3=True``) of a byte sequence, fed block by block.

    Use as a context manager around each feeding session so large inputs are hashed in
    worker threads; the digests are read after the session (the state persists across
    sessions). Outside a session ``update`` hashes inline.
    """

    def __init__(self, *, sha256: bool = True, sha512: bool = True, blake3: bool = False) -> None:
        self._sha256 = hashlib.sha256() if sha256 else None
        self._sha512 = hashlib.sha512() if sha512 else None
        self._blake3 = _blake3.blake3() if blake3 else None
        self.size = 0
        self._in_session = False
        self._workers: list[HashWorker] = []

    def __enter__(self) -> Digester:
        self._in_session = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._in_session = False
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.close()

    def _hashers(self) -> list[_Hasher]:
        return [h for h in (self._sha256, self._sha512, self._blake3) if h is not None]

    def update(self, block: Block) -> None:
        """Hash ``block`` (queued to the workers inside a session once blocks are large)."""
        self.size += len(block)
        if not self._workers:
            if not self._in_session or len(block) < _THREADED_BLOCK:
                for hasher in self._hashers():
                    hasher.update(block)
                return
            self._workers = [HashWorker(h) for h in self._hashers()]
        for worker in self._workers:
            worker.update(block)

    @property
    def sha256(self) -> str:
        """``sha256:<hex>`` of everything fed so far (call outside a feeding session)."""
        if self._sha256 is None:
            raise ValueError("made with sha256=False")
        return format_digest("sha256", self._sha256.hexdigest())

    @property
    def sha512(self) -> str | None:
        """``sha512:<hex>`` of everything fed so far, or None when made with ``sha512=False``."""
        if self._sha512 is None:
            return None
        return format_digest("sha512", self._sha512.hexdigest())

    @property
    def blake3(self) -> str | None:
        """``blake3:<hex>`` (256 bits) of everything fed so far, or None unless made with
        ``blake3=True``."""
        if self._blake3 is None:
            return None
        return format_digest("blake3", self._blake3.hexdigest())


def digest_blocks(
    blocks: Iterable[Block], *, sha512: bool = True, blake3: bool = False
) -> Digester:
    """Hash every block of ``blocks`` in one pass (worker threads for large blocks).

    The finished :class:`Digester`: ``size``, ``sha256``, (unless ``sha512=False``)
    ``sha512`` and (with ``blake3=True``) ``blake3``. Errors of the source (``NotFound``,
    ``Unavailable``) propagate.
    """
    digester = Digester(sha512=sha512, blake3=blake3)
    with digester:
        for block in blocks:
            digester.update(block)
    return digester


def digest_object(
    store: BlobStore,
    key: str,
    *,
    sha512: bool = True,
    blake3: bool = False,
    end: int | None = None,
) -> Digester:
    """Read the object at ``key`` once (up to ``end``) and digest it (:func:`digest_blocks`)."""
    return digest_blocks(store.open(key, 0, end), sha512=sha512, blake3=blake3)
