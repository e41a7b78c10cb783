"""An export holds the custody log's lock only briefly: its proofs' nodes are read before.

While the log is locked (on SQLite: the database's only write lock) every inspector's
upload waits; an export of a large case used to read every Merkle node of every proof
right there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.server.archive_support import Capture, ingest_case
from tests.server.conftest import World, parts
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
