"""What an attacker probing the API finds: headers, leaks, sniffed types, throttled guessing."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest
from PIL import Image

from core.keys import export_public_key, generate_private_key
from server.db import make_engine
from server.services.devices import EnrolmentThrottle
from server.services.receipts import receipt_problems
from tests.server.conftest import World
from tests.server.ingest_support import Tus, announce, metadata, sync_runtime


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def _stored(world: World, files: list[tuple[str, bytes, str]]) -> tuple[list[str], str]:
    sync_runtime(world.app)
    announced = announce(world, files)
    tus = Tus(world.app.test_client(), announced.device.token)
    ids = []
    for entry, (_, data, _) in zip(announced.evidence, files, strict=True):
        evidence_id = entry["evidence_id"]
        created = tus.create(len(data), metadata(evidence_id=evidence_id), body=data)
        assert created.status_code == 201, created.get_json()
        ids.append(evidence_id)
    return ids, announced.case["id"]


def test_content_is_served_as_sniffed_never_as_declared(world: World) -> None:
    page = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
    photo = _jpeg()
    (html_id, jpeg_id), _ = _stored(
        world, [("x.html", page, "text/html"), ("p.jpg", photo, "application/octet-stream")]
    )
    reviewer = world.as_("a_reviewer")
    html = reviewer.get(f"/evidence/{html_id}/content")
    assert html.status_code == 200 and html.data == page
    assert html.mimetype == "text/plain"  # what the bytes are, not the device's text/html
    assert html.headers["Content-Disposition"] == "attachment"
    assert html.headers["X-Content-Type-Options"] == "nosniff"
    jpeg = reviewer.get(f"/evidence/{jpeg_id}/content")
    assert jpeg.mimetype == "image/jpeg" and jpeg.data == photo
    ranged = reviewer.client.get(
        f"/api/v1/evidence/{jpeg_id}/content", headers={**reviewer.headers, "Range": "bytes=100-"}
    )
    assert ranged.status_code == 206 and ranged.mimetype == "image/jpeg"


def test_private_json_is_no_store_and_every_answer_is_nosniff(world: World) -> None:
    (evidence_id,), case_id = _stored(world, [("p.jpg", _jpeg(), "image/jpeg")])
    reviewer = world.as_("a_reviewer")
    for path in (
        "/me",
        "/cases",
        f"/cases/{case_id}",
        f"/cases/{case_id}/custody",
        f"/evidence/{evidence_id}",
        f"/evidence/{evidence_id}/receipt",
        f"/evidence/{evidence_id}/inspection",
    ):
        response = reviewer.get(path)
        assert response.status_code == 200, (path, response.get_json())
        assert response.headers["Cache-Control"] == "no-store", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
    refused = world.as_(None).get("/me")
    assert refused.status_code == 401 and refused.headers["X-Content-Type-Options"] == "nosniff"
    thumbnail = reviewer.get(f"/evidence/{evidence_id}/thumbnail")
    assert thumbnail.status_code == 200 and "private" in thumbnail.headers["Cache-Control"]
    assert thumbnail.headers["X-Content-Type-Options"] == "nosniff"


def test_inspection_report_names_no_storage_key_and_receipt_is_served_as_signed(
    world: World,
) -> None:
    (evidence_id,), _ = _stored(world, [("p.jpg", _jpeg(), "image/jpeg")])
    reviewer = world.as_("a_reviewer")
    inspection = reviewer.get(f"/evidence/{evidence_id}/inspection").get_json()
    assert inspection["status"] == "done"
    text = json.dumps(inspection)
    assert '"key"' not in text and "derived/" not in text and "originals/" not in text
    thumbnail = inspection["report"]["derivatives"]["thumbnail"]
    assert thumbnail["href"] == f"/api/v1/evidence/{evidence_id}/thumbnail"
    assert reviewer.get(thumbnail["href"].removeprefix("/api/v1")).status_code == 200
    receipt = reviewer.get(f"/evidence/{evidence_id}/receipt").get_json()
    key = reviewer.get("/log/public-key").get_json()
    assert receipt_problems(receipt, key.get("verifier_key") or key["key"]) == []


def test_openapi_documents_the_200_answers_of_evidence_reads(world: World) -> None:
    spec = world.as_(None).get("/openapi.json").get_json()
    paths = spec["paths"]
    for path in (
        "/api/v1/evidence/{evidence_id}/inspection",
        "/api/v1/evidence/{evidence_id}/receipt",
    ):
        assert "schema" in paths[path]["get"]["responses"]["200"]["content"]["application/json"]
    content = paths["/api/v1/evidence/{evidence_id}/content"]["get"]["responses"]["200"]
    assert {"image/jpeg", "video/mp4", "application/pdf", "text/plain"} <= set(content["content"])
    assert "text/html" not in content["content"]


def test_health_shows_the_version_only_with_a_valid_token(world: World) -> None:
    anonymous = world.as_(None).get("/health").get_json()
    assert anonymous["status"] == "ok" and "version" not in anonymous
    forged = world.token_api("ct_" + "x" * 40).get("/health").get_json()
    assert forged["status"] == "ok" and "version" not in forged
    assert world.as_("a_insp1").get("/health").get_json()["version"]


def test_enrolment_code_guessing_is_throttled_and_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    anonymous = world.as_(None)
    key = export_public_key(generate_private_key("Ed25519").public_key())
    guess = {"enrolment_code": "WRONG-CODE", "alg": "Ed25519", "public_key": key}
    caplog.set_level(logging.WARNING, "casetrail.security")
    answers = [anonymous.post("/devices/enrol", guess) for _ in range(11)]
    assert [a.status_code for a in answers] == [401] * 10 + [429]
    throttled = answers[-1]
    assert int(throttled.headers["Retry-After"]) > 0
    body = throttled.get_json()
    assert body["code"] == 429 and "秒后再试" in body["message"]
    assert sum("wrong enrolment code" in r.getMessage() for r in caplog.records) == 10
    assert any("throttled" in r.getMessage() for r in caplog.records)


def test_throttle_forgets_failures_after_its_window() -> None:
    now = [1000.0]
    throttle = EnrolmentThrottle(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 61 and throttle.retry_after("10.0.0.2") == 0
    now[0] += 30
    assert throttle.retry_after("10.0.0.1") == 31
    now[0] += 31
    assert throttle.retry_after("10.0.0.1") == 0


def test_the_sqlite_database_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "casetrail.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            connection.commit()
        for name in ("casetrail.db", "casetrail.db-wal", "casetrail.db-shm"):
            assert (path.parent / name).stat().st_mode & 0o777 == 0o600, name
    finally:
        engine.dispose()
    path.chmod(0o644)  # an older installation's file is tightened on the next start
    make_engine(f"sqlite:///{path}").dispose()
    assert os.stat(path).st_mode & 0o777 == 0o600
