"""A manifest the server answers 423 (locked) for is deferred; the pass goes on."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from field_client.capture import Capturer, CaptureRequest
from field_client.queue import ItemState, Queue
from field_client.sync import Syncer
from tests.field_client.conftest import make_file


def test_locked_manifest_is_deferred_and_the_next_is_registered(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    locked = capturer.capture([make_file(tmp_path / "a.jpg", 100)], request_facts)
    fine = capturer.capture([make_file(tmp_path / "b.jpg", 100, seed=2)], request_facts)
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/manifests"):
            manifest_id = json.loads(request.content)["manifest"]["manifest_id"]
            seen.append(manifest_id)
            if manifest_id == locked.manifest_id:
                return httpx.Response(
                    423, json={"code": 423, "status": "Locked", "message": "busy"}
                )
            return httpx.Response(201, json={"files": [{"file_index": 0, "evidence_id": "ev-b"}]})
        return httpx.Response(503, json={"code": 503, "status": "x", "message": "later"})

    http = httpx.Client(base_url="http://server.test", transport=httpx.MockTransport(answer))
    report = Syncer(capturer.home, capturer.config, queue, http).run_once()

    assert seen[:2] == [locked.manifest_id, fine.manifest_id]
    assert report.registered == 1
    assert [key for key, _ in report.deferred][0] == (locked.manifest_id, 0)
    states = {i.manifest_id: i.state for i in queue.items()}
    assert states[locked.manifest_id] is ItemState.CAPTURED
    assert queue.item((fine.manifest_id, 0)).evidence_id == "ev-b"
