"""``SocketBody``: gunicorn request bodies read with ``readinto`` straight from the socket.

These tests build gunicorn's own body objects over a real socket pair, so an upgrade of
gunicorn that changes the internal layout ``SocketBody`` relies on fails here, loudly,
instead of silently falling back to the slow path (or mis-reading a body).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import gunicorn
import pytest
from gunicorn.http.body import Body, EOFReader, LengthReader
from gunicorn.http.unreader import SocketUnreader

from server.cli.serve import GUNICORN_BODY_LAYOUT, SocketBody, SocketBodyMiddleware
from server.services.ingest import ClientGone, _body_blocks


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def _send(sock: socket.socket, data: bytes, close: bool = False) -> threading.Thread:
    def run() -> None:
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _body(server: socket.socket, length: int) -> tuple[Body, SocketUnreader]:
    unreader = SocketUnreader(server)
    return Body(LengthReader(unreader, length)), unreader


def test_the_installed_gunicorn_has_the_layout_socket_body_knows(pair) -> None:
    low, high = GUNICORN_BODY_LAYOUT
    assert low <= tuple(gunicorn.version_info[:2]) < high, (
        f"gunicorn {gunicorn.__version__} is outside {GUNICORN_BODY_LAYOUT}: check "
        "server.cli.serve.SocketBody against its body.py/unreader.py, then widen the range"
    )
    body, _ = _body(pair[1], 10)
    assert isinstance(SocketBody.wrap(body), SocketBody)


def test_other_inputs_are_left_alone(pair) -> None:
    chunked_like = Body(EOFReader(SocketUnreader(pair[1])))
    assert SocketBody.wrap(chunked_like) is chunked_like
    plain = object()
    assert SocketBody.wrap(plain) is plain


def test_readinto_gives_exactly_the_body_and_leaves_the_next_request(pair) -> None:
    client, server = pair
    payload = os.urandom(3 << 20)
    following = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    sender = _send(client, payload + following)
    body, unreader = _body(server, len(payload))
    wrapped = SocketBody(body)
    head = wrapped.read(1000)  # gunicorn's read first: its buffers hold read-ahead now
    blocks = list(_body_blocks(wrapped, len(payload) - len(head), exact=True))
    sender.join()
    assert head + b"".join(blocks) == payload
    assert all(len(b) == 1 << 20 for b in blocks[:-1])  # full blocks, not recv pieces
    assert body.reader.length == 0  # gunicorn sees the body as consumed: no drain
    assert wrapped.readinto(bytearray(10)) == 0
    assert unreader.read(len(following)) == following  # the pipelined request is intact


def test_a_body_cut_short_is_client_gone(pair) -> None:
    client, server = pair
    sender = _send(client, b"x" * 5000, close=True)
    wrapped = SocketBody(_body(server, 10_000)[0])
    with pytest.raises(ClientGone):
        list(_body_blocks(wrapped, 10_000, exact=True))
    sender.join()


def test_the_middleware_wraps_gunicorn_bodies_only(pair) -> None:
    seen = []

    def app(environ, start_response):
        seen.append(environ.get("wsgi.input"))
        return [b""]

    body, _ = _body(pair[1], 4)
    SocketBodyMiddleware(app)({"wsgi.input": body}, None)
    SocketBodyMiddleware(app)({}, None)
    assert isinstance(seen[0], SocketBody) and seen[1] is None
