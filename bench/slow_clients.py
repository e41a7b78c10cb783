"""B6b: slow and hostile clients against ``casetrail serve`` with its default settings.

``python -m bench.slow_clients [--profile quick|full]`` (also ``python -m bench --only B6b``).

Against one server (default workers and threads, SQLite + local store) at once:
``header`` connections trickle a request head at 1 byte/s, ``body`` connections send a
complete tus PATCH head and trickle its body at 1 byte/s, ``idle`` connections send
nothing, and ``uploads`` tus uploads of ``upload_bytes`` each run at 256 KB/s (what a
phone on a fair 3G/4G link sends). A probe asks ``/api/v1/health`` on a new connection
every 50 ms throughout. Measured: the probe's p99 (target < 100 ms, ratio against its
p99 before the load), whether every upload completed and verified (stored, SHA-256 as
announced), how long the server took to close each kind of slow connection (against
the limits in :mod:`server.serving`), and the server's peak RSS (all its processes).

The CI test ``tests/server/test_slow_clients.py`` runs :data:`PROFILES` ``"ci"``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import http.client
import os
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RATE = 256 * 1024
"""A legitimate slow upload: 256 KB/s."""


@dataclass(frozen=True)
class SlowProfile:
    name: str
    header: int
    body: int
    idle: int
    uploads: int
    upload_bytes: int


PROFILES = {
    "ci": SlowProfile("ci", header=60, body=20, idle=20, uploads=6, upload_bytes=1 << 20),
    "quick": SlowProfile("quick", header=150, body=50, idle=50, uploads=20, upload_bytes=1 << 20),
    "full": SlowProfile("full", header=150, body=50, idle=50, uploads=20, upload_bytes=4 << 20),
}


@dataclass
class SlowResult:
    """What one run measured."""

    profile: SlowProfile
    idle_p99_ms: float = 0.0
    probe_p99_ms: float = 0.0
    probe_max_ms: float = 0.0
    probes: int = 0
    probe_failures: int = 0
    uploads_ok: int = 0
    upload_problems: list[str] = field(default_factory=list)
    upload_seconds: list[float] = field(default_factory=list)
    closed_after: dict[str, list[float]] = field(default_factory=dict)
    still_open: dict[str, int] = field(default_factory=dict)
    idle_rss_mib: float = 0.0
    peak_rss_mib: float = 0.0
    timeline: list[tuple[float, int]] = field(default_factory=list)

    def closed_max(self, kind: str) -> float:
        times = self.closed_after.get(kind, [])
        return max(times) if times else 0.0


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def server_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its children (gunicorn master and workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class _Probe(threading.Thread):
    """``GET /api/v1/health`` on a new connection every 50 ms; latencies in seconds."""

    def __init__(self, port: int, pid: int) -> None:
        super().__init__(daemon=True)
        self.port, self.pid = port, pid
        self.times: list[float] = []
        self.when: list[float] = []
        self.failures = 0
        self.peak_rss = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            begun = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/api/v1/health")
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status != 200:
                    self.failures += 1
            except OSError:
                self.failures += 1
            self.times.append(time.perf_counter() - begun)
            self.when.append(time.monotonic())
            self.peak_rss = max(self.peak_rss, server_rss(self.pid))
            time.sleep(0.05)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    return int(lines[0].split()[1]), headers


async def _until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Wait until the server closes the connection (EOF or reset)."""
    try:
        while await reader.read(4096):
            pass
    except OSError:
        pass
    writer.close()


async def _trickle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, byte: bytes
) -> None:
    """Send ``head``, then ``byte`` once a second until the server answers or closes."""
    writer.write(head)
    try:
        while not reader.at_eof():
            writer.write(byte)
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(4096), 1.0) == b"":
                    break
            except TimeoutError:
                continue
    except OSError:
        pass
    writer.close()


