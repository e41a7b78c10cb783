"""Ingest benchmarks through a real ``casetrail serve``: B1, B3, B4, B5, B6, B9.

Each prints one JSON line per cell with a ratio against a baseline measured in the same
run, on the same machine, against the same store:

- B1  large-file tus ingest (one PATCH) → SeaweedFS vs boto3 ``upload_fileobj`` of the
      same bytes to the same bucket (16 MiB parts, 4 threads); target ≥ 0.85 (issue #19).
- B3  resume cost: 5 MiB PATCHes, connection cut inside the chunk after 40 %, HEAD, resume:
      bytes re-sent (≤ one chunk) and HEAD p99 (< 50 ms).
- B4  2–5 MiB photos (creation-with-upload) at 1/4/8 clients vs ``put_object`` at the same
      concurrency: throughput ≥ 0.6, p99 ≤ 2× direct; with the CPU ms per photo each party
      (client, server, store) spent on either path. In ABBA order (direct, ours, ours, direct,
      half the photos each); B1's repeats alternate which goes first: the store slows as it
      fills, and a fixed order charged that to whichever went second.
- B5  server RSS growth while ingesting size S vs 2·S: growth must not scale with size.
- B6  4 uploads throttled to 256 KB/s + a health probe: probe p99 < 50 ms.
- B9  local-store ingest through the server vs write + fsync of the same bytes (each after
      ``os.sync()``, going first as often as the other); target ≥ 0.85 (issue #19).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import (
    MiB,
    Profile,
    Results,
    best_of,
    cpu_seconds,
    log,
    mb_per_s,
    process_tree,
    ratio,
)

CHUNK = 5 * MiB
_BLOCK = os.urandom(4 * MiB)


class Payload:
    """Unique bytes of ``size`` (an 16-byte nonce, then a repeated random block)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.nonce = uuid.uuid4().bytes
        digest = hashlib.sha256()
        for block in self.blocks():
            digest.update(block)
        self.sha256 = "sha256:" + digest.hexdigest()

    def blocks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        end = self.size if end is None else end
        pos = 0
        head = self.nonce + _BLOCK
        while pos < end:
            block = head if pos == 0 else _BLOCK
            take = block[: max(0, end - pos)]
            if pos + len(take) > start:
                yield take[max(0, start - pos) :]
            pos += len(take)

    def stream(self, start: int = 0, end: int | None = None) -> Any:
        return _IterStream(self.blocks(start, end))


