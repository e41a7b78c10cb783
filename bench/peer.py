"""P1 — photos against the reference tus server, same client, same bytes, same run.

``@tus/server`` + ``@tus/file-store`` (and ``@tus/s3-store``, installed for P2) come from
npm into ``~/.cache/casetrail-bench/peer`` (``CASETRAIL_BENCH_PEER_DIR``) on first use.
The peer neither hashes, verifies nor records custody; CaseTrail does all three before
it answers. Both servers get the same 3 MiB photos as tus creation-with-upload POSTs
from one Python client (``http.client``, 1 MiB send blocks) at 1, 4 and 8 clients;
cells are interleaved — CaseTrail, peer, CaseTrail, peer … — over ``runs`` rounds, so
a load change on a shared machine hits both. Printed per cell: files/s and p99 of each,
the throughput ratio (CaseTrail ÷ peer) and p99 ratio, min/median/max over the rounds,
with the load average — and, as a third cell, the same photos written to new files and
fsynced by the same number of threads (no HTTP, no hashing): the durability floor the
peer does not pay, since ``@tus/file-store`` never fsyncs. Without ``node`` the cell is skipped with one clear line.

Run: ``python -m bench --only P1`` (``--profile full``: 200 photos per cell, 3 rounds).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import MiB, Profile, Results, log

PACKAGES = ("@tus/server@^2", "@tus/file-store@^2", "@tus/s3-store@^2")
SERVER_JS = """
import http from 'node:http';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';
const [port, directory] = process.argv.slice(2);
const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) });
http.createServer((req, res) => tus.handle(req, res)).listen(Number(port), '127.0.0.1',
  () => console.log('listening'));
"""


def peer_dir() -> Path:
    """Where the peer's npm packages live (installed once, reused by later runs)."""
    default = Path.home() / ".cache" / "casetrail-bench" / "peer"
    return Path(os.environ.get("CASETRAIL_BENCH_PEER_DIR", default))


