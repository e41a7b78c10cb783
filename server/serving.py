"""How ``casetrail serve`` meets slow and hostile clients (design and figures: docs/serving.md).

gunicorn's ``gthread`` worker hands a connection to a request thread as soon as its
first byte arrives; the thread then blocks until the whole request head is in, so a
client trickling its headers at 1 byte/s holds a thread for as long as it likes.
:class:`CaseTrailWorker` keeps that stage in the worker's event loop instead:

- **Request heads** are gathered by the event loop, non-blocking, into a small buffer
  per connection; only a complete head goes to a thread. A head that is not complete
  :data:`HEADER_TIMEOUT` seconds after the connection (or its next keep-alive request)
  began is cut, with a JSON 408 when some of it arrived; one over
  :data:`HEADER_MAX_BYTES` gets a JSON 431. A connection waiting for its head costs a
  socket and at most that buffer, never a thread.
- **Request bodies** are read by the thread running the view, when the view reads them.
  :class:`SocketBody` cuts a body whose client is slower than a minimum rate: the time
  spent waiting for its bytes may not exceed :data:`BODY_GRACE` plus one second per
  :data:`BODY_MIN_RATE` bytes received (Apache ``mod_reqtimeout``'s
  ``body=10,MinRate=1024``). A legitimate 256 KB/s upload is far inside that; a
  1 byte/s trickle is cut after about 10 s. Every other read of the connection (gunicorn's
  own body reading, chunked bodies) gives up after :data:`BODY_IDLE` seconds without a
  byte (``SO_RCVTIMEO``).
- **Receive buffers** hold a whole photo (:func:`widen_receive_buffer`), so its client
  hands it over while the request's head is parsed, not 128 KiB at a time.
- gunicorn's own refusals of malformed or oversized requests answer in the API's one
  JSON error shape instead of gunicorn's HTML page.
- An early answer that leaves more of the body unread than gunicorn drains (64 KiB)
  carries ``Connection: close`` (see :class:`SocketBodyMiddleware`), so a keep-alive
  client reads the answer and reconnects instead of meeting EOF on its next request.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import io
import json
import re
import socket
import struct
import time
from collections.abc import Callable, Iterable
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any

import gunicorn
from gunicorn.http import errors as http_errors
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import ThreadWorker

HEADER_TIMEOUT = 10.0
"""Seconds a request head (request line and headers) may take to arrive in full."""

HEADER_MAX_BYTES = 64 * 1024
"""Largest request head gathered before the thread parses it (gunicorn's own limits apply
inside it: request line 8190 bytes, a header field 32 KiB, 100 fields)."""

BODY_GRACE = 10.0
"""Seconds of waiting for body bytes every request body is allowed, however slow."""

BODY_MIN_RATE = 1024
"""Bytes per second a body must average, past :data:`BODY_GRACE`, not to be cut."""

BODY_IDLE = 10.0
"""Seconds any other read of a request waits for its next byte (``SO_RCVTIMEO``)."""

BODY_SLICE = 1.0
"""How often :class:`SocketBody` checks the minimum rate while a client is silent."""

DRAIN_MAX = 64 * 1024
"""What gunicorn drains of an unread body before reusing a connection (its own cap)."""

DRAIN_BEFORE_ANSWER = 1024 * 1024
"""Unread body an early answer still reads and discards (at the minimum rate), so the
client that sends its whole body before reading gets the answer on a live connection."""

DEFAULT_THREADS = 64
"""Request threads per worker: bodies being read, requests being answered."""

RECEIVE_BUFFER = 4 << 20
"""Receive buffer each accepted TCP connection asks for (``SO_RCVBUF``), where the system
allows that much (:func:`widen_receive_buffer`)."""

_HEAD_END = re.compile(rb"\r?\n\r?\n")


def _set_receive_timeout(sock: socket.socket, seconds: float) -> None:
    """Kernel receive timeout of a blocking socket (Python's own timeout stays off)."""
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)


def _rmem_max() -> int:
    """The largest ``SO_RCVBUF`` the system grants (``net.core.rmem_max``); 0 if unknown."""
    try:
        return int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return 0


def widen_receive_buffer(sock: socket.socket, rmem_max: int | None = None) -> bool:
    """Give a TCP connection a :data:`RECEIVE_BUFFER` receive buffer, if the system grants
    that much (``rmem_max``: ``net.core.rmem_max``); whether it was set.

    A new connection starts with Linux's default (``tcp_rmem``: 128 KiB) and grows only as
    its reader keeps up, so a photo's client sent its first 128 KiB and then waited while
    the request's head was parsed and its token checked; the view's first 1 MiB block came
    0.74 ms after it began to read, the whole 3 MiB at 0.94 ms. With room for the whole
    photo the client hands it over meanwhile: 0.08 and 0.26 ms (P1 at one client: +7 %).
    The buffer is kernel memory used only by bytes received and not read yet; Linux's own
    growth would allow up to ``tcp_rmem``'s maximum. Where ``rmem_max`` is smaller the
    request would be cut down to it and end that growth instead, so the socket is left as
    it is. Not TCP (a Unix socket behind a proxy): left as it is.
    """
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    if (_rmem_max() if rmem_max is None else rmem_max) < RECEIVE_BUFFER:
        return False
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    return True


