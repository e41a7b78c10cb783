"""One PATCH at a time per upload, enforced through the database, against a real server."""

from __future__ import annotations

import hashlib
import http.client
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

from server.models import Upload, utcnow
from server.services.ingest import Ingest
from tests.server.conftest import World, parts
from tests.server.e2e_support import field_device
from tests.server.ingest_support import Tus, announce, metadata, receipt_of, sync_runtime
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

    mark_stored = Ingest._mark_stored
    arrived: list[str] = []
    both_inside = threading.Event()

    def overlapping(self: Ingest, *args: Any, **kwargs: Any) -> None:
        arrived.append(threading.current_thread().name)
        if len(arrived) == 2:
            both_inside.set()
        both_inside.wait(1.5)  # without a row lock the other completion gets in here too
        mark_stored(self, *args, **kwargs)

    monkeypatch.setattr(Ingest, "_mark_stored", overlapping)
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
