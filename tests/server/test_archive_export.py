"""Case-file export over HTTP: a real case, ingested through the API, exported as a BagIt bag."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import bagit
import blake3
import pytest
from click.testing import CliRunner
from sqlalchemy import update

from core.verify import leaf_hash as rfc6962_leaf
from core.verify import open_checkpoint, verify_bag, verify_inclusion
from server.archive.bag import FixityMismatch
from server.cli import main as cli
from server.models import Evidence
from tests.server.archive_support import Capture, extract_tar, ingest_case
from tests.server.conftest import World, parts

PHOTO = ("IMG_0001.jpg", b"\xff\xd8\xff\xe0" + b"photo-bytes" * 3000, "image/jpeg")
RECORD = ("现场检查笔录.pdf", b"%PDF-1.4\n" + b"x" * 5000, "application/pdf")
VIDEO = ("VID_0002.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 400, "video/mp4")
SITE = "data/03_site-inspection_调查取证·现场检查／勘验"
CAPTURES = [
    Capture("site-inspection", "site-inspection-record", [RECORD, PHOTO]),
    Capture("site-inspection", "electronic-data-record", [VIDEO]),
]


def _types(world: World, case_id: str) -> list[str]:
    page = world.as_("a_admin").get(f"/cases/{case_id}/custody?limit=500").get_json()
    return [item["event"]["type"] for item in page["items"]]


def ranged(api: Any, path: str, headers: dict[str, str]) -> Any:
    return api.client.get("/api/v1" + path, headers={**api.headers, **headers})


def _export(world: World, case_id: str, who: str = "a_archivist", fmt: str = "tar") -> Any:
    return world.as_(who).post(f"/cases/{case_id}/export?format={fmt}")


def test_a_real_case_exports_as_a_bag_that_bagit_and_casetrail_verify(
    world: World, tmp_path: Path
) -> None:
    ingested = ingest_case(world, CAPTURES)
    case_id = ingested.case["id"]
    response = _export(world, case_id)
    assert response.status_code == 200, response.get_json()
    body = response.data
    assert response.headers["Content-Type"] == "application/x-tar"
    assert int(response.headers["Content-Length"]) == len(body)
    export_id = response.headers["CaseTrail-Export-Id"]
    assert response.headers["Content-Location"] == f"/api/v1/cases/{case_id}/exports/{export_id}"
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]

    bag_dir = extract_tar(body, tmp_path / "x")
    bagit.Bag(str(bag_dir)).validate()  # FULL validation (every file re-hashed), not fast

    # originals byte-identical, arranged by stage / record type / NNN_name
    files = sorted(
        p.relative_to(bag_dir).as_posix() for p in (bag_dir / "data").rglob("*") if p.is_file()
    )
    assert files == [
        f"{SITE}/electronic-data-record_电子数据证据提取笔录/001_VID_0002.mp4",
        f"{SITE}/site-inspection-record_现场检查（勘验）笔录/001_现场检查笔录.pdf",
        f"{SITE}/site-inspection-record_现场检查（勘验）笔录/002_IMG_0001.jpg",
    ], files
    assert (bag_dir / files[0]).read_bytes() == VIDEO[1]
    assert (bag_dir / files[1]).read_bytes() == RECORD[1]

    info = (bag_dir / "bag-info.txt").read_text("utf-8")
    assert "External-Identifier: 黔市监罚〔2026〕8号" in info
    assert "Source-Organization: A-AGENCY 市场监督管理局" in info
    assert f"Payload-Oxum: {len(PHOTO[1]) + len(RECORD[1]) + len(VIDEO[1])}.3" in info
    assert "Internal-Sender-Description: 行政处罚" in info

    report = verify_bag(bag_dir)
    assert report.problems == [], report.problems
    assert report.payload_files == 3
    on_tar = tmp_path / "bag.tar"
    on_tar.write_bytes(body)
    assert verify_bag(on_tar).problems == []

    result = CliRunner().invoke(cli, ["verify", str(on_tar)])
    assert result.exit_code == 0, result.output
    assert "校验通过 verified" in result.output and "重新计算完整性" in result.output

    # the seal: exported (in the bag) then bag_sealed (in the log only), each checkpointed
    types = _types(world, case_id)
    assert types[-2:] == ["exported", "bag_sealed"]
    events = (bag_dir / "casetrail/custody/events.jsonl").read_text("utf-8").splitlines()
    assert json.loads(events[-1])["type"] == "exported"
    assert "bag_sealed" not in "".join(events)
    page = world.as_("a_archivist").get(f"/cases/{case_id}/custody?limit=500").get_json()
    sealed = page["items"][-1]
    tag_sha256 = (bag_dir / "tagmanifest-sha256.txt").read_bytes()
    import hashlib

    assert sealed["event"]["details"]["tag_manifests"]["tagmanifest-sha256.txt"] == (
        "sha256:" + hashlib.sha256(tag_sha256).hexdigest()
    )
    proof = (
        world.as_("a_archivist").get(f"/log/events/{sealed['event']['event_id']}/proof").get_json()
    )
    key = world.as_("a_archivist").get("/log/public-key").get_json()["verifier_key"]
    cp = open_checkpoint(proof["checkpoint"]["note"], key)
    verify_inclusion(
        rfc6962_leaf(
            json.dumps(
                sealed["event"], ensure_ascii=False, sort_keys=True, separators=(",", ":")
            ).encode()
        ),
        proof["leaf_index"],
        cp.size,
        [base64.b64decode(h) for h in proof["hashes"]],
        cp.root_hash,
    )


def test_zip_export_validates_too_and_the_stand_alone_verifier_reads_it(
    world: World, tmp_path: Path
) -> None:
    ingested = ingest_case(world, CAPTURES[:1])
    response = _export(world, ingested.case["id"], fmt="zip")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    data = response.data
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None  # every CRC-32 right
        z.extractall(tmp_path / "z")
    (bag_dir,) = (tmp_path / "z").iterdir()
    bagit.Bag(str(bag_dir)).validate()
    on_zip = tmp_path / "bag.zip"
    on_zip.write_bytes(data)
    assert verify_bag(on_zip).problems == []


def test_a_sealed_export_downloads_again_byte_identical_and_resumes_with_range(
    world: World,
) -> None:
    ingested = ingest_case(world, CAPTURES)
    case_id = ingested.case["id"]
    first = _export(world, case_id)
    full = first.data
    location = first.headers["Content-Location"].removeprefix("/api/v1")
    api = world.as_("a_archivist")

    again = api.get(location)
    assert again.status_code == 200 and again.data == full
    cut = len(full) * 2 // 3
    resumed = ranged(api, location, {"Range": f"bytes={cut}-"})
    assert resumed.status_code == 206
    assert resumed.headers["Content-Range"] == f"bytes {cut}-{len(full) - 1}/{len(full)}"
    assert full[:cut] + resumed.data == full
    middle = ranged(api, location, {"Range": "bytes=700-5000"})
    assert middle.status_code == 206 and middle.data == full[700:5001]
    stale = ranged(api, location, {"Range": "bytes=10-", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.data == full
    beyond = ranged(api, location, {"Range": f"bytes={len(full) + 5}-"})
    assert beyond.status_code == 416 and beyond.get_json()["code"] == 416
    # every read of the case file is a custody event, and re-downloads never re-seal
    types = _types(world, case_id)
    assert types.count("exported") == 1 and types.count("bag_sealed") == 1
    assert types.count("downloaded") == 5


def test_zip_ranges_that_need_crcs_re_read_and_match(world: World) -> None:
    ingested = ingest_case(world, CAPTURES)
    first = _export(world, ingested.case["id"], fmt="zip")
    full = first.data
    api = world.as_("a_archivist")
    location = first.headers["Content-Location"].removeprefix("/api/v1")
    tail = ranged(api, location, {"Range": "bytes=-300"})
    assert tail.status_code == 206 and tail.data == full[-300:]


def test_get_creates_no_export_it_only_reads_them(world: World) -> None:
    ingested = ingest_case(world, CAPTURES[:1])
    case_id = ingested.case["id"]
    archivist = world.as_("a_archivist")
    before = _types(world, case_id)
    refused = archivist.get(f"/cases/{case_id}/export?format=tar")
    assert refused.status_code == 405 and refused.headers["Allow"] == "POST"
    error = refused.get_json()
    assert (error["code"], error["status"]) == (405, "Method Not Allowed")
    assert (
        error["message"].startswith("创建导出须用 POST")
        and f"/cases/{case_id}/exports" in (error["message"])
    )
    assert _types(world, case_id) == before  # nothing sealed, nothing logged
    assert archivist.get(f"/cases/{case_id}/exports").get_json() == []

    started = archivist.post(f"/cases/{case_id}/exports", {"format": "zip"}).get_json()
    listed = archivist.get(f"/cases/{case_id}/exports").get_json()
    assert [(j["id"], j["format"]) for j in listed] == [(started["id"], "zip")]
    assert world.as_("b_archivist").get(f"/cases/{case_id}/exports").status_code == 404
    assert world.as_("a_insp1").get(f"/cases/{case_id}/exports").status_code == 403
    deadline = time.monotonic() + 30  # let the job's thread finish before the world goes
    while archivist.get(f"/export-jobs/{started['id']}").get_json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_only_archivists_and_admins_of_the_agency_may_export(world: World) -> None:
    ingested = ingest_case(world, CAPTURES[:1])
    case_id = ingested.case["id"]
    assert _export(world, case_id, "a_insp1").status_code == 403
    assert _export(world, case_id, "a_reviewer").status_code == 403
    device = world.token_api(ingested.device.token).post(f"/cases/{case_id}/export")
    assert device.status_code == 403
    assert _export(world, case_id, "b_archivist").status_code == 404
    assert _export(world, case_id, "b_admin").status_code == 404
    assert world.as_(None).post(f"/cases/{case_id}/export").status_code == 401
    bad = world.as_("a_archivist").post(f"/cases/{case_id}/export?format=rar")
    assert bad.status_code == 422
    admin = _export(world, case_id, "a_admin")
    assert admin.status_code == 200
    location = admin.headers["Content-Location"].removeprefix("/api/v1")
    assert world.as_("b_archivist").get(location).status_code == 404
    assert world.as_("a_insp1").get(location).status_code == 403
    assert world.as_("a_archivist").get(f"/cases/{case_id}/exports/../../etc").status_code == 404
    unknown = f"/cases/{case_id}/exports/00000000-0000-4000-8000-000000000000"
    assert world.as_("a_archivist").get(unknown).status_code == 404
    assert "exported" not in _types(world, case_id)[:-2]


def _read_every_member(data: bytes) -> None:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            if member.isfile():
                tar.extractfile(member).read()  # type: ignore[union-attr]


def _corrupt_stored(world: World, name: str, replacement: bytes | None) -> None:
    parts_ = parts(world.app)
    with parts_.unit_of_work() as uow:
        evidence = next(e for e in uow.session.query(Evidence).all() if e.name == name)
        key = evidence.storage_key
    root = Path(parts_.settings.storage_url.removeprefix("file://"))
    path = root / key
    path.chmod(0o644)
    if replacement is None:
        path.unlink()
    else:
        path.write_bytes(replacement)


def test_bytes_changed_behind_our_back_abort_the_stream_and_log_fixity_failed(
    world: World,
) -> None:
    ingested = ingest_case(world, CAPTURES)
    case_id = ingested.case["id"]
    altered = bytearray(VIDEO[1])
    altered[100] ^= 0xFF
    _corrupt_stored(world, VIDEO[0], bytes(altered))
    response = _export(world, case_id)
    assert response.status_code == 200  # headers went out before the payload was read
    length = int(response.headers["Content-Length"])
    received = bytearray()
    with pytest.raises(FixityMismatch) as caught:
        for block in response.response:
            received += block
    assert "VID_0002.mp4" in str(caught.value) and "SHA-256" in str(caught.value)
    assert len(received) < length  # visibly short: never a valid-looking smaller bag
    with pytest.raises(tarfile.ReadError):
        _read_every_member(bytes(received))
    page = world.as_("a_admin").get(f"/cases/{case_id}/custody?limit=500").get_json()
    failed = [i["event"] for i in page["items"] if i["event"]["type"] == "fixity_failed"]
    assert len(failed) == 1
    assert failed[0]["details"]["source"] == "export"
    assert "VID_0002.mp4" in failed[0]["details"]["path"]


def test_a_missing_object_refuses_the_export_before_any_byte(world: World) -> None:
    ingested = ingest_case(world, CAPTURES)
    case_id = ingested.case["id"]
    _corrupt_stored(world, PHOTO[0], None)
    response = _export(world, case_id)
    assert response.status_code == 409
    body = response.get_json()
    assert "fixity_failed" in body["message"] and "evidence" in body["errors"]
    types = _types(world, case_id)
    assert "fixity_failed" in types and "exported" not in types


def _blake3(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


def test_originals_are_rechecked_against_the_blake3_found_when_their_sha256_matched(
    world: World,
) -> None:
    ingested = ingest_case(world, CAPTURES)
    case_id = ingested.case["id"]
    contents = {name: data for name, data, _ in (RECORD, PHOTO, VIDEO)}

    def recorded() -> dict[str, str | None]:
        with parts(world.app).unit_of_work() as uow:
            return {e.name: e.blake3 for e in uow.session.query(Evidence).all()}

    # the inspection's read found them
    assert recorded() == {name: _blake3(data) for name, data in contents.items()}
    # rows from before BLAKE3 was kept: the export's stocktake reads them once more
    with parts(world.app).unit_of_work() as uow:
        uow.session.execute(update(Evidence).values(blake3=None))
        uow.commit()
    response = _export(world, case_id)
    assert response.status_code == 200, response.get_json()
    assert recorded() == {name: _blake3(data) for name, data in contents.items()}
    export_id = response.headers["CaseTrail-Export-Id"]
    store = parts(world.app).store
    recipe = json.loads(b"".join(store.open(f"exports/{export_id}/recipe.json")))
    assert sorted(p["blake3"] for p in recipe["recipe"]["payload"]) == sorted(
        _blake3(d) for d in contents.values()
    )


def test_a_recipe_sealed_before_blake3_was_kept_is_rechecked_by_sha256(world: World) -> None:
    ingested = ingest_case(world, CAPTURES)
    case_id = ingested.case["id"]
    first = _export(world, case_id)
    assert first.status_code == 200
    export_id = first.headers["CaseTrail-Export-Id"]
    store = parts(world.app).store
    key = f"exports/{export_id}/recipe.json"
    recipe = json.loads(b"".join(store.open(key)))
    for entry in recipe["recipe"]["payload"]:
        del entry["blake3"]
    store.delete(key)
    store.write(key, [json.dumps(recipe).encode()], write_once=False)
    again = world.as_("a_archivist").get(first.headers["Content-Location"].removeprefix("/api/v1"))
    assert again.status_code == 200 and again.data == first.data

    altered = bytearray(VIDEO[1])
    altered[100] ^= 0xFF
    _corrupt_stored(world, VIDEO[0], bytes(altered))
    location = first.headers["Content-Location"].removeprefix("/api/v1")
    response = world.as_("a_archivist").get(location)
    with pytest.raises(FixityMismatch) as caught:
        for _ in response.response:
            pass
    assert "SHA-256: recorded sha256:" in str(caught.value)
    assert "read sha256:" in str(caught.value)