class _Run:
    def __init__(self, port: int, token: str, limit: float) -> None:
        self.port, self.token, self.limit = port, token, limit
        self.auth = f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
        self.closed: dict[str, list[float]] = {"header": [], "body": [], "idle": []}
        self.open: dict[str, int] = {"header": 0, "body": 0, "idle": 0}

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def _timed(self, kind: str, work: Any) -> None:
        begun = time.monotonic()
        try:
            await asyncio.wait_for(work, self.limit)
        except TimeoutError:
            self.open[kind] += 1
            return
        self.closed[kind].append(time.monotonic() - begun)

    async def header(self, n: int) -> None:
        reader, writer = await self._connect()
        head = b"GET /api/v1/health HTTP/1.1\r\nHost: casetrail\r\nX-Slow: "
        await self._timed("header", _trickle(reader, writer, head, b"a"))

    async def idle(self, n: int) -> None:
        reader, writer = await self._connect()
        await self._timed("idle", _until_closed(reader, writer))

    async def create(self, evidence_id: str, length: int) -> str:
        reader, writer = await self._connect()
        writer.write(
            (
                f"POST /api/v1/uploads HTTP/1.1\r\nHost: casetrail\r\n{self.auth}"
                f"Upload-Length: {length}\r\nUpload-Metadata: evidence_id {_b64(evidence_id)}\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n"
            ).encode()
        )
        status, headers = await _read_answer(reader)
        writer.close()
        assert status == 201, status
        return urlsplit(headers["location"]).path

    def _patch_head(self, path: str, length: int) -> bytes:
        return (
            f"PATCH {path} HTTP/1.1\r\nHost: casetrail\r\n{self.auth}Upload-Offset: 0\r\n"
            "Content-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()

    async def body(self, evidence_id: str, length: int) -> None:
        path = await self.create(evidence_id, length)
        reader, writer = await self._connect()
        await self._timed("body", _trickle(reader, writer, self._patch_head(path, length), b"\0"))

    async def upload(self, evidence_id: str, data: bytes) -> tuple[int, float]:
        path = await self.create(evidence_id, len(data))
        reader, writer = await self._connect()
        begun = time.monotonic()
        writer.write(self._patch_head(path, len(data)))
        piece = RATE // 16
        for start in range(0, len(data), piece):  # 16 pieces a second: 256 KB/s
            writer.write(data[start : start + piece])
            await writer.drain()
            await asyncio.sleep(max(0.0, begun + (start + piece) / RATE - time.monotonic()))
        status, _ = await _read_answer(reader)
        writer.close()
        return status, time.monotonic() - begun


def run_slow_clients(profile: SlowProfile, tmp: Path, log: Any = print) -> SlowResult:
    """Start ``casetrail serve`` (defaults) in ``tmp`` and run ``profile`` against it."""
    from server.cli.serve import default_workers
    from server.serving import DEFAULT_THREADS
    from tests.server.e2e_support import field_device
    from tests.support.server_process import ServerProcess

    result = SlowResult(profile)
    server = ServerProcess(
        tmp / "var", workers=default_workers(), threads=DEFAULT_THREADS,
        env={"CASETRAIL_INSPECTION": "thread"},
    ).start(init=True)  # fmt: skip
    try:
        assert server.proc is not None
        device = field_device(server, case_no=f"B6b-{uuid.uuid4().hex[:8]}")
        payloads = [os.urandom(profile.upload_bytes) for _ in range(profile.uploads)]
        trickled = 1 << 20
        files = [
            (f"u{i}.bin", len(p), "sha256:" + hashlib.sha256(p).hexdigest(), "image/jpeg")
            for i, p in enumerate(payloads)
        ] + [
            (f"t{i}.bin", trickled, "sha256:" + hashlib.sha256(b"%d" % i).hexdigest(), "image/jpeg")
            for i in range(profile.body)
        ]
        evidence = [e["evidence_id"] for e in device.announce(files)]
        upload_ids, trickle_ids = evidence[: profile.uploads], evidence[profile.uploads :]
        probe = _Probe(server.port, server.proc.pid)
        result.idle_rss_mib = server_rss(server.proc.pid) / (1 << 20)
        probe.start()
        time.sleep(2)
        idle_times = list(probe.times)
        run = _Run(server.port, device.token, limit=60)

        async def everything() -> list[Any]:
            jobs: list[Any] = [run.header(i) for i in range(profile.header)]
            jobs += [run.idle(i) for i in range(profile.idle)]
            jobs += [run.body(e, trickled) for e in trickle_ids]
            jobs += [run.upload(e, p) for e, p in zip(upload_ids, payloads, strict=True)]
            return await asyncio.gather(*jobs, return_exceptions=True)

        begun = time.monotonic()
        # A loop of its own in a thread of its own: the calling thread may already run one
        # (Playwright's sync API keeps a loop in pytest's thread once a browser test ran).
        with ThreadPoolExecutor(1) as pool:
            outcomes = pool.submit(asyncio.run, everything()).result()
        log(f"B6b load over in {time.monotonic() - begun:.1f}s")
        probe.stop.set()
        probe.join()
        result.timeline = [
            (round(w - begun, 2), round(t * 1000))
            for w, t in zip(probe.when, probe.times, strict=True)
        ]
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                result.upload_problems.append(f"{type(outcome).__name__}: {outcome}")
        uploads = outcomes[-profile.uploads :] if profile.uploads else []
        with device.client() as api:
            for outcome, evidence_id, data in zip(uploads, upload_ids, payloads, strict=True):
                if isinstance(outcome, BaseException):
                    continue
                status, seconds = outcome
                stored = api.get(f"/evidence/{evidence_id}").json()
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
                if status == 204 and stored["status"] == "stored" and stored["sha256"] == digest:
                    result.uploads_ok += 1
                    result.upload_seconds.append(seconds)
                else:
                    result.upload_problems.append(f"{evidence_id}: {status} {stored['status']}")
        loaded = probe.times[len(idle_times) :]
        result.idle_p99_ms = _p99(idle_times) * 1000
        result.probe_p99_ms = _p99(loaded) * 1000
        result.probe_max_ms = max(loaded) * 1000
        result.probes = len(loaded)
        result.probe_failures = probe.failures
        result.closed_after = run.closed
        result.still_open = run.open
        result.peak_rss_mib = probe.peak_rss / (1 << 20)
    finally:
        server.stop()
    return result


def _p99(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0] if samples else 0.0
    return statistics.quantiles(samples, n=100)[98]


def bench_b6b(results: Any, profile_name: str) -> None:
    """Emit the B6b cell (``quick`` → 1 MiB uploads, ``full`` → 4 MiB)."""
    import tempfile

    from bench.common import log

    profile = PROFILES["full" if profile_name == "full" else "quick"]
    with tempfile.TemporaryDirectory() as tmp:
        r = run_slow_clients(profile, Path(tmp), log)
    results.emit(
        "B6b",
        f"{profile.header}/{profile.body}/{profile.idle} slow + {profile.uploads} at 256 KB/s",
        probe_p99_ms=round(r.probe_p99_ms, 2), idle_probe_p99_ms=round(r.idle_p99_ms, 2),
        probe_max_ms=round(r.probe_max_ms, 1), probe_failures=r.probe_failures,
        uploads_verified=f"{r.uploads_ok}/{profile.uploads}",
        header_closed_max_s=round(r.closed_max("header"), 1),
        body_closed_max_s=round(r.closed_max("body"), 1),
        idle_closed_max_s=round(r.closed_max("idle"), 1), still_open=r.still_open,
        idle_rss_mib=round(r.idle_rss_mib), peak_rss_mib=round(r.peak_rss_mib),
        target_ms=100, ratio=round(100 / max(r.probe_p99_ms, 0.001), 2), target=1.0,
    )  # fmt: skip


def main() -> None:
    from bench.common import PROFILES as RUN_PROFILES
    from bench.common import Results

    parser = argparse.ArgumentParser(prog="python -m bench.slow_clients", description=__doc__)
    parser.add_argument("--profile", choices=("quick", "full"), default="quick")
    args = parser.parse_args()
    results = Results(RUN_PROFILES[args.profile])
    bench_b6b(results, args.profile)
    print(results.summary())


if __name__ == "__main__":
    main()
