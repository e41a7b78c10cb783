"""Request-body readers: a tus body in fixed blocks, never read whole, cut at its declared end."""

from __future__ import annotations

import logging
import mmap
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from server.errors import (
    PayloadTooLarge,
)
from server.services.ingest.common import ClientGone, _past_length
from storage.port import BLOCK_SIZE, Block, ByteStream

log = logging.getLogger(__name__)


BODY_READ_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, ValueError)
"""What reading a request body raises when the client goes away or breaks the framing
(socket errors, a read on a closed input); the WSGI layer turns its server's own parse
errors into ``OSError`` (``server.api.uploads``). Anything else is a bug, not a client."""


_CLIENT_GONE = (
    "请求体提前结束（连接中断），已收到的字节已保存；请 HEAD 查询后续传 (the body ended early — "
    "connection lost; bytes received were kept: send HEAD and resume)"
)


def _body_blocks(
    body: ByteStream, limit: int, exact: bool, after_read: Callable[[], None] | None = None
) -> Iterator[Block]:
    """Blocks of at most 1 MiB from ``body``, at most ``limit`` bytes.

    ``exact``: ``limit`` is the declared Content-Length, so an early end means the client
    went away (:class:`ClientGone` after the blocks already read). Otherwise (a chunked
    body, ``limit`` = what is left of ``Upload-Length``) a body that goes on past
    ``limit`` is :class:`PayloadTooLarge` *before* its last block is handed on: the last
    part is never recorded, so the upload does not complete from a body that was too long.
    ``after_read`` runs after every read, however few bytes it brought (lease renewal).
    """
    readinto = getattr(body, "readinto", None)
    if readinto is not None:
        yield from _filled_blocks(readinto, limit, exact, after_read)
        return
    remaining = limit
    while remaining > 0:
        try:
            block = body.read(min(BLOCK_SIZE, remaining))
        except BODY_READ_ERRORS as exc:
            raise ClientGone(_CLIENT_GONE) from exc
        if after_read is not None:
            after_read()
        if not block:
            if exact:
                raise ClientGone(_CLIENT_GONE)
            return
        remaining -= len(block)
        if remaining == 0 and not exact and _has_more(body):
            raise PayloadTooLarge(_past_length(None))
        yield block


def _filled_blocks(
    readinto: Callable[[Any], int],
    limit: int,
    exact: bool,
    after_read: Callable[[], None] | None = None,
) -> Iterator[Block]:
    """Like :func:`_body_blocks`, for inputs with ``readinto`` (the server's socket body).

    Each block is received into a 1 MiB buffer of :data:`_BLOCK_BUFFERS` until full and
    handed on as a view of it, not copied (see :class:`_BlockBuffers`).
    """
    remaining = limit
    while remaining > 0:
        want = min(BLOCK_SIZE, remaining)
        filled = 0
        view = memoryview(_BLOCK_BUFFERS.take())
        while filled < want:
            try:
                n = readinto(view[filled:want])
            except BODY_READ_ERRORS as exc:
                raise ClientGone(_CLIENT_GONE) from exc
            if after_read is not None:
                after_read()
            if not n:
                break
            filled += n
        if filled:
            remaining -= filled
            if remaining == 0 and not exact and _has_more(_ReadintoBody(readinto)):
                raise PayloadTooLarge(_past_length(None))
            yield view[:filled]
        if filled < want:
            if exact:
                raise ClientGone(_CLIENT_GONE)
            return


class _BlockBuffers:
    """1 MiB receive buffers of streamed bodies, each reused once no block of it is alive.

    A block is handed on as a ``memoryview`` of its buffer; whoever still uses it (the
    hash worker, the store's writer thread, a part buffer held for S3, a spool) holds the
    view and so keeps the buffer referenced. :meth:`take` reuses only a buffer nothing
    refers to but this pool (CPython's reference count: the pool's list, the loop's name
    and ``getrefcount``'s argument), so a block is never overwritten while in use; when
    every kept buffer is busy it makes a new one (kept while fewer than ``keep``).

    Copying each block out instead (``bytes(view)``) held the GIL ≈ 0.13 ms per MiB
    (a quarter of the GIL's busy time on P2): a fresh 1 MiB object each time, whose
    pages fault in when written.
    """

    _UNUSED = 3

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._buffers: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def take(self) -> mmap.mmap:
        """A buffer of ``BLOCK_SIZE`` bytes no block refers to (contents undefined),
        page-aligned: the local store writes it to the disk as it is (``O_DIRECT``)."""
        with self._lock:
            for buffer in self._buffers:
                if sys.getrefcount(buffer) == self._UNUSED:
                    return buffer
            fresh = mmap.mmap(-1, BLOCK_SIZE)
            if len(self._buffers) < self._keep:
                self._buffers.append(fresh)
            return fresh


_BLOCK_BUFFERS = _BlockBuffers(keep=16)
"""About what two streaming PATCHes of one process have in flight (a block being received,
four queued to the hasher, three to the writer, one held by each thread's last item)."""


