"""tus refusals come from the one error table: the one JSON shape, the tus headers, settings."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from werkzeug.test import TestResponse

from server.app import create_app
from tests.server.conftest import World, parts
from tests.server.ingest_support import Tus, announce, checksum, metadata, sync_runtime


def _upload(world: World, size: int = 4096) -> tuple[Tus, str, bytes]:
    sync_runtime(world.app)
    data = os.urandom(size)
    announced = announce(world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(world.app.test_client(), announced.device.token)
    created = tus.create(len(data), metadata(evidence_id=announced.evidence[0]["evidence_id"]))
    return tus, created.headers["Location"], data


def _shape(response: TestResponse, code: int, status: str) -> dict[str, Any]:
    body: dict[str, Any] = response.get_json()
    assert response.status_code == code
    assert body["code"] == code and body["status"] == status
    assert "(" in body["message"]  # Chinese first, English alongside
    assert response.headers["Tus-Resumable"] == "1.0.0"
    return body


def test_each_tus_refusal_has_its_status_the_one_shape_and_the_tus_headers(world: World) -> None:
    tus, location, data = _upload(world)
    client = world.app.test_client()

    old = tus.patch(location, 0, data[:100], **{"Tus-Resumable": "0.2.2"})
    body = _shape(old, 412, "Precondition Failed")
    assert old.headers["Tus-Version"] == "1.0.0" and "Tus-Resumable" in body["errors"]

    bad_sum = tus.patch(location, 0, data[:100], **{"Upload-Checksum": checksum(b"x")})
    _shape(bad_sum, 460, "Checksum Mismatch")
    assert "Tus-Version" not in bad_sum.headers  # only the 412 announces versions

    plain = client.patch(location, data=b"x", headers={**tus.auth, "Upload-Offset": "0"})
    _shape(plain, 415, "Unsupported Media Type")

    assert tus.delete(location).status_code == 204
    assert tus.head(location).status_code == 410  # HEAD: status and headers, no body
    _shape(tus.patch(location, 0, data), 410, "Gone")


def test_upload_limit_and_lease_come_from_settings(world: World) -> None:
    settings = dataclasses.replace(
        parts(world.app).settings, max_upload_size=1000, upload_lease_seconds=30
    )
    app = create_app(settings)
    try:
        options = app.test_client().options("/api/v1/uploads")
        assert options.headers["Tus-Max-Size"] == "1000"
        config = parts(app).ingest.config
        assert config.max_size == 1000 and config.lock_ttl.total_seconds() == 30
    finally:
        parts(app).close()
