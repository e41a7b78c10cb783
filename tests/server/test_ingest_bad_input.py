"""Ingest of bad and hostile input: each gets its clear error or flag; the server stays healthy."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image

from server.models import Upload
from storage.keys import original_key
from tests.server.conftest import World, parts
from tests.server.ingest_support import Tus, announce, metadata, receipt_of, sync_runtime
from tests.server.manifest_support import event_types


@pytest.fixture
def tus_world(world: World) -> World:
    sync_runtime(world.app)
    return world


def upload_whole(world: World, name: str, data: bytes, media_type: str) -> tuple[str, object]:
    announced = announce(world, [(name, data, media_type)], case_no=f"罚-{os.urandom(3).hex()}")
    evidence_id = announced.evidence[0]["evidence_id"]
    tus = Tus(world.app.test_client(), announced.device.token)
    response = tus.create(len(data), metadata(evidence_id=evidence_id, filename=name), body=data)
    return evidence_id, response


def png_bomb() -> bytes:
    """A tiny PNG whose header declares 12000 × 12000 pixels (144 Mpx)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 12000, 12000, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" + b"\x00" * 3 * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def jpeg(size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG", quality=90)
    return out.getvalue()


def inspection(world: World, evidence_id: str) -> dict:  # type: ignore[type-arg]
    response = world.as_("a_insp1").get(f"/evidence/{evidence_id}/inspection")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def flag_codes(report: dict) -> set[str]:  # type: ignore[type-arg]
    return {f["code"] for f in (report["report"] or {}).get("flags", [])}


def test_bytes_differing_from_the_manifest_are_quarantined_and_refused(tus_world: World) -> None:
    signed = os.urandom(200_000)
    announced = announce(tus_world, [("a.bin", signed, "application/octet-stream")])
    evidence_id = announced.evidence[0]["evidence_id"]
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    other = bytearray(signed)
    other[1234] ^= 0xFF
    response = tus.create(len(other), metadata(evidence_id=evidence_id), body=bytes(other))
    assert response.status_code == 422
    body = response.get_json()
    assert "recapture or check the device" in body["message"] and "重新采集" in body["message"]
    store = parts(tus_world.app).store
    assert not store.exists(original_key(announced.evidence[0]["sha256"]))
    assert any(k.startswith("quarantine/") for k in store.list("quarantine/"))
    assert "ingest_mismatch" in event_types(tus_world.as_("a_reviewer"), announced.case["id"])
    meta = tus_world.as_("a_reviewer").get(f"/evidence/{evidence_id}").get_json()
    assert meta["status"] == "mismatch"
    # The right bytes afterwards are accepted.
    fixed = tus.create(len(signed), metadata(evidence_id=evidence_id), body=signed)
    assert (
        fixed.status_code == 201 and receipt_of(fixed)["sha256"] == announced.evidence[0]["sha256"]
    )


def test_image_bomb_is_stored_as_evidence_but_flagged(tus_world: World) -> None:
    evidence_id, response = upload_whole(tus_world, "bomb.png", png_bomb(), "image/png")
    assert response.status_code == 201  # type: ignore[attr-defined]
    report = inspection(tus_world, evidence_id)
    assert report["status"] in ("done", "failed")
    assert "image_bomb" in flag_codes(report), report
    assert tus_world.as_(None).get("/health").status_code == 200
    assert tus_world.as_("a_insp1").get(f"/evidence/{evidence_id}/thumbnail").status_code == 404


def test_truncated_jpeg_is_flagged_and_a_good_one_gets_a_thumbnail(tus_world: World) -> None:
    whole = jpeg()
    evidence_id, response = upload_whole(
        tus_world, "cut.jpg", whole[: len(whole) // 2], "image/jpeg"
    )
    assert response.status_code == 201  # type: ignore[attr-defined]
    assert "truncated" in flag_codes(inspection(tus_world, evidence_id))

    good_id, _ = upload_whole(tus_world, "ok.jpg", whole, "image/jpeg")
    thumb = tus_world.as_("a_insp1").get(f"/evidence/{good_id}/thumbnail")
    assert thumb.status_code == 200 and thumb.data[:2] == b"\xff\xd8"
    assert "viewed" in event_types(tus_world.as_("a_reviewer"), _case_of(tus_world, good_id))


def _case_of(world: World, evidence_id: str) -> str:
    case_id: str = world.as_("a_reviewer").get(f"/evidence/{evidence_id}").get_json()["case_id"]
    return case_id


def test_playlist_referencing_a_local_file_is_flagged_and_not_followed(tus_world: World) -> None:
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    evidence_id, response = upload_whole(
        tus_world, "list.m3u8", playlist, "application/vnd.apple.mpegurl"
    )
    assert response.status_code == 201  # type: ignore[attr-defined]
    report = inspection(tus_world, evidence_id)
    assert "references_external_resource" in flag_codes(report), report
    assert "root:x:" not in str(report)


def test_hostile_file_names_are_metadata_only(tus_world: World, engine) -> None:  # type: ignore[no-untyped-def]
    data = b"same bytes, hostile names"
    names = ["../../etc/passwd", "a\u202egnp.exe", "名" * 120, "nul\x00byte"]
    announced = announce(
        tus_world, [(f"f{i}.bin", data, "application/octet-stream") for i in range(1)]
    )
    evidence_id = announced.evidence[0]["evidence_id"]
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    for name in names[:-1]:
        created = tus.create(len(data), metadata(evidence_id=evidence_id, filename=name))
        assert created.status_code == 201
    final = tus.create(len(data), metadata(evidence_id=evidence_id, filename=names[0]), body=data)
    assert final.status_code == 201
    key = parts(tus_world.app).store.list("originals/")
    assert list(key) == [original_key(announced.evidence[0]["sha256"])]
    from sqlalchemy import select

    with parts(tus_world.app).unit_of_work() as uow:
        kept = set(uow.session.scalars(select(Upload.filename)))
    assert set(names[:-1]) <= kept
