"""Storage outages and errors, full disks, a locked database, duplicate/concurrent and wrong
submissions, corruption behind our back, orphans — each ends with the four properties."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from storage.hashing import read_blocks
from storage.keys import original_key
from storage.local import LocalBlobStore
from tests.conftest import REQUIRE_ALL
from tests.faults.conftest import server_env
from tests.faults.nothing_lost import Scenario, check_nothing_lost
from tests.server.ingest_support import checksum
from tests.support.fault_proxy import FaultProxy
from tests.support.seaweedfs import SeaweedFS
from tests.support.server_process import BIN, ServerProcess

MIB = 1 << 20


@contextmanager
def scenario_of(tmp_path: Path, env: dict[str, str]) -> Iterator[Scenario]:
    scenario = Scenario.start(ServerProcess(tmp_path / "var", env=env))
    try:
        yield scenario
    finally:
        scenario.server.stop()


def test_object_store_stopped_mid_upload(
    weed: SeaweedFS, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with scenario_of(tmp_path, server_env("seaweedfs", request)) as s:
        safe, hit = s.announce(300_000, 8 * MIB)
        s.send(safe)
        s.create(hit)
        first = s.patch(hit, 0, hit.data[: 6 * MIB])
        assert first.status_code == 204
        weed.kill()
        try:
            during = s.patch(hit, 6 * MIB, hit.data[6 * MIB :])
            assert during.status_code == 503, during.text  # a clear "retry later", not a 500
            assert "稍后" in during.json()["message"] or "retry" in during.json()["message"]
        finally:
            weed.start()
        s.restart()
        assert check_nothing_lost(s) == []


def test_s3_errors_resets_and_latency_through_a_fault_proxy(
    weed: SeaweedFS, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    proxy = FaultProxy(int(weed.endpoint_url.rsplit(":", 1)[1])).start()
    try:
        env = server_env("local", request)
        from tests.faults.conftest import s3_settings

        env.update(s3_settings(proxy.url))
        with scenario_of(tmp_path, env) as s:
            safe, hit, third = s.announce(300_000, 12 * MIB, 7 * MIB)
            s.send(safe)
            proxy.latency = 0.002
            proxy.fail_next(3, 503)
            proxy.reset_next(2)
            proxy.cut_all()  # kept-alive connections die mid-flight
            s.try_send(hit, chunk=6 * MIB)
            proxy.fail_next(50, 500)  # a long outage: boto3's retries give up
            proxy.cut_all()
            s.try_send(third, chunk=6 * MIB)
            assert third.receipt is None
            assert proxy.injected >= 5
            proxy.latency = 0.0
            proxy.fail_next(0)
            with proxy._lock:
                proxy._fail.clear()
            s.restart()
            assert check_nothing_lost(s) == []
    finally:
        proxy.stop()


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A size-limited tmpfs at ``path`` (root only); skipped loudly where it cannot mount."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here: {done.stderr.decode().strip()}"
        if REQUIRE_ALL and os.geteuid() == 0:
            pytest.fail(f"CASETRAIL_TEST_REQUIRE_ALL=1 and root, but {reason}")
        pytest.skip(f"!!! DISK-FULL FAULT TEST SKIPPED !!! {reason}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def grow(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


@pytest.mark.parametrize("where", ["blobs", "spool"])
def test_disk_full(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    data_dir = tmp_path / "var"
    with tmpfs(data_dir / where, "2m"), scenario_of(tmp_path, server_env("local", request)) as s:
        safe, hit = s.announce(300_000, 10 * MIB)
        s.send(safe)
        s.create(hit)
        full = s.patch(
            hit, 0, hit.data[: 9 * MIB], **{"Upload-Checksum": checksum(hit.data[: 9 * MIB])}
        )
        assert full.status_code in (503, 507), full.text  # clear, not a 500
        head = s.head(hit)
        assert head.status_code == 200 and int(head.headers["Upload-Offset"]) < 9 * MIB
        grow(data_dir / where, "64m")
        s.restart()
        assert check_nothing_lost(s) == []
        s.server.stop()


def test_database_locked_by_another_connection(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with scenario_of(tmp_path, server_env("local", request)) as s:
        safe, hit = s.announce(300_000, 3 * MIB)
        s.send(safe)
        s.create(hit)
        holder = sqlite3.connect(tmp_path / "var" / "casetrail.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        results: list[int] = []
        sender = threading.Thread(
            target=lambda: results.append(s.patch(hit, 0, hit.data).status_code)
        )
        sender.start()
        time.sleep(2.0)
        assert sender.is_alive()  # waiting for the lock, not failing
        holder.execute("COMMIT")
        holder.close()
        sender.join(60)
        assert results == [204] and hit.receipt is not None
        s.restart()
        assert check_nothing_lost(s) == []


def test_duplicate_and_concurrent_submissions(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with scenario_of(tmp_path, server_env("local", request)) as s:
        [one] = s.announce(4 * MIB)
        first, second = s.create(one), None
        twin = type(one)(one.evidence_id, one.data)
        s.uploads.append(twin)
        second = s.create(twin)
        assert first != second
        codes: list[int] = []
        threads = [
            threading.Thread(target=lambda u=u: codes.append(s.patch(u, 0, u.data).status_code))
            for u in (one, twin)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert 204 in codes, codes  # one wins; the other is 204 (same evidence) or 409/423
        assert set(codes) <= {204, 409, 423}, codes
        again = type(one)(one.evidence_id, one.data)
        s.create(again)
        done = s.head(again)
        assert done.status_code == 200 and again.receipt == (one.receipt or twin.receipt)
        other = type(one)(one.evidence_id, os.urandom(len(one.data)))
        s.create(other)
        assert s.patch(other, 0, other.data).status_code == 409  # same key, other content
        s.restart()
        assert check_nothing_lost(s) == []


def test_wrong_checksums_and_wrong_content(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with scenario_of(tmp_path, server_env("local", request)) as s:
        good, bad = s.announce(2 * MIB, 300_000)
        s.create(good)
        wrong = s.patch(good, 0, good.data[:MIB], **{"Upload-Checksum": checksum(b"other")})
        assert wrong.status_code == 460
        assert s.head(good).headers["Upload-Offset"] == "0"
        s.create(bad)
        altered = bytearray(bad.data)
        altered[100] ^= 0xFF
        refused = s.patch(bad, 0, bytes(altered))
        assert refused.status_code == 422 and bad.receipt is None
        settings = s.settings()
        quarantined = LocalBlobStore(Path(settings.storage_url.removeprefix("file://")))
        assert any(k.endswith(".json") for k in quarantined.list("quarantine/"))
        s.restart()
        assert check_nothing_lost(s) == []  # both resumed/re-sent with the right bytes


def test_corruption_behind_our_back_is_caught_by_fixity(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with scenario_of(tmp_path, server_env("local", request)) as s:
        [victim] = s.announce(500_000)
        s.send(victim)
        path = tmp_path / "var" / "blobs" / original_key(victim.sha256)
        path.chmod(0o644)
        with path.open("r+b") as f:
            f.seek(4242)
            f.write(b"\x00\x01\x02")
        done = subprocess.run(
            [str(BIN / "casetrail"), "fixity", "--json"],
            env=s.server._env(),
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr.decode()
        [outcome] = json.loads(done.stdout)["outcomes"]
        assert outcome["evidence_id"] == victim.evidence_id and outcome["status"] == "failed"
        problems = check_nothing_lost(s)
        assert len(problems) == 1 and "fresh read differs" in problems[0]  # the checker sees it too


def test_orphans_are_quarantined_and_reported_never_deleted(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with scenario_of(tmp_path, server_env("local", request)) as s:
        [safe] = s.announce(300_000)
        s.send(safe)
        store = LocalBlobStore(tmp_path / "var" / "blobs")
        stray = os.urandom(70_000)
        key = original_key("sha256:" + hashlib.sha256(stray).hexdigest())
        store.write(key, read_blocks(_Bytes(stray)))
        sid = store.start_upload(original_key("sha256:" + "cd" * 32))
        store.put_part(original_key("sha256:" + "cd" * 32), sid, 1, [b"x" * 1000])
        s.server.kill()
        s.server.start()
        assert check_nothing_lost(s) == []
        counts = s.reports[0]["counts"]
        assert counts == {"orphan_object": 1, "orphan_multipart": 1}
        [moved] = [k for k in store.list("quarantine/") if k.endswith(key)]
        assert b"".join(store.open(moved)) == stray
        assert store.list_incomplete_uploads("") == []


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, size: int = -1, /) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk, self._pos = self._data[self._pos : end], min(end, len(self._data))
        return chunk
