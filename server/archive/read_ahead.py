"""Read-ahead for streaming a bag: a payload file's blocks fetched by a thread of their own.

While the export hashes and writes one payload file, the store keeps sending: the file's
blocks are read into a bounded queue by a reader thread (socket reads release the GIL),
and the *next* payload file's GET starts before the current one ends, so the store is
never left waiting for this process between files. Memory is bounded: at most
``AHEAD_BLOCKS`` blocks (≤ 1 MiB each) wait per reader, and a bag stream has at most two
readers (the file being streamed and the next one).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

AHEAD_BLOCKS = 8
"""Blocks a reader may hold that the export has not taken yet."""

_END = object()


class ReadAhead:
    """The blocks of ``open()``, opened and read ahead by a daemon thread.

    Iterate once; the source's errors (``NotFound``, ``Unavailable``, also from opening)
    are raised where the blocks stop, not before. :meth:`close` stops the reader and closes the source when the
    export ends early (a fixity failure, a client that went away).
    """

    def __init__(
        self, open_blocks: Callable[[], Iterator[bytes]], name: str = "export-read-ahead"
    ) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=AHEAD_BLOCKS)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(open_blocks,), name=name, daemon=True
        )
        self._thread.start()

    def _run(self, open_blocks: Callable[[], Iterator[bytes]]) -> None:
        blocks: Iterator[bytes] = iter(())
        try:
            blocks = open_blocks()
            for block in blocks:
                if not self._put(block):
                    return
        except BaseException as exc:  # handed to the consumer, raised where it reads
            self._error = exc
        finally:
            close = getattr(blocks, "close", None)
            if close is not None:
                close()  # the GET's connection goes back (or is dropped) here
            self._put(_END)

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless the consumer stopped; whether it was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def __iter__(self) -> Iterator[bytes]:
        while (item := self._queue.get()) is not _END:
            yield item  # type: ignore[misc]
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop the reader (what it read is dropped) and wait for it."""
        self._stop.set()
        while True:  # unblock a reader waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()