class _IterStream:
    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes, short only at the end (boto3 takes a short read as EOF)."""
        out: list[bytes] = []
        want = size
        while want != 0:
            block = self._rest or next(self._blocks, b"")
            if not block:
                break
            if 0 <= want < len(block):
                self._rest = block[want:]
                block = block[:want]
            else:
                self._rest = b""
            out.append(block)
            if want > 0:
                want -= len(block)
        return out[0] if len(out) == 1 else b"".join(out)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Uploader:
    """tus over ``http.client`` with 1 MiB send blocks (no client-side copies)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}

    def _conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=600, blocksize=MiB)

    def create(self, evidence_id: str, length: int, body: Any = None) -> tuple[int, str]:
        conn = self._conn()
        headers = {
            **self.headers,
            "Upload-Length": str(length),
            "Upload-Metadata": "evidence_id " + _b64(evidence_id),
        }
        if body is not None:
            headers["Content-Type"] = "application/offset+octet-stream"
            headers["Content-Length"] = str(length)
        conn.request("POST", "/api/v1/uploads", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 201, response.status
        return int(response.headers["Upload-Offset"]), response.headers["Location"]

    def patch(self, location: str, offset: int, body: Any, length: int) -> int:
        conn = self._conn()
        conn.request(
            "PATCH",
            _path(location),
            body=body,
            headers={
                **self.headers,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(length),
            },
        )
        response = conn.getresponse()
        data = response.read()
        conn.close()
        assert response.status == 204, (response.status, data[:300])
        return int(response.headers["Upload-Offset"])

    def head(self, location: str) -> int:
        conn = self._conn()
        conn.request("HEAD", _path(location), headers=self.headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        return int(response.headers["Upload-Offset"])

    def cut_patch(self, location: str, offset: int, payload: Payload, send: int) -> None:
        """Start a 5 MiB PATCH, send ``send`` bytes, then drop the connection."""
        sock = socket.create_connection(("127.0.0.1", self.port))
        head = (
            f"PATCH {_path(location)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            + f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {CHUNK}\r\n\r\n"
        )
        sock.sendall(head.encode())
        for block in payload.blocks(offset, offset + send):
            sock.sendall(block)
        time.sleep(0.3)
        sock.close()


def _path(location: str) -> str:
    return "/" + location.split("://", 1)[1].split("/", 1)[1]


def _start(tmp: Path, env: dict[str, str] | None = None, workers: int = 2) -> Any:
    from tests.support.server_process import ServerProcess

    return ServerProcess(
        tmp / "var", workers=workers, env={"CASETRAIL_INSPECTION": "worker", **(env or {})}
    ).start(init=True)


def _announce(server: Any, payloads: list[Payload]) -> tuple[str, list[str]]:
    from tests.server.e2e_support import field_device

    device = field_device(server, case_no=f"BENCH-{uuid.uuid4().hex[:8]}")
    files = [
        (f"f{i}.bin", p.size, p.sha256, "application/octet-stream") for i, p in enumerate(payloads)
    ]
    ids = [e["evidence_id"] for e in device.announce(files)]
    return device.token, ids


def _s3_env(seaweedfs: Any) -> tuple[dict[str, str], str, Any]:
    import boto3
    from botocore.config import Config

    from tests.server.e2e_support import s3_env
    from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

    env = s3_env(seaweedfs)
    bucket = env["CASETRAIL_STORAGE_URL"].split("//", 1)[1].split("/", 1)[0]
    client = boto3.client(
        "s3",
        endpoint_url=seaweedfs.endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=16,
        ),
    )
    return env, bucket, client


# ------------------------------------------------------------------------------- B1


def bench_b1(results: Results, profile: Profile, seaweedfs: Any) -> None:
    from boto3.s3.transfer import TransferConfig

    size = profile.ingest_bytes
    env, bucket, client = _s3_env(seaweedfs)
    with tempfile.TemporaryDirectory() as tmp:
        server = _start(Path(tmp), env)
        try:
            for streams in (1, 2):
                payloads = [Payload(size) for _ in range(streams * profile.repeats)]
                token, ids = _announce(server, payloads)
                up = Uploader(server.port, token)
                direct_t, tus_t = [], []
                for r in range(profile.repeats):
                    batch = list(
                        zip(
                            payloads[r * streams : (r + 1) * streams],
                            ids[r * streams : (r + 1) * streams],
                            strict=True,
                        )
                    )
                    cfg = TransferConfig(multipart_chunksize=16 * MiB, max_concurrency=4)

                    def direct(p: Payload, cfg: Any = cfg) -> None:
                        client.upload_fileobj(
                            p.stream(), bucket, f"direct/{uuid.uuid4().hex}", Config=cfg
                        )

                    def via_tus(item: tuple[Payload, str], up: Uploader = up) -> None:
                        p, evidence_id = item
                        _, location = up.create(evidence_id, p.size)
                        assert up.patch(location, 0, p.stream(), p.size) == p.size

                    # each goes first as often as the other: the store slows as it fills
                    # (see B4), and its write-back of the one before runs into the next
                    turns = [(direct_t, direct, [p for p, _ in batch]), (tus_t, via_tus, batch)]
                    for times, send, items in turns if r % 2 == 0 else reversed(turns):
                        times.append(_parallel(send, items))
                total = size * streams
                results.emit(
                    "B1", f"tus→S3 {size >> 20} MiB ×{streams}",
                    tus_mb_s=mb_per_s(total, min(tus_t)), direct_mb_s=mb_per_s(total, min(direct_t)),
                    ratio=ratio(min(direct_t), min(tus_t)), target=0.85,
                )  # fmt: skip
        finally:
            server.stop()


def _parallel(fn: Any, items: list[Any]) -> float:
    begun = time.perf_counter()
    with ThreadPoolExecutor(len(items)) as pool:
        list(pool.map(fn, items))
    return time.perf_counter() - begun


# ------------------------------------------------------------------------------- B3


def bench_b3(results: Results, profile: Profile, seaweedfs: Any) -> None:
    size = max(64 * MiB, profile.ingest_bytes // 4)
    env, _bucket, _client = _s3_env(seaweedfs)
    with tempfile.TemporaryDirectory() as tmp:
        server = _start(Path(tmp), env)
        try:
            payload = Payload(size)
            token, [evidence_id] = _announce(server, [payload])
            up = Uploader(server.port, token)
            _, location = up.create(evidence_id, size)
            offset = 0
            while offset < size * 0.4:
                n = min(CHUNK, size - offset)
                offset = up.patch(location, offset, payload.stream(offset, offset + n), n)
            sent_before_cut = offset + CHUNK // 2
            up.cut_patch(location, offset, payload, CHUNK // 2)
            after_cut = up.head(location)
            heads = []
            for _ in range(200):
                begun = time.perf_counter()
                resumed = up.head(location)
                heads.append(time.perf_counter() - begun)
            while resumed < size:
                n = min(CHUNK, size - resumed)
                resumed = up.patch(location, resumed, payload.stream(resumed, resumed + n), n)
            resent = sent_before_cut - after_cut
            p99 = statistics.quantiles(heads, n=100)[98] * 1000
            results.emit(
                "B3", f"cut at 40% of {size >> 20} MiB, 5 MiB chunks",
                bytes_resent=resent, chunk=CHUNK, head_p99_ms=round(p99, 2),
                ratio=round(1 - resent / CHUNK, 3), target=0.0,
            )  # fmt: skip
        finally:
            server.stop()


# ------------------------------------------------------------------------------- B4


def bench_b4(results: Results, profile: Profile, seaweedfs: Any) -> None:
    import random

    env, bucket, client = _s3_env(seaweedfs)
    per_client = 6 if profile.name == "quick" else 25
    rng = random.Random(4)
    with tempfile.TemporaryDirectory() as tmp:
        server = _start(Path(tmp), env)
        try:
            for clients in (1, 4, 8):
                n = clients * per_client
                photos = [Payload(rng.randint(2 * MiB, 5 * MiB)) for _ in range(n)]
                token, ids = _announce(server, photos)
                up = Uploader(server.port, token)
                bodies = {id(p): b"".join(p.blocks()) for p in photos}

                def direct(p: Payload, bodies: dict[int, bytes] = bodies) -> float:
                    begun = time.perf_counter()
                    client.put_object(
                        Bucket=bucket, Key=f"photo/{uuid.uuid4().hex}", Body=bodies[id(p)]
                    )
                    return time.perf_counter() - begun

                def via_tus(
                    item: tuple[Payload, str], up: Uploader = up, bodies: dict[int, bytes] = bodies
                ) -> float:
                    p, evidence_id = item
                    begun = time.perf_counter()
                    offset, _ = up.create(evidence_id, p.size, body=bodies[id(p)])
                    assert offset == p.size
                    return time.perf_counter() - begun

                total = sum(p.size for p in photos)
                # ABBA — direct, ours, ours, direct, half the photos each: the store costs
                # more CPU per photo as it fills (SeaweedFS: 24 → 30 ms over 1,800 photos),
                # and the path that always went second paid for that drift
                half = n // 2
                items = list(zip(photos, ids, strict=True))
                cpu = _PhotoCpu(n, server.proc.pid, seaweedfs.proc.pid)
                direct_runs = [_pool_latencies(direct, photos[:half], clients)]
                d_cpu = cpu.lap()
                tus_runs = [_pool_latencies(via_tus, items[:half], clients)]
                tus_runs.append(_pool_latencies(via_tus, items[half:], clients))
                t_cpu = cpu.lap()
                direct_runs.append(_pool_latencies(direct, photos[half:], clients))
                cpu_after = cpu.lap()
                d_cpu = {k: round(v + cpu_after[k], 1) for k, v in d_cpu.items()}
                (d_lat, d_t), (t_lat, t_t) = _joined(direct_runs), _joined(tus_runs)
                d99 = statistics.quantiles(d_lat, n=100)[98]
                t99 = statistics.quantiles(t_lat, n=100)[98]
                results.emit(
                    "B4", f"photos 2–5 MiB, {clients} clients",
                    tus_mb_s=mb_per_s(total, t_t), direct_mb_s=mb_per_s(total, d_t),
                    ratio=ratio(d_t, t_t), target=0.6,
                    p99_ms=round(t99 * 1000, 1), direct_p99_ms=round(d99 * 1000, 1),
                    p99_vs_direct=round(t99 / d99, 2),
                    cpu_ms_per_photo={"tus": t_cpu, "direct": d_cpu},
                )  # fmt: skip
        finally:
            server.stop()


class _PhotoCpu:
    """CPU ms per photo of each party since the last lap: this process (the clients), the
    server (its process tree) and the store. On two shared cores their sum per photo is
    what sets the throughput, so it tells which party a ratio is lost in (times are in
    clock ticks, 10 ms: a cell of a few photos is coarse)."""

    def __init__(self, photos: int, server_pid: int, store_pid: int) -> None:
        self.photos = photos
        self.pids = {"server": server_pid, "store": store_pid}
        self.last = self._now()

    def _now(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        now["client"] = time.process_time()
        return now

    def lap(self) -> dict[str, float]:
        now, before = self._now(), self.last
        self.last = now
        return {k: round((now[k] - before[k]) * 1000 / self.photos, 1) for k in now}


def _joined(runs: list[tuple[list[float], float]]) -> tuple[list[float], float]:
    """Latencies and elapsed seconds of several :func:`_pool_latencies` runs as one."""
    return [t for latencies, _ in runs for t in latencies], sum(elapsed for _, elapsed in runs)


def _pool_latencies(fn: Any, items: list[Any], workers: int) -> tuple[list[float], float]:
    begun = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        latencies = list(pool.map(fn, items))
    return latencies, time.perf_counter() - begun


# ------------------------------------------------------------------------------- B5


def _tree_rss(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total


def bench_b5(results: Results, profile: Profile, seaweedfs: Any) -> None:
    env, _bucket, _client = _s3_env(seaweedfs)
    small, large = profile.rss_sizes
    growth: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = _start(Path(tmp), env, workers=1)
        try:
            payloads = [Payload(small), Payload(large)]
            token, ids = _announce(server, payloads)
            up = Uploader(server.port, token)
            idle = _tree_rss(server.proc.pid)
            for p, evidence_id in zip(payloads, ids, strict=True):
                peak = idle
                stop = threading.Event()

                def sample(stop: threading.Event = stop) -> None:
                    nonlocal peak
                    while not stop.wait(0.02):
                        peak = max(peak, _tree_rss(server.proc.pid))

                sampler = threading.Thread(target=sample)
                sampler.start()
                _, location = up.create(evidence_id, p.size)
                up.patch(location, 0, p.stream(), p.size)
                stop.set()
                sampler.join()
                growth[p.size] = peak - idle
        finally:
            server.stop()
    g_small, g_large = growth[small], growth[large]
    results.emit(
        "B5", f"server RSS growth {small >> 20} vs {large >> 20} MiB",
        idle_mib=round(idle / MiB, 1), growth_small_mib=round(g_small / MiB, 1),
        growth_large_mib=round(g_large / MiB, 1),
        ratio=round(max(g_small, MiB) / max(g_large, MiB), 3), target=0.8,
    )  # fmt: skip


# ------------------------------------------------------------------------------- B6


def bench_b6(results: Results, profile: Profile) -> None:
    seconds = 6 if profile.name == "quick" else 30
    rate = 256 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        server = _start(Path(tmp))
        try:
            payloads = [Payload(rate * (seconds + 4)) for _ in range(4)]
            token, ids = _announce(server, payloads)
            up = Uploader(server.port, token)

            def probe(duration: float) -> list[float]:
                out = []
                end = time.monotonic() + duration
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                while time.monotonic() < end:
                    begun = time.perf_counter()
                    conn.request("GET", "/api/v1/health")
                    conn.getresponse().read()
                    out.append(time.perf_counter() - begun)
                    time.sleep(0.02)
                conn.close()
                return out

            baseline = probe(3)
            stop = threading.Event()

            def slow_upload(item: tuple[Payload, str]) -> None:
                p, evidence_id = item
                _, location = up.create(evidence_id, p.size)
                up.patch(location, 0, _Throttled(p.stream(), rate, stop), p.size)

            pool = ThreadPoolExecutor(4)
            futures = [
                pool.submit(_quiet, slow_upload, item) for item in zip(payloads, ids, strict=True)
            ]
            time.sleep(1)
            loaded = probe(seconds)
            stop.set()
            for f in futures:
                f.result()
            pool.shutdown()
        finally:
            server.stop()
    b99 = statistics.quantiles(baseline, n=100)[98] * 1000
    l99 = statistics.quantiles(loaded, n=100)[98] * 1000
    results.emit(
        "B6", "4 uploads at 256 KB/s + health probe",
        probe_p99_ms=round(l99, 2), idle_probe_p99_ms=round(b99, 2), target_ms=50,
        ratio=round(50 / l99, 2), target=1.0,
    )  # fmt: skip


def _quiet(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:  # the throttled bodies are cut short on purpose
        log(f"B6 upload ended: {type(exc).__name__}")


class _Throttled:
    def __init__(self, inner: Any, rate: int, stop: threading.Event) -> None:
        self.inner, self.rate, self.stop = inner, rate, stop

    def read(self, size: int = -1) -> bytes:
        if self.stop.is_set():
            raise ConnectionAbortedError("benchmark over")
        block = self.inner.read(min(size if size > 0 else 65536, 65536))
        time.sleep(len(block) / self.rate)
        return block


# ------------------------------------------------------------------------------- B9


def bench_b9(results: Results, profile: Profile) -> None:
    size = profile.ingest_bytes
    with tempfile.TemporaryDirectory() as tmp:
        server = _start(Path(tmp))
        try:
            payloads = [Payload(size) for _ in range(profile.repeats)]
            token, ids = _announce(server, payloads)
            up = Uploader(server.port, token)
            plain_t: list[float] = []
            tus_t: list[float] = []

            def plain(p: Payload, _evidence_id: str) -> Path | None:
                """Write and fsync a new file; the file (deleted untimed)."""
                target = Path(tmp) / f"plain-{uuid.uuid4().hex}"
                with target.open("wb") as f:
                    for block in p.blocks():
                        f.write(block)
                    f.flush()
                    os.fsync(f.fileno())
                return target

            def ingest(p: Payload, evidence_id: str) -> Path | None:
                _, location = up.create(evidence_id, p.size)
                up.patch(location, 0, p.stream(), p.size)
                return None

            for r, (p, evidence_id) in enumerate(zip(payloads, ids, strict=True)):
                # each goes first as often as the other (the one before leaves its
                # write-back and, on a filesystem mounted with discard, a deleted file's trim)
                turns = [(plain_t, plain), (tus_t, ingest)]
                for times, write in turns if r % 2 == 0 else reversed(turns):
                    os.sync()
                    begun = time.perf_counter()
                    written = write(p, evidence_id)
                    times.append(time.perf_counter() - begun)
                    if written is not None:
                        written.unlink()
        finally:
            server.stop()
    # the ingest verifies one running SHA-256 of the whole file: it cannot beat one stream
    # hashing the same bytes on one core with nothing else to do (its ceiling here)
    sha256_t = best_of(profile.repeats, lambda: _sha256_stream(payloads[0]))
    results.emit(
        "B9", f"server ingest → local store {size >> 20} MiB",
        tus_mb_s=mb_per_s(size, min(tus_t)), plain_mb_s=mb_per_s(size, min(plain_t)),
        ratio=ratio(min(plain_t), min(tus_t)), target=0.85,
        sha256_mb_s=mb_per_s(size, sha256_t),
        ceiling=min(1.0, ratio(min(plain_t), sha256_t)),
    )  # fmt: skip


def _sha256_stream(payload: Payload) -> None:
    digest = hashlib.sha256()
    for block in payload.blocks():
        digest.update(block)
