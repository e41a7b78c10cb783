"""A file the server holds whole but has not stored yet is asked for again, never given up.

A server process that died between an upload's last byte and its completion leaves
``GET /evidence/{id}/receipt`` answering 404 "not stored yet" (issue 18).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from field_client.capture import Capturer, CaptureRequest
from field_client.queue import ItemState, Queue
from field_client.sync import Syncer
from tests.field_client.conftest import make_file

UPLOAD_URL = "http://server.test/api/v1/uploads/0c1f6a2e-5c4b-4f7e-9a51-1d2e3f405060"


def test_an_uploaded_file_without_its_receipt_is_deferred_not_failed(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    captured = capturer.capture([make_file(tmp_path / "a.mp4", 300)], request_facts)
    key = (captured.manifest_id, 0)
    queue.mark_registered(captured.manifest_id, {0: "ev-a"})
    queue.mark_uploading(key, UPLOAD_URL, 300)
    queue.mark_uploaded(key, None)  # HEAD said every byte is there; no receipt came
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        if request.method == "HEAD" and str(request.url) == UPLOAD_URL:
            return httpx.Response(200, headers={"Upload-Offset": "300", "Upload-Length": "300"})
        if request.url.path == "/api/v1/evidence/ev-a/receipt":
            message = "证据尚未入库，请在其上传完成后重试 (not stored yet)"
            return httpx.Response(
                404, json={"code": 404, "status": "Not Found", "message": message}
            )
        return httpx.Response(500, json={"code": 500, "status": "x", "message": "unexpected"})

    http = httpx.Client(base_url="http://server.test", transport=httpx.MockTransport(answer))
    report = Syncer(capturer.home, capturer.config, queue, http).run_once()

    assert report.failed == []
    assert [k for k, _ in report.deferred] == [key]
    assert "尚未完成入库" in report.deferred[0][1]
    assert not report.offline  # only this file waits; the pass went on
    assert queue.item(key).state is ItemState.UPLOADED
    # the upload was asked again (HEAD makes the server complete it), then the receipt
    assert asked == [
        "GET /api/v1/evidence/ev-a/receipt",
        f"HEAD {UPLOAD_URL.removeprefix('http://server.test')}",
        "GET /api/v1/evidence/ev-a/receipt",
    ]
