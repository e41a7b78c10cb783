"""Debian's nginx in front of ``casetrail serve`` processes, as ``deploy/nginx`` sets it up.

The site is rendered by ``deploy/nginx/render.sh`` (the operator's command) and included
from a small main configuration of this harness — the part Debian's
``/etc/nginx/nginx.conf`` plays on a server — with its own prefix, pid, error log and
temp paths, so an unprivileged foreground nginx runs on a free 127.0.0.1 port and is
stopped by its PID. The access log (``access.log``) names the upstream of every request.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.systemd_units import DEPLOY

RENDER = DEPLOY / "nginx" / "render.sh"
_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<uri>\S+) [^"]*" (?P<status>\d{3}) \d+ req=(?P<length>\d+) '
    r"upstream=(?P<upstream>.+?) ustatus="
)


class NginxError(RuntimeError):
    """nginx could not be configured or started (the message carries its log)."""


def find_nginx() -> str | None:
    """Debian's nginx binary (``/usr/sbin`` is not always on PATH)."""
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Request:
    """One line of the access log."""

    method: str
    uri: str
    status: int
    length: int  # request line, headers and body, bytes
    upstream: str  # "127.0.0.1:PORT" (several, comma-separated, when nginx tried more)

    @property
    def answered_by(self) -> str:
        """The upstream whose answer the client got (the last one nginx tried)."""
        return self.upstream.split(",")[-1].strip()


class Nginx:
    """Render, check (``nginx -t``) and run the CaseTrail site in front of ``upstreams``."""

    def __init__(self, upstreams: list[int], *, port: int | None = None) -> None:
        binary = find_nginx()
        if binary is None:
            raise NginxError("nginx not found (apt-get install nginx)")
        self.binary = binary
        self.upstreams = upstreams
        self.port = port or _free_port()
        self.base = Path(tempfile.mkdtemp(prefix="casetrail-nginx-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.base / "access.log"

    def render_site(self) -> str:
        """The site as ``deploy/nginx/render.sh`` renders it for these ports."""
        servers = " ".join(
            f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in self.upstreams
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NGINX_LISTEN": f"127.0.0.1:{self.port}",
            "NGINX_SERVER_NAME": "127.0.0.1",
            "NGINX_ACCESS_LOG": str(self.access_log),
            "CASETRAIL_UPSTREAMS": servers,
        }
        done = subprocess.run(
            ["sh", str(RENDER)], env=env, capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise NginxError(f"render.sh failed: {done.stderr}")
        return done.stdout

    def _write_config(self) -> Path:
        site = self.base / "casetrail.conf"
        site.write_text(self.render_site())
        temp = self.base / "temp"
        temp.mkdir(exist_ok=True)
        paths = "\n".join(
            f"    {name}_temp_path {temp / name};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # nginx started by root hands its workers to "nobody" unless told otherwise
        user = "user root;\n" if os.geteuid() == 0 else ""
        main = self.base / "nginx.conf"
        main.write_text(
            f"{user}worker_processes 1;\npid {self.base / 'nginx.pid'};\n"
            f"error_log {self.base / 'error.log'} info;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n{paths}\n    access_log off;\n    include {site};\n}}\n"
        )
        return main

    def _args(self, main: Path) -> list[str]:
        return [
            self.binary,
            "-p",
            str(self.base),
            "-c",
            str(main),
            "-e",
            str(self.base / "error.log"),
        ]

    def start(self, timeout: float = 20.0) -> Nginx:
        """``nginx -t`` the rendered configuration, then run it in the foreground."""
        main = self._write_config()
        checked = subprocess.run([*self._args(main), "-t"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise NginxError(f"nginx -t refused the configuration:\n{checked.stderr}")
        self.proc = subprocess.Popen(
            [*self._args(main), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NginxError(f"nginx exited {self.proc.returncode}:\n{self.error_log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return self
            time.sleep(0.1)
        self.stop()
        raise NginxError(f"nginx did not listen in {timeout}s:\n{self.error_log()}")

    def error_log(self) -> str:
        try:
            return (self.base / "error.log").read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def requests(self) -> list[Request]:
        """Every request of the access log, in order."""
        try:
            lines = self.access_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            m = _LINE.search(line)
            if m:
                out.append(
                    Request(
                        m["method"], m["uri"], int(m["status"]), int(m["length"]), m["upstream"]
                    )
                )
        return out

    def stop(self) -> None:
        """SIGQUIT (graceful), SIGKILL after 10 s; remove the prefix directory."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGQUIT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)
