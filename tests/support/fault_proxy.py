"""A small threaded TCP proxy on 127.0.0.1 that breaks an HTTP backend (S3) on demand.

``FaultProxy(target_port).start()`` forwards ``127.0.0.1:<proxy.port>`` to the target.
Faults, set at any time from the test:

* ``fail_next(n, status=503)`` — the next ``n`` new connections get an HTTP error
  response (S3 XML body) after their request head, then are closed;
* ``reset_next(n)`` — the next ``n`` new connections are reset (RST) at once;
* ``latency = 0.05`` — every forwarded chunk waits this long;
* ``cut_all()`` — reset every open connection now (a mid-request network failure).

Bounded: one daemon thread per direction per connection; ``stop()`` closes everything.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

_ERROR_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>injected by FaultProxy</Message></Error>"
)


class FaultProxy:
    """Forward TCP to ``127.0.0.1:target_port``, injecting faults (see module docstring)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.latency = 0.0
        self.injected = 0
        self._fail: list[int] = []  # statuses for the next connections
        self._resets = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._running = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._listener.listen(64)
        self._running = True
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()
        return self

    def stop(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut_all()

    def fail_next(self, n: int, status: int = 503) -> None:
        with self._lock:
            self._fail += [status] * n

    def reset_next(self, n: int) -> None:
        with self._lock:
            self._resets += n

    def cut_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _reset(sock)

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            status = self._fail.pop(0) if self._fail else None
            reset = status is None and self._resets > 0
            if reset:
                self._resets -= 1
            if status is not None or reset:
                self.injected += 1
        if reset:
            _reset(client)
            return
        if status is not None:
            self._answer_error(client, status)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
        except OSError:
            _reset(client)
            return
        with self._lock:
            self._open |= {client, upstream}
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _answer_error(self, client: socket.socket, status: int) -> None:
        try:
            client.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                block = client.recv(4096)
                if not block:
                    break
                head += block
            client.sendall(
                f"HTTP/1.1 {status} Injected Fault\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(_ERROR_BODY)}\r\nConnection: close\r\n\r\n".encode()
                + _ERROR_BODY
            )
        except OSError:
            pass
        finally:
            client.close()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                block = source.recv(65536)
                if not block:
                    break
                if self.latency:
                    time.sleep(self.latency)
                target.sendall(block)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._open -= {source, target}


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a broken network would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
