"""B7: case export — a stored case streamed out as a BagIt tar vs raw GET of the same objects.

Both read the same originals from the same SeaweedFS bucket in the same run. The export
seals the case (custody events, checkpoint, proofs, tag files) and streams the tar with
every original's size and BLAKE3 re-checked on the way (the fixity check, against the
BLAKE3 the inspection's read recorded when the SHA-256 matched; the seeded case has
them, as an inspected case does); the baseline only reads the objects through the S3
adapter. Target ≥ 0.85. Beside it: the seal's own time (``seal_ms``, best run), the
exporting process's peak RSS (``export_peak_rss_mib``) and what the fixity check costs
— BLAKE3 of the same number of bytes in memory on one core, against the raw GET
(``recheck_vs_raw``; SHA-256, the check before, ``sha256_vs_raw``). ``raw_cores``: CPU
seconds of this process and SeaweedFS per second of the raw GET; ``ceiling``: the best
ratio this machine allows, when the export does the raw GET's work plus one BLAKE3 pass
on all its cores (``raw_s / max(raw_s, (raw_cpu + recheck_s) / cores)``, the seal not
counted, nor other processes' load).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import blake3

from bench.common import (
    MiB,
    Profile,
    Results,
    RssSampler,
    best_of,
    cpu_seconds,
    log,
    mb_per_s,
    ratio,
)
from server.app import create_app
from server.archive.bag import BagFormat
from server.archive.export import CaseExporter
from server.auth import Principal
from server.components import Components
from server.db import make_engine, upgrade
from server.models import Role, User
from server.services.custody import note_signer
from server.settings import Settings
from server.signing_key import create_signing_key
from storage.port import BLOCK_SIZE
from storage.s3 import S3BlobStore, make_s3_client
from tests.server.archive_support import seed_large_case

FILES = 4
_CORES = os.cpu_count() or 1


def bench_b7(results: Results, profile: Profile, server: Any) -> None:
    """B7: export of a case of ``profile.ingest_bytes`` (4 files; the full profile: 2 GiB,
    the workload of ``performance.md``) vs raw GET of its objects."""
    size = max(profile.ingest_bytes, 2 << 30) if profile.name == "full" else profile.ingest_bytes
    client = make_s3_client(
        server.endpoint_url, server.access_key, server.secret_key, server.region
    )
    bucket = "bench-b7-" + uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=bucket)
    store = S3BlobStore(client, bucket, part_size=16 * MiB)
    with tempfile.TemporaryDirectory(prefix="casetrail-b7-") as tmp:
        settings = Settings.for_data_dir(Path(tmp))
        create_signing_key(settings.signing_key_file)
        engine = make_engine(settings.database_url)
        upgrade(engine)
        engine.dispose()
        app = create_app(settings, store=store)
        parts: Components = app.extensions["casetrail"]
        log(f"B7: seeding a case of {size >> 20} MiB in {FILES} files")
        seeded = seed_large_case(parts, [size // FILES] * FILES)
        with parts.unit_of_work() as uow:
            user = uow.session.query(User).filter_by(username=seeded.archivist).one()
            archivist = Principal(user.id, user.agency_id, Role(user.role), "bench")
        key = parts.signing_key
        assert key is not None
        exporter = CaseExporter(parts.unit_of_work, store, note_signer(key, settings.log_origin))

        def raw_get() -> None:
            for k in seeded.storage_keys:
                for _ in store.open(k):
                    pass

        exported = 0
        seal_s: list[float] = []

        def export() -> None:
            nonlocal exported
            begun = time.perf_counter()
            sealed = exporter.seal(archivist, seeded.case_id, BagFormat.TAR)
            seal_s.append(time.perf_counter() - begun)
            exported = 0
            for block in exporter.stream(archivist, sealed):
                exported += len(block)

        block = os.urandom(BLOCK_SIZE)

        def hash_only(digest: Any) -> None:
            for _ in range(size // BLOCK_SIZE):
                digest.update(block)

        raw_get()  # warm-up (connections, SeaweedFS volume lookups)
        base_s = best_of(profile.repeats, raw_get)
        own, weed = os.times(), cpu_seconds(server.proc.pid)
        raw_wall = best_of(1, raw_get)
        raw_cpu = sum(os.times()[:2]) - sum(own[:2]) + cpu_seconds(server.proc.pid) - weed
        recheck_s = best_of(profile.repeats, lambda: hash_only(blake3.blake3()))
        sha256_s = best_of(profile.repeats, lambda: hash_only(hashlib.sha256()))
        with RssSampler() as rss:
            took = best_of(profile.repeats, export)
        parts.engine.dispose()
    results.emit(
        "B7",
        "case export (BagIt tar) vs raw GET",
        bytes=size,
        archive_bytes=exported,
        mb_s=mb_per_s(size, took),
        baseline_mb_s=mb_per_s(size, base_s),
        ratio=ratio(base_s, took),
        target=0.85,
        seal_ms=round(min(seal_s) * 1000),
        recheck_vs_raw=ratio(base_s, recheck_s),
        sha256_vs_raw=ratio(base_s, sha256_s),
        raw_cores=round(raw_cpu / raw_wall, 2),
        ceiling=ratio(base_s, max(base_s, (raw_cpu * base_s / raw_wall + recheck_s) / _CORES)),
        export_peak_rss_mib=round(rss.peak / MiB),
    )