def install_peer() -> Path | None:
    """The peer's directory with its packages installed; None (and one line) without node."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        log("P1 skipped: node/npm not found on PATH — install Node.js ≥ 20 to measure the peer")
        return None
    where = peer_dir()
    where.mkdir(parents=True, exist_ok=True)
    if not (where / "node_modules" / "@tus" / "file-store").is_dir():
        (where / "package.json").write_text('{"name": "casetrail-bench-peer", "private": true}')
        log(f"installing {' '.join(PACKAGES)} into {where}")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", *PACKAGES],
            cwd=where,
            check=True,
        )
    (where / "server.mjs").write_text(SERVER_JS)
    return where


class PeerServer:
    """``@tus/server`` with a FileStore in a temporary directory, on a free port."""

    def __init__(self, where: Path, data: Path) -> None:
        from tests.support.server_process import free_port

        self.port = free_port()
        self.proc = subprocess.Popen(
            ["node", str(where / "server.mjs"), str(self.port), str(data)],
            cwd=where,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert "listening" in line, line

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def post_photo(port: int, path: str, headers: dict[str, str], meta: str, body: bytes) -> float:
    """One creation-with-upload POST of a whole photo; its latency in seconds."""
    begun = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120, blocksize=MiB)
    conn.request(
        "POST",
        path,
        body=body,
        headers={
            **headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(body)),
            "Upload-Metadata": meta,
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(body)),
        },
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 201, response.status
    assert int(response.headers["Upload-Offset"]) == len(body)
    return time.perf_counter() - begun


def write_fsync(path: Path, body: bytes) -> float:
    """The durability floor of one photo: write it to a new file and fsync it (no HTTP, no
    hashing); its latency in seconds. The peer skips this fsync, CaseTrail cannot."""
    begun = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view[:MiB]) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - begun


def _cell(items: list[Any], clients: int, send: Any) -> tuple[float, float]:
    """(files/s, p99 seconds) of sending ``items`` from ``clients`` threads.

    Dirty pages of the cell before are written back first, untimed: the peer leaves its
    photos unsynced in the page cache, and on ext4 the next cell's fsyncs would otherwise
    pay for writing them.
    """
    os.sync()
    begun = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(send, items))
    elapsed = time.perf_counter() - begun
    return len(items) / elapsed, statistics.quantiles(latencies, n=100)[98]


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def bench_p1(results: Results, profile: Profile) -> None:
    """Photos, CaseTrail vs ``@tus/server`` FileStore, interleaved: on the embedded default
    (SQLite), then on PostgreSQL (a durable cluster: fsync and synchronous commit on) when
    its binaries are installed."""
    where = install_peer()
    if where is None:
        results.emit("P1", "photos vs @tus/server", skipped="node not found")
        return
    _p1_rounds(results, profile, where, "SQLite", None)
    from tests.support.postgres import PostgresCluster, PostgresUnavailable

    try:
        cluster = PostgresCluster(durable=True).start()
    except PostgresUnavailable as exc:
        log(f"P1 on PostgreSQL skipped: {exc}")
        return
    try:
        _p1_rounds(results, profile, where, "PostgreSQL", cluster.url(cluster.create_database()))
    finally:
        cluster.stop()


def _p1_rounds(
    results: Results, profile: Profile, where: Path, database: str, url: str | None
) -> None:
    from bench.ingest import _announce, _start

    n, runs = (200, 3) if profile.name == "full" else (60, 3)
    size = 3 * MiB
    photo = os.urandom(size)
    with tempfile.TemporaryDirectory() as tmp:
        ours = _start(Path(tmp), env={"CASETRAIL_DATABASE_URL": url} if url else None)
        peer = PeerServer(where, Path(tmp) / "peer")
        try:
            seen: dict[int, dict[str, list[float]]] = {}
            for run in range(runs):
                for clients in (1, 4, 8):
                    # distinct bytes per photo (content-addressed storage must not dedupe),
                    # each body made when it is sent, the same way for both servers
                    nonces = [uuid.uuid4().bytes for _ in range(n)]
                    token, ids = _announce(ours, [_Fixed(photo, x) for x in nonces])
                    auth = {"Authorization": f"Bearer {token}"}
                    load = os.getloadavg()[0]

                    def ct(item: tuple[bytes, str], auth: dict[str, str] = auth) -> float:
                        nonce, evidence_id = item
                        meta = "evidence_id " + _b64(evidence_id)
                        body = photo[:-16] + nonce
                        return post_photo(ours.port, "/api/v1/uploads", auth, meta, body)

                    def tus(nonce: bytes) -> float:
                        body = photo[:-16] + nonce
                        return post_photo(
                            peer.port, "/files", {}, "filename " + _b64("p.jpg"), body
                        )

                    floor_dir = Path(tmp) / f"floor-{run}-{clients}"
                    floor_dir.mkdir()

                    def floor(nonce: bytes, where: Path = floor_dir) -> float:
                        return write_fsync(where / nonce.hex(), photo[:-16] + nonce)

                    c_rate, c_p99 = _cell(list(zip(nonces, ids, strict=True)), clients, ct)
                    p_rate, p_p99 = _cell([uuid.uuid4().bytes for _ in range(n)], clients, tus)
                    f_rate, _ = _cell([uuid.uuid4().bytes for _ in range(n)], clients, floor)
                    shutil.rmtree(floor_dir)
                    cell = seen.setdefault(clients, {"ratio": [], "p99_ratio": [], "ct": [],
                                                     "peer": [], "ct_p99": [], "peer_p99": [],
                                                     "load": [], "floor": []})  # fmt: skip
                    cell["floor"].append(f_rate)
                    cell["ratio"].append(c_rate / p_rate)
                    cell["p99_ratio"].append(c_p99 / p_p99)
                    cell["ct"].append(c_rate)
                    cell["peer"].append(p_rate)
                    cell["ct_p99"].append(c_p99 * 1000)
                    cell["peer_p99"].append(p_p99 * 1000)
                    cell["load"].append(load)
                    log(
                        f"P1 {database} run {run + 1} {clients} clients: CaseTrail "
                        f"{c_rate:.1f} files/s "
                        f"p99 {c_p99 * 1000:.0f} ms, peer {p_rate:.1f} files/s p99 "
                        f"{p_p99 * 1000:.0f} ms; write+fsync alone {f_rate:.1f} files/s "
                        f"(load {load:.2f})"
                    )
            for clients, cell in seen.items():
                results.emit(
                    "P1", f"photos {n} × 3 MiB, {clients} clients vs @tus/server FileStore, "
                    f"CaseTrail on {database}",
                    ratio=round(statistics.median(cell["ratio"]), 3),
                    ratio_spread=_spread(cell["ratio"]), p99_ratio=_spread(cell["p99_ratio"]),
                    casetrail_files_s=_spread(cell["ct"]), peer_files_s=_spread(cell["peer"]),
                    casetrail_p99_ms=_spread(cell["ct_p99"]), peer_p99_ms=_spread(cell["peer_p99"]),
                    load_avg_1m=_spread(cell["load"]), runs=runs, target=1.0,
                    write_fsync_files_s=_spread(cell["floor"]),
                    casetrail_vs_write_fsync=_spread(
                        [c / f for c, f in zip(cell["ct"], cell["floor"], strict=True)]
                    ),
                )  # fmt: skip
        finally:
            peer.stop()
            ours.stop()


class _Fixed:
    """A photo's size and SHA-256 in the shape ``bench.ingest._announce`` reads."""

    def __init__(self, photo: bytes, nonce: bytes) -> None:
        digest = hashlib.sha256(memoryview(photo)[:-16])
        digest.update(nonce)
        self.size = len(photo)
        self.sha256 = "sha256:" + digest.hexdigest()
