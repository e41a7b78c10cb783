"""Headers a tus client acts on: where to resume (``Location``) and when to retry (423)."""

from __future__ import annotations

import dataclasses
import os

import pytest

from server.settings import Settings
from tests.server.conftest import World, parts
from tests.server.ingest_support import Tus, announce, metadata, sync_runtime


def _created(world: World) -> tuple[Tus, str, bytes]:
    sync_runtime(world.app)
    data = os.urandom(10_000)
    announced = announce(world, [("a.bin", data, "application/octet-stream")])
    tus = Tus(world.app.test_client(), announced.device.token)
    response = tus.create(len(data), metadata(evidence_id=announced.evidence[0]["evidence_id"]))
    assert response.status_code == 201
    return tus, response.headers["Location"], data


def test_a_patch_while_another_holds_the_upload_is_423_with_retry_after(world: World) -> None:
    tus, location, data = _created(world)
    parts(world.app).ingest._acquire(location.rsplit("/", 1)[1])  # another PATCH is running
    refused = tus.patch(location, 0, data)
    assert refused.status_code == 423
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["message"].startswith("此上传正在由另一个请求写入")


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The server's settings, with ``CASETRAIL_PUBLIC_URL`` when a test passes one."""
    public_url = getattr(request, "param", None)
    return settings if public_url is None else dataclasses.replace(settings, public_url=public_url)


@pytest.mark.parametrize("settings", ["https://evidence.gz.gov.cn"], indirect=True)
def test_location_is_built_from_the_public_url_when_one_is_set(world: World) -> None:
    _, location, _ = _created(world)
    assert location.startswith("https://evidence.gz.gov.cn/api/v1/uploads/")


def test_location_follows_the_request_without_a_public_url(world: World) -> None:
    _, location, _ = _created(world)
    assert location.startswith("http://localhost/api/v1/uploads/")


def test_a_404_never_names_the_case_of_evidence_one_may_not_see(world: World) -> None:
    sync_runtime(world.app)
    data = os.urandom(1_000)
    announced = announce(world, [("a.bin", data, "application/octet-stream")])
    meta = metadata(evidence_id=announced.evidence[0]["evidence_id"])
    location = (
        Tus(world.app.test_client(), announced.device.token)
        .create(len(data), meta)
        .headers["Location"]
    )
    outsider = Tus(world.app.test_client(), world.people["a_insp3"].token)  # not assigned
    for answer in (outsider.create(len(data), meta), outsider.patch(location, 0, data)):
        assert answer.status_code == 404
        body = answer.get_data(as_text=True)
        assert announced.case["id"] not in body and "案件" not in body, body
