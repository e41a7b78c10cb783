"""End to end with a real `casetrail serve` (SQLite + local store) and the real CLI.

Offline capture, sync through server crashes, client crash and resume, a deleted
capture showing as a device-chain gap, a tampered vault copy refused and reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from field_client.errors import ReceiptInvalid
from field_client.receipts import Expected, verify_receipt
from tests.field_client.conftest import make_file
from tests.support.counting_proxy import CountingProxy
from tests.support.field_cases import FieldCase, new_field_case
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.slow

FIELD = str(Path(sys.executable).parent / "casetrail-field")
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("server") / "var").start(init=True)
    try:
        yield srv
    finally:
        srv.stop()


def field(home: Path, *args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    """Run `casetrail-field --home HOME ARGS…`; assert the exit status unless ``check`` is None."""
    r = subprocess.run(
        [FIELD, "--home", str(home), *args], capture_output=True, text=True, timeout=180
    )
    if check is not None:
        assert r.returncode == check, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def facts(case: FieldCase) -> list[str]:
    return [
        "--case", case.case_no, "--category", "inspection", "--stage", "implementation",
        "--record-type", "inspection-record",
        "--officer", case.officers[0], "--officer", case.officers[1],
        "--lat", "26.6470", "--lon", "106.6302",
    ]  # fmt: skip


def enrolled_home(tmp_path: Path, server_url: str, case: FieldCase) -> Path:
    home = tmp_path / "device"
    field(home, "enroll", "--server", server_url, "--code", case.code)
    return home


def queue_rows(home: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{home / 'queue.db'}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM items ORDER BY manifest_id")]
    finally:
        db.close()


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MiB):
            h.update(block)
    return "sha256:" + h.hexdigest()


def case_events(server: ServerProcess, case_id: str) -> list[dict[str, Any]]:
    with server.admin() as admin:
        r = admin.get(f"/cases/{case_id}/custody", params={"limit": 500})
        assert r.status_code == 200, r.text
        return [e["event"] for e in r.json()["items"]]


def registrations(server: ServerProcess, case_id: str) -> list[dict[str, Any]]:
    with server.admin() as admin:
        r = admin.get(f"/cases/{case_id}/manifests")
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()
        return found


# --------------------------------------------------------------------------- media


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """18 JPEG photos, a ~30 MiB real video (ffmpeg) and a PDF (Pillow)."""
    from server.media import FFmpegTools  # system ffmpeg, else the imageio-ffmpeg wheel

    out = tmp_path_factory.mktemp("media")
    files = []
    for n in range(18):
        img = Image.effect_noise((480, 360), 40 + n).convert("RGB")
        path = out / f"IMG_{n:04d}.JPG"
        img.save(path, quality=95)
        files.append(path)
    ffmpeg = str(FFmpegTools.resolve().ffmpeg)
    video = out / "执法记录仪_0001.mp4"
    subprocess.run(
        [
            ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", "testsrc2=size=640x360:rate=25", "-t", "8", "-vf", "noise=alls=30:allf=t",
            "-c:v", "mpeg4", "-b:v", "32M", "-minrate", "32M", "-maxrate", "32M",
            "-bufsize", "4M", "-pix_fmt", "yuv420p", str(video),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    assert video.stat().st_size >= 28 * MiB
    files.append(video)
    pdf = out / "现场检查笔录.pdf"
    Image.new("RGB", (595, 842), "white").save(pdf)
    files.append(pdf)
    return files


# --------------------------------------------------------------------------- tests


def test_enrolment_keeps_secrets_private_and_pins_the_log_key(
    tmp_path: Path, server: ServerProcess
) -> None:
    case = new_field_case(server)
    home = enrolled_home(tmp_path, server.url, case)
    for name in ("device-key.pem", "device-token", "device.json"):
        assert (home / name).stat().st_mode & 0o077 == 0, name
    pinned = json.loads((home / "device.json").read_text())["log_key"]
    assert pinned == httpx.get(server.url + "/api/v1/log/public-key").json()["verifier_key"]
    again = field(home, "enroll", "--server", server.url, "--code", case.code, check=1)
    assert "already enrolled" in again.stderr and "--home" in again.stderr
    used = field(tmp_path / "other", "enroll", "--server", server.url, "--code", case.code, check=1)
    assert "HTTP 401" in used.stderr and "ask an admin" in used.stderr


def test_offline_capture_then_sync_through_two_server_crashes(
    tmp_path: Path, server: ServerProcess, media: list[Path]
) -> None:
    case = new_field_case(server)
    proxy = CountingProxy(server.port).start()
    try:
        home = enrolled_home(tmp_path, proxy.url, case)
        server.kill()  # offline from here
        photos, video, pdf = media[:18], media[18], media[19]
        groups = [photos[i : i + 3] for i in range(0, 18, 3)]
        for group in [groups[0], [video], *groups[1:], [pdf]]:
            field(home, "capture", *map(str, group), *facts(case))
        offline = field(home, "sync", "--once", check=75)
        assert "server unreachable" in offline.stderr
        assert {r["state"] for r in queue_rows(home)} == {"captured"}

        server.start()
        proxy.rate = 6 * MiB
        client = subprocess.Popen(
            [FIELD, "--home", str(home), "sync", "--watch", "--exit-when-settled",
             "--interval", "1", "--max-chunk", str(2 * MiB)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

        def video_offset() -> int:
            row = next(r for r in queue_rows(home) if r["name"] == video.name)
            return int(row["offset"])

        try:
            for threshold in (6 * MiB, 18 * MiB):
                wait_for(lambda t=threshold: video_offset() >= t, 60, f"video at {threshold}")
                # crash the server between two chunks of the video (a crash inside a PATCH
                # leaves that upload's lease to expire first: the server's lock TTL)
                proxy.hold_next(b"PATCH ")
                assert proxy.holding.wait(30)
                server.kill()
                proxy.release()
                time.sleep(0.5)
                server.start()
            out, err = client.communicate(timeout=150)
        finally:
            if client.poll() is None:
                client.kill()
                out, err = client.communicate()
                print(out, err, queue_rows(home), server.log()[-3000:], sep="\n")
        assert client.returncode == 0, f"{out}\n{err}"
        assert server.starts == 4  # init, back online, then two restarts after crashes
    finally:
        proxy.stop()

    rows = queue_rows(home)
    assert len(rows) == 20 and {r["state"] for r in rows} == {"done"}
    # every file arrived exactly once, with the SHA-256 captured on the device
    regs = registrations(server, case.id)
    files = [f for reg in regs for f in reg["files"]]
    expected = {p.name: sha(p) for p in media}
    assert sorted(f["name"] for f in files) == sorted(expected)
    assert all(f["status"] == "stored" and f["sha256"] == expected[f["name"]] for f in files)
    events = case_events(server, case.id)
    assert sum(e["type"] == "stored" for e in events) == 20
    # each receipt on the device verifies with the pinned key alone
    config = json.loads((home / "device.json").read_text())
    by_evidence = {r["evidence_id"]: r for r in rows}
    receipts = sorted((home / "receipts").glob("*.json"))
    assert len(receipts) == 20
    for path in receipts:
        receipt = json.loads(path.read_text())
        row = by_evidence[receipt["evidence_id"]]
        verify_receipt(
            receipt,
            config["log_key"],
            Expected(
                row["evidence_id"],
                row["manifest_id"],
                row["file_index"],
                row["sha256"],
                row["size"],
            ),
            config["log_origin"],
        )
    # a receipt altered on the device (or forged) is caught, with every finding
    forged = dict(receipt, sha256="sha256:" + "0" * 64)
    with pytest.raises(ReceiptInvalid) as bad:
        verify_receipt(
            forged,
            config["log_key"],
            Expected(
                row["evidence_id"],
                row["manifest_id"],
                row["file_index"],
                row["sha256"],
                row["size"],
            ),
            config["log_origin"],
        )
    assert any("sha256" in p for p in bad.value.problems)
    assert any("not signed by the server key" in p for p in bad.value.problems)
    # the originals stay in the vault after done (retention), the sources untouched
    assert all(Path(r["vault_path"]).exists() for r in rows)
    assert {p.name: sha(p) for p in media} == expected

    # re-running sync changes nothing: no request, no event
    sent_before = proxy.sent
    again = field(home, "sync", "--once")
    assert "registered 0, done 0, failed 0, deferred 0, sent 0 B" in again.stdout
    assert proxy.sent == sent_before
    assert len(case_events(server, case.id)) == len(events)
    status = json.loads(field(home, "status", "--json").stdout)
    assert status["counts"]["done"] == 20


def settled(proxy: CountingProxy, quiet: float = 0.5, limit: float = 15.0) -> None:
    """Wait until no byte has passed the proxy for ``quiet`` seconds."""
    end = time.monotonic() + limit
    last = -1
    while time.monotonic() < end and proxy.sent != last:
        last = proxy.sent
        time.sleep(quiet)


def test_killed_client_resumes_resending_at_most_one_chunk(
    tmp_path: Path, server: ServerProcess
) -> None:
    case = new_field_case(server)
    proxy = CountingProxy(server.port, rate=4 * MiB).start()
    chunk = MiB
    try:
        home = enrolled_home(tmp_path, proxy.url, case)
        big = make_file(tmp_path / "src" / "记录仪_0002.mp4", 12 * MiB + 12345, seed=7)
        field(home, "capture", str(big), *facts(case))
        baseline = proxy.sent
        client = subprocess.Popen(
            [FIELD, "--home", str(home), "sync", "--once", "--max-chunk", str(chunk)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(lambda: queue_rows(home)[0]["offset"] >= 5 * MiB, 60, "half the upload")
            time.sleep(0.3)  # in the middle of a chunk
            os.kill(client.pid, signal.SIGKILL)
            client.wait(10)
        finally:
            if client.poll() is None:
                client.kill()
        # What the dead client had already handed to the network still reaches the server
        # (here: the proxy's buffers, relayed at 4 MiB/s); it belongs to the first session.
        settled(proxy)
        first_session = proxy.sent - baseline
        row = queue_rows(home)[0]
        assert row["state"] == "uploading"
        token = (home / "device-token").read_text().strip()
        head = httpx.head(
            row["upload_url"],
            headers={"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}"},
        )
        server_offset = int(head.headers["Upload-Offset"])
        assert server_offset >= row["offset"]  # the server kept what it confirmed

        before_resume = proxy.sent
        # The killed request may still hold the upload a moment (423 + Retry-After): the
        # client defers it, and its next pass, once due, resumes from the server's offset.
        deadline = time.monotonic() + 60
        while True:
            field(home, "sync", "--once", "--max-chunk", str(chunk))
            row = queue_rows(home)[0]
            if row["state"] != "uploading" or time.monotonic() > deadline:
                break
            time.sleep(min(max(row["next_attempt_at"] - time.time(), 0.2), 8.0))
        second_session = proxy.sent - before_resume
    finally:
        proxy.stop()
    size = big.stat().st_size
    resent = first_session + second_session - size
    print(
        f"resume: server offset {server_offset}, sessions {first_session} + {second_session}, size {size}, re-sent {resent} bytes (chunk {chunk})"
    )
    # resumed, not restarted: the rest of the file, plus at most the part of one chunk a
    # PATCH sent before a 423 (an early 4xx drains up to 1 MiB to keep the connection)
    assert second_session < size - server_offset + chunk + 64 * 1024
    assert resent <= chunk + 64 * 1024  # ≤ one chunk (+ request headers and manifest)
    assert queue_rows(home)[0]["state"] == "done"


def test_deleted_capture_shows_as_a_device_chain_gap(tmp_path: Path, server: ServerProcess) -> None:
    case = new_field_case(server)
    home = enrolled_home(tmp_path, server.url, case)
    for n in range(4):
        field(home, "capture", str(make_file(tmp_path / f"p{n}.jpg", 5000, seed=n)), *facts(case))
    rows = {r["name"]: r for r in queue_rows(home)}
    # someone deletes capture #2 from the device: its vault copy and its queue entry
    gone = rows["p1.jpg"]["manifest_id"]
    shutil.rmtree(home / "vault" / gone)
    db = sqlite3.connect(home / "queue.db")
    with db:
        db.execute("DELETE FROM items WHERE manifest_id = ?", (gone,))
        db.execute("DELETE FROM captures WHERE manifest_id = ?", (gone,))
    db.close()
    # …and only the vault copy of capture #4
    Path(rows["p3.jpg"]["vault_path"]).unlink()

    r = field(home, "sync", "--once", check=3)
    assert "status" in r.stderr  # tells the officer where to look
    types = [e["type"] for e in case_events(server, case.id)]
    assert "device_chain_gap" in types
    chain = {reg["device_seq"]: reg["verification"] for reg in registrations(server, case.id)}
    assert sorted(chain) == [1, 3, 4]
    assert chain[3]["chain"] == "gap"
    status = json.loads(field(home, "status", "--json").stdout)
    states = {i["name"]: (i["state"], i["last_error"]) for i in status["items"]}
    assert states["p0.jpg"][0] == states["p2.jpg"][0] == "done"
    assert states["p3.jpg"][0] == "failed" and "missing from the vault" in states["p3.jpg"][1]


def test_tampered_vault_copy_is_refused_and_reported(tmp_path: Path, server: ServerProcess) -> None:
    case = new_field_case(server)
    home = enrolled_home(tmp_path, server.url, case)
    src = make_file(tmp_path / "IMG_9.jpg", 300_000, seed=9)
    field(home, "capture", str(src), *facts(case))
    row = queue_rows(home)[0]
    vault_copy = Path(row["vault_path"])
    os.chmod(vault_copy, 0o600)
    with open(vault_copy, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00tampered")

    r = field(home, "sync", "--once", check=3)
    assert "HTTP 422" in r.stderr and "changed after capture" in r.stderr
    item = json.loads(field(home, "status", "--json").stdout)["items"][0]
    assert item["state"] == "failed"
    assert item["sha256"] == sha(src)  # never re-hashed to match the changed bytes
    files = registrations(server, case.id)[0]["files"]
    assert files[0]["sha256"] == sha(src) and files[0]["status"] != "stored"
    assert "ingest_mismatch" in [e["type"] for e in case_events(server, case.id)]
    text = field(home, "status").stdout
    assert "失败 failed" in text and "changed after capture" in text
