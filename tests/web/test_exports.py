"""Background case-file exports: started with POST, progress in the database, a sealed bag
that verifies, from the API and from the workspace page."""

from __future__ import annotations

import hashlib
import io
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from core.verify import verify_bag
from server.models import ExportJob
from tests.server.archive_support import Capture, extract_tar, ingest_case
from tests.server.conftest import World, parts
from tests.web.conftest import csrf_of

PHOTO = ("IMG_0001.jpg", b"\xff\xd8\xff\xe0" + b"photo-bytes" * 3000, "image/jpeg")
RECORD = ("现场检查笔录.pdf", b"%PDF-1.4\n" + b"x" * 5000, "application/pdf")
CAPTURES = [Capture("site-inspection", "site-inspection-record", [RECORD, PHOTO])]


def _wait_done(get: Any, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = get(url).get_json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"export job did not finish: {job}")


def test_an_api_export_job_reports_progress_and_ends_with_a_verified_bag(
    world: World, tmp_path: Path
) -> None:
    ingested = ingest_case(world, CAPTURES)
    case_id = ingested.case["id"]
    archivist = world.as_("a_archivist")
    started = archivist.post(f"/cases/{case_id}/exports", {"format": "tar"})
    assert started.status_code == 202, started.get_json()
    location = started.headers["Location"]
    assert location.startswith("/api/v1/export-jobs/")
    job = _wait_done(archivist.get, location.removeprefix("/api/v1"))
    assert job["status"] == "done", job
    assert job["percent"] == 100 and job["files_done"] == job["files_total"] == 2
    assert job["bytes_done"] == job["bytes_total"] > 0
    bag = archivist.get(job["download_url"].removeprefix("/api/v1"))
    assert bag.status_code == 200
    assert "sha256:" + hashlib.sha256(bag.data).hexdigest() == job["sha256"]
    assert verify_bag(extract_tar(bag.data, tmp_path)).problems == []
    # who may not
    assert world.as_("a_insp1").post(f"/cases/{case_id}/exports", {}).status_code == 403
    assert world.as_("b_archivist").post(f"/cases/{case_id}/exports", {}).status_code == 404
    assert world.as_("b_archivist").get(location.removeprefix("/api/v1")).status_code == 404
    # GET creates nothing (405 saying to POST) and lists the jobs; POST is the way to create
    old = archivist.get(f"/cases/{case_id}/export")
    assert old.status_code == 405 and "POST" in old.get_json()["message"]
    assert [j["id"] for j in archivist.get(f"/cases/{case_id}/exports").get_json()] == [job["id"]]
    assert archivist.post(f"/cases/{case_id}/export").status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_the_export_page_follows_a_job_to_its_download(
    app: Flask, world: World, signed_in: Any, tmp_path: Path
) -> None:
    ingested = ingest_case(world, CAPTURES)
    case_id = ingested.case["id"]
    archivist = signed_in("a_archivist")
    page = archivist.get(f"/ui/cases/{case_id}/export")
    assert page.status_code == 200 and "尚未导出" in page.text
    started = archivist.post(
        f"/ui/cases/{case_id}/exports", data={"csrf_token": csrf_of(page.text), "format": "tar"}
    )
    assert started.status_code == 302
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = archivist.get(f"/ui/cases/{case_id}/export").text
        if "下载封存案卷" in shown or "失败" in shown:
            break
        assert 'hx-trigger="every 1s"' in shown  # htmx keeps polling a running job
        time.sleep(0.1)
    assert "100%" in shown and "文件 2 / 2" in shown
    link = re.search(r'href="(/ui/cases/[^"]+/download)"', shown)
    assert link is not None
    bag = archivist.get(link.group(1))
    digest = re.search(r'class="digest">(sha256:[0-9a-f]{64})<', shown)
    assert digest and "sha256:" + hashlib.sha256(bag.data).hexdigest() == digest.group(1)
    assert verify_bag(extract_tar(bag.data, tmp_path)).problems == []
    reviewer = signed_in("a_reviewer")  # reviewers do not export
    assert reviewer.get(f"/ui/cases/{case_id}/export").status_code == 403


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_a_job_whose_process_died_reads_as_interrupted(
    app: Flask, world: World, signed_in: Any
) -> None:
    ingested = ingest_case(world, CAPTURES)
    with parts(app).unit_of_work() as uow:
        job = ExportJob(
            case_id=ingested.case["id"],
            requested_by=world.people["a_archivist"].id,
            format="tar",
            status="running",
        )
        uow.session.add(job)
        uow.session.flush()
        job.updated_at = job.updated_at - timedelta(minutes=10)
        uow.commit()
    shown = world.as_("a_archivist").get(f"/export-jobs/{job.id}").get_json()
    assert shown["status"] == "failed" and "中断" in shown["error"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_the_verify_page_shows_every_finding_of_an_uploaded_bag(
    app: Flask, world: World, signed_in: Any
) -> None:
    ingested = ingest_case(world, CAPTURES)
    bag = world.as_("a_archivist").post(f"/cases/{ingested.case['id']}/export").data
    assert len(bag) > app.config["MAX_CONTENT_LENGTH"]  # bigger than any other form may be
    archivist = signed_in("a_archivist")
    form = archivist.get("/ui/verify")
    token = csrf_of(form.text)

    def upload(data: bytes, name: str = "case.tar") -> Any:
        return archivist.post(
            "/ui/verify",
            data={"csrf_token": token, "bag": (io.BytesIO(data), name)},
            content_type="multipart/form-data",
        )

    good = upload(bag)
    assert good.status_code == 200 and "校验通过" in good.text, good.text[-2000:]
    at = bag.index(b"photo-bytes")  # flip one byte of a payload file inside the tar
    bad = upload(bag[:at] + b"P" + bag[at + 1 :])
    assert bad.status_code == 200 and "发现" in bad.text and "个问题" in bad.text
    assert "IMG_0001.jpg" in bad.text  # the finding names the damaged file
    assert upload(b"not a bag", "notes.txt").status_code == 422
    assert signed_in("a_reviewer").get("/ui/verify").status_code == 403
