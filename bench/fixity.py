"""B8 — fixity re-read: ``storage.fixity.check_fixity`` (what ``casetrail fixity`` runs per
original: stream, SHA-256 + the recorded SHA-512, size) through the S3 adapter, against a
raw boto3 GET + hashlib SHA-256 + SHA-512 of the same objects, same bucket, same run.

Workload: one large object + many 2 MiB photos (full: 1 GiB + 100 × 2 MiB; quick: 128 MiB
+ 20 × 2 MiB). Target ratio ≥ 0.8. The sweep's per-original database commit (one custody
event) is not in the timed path; ``tests/server/test_fixity.py`` covers it.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from bench.common import MiB, PatternStream, Profile, Results, best_of, log, mb_per_s, ratio
from bench.storage_bench import _client
from storage.fixity import check_fixity
from storage.hashing import read_blocks
from storage.s3 import S3BlobStore


def bench_b8(results: Results, profile: Profile, server: Any) -> None:
    """Fixity re-read vs raw GET + hashlib (ratio of throughputs)."""
    large = 1024 * MiB if profile.name == "full" else 128 * MiB
    photos = 100 if profile.name == "full" else 20
    client = _client(server)
    bucket = "bench-b8-" + uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=bucket)
    store = S3BlobStore(client, bucket)
    objects = []
    for size in [large] + [2 * MiB] * photos:
        info = store.write(
            f"b8/{uuid.uuid4().hex}", read_blocks(PatternStream(size)), write_once=False
        )
        objects.append(info)
    total = sum(o.size for o in objects)
    log(f"B8: {len(objects)} objects, {total / MiB:.0f} MiB")

    def raw() -> None:
        for o in objects:
            body = client.get_object(Bucket=bucket, Key=o.key)["Body"]
            h256, h512 = hashlib.sha256(), hashlib.sha512()
            while block := body.read(MiB):
                h256.update(block)
                h512.update(block)
            assert "sha256:" + h256.hexdigest() == o.sha256

    def fixity() -> None:
        for o in objects:
            assert check_fixity(store, o.key, o.sha256, o.sha512, o.size).ok

    raw()  # warm-up
    base_s = best_of(profile.repeats, raw)
    took = best_of(profile.repeats, fixity)
    results.emit(
        "B8",
        "fixity re-read vs raw GET + hashlib",
        bytes=total,
        mb_s=mb_per_s(total, took),
        baseline_mb_s=mb_per_s(total, base_s),
        ratio=ratio(base_s, took),
        target=0.8,
    )
