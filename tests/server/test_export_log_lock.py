"""An export holds the custody log's lock only to append: its proofs are computed without it.

While the log is locked (on SQLite: the database's only write lock) every inspector's
upload waits; an export of a large case used to read every Merkle node of every proof
right there. Now it binds to a checkpoint (``exported`` + checkpoint, committed), proves
against that fixed tree size in a read-only unit, and appends ``bag_sealed`` after.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import bagit
import pytest
from flask import Flask
from sqlalchemy import Connection, event

from core.merkle import TreeReader, inclusion_proof
from core.verify import verify_bag
from server.archive import export
from server.db import READ_ONLY
from server.services.custody import log_size
from tests.server.archive_support import Capture, extract_tar, ingest_case
from tests.server.conftest import World, parts
from tests.server.ingest_support import Tus, announce, metadata
from tests.support.sql_counter import SqlCounter

PHOTOS = 24


@pytest.fixture
def counter(app: Flask) -> Iterator[SqlCounter]:
    found = SqlCounter(parts(app).engine)
    yield found
    found.close()


def test_an_export_reads_no_merkle_nodes_while_it_holds_the_log_lock(
    world: World, counter: SqlCounter
) -> None:
    photos = [(f"IMG_{i:04d}.jpg", os.urandom(2_000), "image/jpeg") for i in range(PHOTOS)]
    ingested = ingest_case(world, [Capture("site-inspection", "site-inspection-record", photos)])
    case_id = ingested.case["id"]
    counter.reset()
    response = world.as_("a_archivist").post(f"/cases/{case_id}/export?format=tar")
    assert response.status_code == 200, response.get_json()
    assert len(response.data) > PHOTOS * 2_000
    seen = counter.mine().under_log_lock_seen
    node_reads = [s for s in seen if s.startswith("SELECT") and "merkle_nodes" in s]
    print("under lock", len(seen), "node reads", len(node_reads))
    assert len(node_reads) <= 2, seen


def test_an_export_makes_no_storage_round_trip_inside_a_write_transaction(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = [(f"IMG_{i:04d}.jpg", os.urandom(2_000), "image/jpeg") for i in range(PHOTOS)]
    ingested = ingest_case(world, [Capture("site-inspection", "site-inspection-record", photos)])
    components = parts(world.app)
    writing = threading.local()  # this thread is inside a unit that may write (holds the lock)

    def begin(conn: Connection) -> None:
        writing.now = not conn.get_execution_options().get(READ_ONLY)

    def end(conn: Connection) -> None:
        writing.now = False

    stats: list[bool] = []
    stat = components.store.stat

    def stat_noting_the_lock(key: str) -> object:
        stats.append(getattr(writing, "now", False))
        return stat(key)

    monkeypatch.setattr(components.store, "stat", stat_noting_the_lock)
    for name, listener in (("begin", begin), ("commit", end), ("rollback", end)):
        event.listen(components.engine, name, listener)
    try:
        response = world.as_("a_archivist").post(f"/cases/{ingested.case['id']}/export?format=tar")
    finally:
        for name, listener in (("begin", begin), ("commit", end), ("rollback", end)):
            event.remove(components.engine, name, listener)
    assert response.status_code == 200, response.get_json()
    assert len(stats) == PHOTOS  # every object checked once before the seal ...
    assert not any(stats)  # ... and none while a write unit (the database's lock) was open


def test_a_photo_commits_while_an_export_computes_its_proofs(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    photos = [(f"IMG_{i:04d}.jpg", os.urandom(2_000), "image/jpeg") for i in range(PHOTOS)]
    ingested = ingest_case(world, [Capture("site-inspection", "site-inspection-record", photos)])
    photo = os.urandom(50_000)
    elsewhere = announce(world, [("现场.jpg", photo, "image/jpeg")], case_no="黔市监罚〔2026〕9号")
    inspector = Tus(world.app.test_client(), elsewhere.device.token)

    order: list[tuple[str, int]] = []  # (what happened, the tree size it saw)
    proving, uploaded = threading.Event(), threading.Event()
    exporting_thread = threading.get_ident()

    def prove_and_wait_once(reader: TreeReader, index: int, size: int) -> list[bytes]:
        if threading.get_ident() == exporting_thread and not proving.is_set():
            order.append(("export proving", size))
            proving.set()
            uploaded.wait(20)  # if the export held the write lock the photo could not commit
            order.append(("export still proving", size))
        return inclusion_proof(reader, index, size)

    def upload_photo() -> None:
        proving.wait(60)
        evidence_id = elsewhere.evidence[0]["evidence_id"]
        response = inspector.create(len(photo), metadata(evidence_id=evidence_id), body=photo)
        with parts(world.app).unit_of_work().reading() as uow:
            order.append((f"photo {response.status_code}", log_size(uow.session)))
        uploaded.set()

    monkeypatch.setattr(export, "inclusion_proof", prove_and_wait_once)
    inspector_thread = threading.Thread(target=upload_photo)
    inspector_thread.start()
    response = world.as_("a_archivist").post(f"/cases/{ingested.case['id']}/export?format=tar")
    inspector_thread.join(60)

    assert response.status_code == 200, response.get_json()
    assert [what for what, _ in order] == ["export proving", "photo 201", "export still proving"]
    bound_size, after_photo = order[0][1], order[1][1]
    assert after_photo > bound_size  # the photo's custody events were appended meanwhile
    bag = extract_tar(response.data, tmp_path / "bag")
    bagit.Bag(str(bag)).validate()
    assert verify_bag(bag).problems == []
    assert f"CaseTrail-Checkpoint: {bound_size} " in (bag / "bag-info.txt").read_text("utf-8")
