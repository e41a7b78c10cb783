"""Storage benchmarks: B9 (local ingest), S3 adapter ingest, S3 adapter memory.

- B9     local adapter ingest (resumable parts, as tus uses it, and ``write``) vs a plain
         script's write + fsync of the same bytes. Target ≥ 0.8.
- S3     S3 adapter ``write`` vs boto3 ``upload_fileobj`` of the same bytes to the same
         bucket. Target ≥ 0.9.
- S3-RSS peak RSS streaming two sizes through the S3 adapter, each in a fresh
         subprocess; growth must not follow the size (ratio of growths ≈ 1).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.common import (
    MiB,
    PatternStream,
    Profile,
    Results,
    RssSampler,
    best_of,
    chunks,
    current_rss,
    log,
    mb_per_s,
    ratio,
)
from storage.hashing import read_blocks
from storage.local import LocalBlobStore
from storage.s3 import S3BlobStore, make_s3_client

PART = 16 * MiB


def _plain_write_fsync(path: Path, size: int) -> None:
    stream = PatternStream(size)
    with path.open("wb") as f:
        while block := stream.read(MiB):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())


class _Hashing:
    """Feeds every block read from ``inner`` to ``hasher``."""

    def __init__(self, inner: PatternStream, hasher: Any) -> None:
        self._inner, self._hasher = inner, hasher

    def read(self, size: int = -1, /) -> bytes:
        block = self._inner.read(size)
        self._hasher.update(block)
        return block


def bench_local(results: Results, profile: Profile) -> None:
    """B9: local-store ingest vs plain write + fsync, same bytes, same disk."""
    size = profile.ingest_bytes
    base = Path(tempfile.mkdtemp(prefix="casetrail-b9-", dir=os.environ.get("BENCH_DIR")))
    try:
        plain = base / "plain.bin"

        def baseline() -> None:
            plain.unlink(missing_ok=True)
            _plain_write_fsync(plain, size)

        store = LocalBlobStore(base / "store")

        def via_parts() -> None:
            # as the ingest layer does: the caller hashes SHA-256 as the bytes pass and
            # hands its digest to complete_upload (the store does not hash parts)
            key = f"b9/{uuid.uuid4().hex}"
            uid = store.start_upload(key)
            running = hashlib.sha256()
            parts = [
                store.put_part(key, uid, i + 1, read_blocks(_Hashing(PatternStream(n), running)))
                for i, n in enumerate(chunks(size, PART))
            ]
            store.complete_upload(key, uid, parts, verified_sha256=f"sha256:{running.hexdigest()}")
            store.delete(key)

        def via_write() -> None:
            key = f"b9/{uuid.uuid4().hex}"
            store.write(key, read_blocks(PatternStream(size)))
            store.delete(key)

        base_s = best_of(profile.repeats, baseline)
        for cell, fn in (("local ingest, 16 MiB parts", via_parts), ("local write", via_write)):
            took = best_of(profile.repeats, fn)
            results.emit(
                "B9",
                cell,
                bytes=size,
                mb_s=mb_per_s(size, took),
                baseline_mb_s=mb_per_s(size, base_s),
                ratio=ratio(base_s, took),
                target=0.8,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _client(server: Any) -> Any:
    return make_s3_client(server.endpoint_url, server.access_key, server.secret_key, server.region)


def bench_s3(results: Results, profile: Profile, server: Any) -> None:
    """S3 adapter write vs boto3 upload_fileobj of the same bytes to the same bucket."""
    from boto3.s3.transfer import TransferConfig

    size = profile.ingest_bytes
    client = _client(server)
    bucket = "bench-" + uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=bucket)
    store = S3BlobStore(client, bucket, part_size=PART)
    transfer = TransferConfig(multipart_chunksize=PART, multipart_threshold=PART)

    def direct() -> None:
        key = f"direct/{uuid.uuid4().hex}"
        client.upload_fileobj(PatternStream(size), bucket, key, Config=transfer)
        client.delete_object(Bucket=bucket, Key=key)

    def adapter() -> None:
        key = f"adapter/{uuid.uuid4().hex}"
        store.write(key, read_blocks(PatternStream(size)))
        store.delete(key)

    _ = store.capabilities  # probe once, outside the timing
    direct()  # warm-up: volume allocation on a fresh SeaweedFS
    base_s = best_of(profile.repeats, direct)
    took = best_of(profile.repeats, adapter)
    results.emit(
        "S3",
        "S3 adapter write vs boto3 upload_fileobj",
        bytes=size,
        mb_s=mb_per_s(size, took),
        baseline_mb_s=mb_per_s(size, base_s),
        ratio=ratio(base_s, took),
        target=0.9,
    )


def _rss_child(endpoint: str, access: str, secret: str, bucket: str, size: int) -> None:
    client = make_s3_client(endpoint, access, secret)
    store = S3BlobStore(client, bucket, part_size=PART)
    _ = store.capabilities
    idle = current_rss()
    with RssSampler() as sampler:
        store.write(f"rss/{uuid.uuid4().hex}", read_blocks(PatternStream(size)))
    print(json.dumps({"idle": idle, "peak": sampler.peak}))


def bench_s3_rss(results: Results, profile: Profile, server: Any) -> None:
    """Peak RSS growth while streaming two sizes through the S3 adapter (fresh processes)."""
    client = _client(server)
    bucket = "rss-" + uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=bucket)
    growth = {}
    for size in profile.rss_sizes:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.storage_bench",
                "rss-child",
                server.endpoint_url,
                server.access_key,
                server.secret_key,
                bucket,
                str(size),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        sample = json.loads(out.stdout.strip().splitlines()[-1])
        growth[size] = sample["peak"] - sample["idle"]
        results.emit(
            "S3-RSS",
            f"S3 adapter write {size // MiB} MiB",
            bytes=size,
            idle_mib=round(sample["idle"] / MiB, 1),
            peak_mib=round(sample["peak"] / MiB, 1),
            growth_mib=round(growth[size] / MiB, 1),
        )
    small, large = profile.rss_sizes
    results.emit(
        "S3-RSS",
        f"growth {large // MiB} MiB / {small // MiB} MiB",
        ratio=ratio(growth[large], growth[small]),
        note="≈1.0 means memory does not grow with size; 2.0 would be proportional",
    )


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "rss-child":
    endpoint, access, secret, bucket_name, nbytes = sys.argv[2:7]
    _rss_child(endpoint, access, secret, bucket_name, int(nbytes))
elif __name__ == "__main__":
    log("run benchmarks with: python -m bench")
