"""A TCP proxy on 127.0.0.1 that counts (and optionally throttles) client→server bytes.

Put it between a client and ``casetrail serve`` to measure how many bytes a client
really sent (e.g. bytes re-sent after a resume) and to slow a link down so a test can
interrupt an upload half-way. When the upstream is down, connections are closed at
once, as a dead server would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from tests.support.server_process import free_port

BLOCK = 64 * 1024


class CountingProxy:
    """``CountingProxy(upstream_port, rate=bytes_per_s).start()``; read ``sent``."""

    def __init__(self, upstream_port: int, *, rate: float | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.rate = rate
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._hold: bytes | None = None
        self._release = threading.Event()
        self.holding = threading.Event()
        """Set while a request is held by :meth:`hold_next`."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CountingProxy:
        """Listen and forward in background threads."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop accepting (open connections end with their peers)."""
        self._stop.set()
        if self._listener is not None:
            self._listener.close()

    def hold_next(self, method: bytes = b"PATCH ") -> None:
        """Hold the next request starting with ``method`` before it reaches the server.

        Lets a test act *between* two requests (e.g. crash the server when no request is
        inside it); :attr:`holding` is set once one is held; :meth:`release` forwards it
        (or fails it, if the server is gone meanwhile).
        """
        self._release.clear()
        self.holding.clear()
        self._hold = method

    def release(self) -> None:
        """Forward the held request (see :meth:`hold_next`)."""
        self._hold = None
        self._release.set()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
        self._pipe(client, upstream, True)

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while True:
                data = src.recv(BLOCK)
                if not data:
                    break
                if upstream and self._hold is not None and data.startswith(self._hold):
                    self.holding.set()
                    self._release.wait(60)
                if upstream:
                    with self._lock:
                        self.sent += len(data)
                    if self.rate:
                        time.sleep(len(data) / self.rate)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
