"""P1 — photos against the reference tus server, same client, same bytes, same run.

``@tus/server`` + ``@tus/file-store`` (and ``@tus/s3-store``, installed for P2) come from
npm into ``~/.cache/casetrail-bench/peer`` (``CASETRAIL_BENCH_PEER_DIR``) on first use.
The peer neither hashes, verifies nor records custody; CaseTrail does all three before
it answers. Both servers get the same 3 MiB photos as tus creation-with-upload POSTs
from one Python client (``http.client``, 1 MiB send blocks) at 1, 4 and 8 clients;
cells are interleaved — CaseTrail, peer, CaseTrail, peer … — over ``runs`` rounds, so
a load change on a shared machine hits both. Printed per cell: files/s and p99 of each,
the throughput ratio (CaseTrail ÷ peer) and p99 ratio, min/median/max over the rounds,
with the load average. Two more cells put that ratio in context, since ``@tus/file-store``
never fsyncs: the same peer with a FileStore that fsyncs as CaseTrail does before it
answers (the new file, its ``.json``, the directory entry, every write: ``vs_fsyncing_peer``),
and the same photos written to new files and fsynced by the same number of threads (no
HTTP, no hashing: the durability floor). Without ``node`` the cell is skipped with one
clear line.

Run: ``python -m bench --only P1`` (``--profile full``: 200 photos per cell, 3 rounds).

P2 — one large file (quick 256 MiB, full 1 GiB; random bytes made once, the last 16 bytes
a fresh nonce per upload) sent by one Python client as a tus creation POST then PATCHes of
16 MiB over one keep-alive connection (1 MiB send blocks), the same code for both servers:
to the local store (CaseTrail's embedded default vs ``@tus/file-store``) and to SeaweedFS
(CaseTrail with ``CASETRAIL_STORAGE_URL`` there vs ``@tus/s3-store``, 16 MiB parts, on the
same bucket). Interleaved over 3 rounds; MB/s (MiB/s) of each and the ratio, min/median/max,
with the load average. Every upload is checked (final 204 with Upload-Offset = length; the
peer's object has the length) so a broken run reports no speed. Without ``node`` or
SeaweedFS the cell (or its S3 half) is skipped with one clear line.
Run: ``python -m bench --only P2``.

P3 — the same to the local store in PATCHes of 256 KiB: the field client's smallest chunk,
where it ends up on a bad link (quick 128 MiB, 512 PATCHes; full 1 GiB, 4,096). What each
PATCH costs besides its bytes — the lease, the record, the store's bookkeeping — weighs
here. Run: ``python -m bench --only P3``.
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
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import MiB, Profile, Results, log

PACKAGES = ("@tus/server@^2", "@tus/file-store@^2", "@tus/s3-store@^2")
SERVER_JS = """
import http from 'node:http';
import fsP from 'node:fs/promises';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';
const [port, directory, durable] = process.argv.slice(2);
async function fsync(p) {
  const fh = await fsP.open(p, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}
// the same FileStore, made durable as CaseTrail is before it answers: a new upload's
// file, its .json and the directory entry fsynced; every write's bytes fsynced
class DurableFileStore extends FileStore {
  async create(file) {
    const made = await super.create(file);
    const at = this.resolve(file.id);
    await fsync(at); await fsync(at + '.json'); await fsync(this.directory);
    return made;
  }
  async write(readable, id, offset) {
    const end = await super.write(readable, id, offset);
    await fsync(this.resolve(id));
    return end;
  }
}
const datastore = durable === 'durable'
  ? new DurableFileStore({ directory }) : new FileStore({ directory });
const tus = new Server({ path: '/files', datastore });
http.createServer((req, res) => tus.handle(req, res)).listen(Number(port), '127.0.0.1',
  () => console.log('listening'));
"""
S3_SERVER_JS = """
import http from 'node:http';
import { Server } from '@tus/server';
import { S3Store } from '@tus/s3-store';
const [port, endpoint, bucket, region] = process.argv.slice(2);
const datastore = new S3Store({
  partSize: 16 * 1024 * 1024,
  s3ClientConfig: {
    bucket, endpoint, region, forcePathStyle: true,
    credentials: {
      accessKeyId: process.env.PEER_S3_ACCESS_KEY,
      secretAccessKey: process.env.PEER_S3_SECRET_KEY,
    },
  },
});
const tus = new Server({ path: '/files', datastore });
http.createServer((req, res) => tus.handle(req, res)).listen(Number(port), '127.0.0.1',
  () => console.log('listening'));
"""


def peer_dir() -> Path:
    """Where the peer's npm packages live (installed once, reused by later runs)."""
    default = Path.home() / ".cache" / "casetrail-bench" / "peer"
    return Path(os.environ.get("CASETRAIL_BENCH_PEER_DIR", default))


def install_peer(cell: str = "P1") -> Path | None:
    """The peer's directory with its packages installed; None (and one line) without node."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        log(
            f"{cell} skipped: node/npm not found on PATH — install Node.js ≥ 20 to measure the peer"
        )
        return None
    where = peer_dir()
    where.mkdir(parents=True, exist_ok=True)
    installed = where / "node_modules" / "@tus"
    if not all((installed / name).is_dir() for name in ("server", "file-store", "s3-store")):
        (where / "package.json").write_text('{"name": "casetrail-bench-peer", "private": true}')
        log(f"installing {' '.join(PACKAGES)} into {where}")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", *PACKAGES],
            cwd=where,
            check=True,
        )
    (where / "server.mjs").write_text(SERVER_JS)
    (where / "s3-server.mjs").write_text(S3_SERVER_JS)
    return where


class PeerServer:
    """``@tus/server`` on a free port: a FileStore in ``data`` (``durable``: one that
    fsyncs, see ``SERVER_JS``) or, given ``s3`` (the endpoint, bucket, region, access key
    and secret key), an S3Store on that bucket."""

    def __init__(
        self,
        where: Path,
        data: Path,
        s3: tuple[str, str, str, str, str] | None = None,
        *,
        durable: bool = False,
    ) -> None:
        from tests.support.server_process import free_port

        self.port = free_port()
        env = dict(os.environ)
        if s3 is None:
            mode = "durable" if durable else "as-shipped"
            argv = [str(where / "server.mjs"), str(self.port), str(data), mode]
        else:
            endpoint, bucket, region, key, secret = s3
            argv = [str(where / "s3-server.mjs"), str(self.port), endpoint, bucket, region]
            env.update(PEER_S3_ACCESS_KEY=key, PEER_S3_SECRET_KEY=secret, TMPDIR=str(data))
            data.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["node", *argv],
            cwd=where,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # warnings (the AWS SDK's about the Node version) may come before "listening"; the
        # rest of the output is drained by a thread so a chatty peer never blocks on its pipe
        assert self.proc.stdout is not None
        self.output: list[str] = []
        for raw in self.proc.stdout:
            self.output.append(raw.decode(errors="replace"))
            if "listening" in self.output[-1]:
                break
        else:
            self.proc.kill()
            self.proc.wait(10)
            raise RuntimeError("the peer did not start:\n" + "".join(self.output[-20:]))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.output.append(raw.decode(errors="replace"))

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
        durable = PeerServer(where, Path(tmp) / "durable-peer", durable=True)
        try:
            _warm_up(ours, peer, durable, photo)
            seen: dict[int, dict[str, list[float]]] = {}
            for run in range(runs):
                for clients in (1, 4, 8):
                    # distinct bytes per photo (content-addressed storage must not dedupe),
                    # each body made when it is sent, the same way for both servers
                    nonces = [uuid.uuid4().bytes for _ in range(n)]
                    fixed: list[Any] = [_Fixed(photo, x) for x in nonces]
                    token, ids = _announce(ours, fixed)
                    auth = {"Authorization": f"Bearer {token}"}
                    load = os.getloadavg()[0]

                    def ct(item: tuple[bytes, str], auth: dict[str, str] = auth) -> float:
                        nonce, evidence_id = item
                        meta = "evidence_id " + _b64(evidence_id)
                        body = photo[:-16] + nonce
                        return post_photo(ours.port, "/api/v1/uploads", auth, meta, body)

                    def tus(nonce: bytes, port: int = peer.port) -> float:
                        body = photo[:-16] + nonce
                        return post_photo(port, "/files", {}, "filename " + _b64("p.jpg"), body)

                    def durable_tus(nonce: bytes) -> float:
                        return tus(nonce, durable.port)

                    floor_dir = Path(tmp) / f"floor-{run}-{clients}"
                    floor_dir.mkdir()

                    def floor(nonce: bytes, where: Path = floor_dir) -> float:
                        return write_fsync(where / nonce.hex(), photo[:-16] + nonce)

                    # the four cells in turn, each going first as often as the others: the
                    # first one meets the inodes of the write+fsync files deleted just before
                    # (this VM's ext4 has no journal, so allocating an inode steps over
                    # recently deleted ones one by one: ≈ 5 % of the machine's CPU in a
                    # profile went to inode allocation), and always going first put that
                    # on CaseTrail
                    cells: list[tuple[list[Any], Any]] = [
                        (list(zip(nonces, ids, strict=True)), ct),
                        ([uuid.uuid4().bytes for _ in range(n)], tus),
                        ([uuid.uuid4().bytes for _ in range(n)], durable_tus),
                        ([uuid.uuid4().bytes for _ in range(n)], floor),
                    ]
                    turn = run * 3 + (1, 4, 8).index(clients)
                    measured: dict[int, tuple[float, float]] = {}
                    for k in range(4):
                        which = (turn + k) % 4
                        measured[which] = _cell(cells[which][0], clients, cells[which][1])
                    shutil.rmtree(floor_dir)
                    (c_rate, c_p99), (p_rate, p_p99), (d_rate, d_p99) = (
                        measured[i] for i in range(3)
                    )
                    f_rate = measured[3][0]
                    cell = seen.setdefault(clients, {"ratio": [], "p99_ratio": [], "ct": [],
                                                     "peer": [], "ct_p99": [], "peer_p99": [],
                                                     "load": [], "floor": [], "durable": [],
                                                     "durable_p99": []})  # fmt: skip
                    cell["floor"].append(f_rate)
                    cell["durable"].append(c_rate / d_rate)
                    cell["durable_p99"].append(c_p99 / d_p99)
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
                        f"{p_p99 * 1000:.0f} ms, peer fsyncing {d_rate:.1f} files/s p99 "
                        f"{d_p99 * 1000:.0f} ms; write+fsync alone {f_rate:.1f} files/s "
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
                    vs_fsyncing_peer=_spread(cell["durable"]),
                    p99_vs_fsyncing_peer=_spread(cell["durable_p99"]),
                    casetrail_vs_write_fsync=_spread(
                        [c / f for c, f in zip(cell["ct"], cell["floor"], strict=True)]
                    ),
                )  # fmt: skip
        finally:
            peer.stop()
            durable.stop()
            ours.stop()


def _warm_up(ours: Any, peer: PeerServer, durable: PeerServer, photo: bytes) -> None:
    """A few photos to each server before anything is timed: the first requests of a
    fresh process (imports, connection pools, caches) are not what a shift of uploads
    meets, and at one client they decided the first cell's p99."""
    from bench.ingest import _announce

    nonces = [uuid.uuid4().bytes for _ in range(WARM_UP)]
    token, ids = _announce(ours, [_Fixed(photo, x) for x in nonces])
    for nonce, evidence_id in zip(nonces, ids, strict=True):
        meta = "evidence_id " + _b64(evidence_id)
        auth = {"Authorization": f"Bearer {token}"}
        post_photo(ours.port, "/api/v1/uploads", auth, meta, photo[:-16] + nonce)
    for server in (peer, durable):
        for _ in range(WARM_UP):
            body = photo[:-16] + uuid.uuid4().bytes
            post_photo(server.port, "/files", {}, "filename " + _b64("p.jpg"), body)


WARM_UP = 8
"""Photos sent to each server before the timed cells."""


class _Fixed:
    """A photo's size and SHA-256 in the shape ``bench.ingest._announce`` reads (``prefix``:
    the digest of all but its last 16 bytes, made once, when the photo is large)."""

    def __init__(self, photo: bytes | memoryview, nonce: bytes, prefix: Any = None) -> None:
        digest = hashlib.sha256(memoryview(photo)[:-16]) if prefix is None else prefix.copy()
        digest.update(nonce)
        self.size = len(photo)
        self.sha256 = "sha256:" + digest.hexdigest()


# ------------------------------------------------------------------------------- P2

PATCH_BYTES = 16 * MiB


class _Counted(http.client.HTTPConnection):
    """A keep-alive connection that counts how often it had to (re)connect."""

    connects = 0

    def connect(self) -> None:
        self.connects += 1
        super().connect()


def _blocks(data: memoryview, nonce: bytes, start: int, end: int) -> Iterator[bytes | memoryview]:
    """Bytes ``start``–``end`` of ``data`` with its last ``len(nonce)`` bytes replaced by
    ``nonce``, in 1 MiB send blocks (slices of ``data``, no copies but the one holding the
    nonce)."""
    cut = len(data) - len(nonce)
    for pos in range(start, end, MiB):
        stop = min(pos + MiB, end)
        if stop <= cut:
            yield data[pos:stop]
        else:
            yield bytes(data[pos : max(pos, cut)]) + nonce[max(pos, cut) - cut : stop - cut]


def _size_name(n: int) -> str:
    return f"{n >> 20} MiB" if n >= MiB else f"{n >> 10} KiB"


def upload_large(
    port: int,
    path: str,
    headers: dict[str, str],
    meta: str,
    data: memoryview,
    nonce: bytes,
    patch_bytes: int = PATCH_BYTES,
) -> tuple[float, str, int]:
    """One tus upload of ``data`` (its tail replaced by ``nonce``): a creation POST, then
    PATCHes of ``patch_bytes`` on one keep-alive connection. Returns (seconds, the upload's path,
    connections opened). Every answer is checked: 201 with a Location, then 204 with
    Upload-Offset at the end of each PATCH — the last one equal to the length."""
    size = len(data)
    common = {**headers, "Tus-Resumable": "1.0.0"}
    conn = _Counted("127.0.0.1", port, timeout=600, blocksize=MiB)
    begun = time.perf_counter()
    conn.request(
        "POST", path, headers={**common, "Upload-Length": str(size), "Upload-Metadata": meta}
    )
    response = conn.getresponse()
    answer = response.read()
    assert response.status == 201, (response.status, answer[:300])
    location = "/" + response.headers["Location"].split("://", 1)[-1].split("/", 1)[1]
    offset = 0
    while offset < size:
        n = min(patch_bytes, size - offset)
        conn.request(
            "PATCH",
            location,
            body=_blocks(data, nonce, offset, offset + n),
            headers={
                **common,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(n),
            },
        )
        response = conn.getresponse()
        answer = response.read()
        assert response.status == 204, (response.status, answer[:300])
        reached = int(response.headers["Upload-Offset"])
        assert reached == offset + n, (reached, offset + n)
        offset = reached
    elapsed = time.perf_counter() - begun
    conn.close()
    assert offset == size, (offset, size)
    return elapsed, location, conn.connects


def bench_p2(results: Results, profile: Profile) -> None:
    """One large file in 16 MiB PATCHes, CaseTrail vs ``@tus/server``, interleaved: to the
    local store (FileStore), then to SeaweedFS (S3Store on the same bucket)."""
    where = install_peer("P2")
    if where is None:
        results.emit("P2", "large file vs @tus/server", skipped="node not found")
        return
    size = profile.ingest_bytes
    data = memoryview(os.urandom(size))
    prefix = hashlib.sha256(data[:-16])
    with tempfile.TemporaryDirectory() as tmp:
        _p2_rounds(results, where, Path(tmp) / "local", data, prefix, None)
    from tests.support.seaweedfs import SeaweedFS, SeaweedFSError

    try:
        weed = SeaweedFS()
        weed.start()
    except SeaweedFSError as exc:
        first = str(exc).splitlines()[0]
        log(f"P2 to SeaweedFS skipped: {first}")
        results.emit("P2", "large file to SeaweedFS vs @tus/s3-store", skipped=first)
        return
    try:
        log(f"SeaweedFS started in {weed.start_seconds:.1f}s at {weed.endpoint_url}")
        with tempfile.TemporaryDirectory() as tmp:
            _p2_rounds(results, where, Path(tmp) / "s3", data, prefix, weed)
    finally:
        weed.stop()


SMALL_PATCH_BYTES = 256 * 1024
"""P3's PATCH size: ``field_client.tus_client.MIN_CHUNK``, the field client's floor."""


def bench_p3(results: Results, profile: Profile) -> None:
    """One large file in 256 KiB PATCHes to the local store, CaseTrail vs ``@tus/server``
    FileStore, interleaved."""
    where = install_peer("P3")
    if where is None:
        results.emit("P3", "large file in small PATCHes vs @tus/server", skipped="node not found")
        return
    size = 1 << 30 if profile.name == "full" else 128 * MiB
    data = memoryview(os.urandom(size))
    prefix = hashlib.sha256(data[:-16])
    with tempfile.TemporaryDirectory() as tmp:
        _p2_rounds(
            results, where, Path(tmp) / "local", data, prefix, None,
            bench="P3", patch_bytes=SMALL_PATCH_BYTES, target=1.0,
        )  # fmt: skip


def _p2_rounds(
    results: Results,
    where: Path,
    tmp: Path,
    data: memoryview,
    prefix: Any,
    weed: Any,
    *,
    bench: str = "P2",
    patch_bytes: int = PATCH_BYTES,
    target: float = 1.2,
) -> None:
    from bench.ingest import _announce, _s3_env, _start

    runs, size = 3, len(data)
    tmp.mkdir()
    if weed is None:
        target_name, peer_store, env, check = "local store", "FileStore", None, None
        peer = PeerServer(where, tmp / "peer")

        def peer_size(upload_id: str) -> int:
            return (tmp / "peer" / upload_id).stat().st_size

    else:
        from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

        target_name, peer_store = "SeaweedFS", "S3Store"
        env, bucket, check = _s3_env(weed)
        s3 = (weed.endpoint_url, bucket, REGION, ACCESS_KEY, SECRET_KEY)
        peer = PeerServer(where, tmp / "peer-tmp", s3)

        def peer_size(upload_id: str) -> int:
            return int(check.head_object(Bucket=bucket, Key=upload_id)["ContentLength"])

    try:
        ours = _start(tmp, env)
    except BaseException:
        peer.stop()
        raise
    try:
        nonces = [uuid.uuid4().bytes for _ in range(runs)]
        fixed: list[Any] = [_Fixed(data, nonce, prefix) for nonce in nonces]
        token, ids = _announce(ours, fixed)
        auth = {"Authorization": f"Bearer {token}"}
        seen: dict[str, list[float]] = {"ct": [], "peer": [], "ratio": [], "load": []}
        for run, (nonce, evidence_id) in enumerate(zip(nonces, ids, strict=True)):
            load = os.getloadavg()[0]
            os.sync()
            c_s, _, c_conns = upload_large(
                ours.port, "/api/v1/uploads", auth, "evidence_id " + _b64(evidence_id),
                data, nonce, patch_bytes,
            )  # fmt: skip
            os.sync()
            p_s, location, p_conns = upload_large(
                peer.port, "/files", {}, "filename " + _b64("large.bin"), data,
                uuid.uuid4().bytes, patch_bytes,
            )  # fmt: skip
            stored = peer_size(location.rsplit("/", 1)[1])
            assert stored == size, (stored, size)
            c_rate, p_rate = size / MiB / c_s, size / MiB / p_s
            seen["ct"].append(c_rate)
            seen["peer"].append(p_rate)
            seen["ratio"].append(c_rate / p_rate)
            seen["load"].append(load)
            log(
                f"{bench} {target_name} run {run + 1}: CaseTrail {c_rate:.1f} MB/s ({c_conns} "
                f"connection{'s' * (c_conns > 1)}), peer {p_rate:.1f} MB/s ({p_conns}), "
                f"ratio {c_rate / p_rate:.2f} (load {load:.2f})"
            )
        results.emit(
            bench, f"large file {size >> 20} MiB in {_size_name(patch_bytes)} PATCHes to "
            f"{target_name} vs @tus/server {peer_store}",
            ratio=round(statistics.median(seen["ratio"]), 3), ratio_spread=_spread(seen["ratio"]),
            casetrail_mb_s=_spread(seen["ct"]), peer_mb_s=_spread(seen["peer"]),
            load_avg_1m=_spread(seen["load"]), runs=runs, target=target,
        )  # fmt: skip
    finally:
        peer.stop()
        ours.stop()
