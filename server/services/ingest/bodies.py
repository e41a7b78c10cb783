"""Request-body readers: a tus body in fixed blocks, never read whole, cut at its declared end."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from server.errors import (
    PayloadTooLarge,
)
from server.services.ingest.common import ClientGone, _past_length
from storage.port import BLOCK_SIZE, ByteStream

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
) -> Iterator[bytes]:
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
) -> Iterator[bytes]:
    """Like :func:`_body_blocks`, for inputs with ``readinto`` (the server's socket body).

    Each block is received into one reused 1 MiB buffer until full and copied out once,
    instead of being assembled from smaller reads.
    """
    scratch = bytearray(BLOCK_SIZE)
    view = memoryview(scratch)
    remaining = limit
    while remaining > 0:
        want = min(BLOCK_SIZE, remaining)
        filled = 0
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
            yield bytes(view[:filled])
        if filled < want:
            if exact:
                raise ClientGone(_CLIENT_GONE)
            return


def _capped(
    blocks: Iterator[bytes], cap: int, too_large: Callable[[], Exception]
) -> Iterator[bytes]:
    """``blocks`` while they add up to at most ``cap`` bytes; ``too_large()`` past it."""
    total = 0
    for block in blocks:
        total += len(block)
        if total > cap:
            raise too_large()
        yield block


def _sha256_of(blocks: list[bytes]) -> str:
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(block)
    return digest.hexdigest()


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


class _Blocks:
    """A ``ByteStream`` over the blocks of one part buffer, handed on without copying."""

    def __init__(self, blocks: list[bytes]) -> None:
        self._blocks = blocks
        self._index = 0
        self._rest = b""

    def read(self, size: int = -1, /) -> bytes:
        block = self._rest
        if not block:
            if self._index >= len(self._blocks):
                return b""
            block = self._blocks[self._index]
            self._blocks[self._index] = b""  # let the part buffer shrink as it is sent
            self._index += 1
        if 0 <= size < len(block):
            self._rest = block[size:]
            return block[:size]
        self._rest = b""
        return block


class _Peekable:
    """Blocks from an iterator with one-block look-ahead and push-back."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._head: list[bytes] = []

    def peek(self) -> bool:
        """Whether another non-empty block is available."""
        if not self._head:
            block = next(self._blocks, b"")
            if not block:
                return False
            self._head.append(block)
        return True

    def take(self) -> bytes:
        """The next block (``b""`` at the end)."""
        return self._head.pop() if self.peek() else b""

    def push_back(self, block: bytes) -> None:
        self._head.append(block)


class _PartStream:
    """A ``ByteStream`` taking whole blocks from ``source`` until about ``limit`` bytes.

    Used with stores that have no maximum part size, so a part may end up to one block
    past ``limit``; blocks are split only to honour ``read(size)``.
    """

    def __init__(self, source: _Peekable, limit: int) -> None:
        self._source = source
        self._left = limit

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0 or not self._source.peek():
            return b""
        block = self._source.take()
        if 0 <= size < len(block):
            self._source.push_back(block[size:])
            block = block[:size]
        self._left -= len(block)
        return block
