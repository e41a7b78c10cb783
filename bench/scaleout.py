"""B10 scale-out: photo throughput through nginx with 1 vs 3 ``casetrail serve`` processes.

One cluster of ``deploy/`` (``tests/cluster/harness.py``: PostgreSQL with the deploy
settings, SeaweedFS 1 master + 3 volume servers + filer + S3 at replication 001, three
server processes of one gunicorn worker × 8 threads each) and two nginx sites rendered
from ``deploy/nginx``: one with a single upstream, one with all three. 16 clients send
2–5 MiB photos (tus creation-with-upload, the field client's photo path) through each
nginx in turn, alternating, best of ``repeats``; the cell prints both throughputs, the
ratio 3 : 1, the load average the machine had, and how many cores each part of the
cluster used during the 3-process run (``/proc`` CPU time ÷ wall time): what limits the
ratio. The ratio is the result; absolute MB/s on a shared machine are noise.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import MiB, Profile, Results, cpu_seconds, log, mb_per_s, ratio
from bench.ingest import Payload, Uploader, _announce

CLIENTS = 16


def _components(cluster: Any, nginx: list[Any]) -> dict[str, list[int]]:
    """The processes of each part of the cluster, by PID (children followed at sampling)."""
    postmaster = int((cluster.pg.data_dir / "postmaster.pid").read_text().split()[0])
    return {
        "casetrail serve": [s.proc.pid for s in cluster.servers],
        "seaweedfs": [p.pid for p in cluster.weed.procs.values()],
        "postgresql": [postmaster],
        "nginx": [n.proc.pid for n in nginx],
        "bench clients": [os.getpid()],
    }


def bench_b10(results: Results, profile: Profile) -> None:
    from tests.cluster.harness import Cluster
    from tests.support.nginx import Nginx

    per_client = 4 if profile.name == "quick" else 12
    rng = random.Random(10)
    begun = time.monotonic()
    cluster = Cluster(3).start()
    one = Nginx([cluster.servers[0].port]).start()
    assert cluster.gateway is not None and cluster.nginx is not None
    log(f"B10 cluster up in {time.monotonic() - begun:.0f}s (3 processes, 2 nginx sites)")
    best: dict[str, tuple[float, float]] = {}
    parts = _components(cluster, [one, cluster.nginx])
    shares: dict[str, float] = {}
    try:
        for _ in range(profile.repeats):
            for name, port in (("1", one.port), ("3", cluster.nginx.port)):
                photos = [
                    Payload(rng.randint(2 * MiB, 5 * MiB)) for _ in range(CLIENTS * per_client)
                ]
                token, ids = _announce(cluster.gateway, photos)
                up = Uploader(port, token)
                bodies = {id(p): b"".join(p.blocks()) for p in photos}

                def send(
                    item: tuple[Payload, str], up: Uploader = up, bodies: Any = bodies
                ) -> float:
                    p, evidence_id = item
                    start = time.perf_counter()
                    offset, _ = up.create(evidence_id, p.size, body=bodies[id(p)])
                    assert offset == p.size
                    return time.perf_counter() - start

                cpu = {k: cpu_seconds(*v) for k, v in parts.items()}
                start = time.perf_counter()
                with ThreadPoolExecutor(CLIENTS) as pool:
                    latencies = list(pool.map(send, zip(photos, ids, strict=True)))
                seconds = time.perf_counter() - start
                used = {k: cpu_seconds(*v) - cpu[k] for k, v in parts.items()}
                if name == "3":  # where the two cores went while 3 processes served
                    shares = {k: round(v / seconds, 2) for k, v in used.items()}
                rate = mb_per_s(sum(p.size for p in photos), seconds)
                p99 = statistics.quantiles(latencies, n=100)[98]
                log(f"B10 {name} process(es): {rate:.1f} MB/s, p99 {p99 * 1000:.0f} ms")
                if name not in best or rate > best[name][0]:
                    best[name] = (rate, p99)
    finally:
        one.stop()
        cluster.stop()
    (one_rate, one_p99), (three_rate, three_p99) = best["1"], best["3"]
    results.emit(
        "B10", f"photos 2–5 MiB via nginx, {CLIENTS} clients",
        one_process_mb_s=one_rate, three_processes_mb_s=three_rate,
        ratio=ratio(three_rate, one_rate),
        p99_ms_1=round(one_p99 * 1000), p99_ms_3=round(three_p99 * 1000),
        cores=os.cpu_count(), load_avg=round(os.getloadavg()[0], 1),
        cores_used_at_3=shares,
    )  # fmt: skip
