"""How much database work one photo costs: transactions, and statements under the log lock.

Counted with SQLAlchemy engine events (:mod:`tests.support.sql_counter`) on the real app
and database (SQLite and PostgreSQL). Each transaction on SQLite takes the database's
only write lock, and every statement run while the custody log is locked makes the
other inspectors' photos wait: both are what a field device feels as latency at 18:00.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from server.models import Upload
from server.services.custody import note_signer
from server.services.receipts import receipt_problems
from tests.server.conftest import World, parts
from tests.server.ingest_support import Tus, announce, metadata, receipt_of
from tests.support.sql_counter import SqlCounter

CLIENTS = 8
UNDER_LOCK_PER_PHOTO = 8
"""Statements a photo may run while it holds the log lock, 8 clients at once (~40 before
batching, 15.3 with batches, 3.5–3.8 with one flush per batch and no case rows loaded)."""


@pytest.fixture
def counter(app: Flask) -> Iterator[SqlCounter]:
    found = SqlCounter(parts(app).engine)
    yield found
    found.close()


def _photos(n: int, size: int = 48 * 1024) -> list[tuple[str, bytes, str]]:
    return [(f"IMG_{i:04d}.jpg", os.urandom(size), "image/jpeg") for i in range(n)]


def _verifier_key(app: Flask) -> str:
    p = parts(app)
    return note_signer(p.require_signing_key(), p.settings.log_origin).verifier().key_string()


def test_a_whole_body_photo_takes_at_most_three_transactions(
    world: World, counter: SqlCounter
) -> None:
    parts(world.app).jobs.mode = "worker"  # inspection runs after the answer, elsewhere
    files = _photos(3)
    ann = announce(world, files)
    tus = Tus(world.app.test_client(), ann.device.token)
    for (_, data, _), evidence in zip(files, ann.evidence, strict=True):
        counter.reset()
        response = tus.create(len(data), metadata(evidence_id=evidence["evidence_id"]), data)
        assert response.status_code == 201, response.get_json()
        counts = counter.mine()
        assert 1 <= counts.transactions <= 3, counts.statements_seen
        assert counts.log_transactions == 1  # the log is locked once per photo
        assert receipt_problems(receipt_of(response), _verifier_key(world.app)) == []


def test_eight_inspectors_sending_photos_at_once_all_get_provable_receipts(
    world: World, counter: SqlCounter
) -> None:
    parts(world.app).jobs.mode = "worker"
    files = _photos(4 * CLIENTS)
    ann = announce(world, files)
    items = list(zip(files, ann.evidence, strict=True))
    answers: list[Any] = []
    counter.reset()

    def inspector(mine: list[tuple[tuple[str, bytes, str], dict[str, Any]]]) -> None:
        tus = Tus(world.app.test_client(), ann.device.token)
        for (_, data, _), evidence in mine:
            meta = metadata(evidence_id=evidence["evidence_id"])
            answers.append(tus.create(len(data), meta, data))

    threads = [
        threading.Thread(target=inspector, args=(items[i::CLIENTS],)) for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [201] * len(items)
    total = counter.total()
    per_photo = total.under_log_lock / len(items)
    assert per_photo <= UNDER_LOCK_PER_PHOTO, per_photo
    assert total.transactions <= 3 * len(items)
    key = _verifier_key(world.app)
    receipts = [receipt_of(a) for a in answers]
    assert all(receipt_problems(r, key) == [] for r in receipts)
    # every stored event is in its receipt's checkpoint, once, at its own log index
    indices = [r["custody_event"]["log_index"] for r in receipts]
    assert len(set(indices)) == len(indices)
    assert all(r["tree_size"] > r["custody_event"]["log_index"] for r in receipts)
    reviewer = world.as_("a_reviewer")
    page = reviewer.get(f"/cases/{ann.case['id']}/custody?limit=500").get_json()
    stored = [e for e in page["items"] if e["event"]["type"] == "stored"]
    assert len(stored) == len(items)


def test_a_patch_takes_at_most_three_transactions(world: World, counter: SqlCounter) -> None:
    parts(world.app).jobs.mode = "worker"
    data = os.urandom(600_000)
    ann = announce(world, [("VID_0001.mp4", data, "video/mp4")])
    tus = Tus(world.app.test_client(), ann.device.token)
    created = tus.create(len(data), metadata(evidence_id=ann.evidence[0]["evidence_id"]))
    assert created.status_code == 201
    location = created.headers["Location"]
    cut = len(data) // 3
    for offset, end in ((0, cut), (cut, len(data))):  # a middle PATCH, then the last one
        counter.reset()
        response = tus.patch(location, offset, data[offset:end])
        assert response.status_code == 204, response.get_json()
        assert int(response.headers["Upload-Offset"]) == end
        counts = counter.mine()
        assert 1 <= counts.transactions <= 3, counts.statements_seen
    assert receipt_problems(receipt_of(response), _verifier_key(world.app)) == []
    resumed = tus.head(location)
    assert int(resumed.headers["Upload-Offset"]) == len(data)


def test_a_patch_that_does_not_complete_ends_its_lease_with_its_last_record(
    world: World, counter: SqlCounter
) -> None:
    """Two transactions: the lease taken, then the PATCH's last durable step, which also
    lets the lease go (the next PATCH, from any process, need not wait for it)."""
    parts(world.app).jobs.mode = "worker"
    data = os.urandom(600_000)
    ann = announce(world, [("VID_0002.mp4", data, "video/mp4")])
    tus = Tus(world.app.test_client(), ann.device.token)
    location = tus.create(len(data), metadata(evidence_id=ann.evidence[0]["evidence_id"]))
    counter.reset()
    response = tus.patch(location.headers["Location"], 0, data[:200_000])
    assert response.status_code == 204, response.get_json()
    assert counter.mine().transactions == 2, counter.mine().statements_seen
    upload_id = location.headers["Location"].rsplit("/", 1)[1]
    with parts(world.app).engine.connect() as connection:
        lease = connection.execute(
            select(Upload.lock_owner, Upload.lock_expires_at, Upload.offset).where(
                Upload.id == upload_id
            )
        ).one()
    assert tuple(lease) == (None, None, 200_000)