class _BufferPool:
    """Receive buffers kept for the next request body, at most ``keep`` bytes of them.

    A fresh multi-megabyte buffer is memory the process may never have touched (or has
    given back to the system): each of its pages faults in while the body is received,
    and on a virtual machine that costs several times the copy itself. Reusing the
    previous photo's buffer costs nothing; the pool holds about what the busiest moment
    had in flight, up to ``keep``.
    """

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._free: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def take(self, length: int) -> mmap.mmap:
        """A buffer of at least ``length`` bytes (contents undefined), page-aligned (a
        private anonymous mapping): the local store writes it to the disk as it is, with
        ``O_DIRECT``."""
        with self._lock:
            for i, buffer in enumerate(self._free):
                if length <= len(buffer) <= 2 * length + BLOCK_SIZE:
                    return self._free.pop(i)
        return mmap.mmap(-1, max(1, -(-length // BLOCK_SIZE)) * BLOCK_SIZE)

    def give_back(self, buffer: mmap.mmap) -> None:
        with self._lock:
            if sum(map(len, self._free)) + len(buffer) <= self._keep:
                self._free.append(buffer)


_RECEIVE_BUFFERS = _BufferPool(keep=32 * BLOCK_SIZE)


class WholeBody:
    """A small request body (a photo) received into one buffer of its declared length.

    :meth:`blocks` hands the bytes on as they arrive, as views of that buffer — nothing is
    copied, and the store writes and hashes one block while the next is received. The
    buffer stays whole, so after a refusal (a digest mismatch, an object already stored)
    the same bytes are at hand: :meth:`rest` receives what the store did not read and
    :attr:`received` is everything so far.
    """

    def __init__(self, body: ByteStream, length: int) -> None:
        self._body = body
        self._buffer = _RECEIVE_BUFFERS.take(length)
        self._view = memoryview(self._buffer)[:length]
        self._filled = 0

    def __enter__(self) -> WholeBody:
        return self

    def __exit__(self, *exc: object) -> None:
        """Give the buffer back for the next body; no view of it may be used after this."""
        _RECEIVE_BUFFERS.give_back(self._buffer)

    @property
    def received(self) -> memoryview:
        """The bytes received so far."""
        return self._view[: self._filled]

    def blocks(self) -> Iterator[memoryview]:
        """The rest of the body in blocks of at most 1 MiB; :class:`ClientGone` if it ends
        before its declared length."""
        view, length = self._view, len(self._view)
        readinto = getattr(self._body, "readinto", None)
        while self._filled < length:
            start = self._filled
            want = min(start + BLOCK_SIZE, length)
            while self._filled < want:
                try:
                    if readinto is not None:
                        n = readinto(view[self._filled : want])
                    else:
                        chunk = self._body.read(want - self._filled)
                        n = len(chunk)
                        view[self._filled : self._filled + n] = chunk
                except BODY_READ_ERRORS as exc:
                    raise ClientGone(_CLIENT_GONE) from exc
                if not n:
                    raise ClientGone(_CLIENT_GONE)
                self._filled += n
            yield view[start:want]

    def rest(self) -> memoryview:
        """Receive whatever is left of the body; the whole of it."""
        for _ in self.blocks():
            pass
        return self.received


def _capped(
    blocks: Iterator[Block], cap: int, too_large: Callable[[], Exception]
) -> Iterator[Block]:
    """``blocks`` while they add up to at most ``cap`` bytes; ``too_large()`` past it."""
    total = 0
    for block in blocks:
        total += len(block)
        if total > cap:
            raise too_large()
        yield block


def _has_more(body: ByteStream) -> bool:
    """Whether a chunked body goes on (a connection lost right at its end does not)."""
    try:
        return bool(body.read(1))
    except BODY_READ_ERRORS:
        return False


class _ReadintoBody:
    """``read(n)`` over a ``readinto`` (for the one-byte look past a chunked body's end)."""

    def __init__(self, readinto: Callable[[Any], int]) -> None:
        self._readinto = readinto

    def read(self, size: int = -1, /) -> bytes:
        scratch = bytearray(max(size, 0))
        return bytes(scratch[: self._readinto(memoryview(scratch))])


class _Peekable:
    """Blocks from an iterator with one-block look-ahead and push-back."""

    def __init__(self, blocks: Iterator[Block]) -> None:
        self._blocks = blocks
        self._head: list[Block] = []
        self.ended = False
        """The iterator has ended (seen by a :meth:`peek`): no block is left after the
        ones pushed back."""

    def peek(self) -> bool:
        """Whether another non-empty block is available."""
        if not self._head:
            block = next(self._blocks, b"")
            if not block:
                self.ended = True
                return False
            self._head.append(block)
        return True

    def take(self) -> Block:
        """The next block (``b""`` at the end)."""
        return self._head.pop() if self.peek() else b""

    def push_back(self, block: bytes) -> None:
        self._head.append(block)


def _part_blocks(source: _Peekable, limit: int) -> Iterator[Block]:
    """Whole blocks from ``source`` until they add up to at least ``limit`` bytes (one part,
    for stores without a maximum part size: it may end up to one block past ``limit``)."""
    left = limit
    while left > 0 and source.peek():
        block = source.take()
        left -= len(block)
        yield block
