"""Memory stays flat: exporting twice the bytes must not take more memory (measured in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from core.verify import verify_bag
from tests.server.archive_support import MiB, seed_large_case
from tests.server.conftest import parts

CHILD = """
import sys
from server.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    with open("/proc/self/status") as f:
        peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    print("PEAK_KIB", peak)
"""


def _export_peak_rss(app: Flask, case_id: str, user: str, out: Path) -> int:
    settings = parts(app).settings
    env = {
        **os.environ,
        "CASETRAIL_DATA_DIR": str(settings.data_dir),
        "CASETRAIL_DATABASE_URL": settings.database_url,
        "CASETRAIL_STORAGE_URL": settings.storage_url,
        "CASETRAIL_SIGNING_KEY_FILE": str(settings.signing_key_file),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "export", case_id, "--out", str(out), "--user", user],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return int(done.stdout.split("PEAK_KIB")[-1].split()[0]) * 1024


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_export_memory_does_not_grow_with_the_case(app: Flask, tmp_path: Path) -> None:
    small = seed_large_case(parts(app), [80 * MiB, 80 * MiB], agency_code="SMALL", case_no="小-1")
    large = seed_large_case(parts(app), [160 * MiB, 160 * MiB], agency_code="LARGE", case_no="大-1")
    small_peak = _export_peak_rss(app, small.case_id, small.archivist, tmp_path / "small.tar")
    large_peak = _export_peak_rss(app, large.case_id, large.archivist, tmp_path / "large.tar")
    # 160 MiB more payload; allow a few MiB of noise (allocator, imports), nothing near that
    assert large_peak - small_peak < 16 * MiB, (small_peak >> 20, large_peak >> 20)
    assert large_peak < 200 * MiB, large_peak >> 20
    report = verify_bag(tmp_path / "large.tar")
    assert report.problems == [] and report.payload_bytes == 320 * MiB
