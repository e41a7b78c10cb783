"""Run the benchmark suite: ``python -m bench [--profile quick|full] [--only B9,S3,S3-RSS]``.

Prints one JSON line per cell on stdout and a summary at the end. A SeaweedFS is started
(and stopped) here when an S3 benchmark is selected.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.common import PROFILES, Results, log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--only", default="", help="comma-separated ids, e.g. B9,S3")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    wanted = {x.strip().upper() for x in args.only.split(",") if x.strip()}

    def selected(bench_id: str) -> bool:
        return not wanted or bench_id in wanted

    from bench import storage_bench

    results = Results(profile)
    log(
        f"profile {profile.name}: ingest {profile.ingest_bytes >> 20} MiB, "
        f"RSS sizes {[s >> 20 for s in profile.rss_sizes]} MiB, best of {profile.repeats}"
    )
    begun = time.monotonic()
    if selected("B9"):
        storage_bench.bench_local(results, profile)
    if selected("S3") or selected("S3-RSS"):
        from tests.support.seaweedfs import SeaweedFS

        with SeaweedFS() as server:
            log(f"SeaweedFS started in {server.start_seconds:.1f}s at {server.endpoint_url}")
            if selected("S3"):
                storage_bench.bench_s3(results, profile, server)
            if selected("S3-RSS"):
                storage_bench.bench_s3_rss(results, profile, server)
    if selected("B7"):
        from bench import export
        from tests.support.seaweedfs import SeaweedFS

        with SeaweedFS() as weed:
            export.bench_b7(results, profile, weed)
    ingest_ids = ("B1", "B3", "B4", "B5", "B6", "B9")
    if any(selected(i) for i in ingest_ids):
        from bench import ingest

        if selected("B9"):
            ingest.bench_b9(results, profile)
        if selected("B6"):
            ingest.bench_b6(results, profile)
        if any(selected(i) for i in ("B1", "B3", "B4", "B5")):
            from tests.support.seaweedfs import SeaweedFS

            with SeaweedFS() as weed:
                for bench_id, run in (
                    ("B1", ingest.bench_b1),
                    ("B3", ingest.bench_b3),
                    ("B4", ingest.bench_b4),
                    ("B5", ingest.bench_b5),
                ):
                    if selected(bench_id):
                        run(results, profile, weed)
    if selected("B6B"):
        from bench.slow_clients import bench_b6b

        bench_b6b(results, profile.name)
    if selected("P1"):
        from bench import peer

        peer.bench_p1(results, profile)
    if selected("P2"):
        from bench import peer

        peer.bench_p2(results, profile)
    if selected("P3"):
        from bench import peer

        peer.bench_p3(results, profile)
    if selected("B8"):
        from bench import fixity
        from tests.support.seaweedfs import SeaweedFS

        with SeaweedFS() as weed:
            fixity.bench_b8(results, profile, weed)
    if selected("B10"):
        from bench import scaleout

        scaleout.bench_b10(results, profile)
    print(results.summary())
    log(f"total {time.monotonic() - begun:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
