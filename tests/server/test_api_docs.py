"""The interactive API docs work on a machine cut off from the internet."""

from __future__ import annotations

import re

from flask import Flask


def test_api_docs_page_loads_swagger_ui_from_this_server_not_a_cdn(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    assert all(a.startswith("/api/v1/docs/assets/") for a in assets), assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.get_data()) > 1000, asset


def test_openapi_document_is_served(app: Flask) -> None:
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    assert spec["info"]["title"].startswith("CaseTrail")
    assert "/api/v1/cases" in spec["paths"]


def test_vendored_swagger_ui_files_are_the_ones_recorded_from_npm() -> None:
    import hashlib
    import tomllib
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "server" / "static" / "swagger-ui"
    vendor = tomllib.loads((folder / "VENDOR.toml").read_text("utf-8"))
    assert vendor["package"] == "swagger-ui-dist" and vendor["integrity"].startswith("sha512-")
    for name, digest in vendor["sha256"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    assert {p.name for p in folder.iterdir()} == {*vendor["sha256"], "VENDOR.toml"}
