"""One PATCH at a time per upload, enforced through the database, against a real server."""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import io
import os
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from server.errors import Locked
from server.models import Upload, utcnow
from server.services.ingest import Ingest
from tests.server.conftest import World, parts
from tests.server.e2e_support import field_device
from tests.server.ingest_support import (
    Tus,
    announce,
    checksum,
    metadata,
    receipt_of,
    sync_runtime,
)
from tests.server.manifest_support import event_types
from tests.support.server_process import ServerProcess


@pytest.mark.slow
def test_two_concurrent_patches_one_wins_the_other_gets_423_file_intact(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "var", workers=2).start(init=True)
    try:
        device = field_device(server)
        data = os.urandom(6 * 1024 * 1024)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        [evidence] = device.announce([("a.bin", len(data), digest, "application/octet-stream")])
        tus = {"Authorization": f"Bearer {device.token}", "Tus-Resumable": "1.0.0"}
        created = httpx.post(
            server.url + "/api/v1/uploads",
            headers={**tus, "Upload-Length": str(len(data)),
                     "Upload-Metadata": "evidence_id " + _b64(evidence["evidence_id"])},
        )  # fmt: skip
        location = created.headers["Location"]
        path = location.split("127.0.0.1", 1)[1].split("/", 1)[1]
        slow = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        slow.putrequest("PATCH", "/" + path)
        for name, value in {
            **tus,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(data)),
        }.items():
            slow.putheader(name, value)
        slow.endheaders()
        slow.send(data[: 1024 * 1024])
        _wait_for_lease(tmp_path / "var" / "casetrail.db", location.rsplit("/", 1)[1])
        second = httpx.patch(
            location,
            content=data,
            headers={
                **tus,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
            timeout=30,
        )
        assert second.status_code in (409, 423), second.text
        assert second.json()["code"] == second.status_code and second.headers["Tus-Resumable"]
        slow.send(data[1024 * 1024 :])
        first = slow.getresponse()
        assert first.status == 204, first.read()
        with device.client() as api:
            content = api.get(f"/evidence/{evidence['evidence_id']}/content")
            assert content.status_code == 200
            assert "sha256:" + hashlib.sha256(content.content).hexdigest() == digest
    finally:
        server.stop()


def _wait_for_lease(db: Path, upload_id: str) -> None:
    """Until the first PATCH holds the upload's lease (it then waits for more bytes)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sqlite3.connect(db, timeout=10) as conn:
            row = conn.execute("SELECT lock_owner FROM uploads WHERE id = ?", (upload_id,))
            if (row.fetchone() or (None,))[0] is not None:
                return
        time.sleep(0.05)
    raise AssertionError("the first PATCH never took the lease")


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def test_a_stale_lease_from_a_dead_request_expires(world: World) -> None:
    ingest = sync_runtime(world.app).ingest
    data = os.urandom(10_000)
    announced = announce(world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(world.app.test_client(), announced.device.token)
    location = tus.create(
        len(data), metadata(evidence_id=announced.evidence[0]["evidence_id"])
    ).headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    ingest._acquire(upload_id)  # a request that took the lease and died without releasing
    assert tus.patch(location, 0, data).status_code == 423
    with parts(world.app).unit_of_work() as uow:  # …and its lease ran out
        lapsed = utcnow() - timedelta(seconds=1)
        uow.session.execute(update(Upload).values(lock_expires_at=lapsed))
        uow.commit()
    done = tus.patch(location, 0, data)
    assert done.status_code == 204 and int(done.headers["Upload-Offset"]) == len(data)
    with parts(world.app).unit_of_work() as uow:
        assert uow.session.get(Upload, upload_id).lock_owner is None  # type: ignore[union-attr]


def test_two_uploads_of_one_evidence_finishing_at_once_store_it_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a re-POST after a timeout makes a second upload of the same evidence with its own
    # lease; both completions reach the commit together (PostgreSQL: real concurrency)
    sync_runtime(world.app)
    data = os.urandom(200_000)
    announced = announce(world, [("a.bin", data, "application/octet-stream")])
    meta = metadata(evidence_id=announced.evidence[0]["evidence_id"])
    clients = [Tus(world.app.test_client(), announced.device.token) for _ in range(2)]
    locations = [tus.create(len(data), meta).headers["Location"] for tus in clients]
    for tus, location in zip(clients, locations, strict=True):
        assert tus.patch(location, 0, data[:-1]).status_code == 204

    record_stored = Ingest._record_stored
    arrived: list[str] = []
    both_inside = threading.Event()

    def overlapping(self: Ingest, *args: Any, **kwargs: Any) -> Any:
        arrived.append(threading.current_thread().name)
        if len(arrived) == 2:
            both_inside.set()
        both_inside.wait(1.5)  # without a row lock the other completion gets in here too
        return record_stored(self, *args, **kwargs)

    monkeypatch.setattr(Ingest, "_record_stored", overlapping)
    answers: dict[int, Any] = {}

    def finish(i: int) -> None:
        answers[i] = clients[i].patch(locations[i], len(data) - 1, data[-1:])

    threads = [threading.Thread(target=finish, args=(i,), name=f"u{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(arrived) == 1  # the second completion found the evidence stored
    statuses = sorted(a.status_code for a in answers.values())
    assert statuses in ([204, 204], [204, 409]), [a.get_data() for a in answers.values()]
    reviewer = world.as_("a_reviewer")
    types = event_types(reviewer, announced.case["id"])
    assert types.count("stored") == 1 and types.count("ingest_verified") == 1
    receipts = [receipt_of(a) for a in answers.values() if a.status_code == 204]
    kept = reviewer.get(f"/evidence/{announced.evidence[0]['evidence_id']}/receipt").get_json()
    assert all(r == kept for r in receipts)  # one receipt, never overwritten


def _lapse_lease(world: World, upload_id: str) -> None:
    with parts(world.app).unit_of_work() as uow:
        lapsed = utcnow() - timedelta(seconds=1)
        uow.session.execute(
            update(Upload).where(Upload.id == upload_id).values(lock_expires_at=lapsed)
        )
        uow.commit()


def test_a_request_that_lost_its_lease_cannot_overwrite_a_recorded_part(world: World) -> None:
    ingest = sync_runtime(world.app).ingest
    data = os.urandom(300_000)
    announced = announce(world, [("a.bin", data, "application/octet-stream")])
    evidence_id = announced.evidence[0]["evidence_id"]
    tus = Tus(world.app.test_client(), announced.device.token)
    location = tus.create(len(data), metadata(evidence_id=evidence_id)).headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    assert tus.patch(location, 0, data[:100_000]).status_code == 204
    # request A takes the lease, then stalls (a slow client) until its lease runs out
    stale = ingest._load(upload_id, ingest._acquire(upload_id))
    _lapse_lease(world, upload_id)
    # the client's retry takes over and records part 2
    assert tus.patch(location, 100_000, data[100_000:200_000]).status_code == 204
    # A wakes up and sends its bytes (different ones) as "the next part"
    with pytest.raises(Locked):
        ingest._pump(stale, iter([b"\0" * 100_000]))
    done = tus.patch(location, 200_000, data[200_000:])
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert done.status_code == 204 and receipt_of(done)["sha256"] == digest
    stored = world.as_("a_reviewer").get(f"/evidence/{evidence_id}/content")
    assert hashlib.sha256(stored.data).hexdigest() == digest.partition(":")[2]


class _SlowBody(io.BytesIO):
    """A request body arriving slowly: ``pieces`` reads, each after ``pause`` seconds."""

    def __init__(self, data: bytes, pieces: int, pause: float) -> None:
        super().__init__(data)
        self._piece, self._pause = -(-len(data) // pieces), pause

    def read(self, size: int | None = -1, /) -> bytes:
        time.sleep(self._pause)
        return super().read(self._piece if size is None or size < 0 else min(size, self._piece))

    def readinto(self, buffer: Any, /) -> int:
        time.sleep(self._pause)
        return super().readinto(memoryview(buffer)[: self._piece])


def test_a_slow_checksummed_patch_keeps_its_lease_while_it_is_spooled(world: World) -> None:
    ingest = sync_runtime(world.app).ingest
    ingest.config = dataclasses.replace(ingest.config, lock_ttl=timedelta(seconds=1))
    data = os.urandom(300_000)
    announced = announce(world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(world.app.test_client(), announced.device.token)
    meta = metadata(evidence_id=announced.evidence[0]["evidence_id"])
    location = tus.create(len(data), meta).headers["Location"]
    answers: dict[str, Any] = {}

    def slow_patch() -> None:  # about 3 s, three times the lease
        answers["slow"] = tus.client.patch(
            location,
            input_stream=_SlowBody(data, 60, 0.05),
            headers={
                **tus.auth,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
                "Upload-Checksum": checksum(data),
            },
        )

    sender = threading.Thread(target=slow_patch)
    sender.start()
    time.sleep(1.6)  # past the lease: only a renewal keeps another request out
    other = Tus(world.app.test_client(), announced.device.token).patch(location, 0, data)
    sender.join(30)
    assert other.status_code == 423, other.get_json()
    slow = answers["slow"]
    assert slow.status_code == 204, slow.get_json()
    assert receipt_of(slow)["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_recorded_part_replaced_in_the_store_is_rehashed_not_trusted(world: World) -> None:
    # whatever wrote it (a stale request of an older server, an operator, a bug), a part
    # that is not the one recorded must not get a "verified" receipt from the running hash
    ingest = sync_runtime(world.app).ingest
    data = os.urandom(300_000)
    announced = announce(world, [("a.bin", data, "application/octet-stream")])
    evidence_id = announced.evidence[0]["evidence_id"]
    tus = Tus(world.app.test_client(), announced.device.token)
    location = tus.create(len(data), metadata(evidence_id=evidence_id)).headers["Location"]
    assert tus.patch(location, 0, data[:100_000]).status_code == 204
    assert tus.patch(location, 100_000, data[100_000:200_000]).status_code == 204
    with parts(world.app).unit_of_work() as uow:
        row = uow.session.get(Upload, location.rsplit("/", 1)[1])
        assert row is not None and row.storage_upload_id is not None
        key, sid = row.storage_key or "", row.storage_upload_id
    ingest.store.put_part(key, sid, 2, [b"\0" * 50_000])
    done = tus.patch(location, 200_000, data[200_000:])
    assert done.status_code == 422, done.get_json()
    reviewer = world.as_("a_reviewer")
    assert reviewer.get(f"/evidence/{evidence_id}").get_json()["status"] == "mismatch"
    assert "stored" not in event_types(reviewer, announced.case["id"])
