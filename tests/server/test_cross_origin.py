"""CORS by allowlist on the whole API, and X-HTTP-Method-Override for tus clients."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from flask import Flask

from server.app import create_app
from server.settings import Settings
from tests.server.conftest import World, parts
from tests.server.ingest_support import TUS, Tus, announce, metadata, receipt_of, sync_runtime

ALLOWED = "https://app.example.gov.cn"
OTHER = "https://evil.example.com"
# CORS is decided before any query: one database is enough for these.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PATHS = [
    "/api/v1/uploads",
    "/api/v1/manifests",
    "/api/v1/devices/enrol",
    "/api/v1/evidence/e-1/receipt",
    "/api/v1/log/public-key",
]


@pytest.fixture
def cors_app(settings: Settings) -> Iterator[Flask]:
    from dataclasses import replace

    app = create_app(replace(settings, cors_origins=(ALLOWED,)))
    yield app
    parts(app).engine.dispose()


def _preflight(app: Flask, path: str, origin: str) -> dict[str, str]:
    response = app.test_client().options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,tus-resumable,upload-length",
        },
    )
    return dict(response.headers)


@pytest.mark.parametrize("path", PATHS)
@SQLITE_ONLY
def test_allowed_origin_is_granted_on_every_endpoint_a_browser_app_needs(
    cors_app: Flask, path: str
) -> None:
    headers = _preflight(cors_app, path, ALLOWED)
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    allowed = headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "tus-resumable", "upload-length"} <= set(allowed.split(", "))
    assert "Access-Control-Allow-Credentials" not in headers


@pytest.mark.parametrize("path", PATHS)
@SQLITE_ONLY
def test_other_origin_gets_no_grant_anywhere_not_even_from_uploads(
    cors_app: Flask, path: str
) -> None:
    headers = _preflight(cors_app, path, OTHER)
    assert not [h for h in headers if h.lower().startswith("access-control-")], headers
    plain = cors_app.test_client().get(path, headers={"Origin": OTHER, **TUS})
    assert "Access-Control-Allow-Origin" not in plain.headers


@SQLITE_ONLY
def test_without_an_allowlist_no_origin_is_granted(app: Flask) -> None:
    headers = _preflight(app, "/api/v1/uploads", ALLOWED)
    assert "Access-Control-Allow-Origin" not in headers


@SQLITE_ONLY
def test_tus_headers_are_exposed_to_the_allowed_origin(cors_app: Flask) -> None:
    response = cors_app.test_client().get("/api/v1/log/public-key", headers={"Origin": ALLOWED})
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"location", "upload-offset", "upload-length", "upload-expires"} <= exposed
    assert {"tus-resumable", "tus-version", "tus-max-size", "caseTrail-receipt".lower()} <= exposed


def test_post_with_method_override_patch_uploads_like_patch(world: World) -> None:
    sync_runtime(world.app)
    data = os.urandom(70_000)
    announced = announce(world, [("现场照片.bin", data, "application/octet-stream")])
    tus = Tus(world.app.test_client(), announced.device.token)
    created = tus.create(len(data), metadata(evidence_id=announced.evidence[0]["evidence_id"]))
    assert created.status_code == 201
    location = created.headers["Location"]
    half = world.app.test_client().post(
        location,
        data=data[:30_000],
        headers={
            **tus.auth,
            "X-HTTP-Method-Override": "PATCH",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert half.status_code == 204 and half.headers["Upload-Offset"] == "30000"
    probe = world.app.test_client().post(
        location, headers={**tus.auth, "X-HTTP-Method-Override": "HEAD"}
    )
    assert probe.status_code == 200 and probe.headers["Upload-Offset"] == "30000"
    assert probe.get_data() == b""
    rest = world.app.test_client().post(
        location,
        data=data[30_000:],
        headers={
            **tus.auth,
            "X-HTTP-Method-Override": "patch",
            "Upload-Offset": "30000",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert rest.status_code == 204
    assert receipt_of(rest)["size"] == len(data)


@SQLITE_ONLY
def test_an_override_to_anything_else_is_ignored(world: World) -> None:
    api = world.as_("a_admin")
    response = api.client.post(
        "/api/v1/cases",
        json={"category": "penalty"},
        headers={**api.headers, "X-HTTP-Method-Override": "GET"},
    )
    assert response.status_code == 422  # still a POST: validated, not turned into a list
