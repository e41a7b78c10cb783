"""The tus 1.0.0 protocol at /api/v1/uploads, over the Flask app (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from datetime import timedelta

import pytest
from flask import Flask
from gunicorn.http.errors import InvalidChunkSize
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from server.api.uploads import _ChunkedBody
from server.models import utcnow
from server.services.custody import note_signer
from server.services.ingest import ClientGone, _body_blocks
from server.services.receipts import receipt_problems
from tests.server.conftest import World, parts, snapshot
from tests.server.ingest_support import Tus, announce, checksum, metadata, receipt_of, sync_runtime


@pytest.fixture
def tus_world(world: World) -> World:
    sync_runtime(world.app)
    return world


def verifier_key(app: Flask) -> str:
    p = parts(app)
    return note_signer(p.require_signing_key(), p.settings.log_origin).verifier().key_string()


def test_options_announces_version_extensions_and_checksums(tus_world: World) -> None:
    response = tus_world.app.test_client().options(
        "/api/v1/uploads", headers={"Origin": "https://field.example"}
    )
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "checksum",
        "termination",
        "expiration",
    }
    assert "sha1" in response.headers["Tus-Checksum-Algorithm"].split(",")
    assert int(response.headers["Tus-Max-Size"]) >= 2 << 30
    # An origin not on CASETRAIL_CORS_ORIGINS gets no CORS grant (tests/server/test_cross_origin.py).
    assert "Access-Control-Allow-Origin" not in response.headers


def test_chunked_upload_with_checksums_stores_evidence_and_signed_receipt(
    tus_world: World,
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    announced = announce(tus_world, [("现场照片.bin", data, "application/octet-stream")])
    evidence = announced.evidence[0]
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    created = tus.create(len(data), metadata(evidence_id=evidence["evidence_id"], filename="x"))
    assert created.status_code == 201, created.get_json()
    location = created.headers["Location"]
    assert created.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" in created.headers

    offset = 0
    for size in (1024 * 1024, 1024 * 1024 + 5, len(data)):
        chunk = data[offset : offset + size]
        response = tus.patch(location, offset, chunk, **{"Upload-Checksum": checksum(chunk)})
        assert response.status_code == 204, response.get_json()
        offset += len(chunk)
        assert int(response.headers["Upload-Offset"]) == offset
        head = tus.head(location)
        assert head.status_code == 200 and int(head.headers["Upload-Offset"]) == offset
        assert head.headers["Cache-Control"] == "no-store"
        if offset == len(data):
            break

    receipt = receipt_of(response)
    assert receipt["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert receipt["evidence_id"] == evidence["evidence_id"] and receipt["size"] == len(data)
    assert receipt_problems(receipt, verifier_key(tus_world.app)) == []
    tampered = {**receipt, "size": receipt["size"] + 1}
    assert receipt_problems(tampered, verifier_key(tus_world.app)) != []

    stored = tus_world.as_("a_reviewer").get(f"/evidence/{evidence['evidence_id']}").get_json()
    assert stored["status"] == "stored" and stored["sha512"].startswith("sha512:")
    again = tus_world.as_("a_insp1").get(f"/evidence/{evidence['evidence_id']}/receipt")
    assert again.status_code == 200 and again.get_json() == receipt

    # The same file again: the same evidence and receipt, no bytes needed.
    repeat = tus.create(len(data), metadata(evidence_id=evidence["evidence_id"]))
    assert repeat.status_code == 201
    assert int(repeat.headers["Upload-Offset"]) == len(data)
    assert receipt_of(repeat) == receipt


def test_protocol_errors_use_the_one_shape_and_change_nothing(tus_world: World, engine) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(64 * 1024)
    announced = announce(tus_world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    meta = metadata(evidence_id=announced.evidence[0]["evidence_id"])
    location = tus.create(len(data), meta).headers["Location"]
    tus.patch(location, 0, data[:1000])
    before = snapshot(engine)

    bad_sum = tus.patch(location, 1000, data[1000:2000], **{"Upload-Checksum": checksum(b"x")})
    assert bad_sum.status_code == 460
    assert bad_sum.get_json()["code"] == 460 and "Upload-Checksum" in bad_sum.get_json()["message"]
    assert bad_sum.headers["Tus-Resumable"] == "1.0.0"
    wrong_offset = tus.patch(location, 999, data[999:2000])
    assert wrong_offset.status_code == 409 and "HEAD" in wrong_offset.get_json()["message"]
    beyond = tus.patch(location, 1000, data[1000:] + b"extra")
    assert beyond.status_code == 413 and beyond.get_json()["code"] == 413
    no_type = tus_world.app.test_client().patch(
        location, data=b"x", headers={**tus.auth, "Upload-Offset": "1000"}
    )
    assert no_type.status_code == 415
    old = tus_world.app.test_client().head(
        location, headers={"Authorization": tus.auth["Authorization"], "Tus-Resumable": "0.2.2"}
    )
    assert old.status_code == 412
    wrong_length = tus.create(len(data) + 1, meta)
    assert wrong_length.status_code == 422 and "Upload-Length" in wrong_length.get_json()["errors"]
    after = snapshot(engine)
    assert after == before
    assert int(tus.head(location).headers["Upload-Offset"]) == 1000


def test_another_inspectors_upload_url_is_not_found(tus_world: World) -> None:
    data = b"evidence bytes"
    announced = announce(tus_world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    location = tus.create(
        len(data), metadata(evidence_id=announced.evidence[0]["evidence_id"])
    ).headers["Location"]
    outsider = Tus(tus_world.app.test_client(), tus_world.people["a_insp3"].token)
    other_agency = Tus(tus_world.app.test_client(), tus_world.people["b_admin"].token)
    for client in (outsider, other_agency):
        assert client.head(location).status_code == 404
        assert client.patch(location, 0, data).status_code == 404
        assert client.delete(location).status_code == 404
        created = client.create(
            len(data), metadata(evidence_id=announced.evidence[0]["evidence_id"])
        )
        assert created.status_code == 404
    assert int(tus.head(location).headers["Upload-Offset"]) == 0


def test_zero_byte_file_completes_at_creation_with_a_receipt(tus_world: World) -> None:
    announced = announce(tus_world, [("empty.txt", b"", "text/plain")])
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    created = tus.create(0, metadata(evidence_id=announced.evidence[0]["evidence_id"]))
    assert created.status_code == 201
    assert created.headers["Upload-Offset"] == "0"
    receipt = receipt_of(created)
    assert receipt["sha256"] == "sha256:" + hashlib.sha256(b"").hexdigest()
    assert receipt_problems(receipt, verifier_key(tus_world.app)) == []


def test_termination_discards_bytes_and_allows_a_new_upload(tus_world: World) -> None:
    data = os.urandom(10_000)
    announced = announce(tus_world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    meta = metadata(evidence_id=announced.evidence[0]["evidence_id"])
    location = tus.create(len(data), meta).headers["Location"]
    tus.patch(location, 0, data[:5000])
    assert tus.delete(location).status_code == 204
    ended = _ended_events(tus_world, announced.case["id"])
    assert [e["details"] for e in ended] == [
        {
            "evidence_id": announced.evidence[0]["evidence_id"],
            "upload_id": location.rsplit("/", 1)[1],
            "reason": "terminated",
            "bytes_received": 5000,
            "length": len(data),
        }
    ]
    page = tus_world.as_("a_reviewer").get(f"/cases/{announced.case['id']}/custody").get_json()
    started = [i["event"] for i in page["items"] if i["event"]["type"] == "upload_started"]
    assert ended[0]["actor"] == started[0]["actor"]  # the device that terminated it
    assert tus.head(location).status_code == 410
    assert tus.patch(location, 5000, data[5000:]).status_code == 410
    fresh = tus.create(len(data), meta, body=data)
    assert fresh.status_code == 201 and int(fresh.headers["Upload-Offset"]) == len(data)
    assert receipt_of(fresh)["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()


def _ended_events(world: World, case_id: str) -> list[dict[str, object]]:
    page = world.as_("a_reviewer").get(f"/cases/{case_id}/custody?limit=500").get_json()
    return [i["event"] for i in page["items"] if i["event"]["type"] == "upload_ended"]


def test_an_expired_upload_ends_with_a_custody_event_and_evidence_is_expected_again(
    tus_world: World,
) -> None:
    data = os.urandom(10_000)
    announced = announce(tus_world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    evidence_id = announced.evidence[0]["evidence_id"]
    location = tus.create(len(data), metadata(evidence_id=evidence_id)).headers["Location"]
    tus.patch(location, 0, data[:3000])
    reviewer = tus_world.as_("a_reviewer")
    assert reviewer.get(f"/evidence/{evidence_id}").get_json()["status"] == "uploading"
    later = utcnow() + timedelta(days=30)
    assert parts(tus_world.app).ingest.expire(later) == 1
    ended = _ended_events(tus_world, announced.case["id"])
    assert [(e["details"]["reason"], e["details"]["bytes_received"]) for e in ended] == [
        ("expired", 3000)
    ]
    assert ended[0]["actor"] == {"id": "system", "role": "system"}
    assert reviewer.get(f"/evidence/{evidence_id}").get_json()["status"] == "expected"
    assert parts(tus_world.app).ingest.expire(later) == 0  # ended once, one event
    assert len(_ended_events(tus_world, announced.case["id"])) == 1


def _patch_chunked(app: Flask, location: str, body: bytes, auth: dict[str, str], offset: int):  # type: ignore[no-untyped-def]
    """PATCH like a WSGI server does for ``Transfer-Encoding: chunked``: no Content-Length."""
    environ = EnvironBuilder(
        path=location,
        method="PATCH",
        input_stream=io.BytesIO(body),
        headers={
            **auth,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Transfer-Encoding": "chunked",
        },
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    return Response.from_app(app, environ)


def test_a_chunked_patch_past_upload_length_is_413_and_nothing_completes(
    tus_world: World,
) -> None:
    data = os.urandom(300_000)
    announced = announce(tus_world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    evidence_id = announced.evidence[0]["evidence_id"]
    location = tus.create(len(data), metadata(evidence_id=evidence_id)).headers["Location"]
    assert tus.patch(location, 0, data[:100_000]).status_code == 204

    too_long = _patch_chunked(tus_world.app, location, data[100_000:] + b"EXTRA", tus.auth, 100_000)
    assert too_long.status_code == 413 and too_long.json["code"] == 413  # type: ignore[index]
    assert "Upload-Length" in too_long.json["message"]  # type: ignore[index]
    head = tus.head(location)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "100000"
    reviewer = tus_world.as_("a_reviewer")
    assert reviewer.get(f"/evidence/{evidence_id}").get_json()["status"] == "uploading"

    done = _patch_chunked(tus_world.app, location, data[100_000:], tus.auth, 100_000)
    assert done.status_code == 204
    assert receipt_of(done)["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert reviewer.get(f"/evidence/{evidence_id}").get_json()["status"] == "stored"


def test_only_a_lost_or_malformed_body_reads_as_a_client_gone() -> None:
    class Broken:
        def __init__(self, error: Exception) -> None:
            self.error = error

        def read(self, size: int = -1, /) -> bytes:
            raise self.error

    with pytest.raises(ClientGone):  # connection reset: 400, the bytes read were kept
        list(_body_blocks(Broken(ConnectionResetError()), 10, True))
    with pytest.raises(ClientGone):  # gunicorn's chunk parser, through the API's wrapper
        list(_body_blocks(_ChunkedBody(Broken(InvalidChunkSize(b"zz"))), 10, False))
    with pytest.raises(KeyError):  # a bug is a bug (500, logged), not a "client went away"
        list(_body_blocks(Broken(KeyError("bug")), 10, True))


def test_a_checksummed_chunk_above_the_cap_is_413_and_nothing_is_stored(
    tus_world: World,
    engine,  # type: ignore[no-untyped-def]
) -> None:
    ingest = parts(tus_world.app).ingest
    ingest.config = dataclasses.replace(ingest.config, checksum_chunk_max=100_000)
    options = tus_world.app.test_client().options("/api/v1/uploads")
    assert options.headers["CaseTrail-Checksum-Chunk-Max"] == "100000"
    data = os.urandom(250_000)
    announced = announce(tus_world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    meta = metadata(evidence_id=announced.evidence[0]["evidence_id"])

    before = snapshot(engine)
    whole = tus.create(len(data), meta, body=data, **{"Upload-Checksum": checksum(data)})
    assert whole.status_code == 413 and "chunk_size" in whole.get_json()["message"]
    assert snapshot(engine) == before  # no upload was created

    location = tus.create(len(data), meta).headers["Location"]
    big = tus.patch(location, 0, data[:150_000], **{"Upload-Checksum": checksum(data[:150_000])})
    assert big.status_code == 413 and "CaseTrail-Checksum-Chunk-Max" in big.get_json()["message"]
    chunked = _patch_chunked(
        tus_world.app,
        location,
        data[:150_000],
        {**tus.auth, "Upload-Checksum": checksum(data[:150_000])},
        0,
    )
    assert chunked.status_code == 413
    assert tus.head(location).headers["Upload-Offset"] == "0"

    offset = 0
    for piece in (data[:100_000], data[100_000:200_000], data[200_000:]):
        sent = tus.patch(location, offset, piece, **{"Upload-Checksum": checksum(piece)})
        assert sent.status_code == 204, sent.get_json()
        offset += len(piece)
    assert receipt_of(sent)["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_body_posted_to_stored_evidence_is_compared_not_thrown_away(
    tus_world: World,
    engine,  # type: ignore[no-untyped-def]
) -> None:
    data = os.urandom(50_000)
    announced = announce(tus_world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    meta = metadata(evidence_id=announced.evidence[0]["evidence_id"])
    first = tus.create(len(data), meta, body=data)
    assert first.status_code == 201
    receipt = receipt_of(first)

    other = bytes(b ^ 0xFF for b in data)  # same length, different bytes
    before = snapshot(engine)
    refused = tus.create(len(data), meta, body=other)
    assert refused.status_code == 409 and refused.get_json()["code"] == 409
    assert "nothing was changed" in refused.get_json()["message"]
    assert snapshot(engine) == before
    refused_part = tus.create(len(data), meta, body=other[:10_000])  # a first chunk
    assert refused_part.status_code == 409
    assert snapshot(engine) == before

    again = tus.create(len(data), meta, body=data)  # a retry of the same bytes
    assert again.status_code == 201 and receipt_of(again) == receipt
    assert again.headers["Upload-Offset"] == str(len(data))
    first_chunk = tus.create(len(data), meta, body=data[:10_000])
    assert first_chunk.status_code == 201 and receipt_of(first_chunk) == receipt
