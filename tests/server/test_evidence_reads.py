"""Reading stored evidence: ranges, ETag, custody events before bytes, BOLA → 404."""

from __future__ import annotations

import hashlib
import os

from tests.server.conftest import World
from tests.server.ingest_support import Tus, announce, metadata, sync_runtime
from tests.server.maintenance_support import object_path, storage_key
from tests.server.manifest_support import event_types


def test_content_ranges_etag_and_downloaded_event(world: World) -> None:
    sync_runtime(world.app)
    data = os.urandom(300_000)
    announced = announce(world, [("a.bin", data, "application/octet-stream")])
    evidence_id = announced.evidence[0]["evidence_id"]
    tus = Tus(world.app.test_client(), announced.device.token)
    assert tus.create(len(data), metadata(evidence_id=evidence_id), body=data).status_code == 201
    reviewer = world.as_("a_reviewer")
    before = event_types(reviewer, announced.case["id"]).count("downloaded")

    whole = reviewer.get(f"/evidence/{evidence_id}/content")
    assert whole.status_code == 200 and whole.data == data
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    ranged = {**reviewer.headers, "Range": "bytes=1000-1999"}
    part = reviewer.client.get(f"/api/v1/evidence/{evidence_id}/content", headers=ranged)
    assert part.status_code == 206 and part.data == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    ranged["Range"] = "bytes=-10"
    tail = reviewer.client.get(f"/api/v1/evidence/{evidence_id}/content", headers=ranged)
    assert tail.status_code == 206 and tail.data == data[-10:]
    ranged["Range"] = f"bytes={len(data) + 5}-"
    past = reviewer.client.get(f"/api/v1/evidence/{evidence_id}/content", headers=ranged)
    assert past.status_code == 416 and past.get_json()["code"] == 416
    assert event_types(reviewer, announced.case["id"]).count("downloaded") == before + 3

    for outsider in ("a_insp3", "b_reviewer"):
        denied = world.as_(outsider).get(f"/evidence/{evidence_id}/content")
        assert denied.status_code == 404
        assert world.as_(outsider).get(f"/evidence/{evidence_id}/receipt").status_code == 404
    assert event_types(reviewer, announced.case["id"]).count("downloaded") == before + 3


def test_an_original_gone_after_the_event_is_a_clear_503_and_flagged_once(world: World) -> None:
    sync_runtime(world.app)
    data = os.urandom(50_000)
    announced = announce(world, [("b.bin", data, "application/octet-stream")])
    evidence_id = announced.evidence[0]["evidence_id"]
    tus = Tus(world.app.test_client(), announced.device.token)
    assert tus.create(len(data), metadata(evidence_id=evidence_id), body=data).status_code == 201
    object_path(world, storage_key(world, evidence_id)).unlink()  # lost behind our back
    reviewer = world.as_("a_reviewer")

    for _ in range(2):
        gone = reviewer.get(f"/evidence/{evidence_id}/content")
        assert gone.status_code == 503, gone.get_json()
        body = gone.get_json()
        assert body["code"] == 503 and "证据风险" in body["message"]
        assert "contact the admin" in body["message"]
    types = event_types(reviewer, announced.case["id"])
    assert types.count("fixity_failed") == 1  # flagged once, however often it is read
    assert types[-1] == "downloaded"