def freeze_loaded_heap() -> int:
    """Collect once, then leave every object alive now (the app's modules, models, the
    SQLAlchemy and botocore caches: ≈ 214,000 objects) out of later collections
    (``gc.freeze``); how many were frozen.

    A full collection walks every tracked object while it holds the GIL: in a photo load
    (B4, 900 photos at 8 clients) each worker ran one, of 180–190 ms — every request
    thread of the process stood still meanwhile. Frozen, the loaded objects are never
    walked again (nor freed: they live as long as the process anyway); the same load ran
    none.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def error_response(status: int, message: str, *, close: bool = True) -> bytes:
    """A complete HTTP/1.1 response in the API's one JSON error shape."""
    phrase = HTTPStatus(status).phrase
    body = json.dumps(
        {"code": status, "status": phrase, "message": message, "errors": {}}, ensure_ascii=False
    ).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Cache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    )
    return head.encode("latin-1") + body


REQUEST_TIMEOUT_MESSAGE = (
    f"请求头未在 {HEADER_TIMEOUT:g} 秒内发送完毕，连接已关闭 "
    f"(request head not complete within {HEADER_TIMEOUT:g} s; connection closed)"
)
HEAD_TOO_LARGE_MESSAGE = (
    "请求头过大 (request header fields too large: at most 32 KiB per field, "
    f"{HEADER_MAX_BYTES // 1024} KiB in all)"
)


def _client_error(exc: BaseException) -> tuple[int, str] | None:
    """Status and message for gunicorn's refusal of a malformed request, else ``None``."""
    if isinstance(exc, http_errors.LimitRequestLine):
        return 414, f"请求行过长 (request line too long: {exc})"
    if isinstance(exc, http_errors.LimitRequestHeaders):
        return 431, f"请求头过大 (request header fields too large: {exc})"
    if isinstance(exc, http_errors.UnsupportedTransferCoding):
        return 501, f"不支持的传输编码 (unsupported transfer coding: {exc})"
    if isinstance(exc, http_errors.ExpectationFailed):
        return 417, f"不支持的 Expect 请求头 (expectation failed: {exc})"
    not_the_client = (
        http_errors.InvalidResponseHeader,
        http_errors.InvalidResponseHeaderName,
        http_errors.ConfigurationProblem,
    )
    if isinstance(exc, http_errors.ParseException) and not isinstance(exc, not_the_client):
        return 400, f"请求格式错误 (malformed request: {exc})"
    return None


class _Head:
    """A request head being gathered by the event loop."""

    __slots__ = ("data", "deadline")

    def __init__(self) -> None:
        self.data = bytearray()
        self.deadline = time.monotonic() + HEADER_TIMEOUT


class CaseTrailWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's ``gthread`` worker, gathering request heads in its event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heads: dict[Any, _Head] = {}  # insertion order is deadline order
        self.rmem_max = _rmem_max()

    def load_wsgi(self) -> None:
        """Load the app, then move everything it made out of the collector's way."""
        super().load_wsgi()
        freeze_loaded_heap()

    def accept(self, listener: socket.socket) -> None:
        """A new connection waits for its request head in the event loop."""
        from gunicorn.workers.gthread import TConn

        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        widen_receive_buffer(client, self.rmem_max)
        self._await_head(TConn(self.cfg, client, address, listener.getsockname()))

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection's next request gathers its head in the event loop too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_head(conn)
        self._read_head(conn, client)

    def _await_head(self, conn: Any) -> None:
        import selectors

        conn.sock.setblocking(False)
        self.heads[conn] = _Head()
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_head, conn))

    def _read_head(self, conn: Any, _fileobj: Any) -> None:
        head = self.heads.get(conn)
        if head is None:
            return
        try:
            data = conn.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        start = max(0, len(head.data) - 3)
        head.data += data
        if _HEAD_END.search(head.data, start) is None:
            if len(head.data) > HEADER_MAX_BYTES:
                self._drop(conn, error_response(431, HEAD_TOO_LARGE_MESSAGE))
            return
        self.poller.unregister(conn.sock)
        del self.heads[conn]
        conn.sock.setblocking(True)
        conn.init()
        conn.parser.unreader.unread(bytes(head.data))
        conn.data_ready = True
        with contextlib.suppress(OSError):
            _set_receive_timeout(conn.sock, BODY_IDLE)
        self.enqueue_req(conn)

    def _drop(self, conn: Any, answer: bytes | None = None) -> None:
        """Close a connection still waiting for its head (``answer`` sent first, if any)."""
        self.heads.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        if answer:
            with contextlib.suppress(OSError):
                conn.sock.send(answer)
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self, force: bool = False) -> None:
        """Also cut request heads past :data:`HEADER_TIMEOUT` (all of them when stopping)."""
        super().murder_keepalived(force)
        now = time.monotonic()
        for conn, head in list(self.heads.items()):
            stopping = force or not self.alive
            if head.deadline > now and not stopping:
                break
            answer = None if stopping or not head.data else REQUEST_TIMEOUT_ANSWER
            self._drop(conn, answer)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's refusals in the API's JSON error shape; anything else as gunicorn does."""
        found = _client_error(exc)
        if found is None:
            super().handle_error(req, client, addr, exc)
            return
        status, message = found
        self.log.debug("refused a malformed request from %s: %s", addr, exc)
        with contextlib.suppress(OSError):
            client.sendall(error_response(status, message))


REQUEST_TIMEOUT_ANSWER = error_response(408, REQUEST_TIMEOUT_MESSAGE)


GUNICORN_BODY_LAYOUT = ((23, 0), (28, 0))
"""gunicorn versions whose body objects :class:`SocketBody` knows (checked by a test)."""


class BodyTooSlow(TimeoutError):
    """The client sent its body slower than :data:`BODY_MIN_RATE` past :data:`BODY_GRACE`."""


class SocketBody:
    """A gunicorn ``Content-Length`` request body with ``readinto`` straight from the socket.

    gunicorn's own ``read(n)`` gathers ``recv`` pieces in a ``BytesIO``, takes its value,
    slices it and pushes the rest back, at both its ``LengthReader`` and ``Body`` layers:
    about four copies of every byte under the GIL, a quarter of the server's time in a
    1 GiB ingest. ``readinto`` first hands over what gunicorn already buffered (never
    past the body's end: a pipelined next request stays in gunicorn's buffer), then
    ``recv_into`` the caller's buffer, and keeps ``LengthReader.length`` exact so
    gunicorn drains and reuses the connection as usual. ``read`` goes the same way, so
    every read of the body is held to the minimum rate (:class:`BodyTooSlow`). It relies
    on gunicorn's internal layout (``Body.buf``/``reader``,
    ``LengthReader.unreader``/``length``, ``SocketUnreader.buf``/``sock``), the same in
    23–27; :meth:`wrap` checks that layout and the version range
    :data:`GUNICORN_BODY_LAYOUT` and otherwise leaves the input alone, and
    ``tests/server/test_serve_body.py`` fails if the installed gunicorn no longer matches.
    """

    def __init__(self, body: Body) -> None:
        self._body = body
        self._reader: LengthReader = body.reader
        self._unreader: SocketUnreader = body.reader.unreader
        self._waited = 0.0
        self._received = 0
        self._sliced = False

    @classmethod
    def wrap(cls, wsgi_input: Any) -> Any:
        """``wsgi_input`` as a :class:`SocketBody` when its layout is known, else unchanged."""
        low, high = GUNICORN_BODY_LAYOUT
        if not low <= tuple(gunicorn.version_info[:2]) < high:
            return wsgi_input
        if type(wsgi_input) is not Body or type(wsgi_input.reader) is not LengthReader:
            return wsgi_input
        unreader: Any = getattr(wsgi_input.reader, "unreader", None)
        if type(unreader) is not SocketUnreader or not hasattr(unreader, "sock"):
            return wsgi_input
        if not isinstance(wsgi_input.buf, io.BytesIO) or not isinstance(unreader.buf, io.BytesIO):
            return wsgi_input
        return cls(wsgi_input)

    @property
    def unread(self) -> int:
        """Bytes of the body still on the socket."""
        return int(self._reader.length)

    @property
    def failed(self) -> bool:
        """A read of the body failed (or was cut): the connection is not reused."""
        return bool(self._body.failed)

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next body bytes; 0 at the end of the body (or EOF)."""
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        held = self._body.buf.getvalue()  # already counted off the length by gunicorn
        if held:
            n = min(len(view), len(held))
            view[:n] = held[:n]
            self._body.buf = io.BytesIO()
            self._body.buf.write(held[n:])
            return n
        want = min(len(view), self._reader.length)
        if want <= 0:
            return 0
        ahead = self._unreader.buf.getvalue()  # may run past the body: take only ours
        if ahead:
            n = min(want, len(ahead))
            view[:n] = ahead[:n]
            self._unreader.buf = io.BytesIO()
            self._unreader.buf.write(ahead[n:])
        else:
            n = self._receive(view[:want], want)
        self._reader.length -= n
        return n

    def _receive(self, view: memoryview, want: int) -> int:
        sock = self._unreader.sock
        plain = type(sock) is socket.socket
        # a plain blocking socket fills the whole buffer in one call (one GIL hand-back
        # per block, not one per TCP segment batch); its kernel receive timeout makes a
        # silent client return every BODY_SLICE seconds so the rate can be checked
        flags = socket.MSG_WAITALL if plain else 0
        if plain and not self._sliced and sock.gettimeout() is None:
            _set_receive_timeout(sock, BODY_SLICE)
            self._sliced = True
        while True:
            started = time.monotonic()
            n: int | None
            try:
                n = int(sock.recv_into(view, want, flags))
            except BlockingIOError:
                n = None  # a silent slice
            except Exception:
                self._body.failed = True  # the connection's position is unknown now
                raise
            self._waited += time.monotonic() - started
            self._received += n or 0
            if self._waited > BODY_GRACE + self._received / BODY_MIN_RATE:
                self._body.failed = True
                raise BodyTooSlow(
                    f"request body slower than {BODY_MIN_RATE} B/s after {BODY_GRACE:g} s"
                )
            if n is not None:
                return n

    def read(self, size: int | None = None) -> bytes:
        if size is None or size < 0:
            size = len(self._body.buf.getvalue()) + self._reader.length
        out = bytearray()
        block = bytearray(min(size, 1 << 20))  # grows with what arrives, not the declared size
        while len(out) < size:
            n = self.readinto(memoryview(block)[: size - len(out)])
            if not n:
                break
            out += memoryview(block)[:n]
        return bytes(out)

    def readline(self, size: int | None = None) -> bytes:
        return bytes(self._body.readline(size))

    def readlines(self, size: int | None = None) -> list[bytes]:
        return list(self._body.readlines(size))

    def __iter__(self) -> Any:
        return iter(self._body)


