"""A real ``casetrail serve`` in a subprocess on a free 127.0.0.1 port, for end-to-end tests.

``ServerProcess(data_dir).start(init=True)`` migrates, makes the log key and the first
admin (its token is read from the output into ``admin_token``) and waits until
``/api/v1/health`` answers. ``kill()`` SIGKILLs the whole process group (gunicorn master
and workers — a crash, nothing flushed), ``start()`` again restarts it on the same port
and data. ``stop()`` ends it gracefully. Extra ``CASETRAIL_*`` settings go in ``env``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
TOKEN = re.compile(r"\bct_[A-Za-z0-9_\-]{16,}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One ``casetrail serve`` (SQLite + local store in ``data_dir`` unless ``env`` says otherwise)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        workers: int = 1,
        threads: int = 8,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.workers = workers
        self.threads = threads
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin_token: str | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.starts = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")}
        env["CASETRAIL_DATA_DIR"] = str(self.data_dir)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env.update(self.extra_env)
        return env

    def start(self, *, init: bool = False, timeout: float = 60.0) -> ServerProcess:
        """Start (or restart) the server and wait for ``/api/v1/health``."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(BIN / "casetrail"), "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.workers), "--threads", str(self.threads),
        ]  # fmt: skip
        if init:
            cmd.append("--init")
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            cmd, env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"casetrail serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            self.kill()
            raise RuntimeError(f"casetrail serve did not answer in {timeout}s:\n{self.log()}")
        if init and self.admin_token is None:
            found = TOKEN.search(self.log())
            if found:
                self.admin_token = found.group(0)
        return self

    def log(self) -> str:
        """Everything the server printed so far."""
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL the server and its workers (a crash: nothing is flushed or closed)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), killing after 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def admin(self) -> httpx.Client:
        """An httpx client for the API with the admin token."""
        assert self.admin_token, "start(init=True) first"
        return httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
