"""The evidence detail page: the original's facts, flags, derivatives and custody events;
images as <img> only, PDFs only as a download; every byte read a custody event; 404 for
people who may not see the case."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

import pytest
from flask import Flask
from PIL import Image

from core.manifest import Location
from tests.server.conftest import World
from tests.server.ingest_support import Tus, metadata, sync_runtime
from tests.server.manifest_support import enrol, event_types, file_entry, open_case

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n%%EOF\n"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def _case_with_photo_and_pdf(world: World) -> tuple[str, str, str, bytes]:
    """A case with a stored, inspected photo and PDF (GPS ±8.5 m); (case, photo, pdf, png)."""
    sync_runtime(world.app)
    case = open_case(world, "黔市监罚〔2026〕12号")
    device = enrol(world, "a_insp1")
    png = _png()
    wire = device.manifest(
        case["case_no"],
        files=(
            file_entry("现场照片.png", png, "image/png"),
            file_entry("现场检查笔录.pdf", PDF, "application/pdf"),
        ),
        location=Location("26.6470", "106.6302", "8.5"),
    )
    announced = device.api.post("/manifests", wire)
    assert announced.status_code == 201, announced.get_json()
    ids = [f["evidence_id"] for f in announced.get_json()["files"]]
    tus = Tus(world.app.test_client(), device.token)
    for evidence_id, data in zip(ids, (png, PDF), strict=True):
        sent = tus.create(len(data), metadata(evidence_id=evidence_id), body=data)
        assert sent.status_code == 201
    return case["id"], ids[0], ids[1], png


def test_a_photo_shows_its_facts_and_reads_are_custody_events(
    app: Flask, world: World, signed_in: Any
) -> None:
    case_id, photo, _, png = _case_with_photo_and_pdf(world)
    reviewer = signed_in("a_reviewer")
    api = world.as_("a_reviewer")
    case_page = reviewer.get(f"/ui/cases/{case_id}").text
    assert f'href="/ui/evidence/{photo}"' in case_page  # reachable from the gallery
    before = event_types(api, case_id)

    page = reviewer.get(f"/ui/evidence/{photo}")
    assert page.status_code == 200, page.text
    html = page.text
    assert hashlib.sha256(png).hexdigest() in html and f"{len(png):,} 字节" in html
    assert "北纬 26.6470，东经 106.6302（精度 ±8.5 米）" in html
    assert "A-Insp1（A00001）、A-Insp2（A00002）" in html
    assert "a_insp1 执法记录仪（清单序号 1）" in html and "2025-03-03 09:30:00" in html
    assert "现场检查（勘验）笔录" in html  # the record type by its Chinese name
    assert f'<img class="media-large" src="/ui/evidence/{photo}/thumbnail"' in html
    assert "缩略图：image/" in html and "96 × 64 像素" in html
    assert "入库核验通过" in html and "/ui/custody/events/" in html  # its events, with proofs
    assert event_types(api, case_id) == before  # the page reads facts only

    assert reviewer.get(f"/ui/evidence/{photo}/thumbnail").status_code == 200
    again = reviewer.get(f"/ui/evidence/{photo}").text
    assert event_types(api, case_id) == [*before, "viewed"]
    assert re.search(r"<td>查看</td><td>法制审核</td>", again)


@SQLITE_ONLY
def test_a_pdf_is_only_offered_as_a_download(app: Flask, world: World, signed_in: Any) -> None:
    case_id, _, pdf, _ = _case_with_photo_and_pdf(world)
    reviewer = signed_in("a_reviewer")
    html = reviewer.get(f"/ui/evidence/{pdf}").text
    main = html.split("<main", 1)[1]
    for active in ("<img", "<iframe", "<embed", "<object", "<video", "<script"):
        assert active not in main, active
    assert "不在页面中打开" in html and f'href="/ui/evidence/{pdf}/content?download=1"' in html
    before = event_types(world.as_("a_reviewer"), case_id).count("downloaded")
    got = reviewer.get(f"/ui/evidence/{pdf}/content?download=1")
    assert got.status_code == 200 and got.data == PDF
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%E7%8E%B0" in got.headers["Content-Disposition"]
    assert got.headers["Content-Type"] == "application/pdf"  # the type read from its bytes
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]
    assert event_types(world.as_("a_reviewer"), case_id).count("downloaded") == before + 1


@SQLITE_ONLY
def test_other_inspectors_and_agencies_get_not_found(
    app: Flask, world: World, signed_in: Any
) -> None:
    case_id, photo, _, _ = _case_with_photo_and_pdf(world)
    before = event_types(world.as_("a_reviewer"), case_id)
    for outsider in ("a_insp3", "b_reviewer", "b_admin"):
        client = signed_in(outsider)
        for path in (f"/ui/evidence/{photo}", f"/ui/evidence/{photo}/thumbnail"):
            refused = client.get(path)
            assert refused.status_code == 404 and "不存在或您无权查看" in refused.text, path
    assert signed_in("a_insp1").get(f"/ui/evidence/{photo}").status_code == 200  # assigned
    assert event_types(world.as_("a_reviewer"), case_id) == before