def _unread_beyond_drain(wsgi_input: Any) -> bool:
    """Whether more of the request body is left on the socket than will be drained."""
    if isinstance(wsgi_input, SocketBody):
        return wsgi_input.unread > DRAIN_BEFORE_ANSWER
    reader: Any = getattr(wsgi_input, "reader", None)
    if type(reader) is LengthReader:
        return int(reader.length) > DRAIN_MAX
    if type(reader) is ChunkedReader:  # how much is left is unknown until its last chunk
        return getattr(reader.parser, "gi_frame", None) is not None
    return False


def _drain_small(body: SocketBody) -> None:
    """Read and discard what is left of ``body`` (held to the minimum rate) when that is at
    most :data:`DRAIN_BEFORE_ANSWER`."""
    if body.failed or not 0 < body.unread <= DRAIN_BEFORE_ANSWER:
        return
    scratch = bytearray(64 * 1024)
    with contextlib.suppress(OSError):  # a failed read marks the body: gunicorn closes
        while body.readinto(scratch):
            pass


def _drain_chunked(body: Any) -> None:
    """Read and discard up to :data:`DRAIN_BEFORE_ANSWER` more of a refused chunked body,
    within the minimum rate, so the client can finish sending and read the answer (the
    connection still closes: where a chunked body ends is only known at its end)."""
    begun, drained = time.monotonic(), 0
    with contextlib.suppress(Exception):  # gunicorn reports a broken chunk in many ways
        while drained < DRAIN_BEFORE_ANSWER:
            piece = body.read(64 * 1024)
            if not piece:
                return
            drained += len(piece)
            if time.monotonic() - begun > BODY_GRACE + drained / BODY_MIN_RATE:
                return


class SocketBodyMiddleware:
    """WSGI middleware: :class:`SocketBody` inputs, and an honest connection after an
    answer given before the body was read (409, 410, 415, 422, 423, 404 on a PATCH).

    Up to :data:`DRAIN_BEFORE_ANSWER` of unread body is read and discarded before the
    answer goes out, so a client that sends its whole body first still gets the answer
    and may reuse the connection. More than that (or an unfinished chunked body) and the
    answer carries ``Connection: close``; gunicorn drops a hop-by-hop ``Connection``
    header set by the application, so the close is asked of gunicorn's own response
    object (``start_response.__self__``).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if "wsgi.input" in environ:
            environ["wsgi.input"] = SocketBody.wrap(environ["wsgi.input"])
        body = environ.get("wsgi.input")
        refused: list[bool] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            refused.append(status[:1] == "4")
            force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
            if force_close is not None and _unread_beyond_drain(body):
                force_close()
            return start_response(status, headers, exc_info)

        answer = self.app(environ, start)
        if refused and refused[-1]:
            if isinstance(body, SocketBody):
                _drain_small(body)
            elif type(getattr(body, "reader", None)) is ChunkedReader:
                _drain_chunked(body)
        return answer
