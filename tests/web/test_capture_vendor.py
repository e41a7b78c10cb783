"""The capture app caches its vendored scripts and is served as a PWA under a strict
Content-Security-Policy (Flask test client; no browser needed). The vendored files
themselves are checked against VENDORED.toml by ``test_vendored.py``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from server.web.capture import APP_DIR, VENDOR_DIR

SHELL_FILES = sorted(p.relative_to(APP_DIR).as_posix() for p in APP_DIR.rglob("*") if p.is_file())


def _packages() -> list[dict[str, object]]:
    data = tomllib.loads((VENDOR_DIR / "VENDORED.toml").read_text("utf-8"))
    packages: list[dict[str, object]] = data["package"]
    return packages


def test_service_worker_caches_every_app_and_vendored_file() -> None:
    sw = (APP_DIR / "sw.js").read_text("utf-8")
    for name in SHELL_FILES:
        if name != "sw.js":
            assert f'"/capture/{"" if name == "index.html" else name}"' in sw, name
    used = [p for p in _packages() if f"/capture/vendor/{p['name']}@{p['version']}/" in sw]
    assert {p["name"] for p in used} >= {"tus-js-client", "hash-wasm", "jsqr"}
    for package in used:  # every script file of a package the app loads (licences stay out)
        for name in package["files"]:  # type: ignore[attr-defined]
            if not name.startswith("LICENSE"):
                assert f"/capture/vendor/{package['name']}@{package['version']}/{name}" in sw


@pytest.fixture
def web(tmp_path: Path) -> FlaskClient:
    from server.app import create_app
    from server.settings import Settings

    settings = Settings.from_env({"CASETRAIL_DATA_DIR": str(tmp_path)})
    return create_app(settings).test_client()


def test_app_is_served_under_a_strict_csp_with_its_service_worker(web: FlaskClient) -> None:
    page = web.get("/capture/")
    assert page.status_code == 200
    assert "现场采集" in page.get_data(as_text=True)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "unsafe-inline" not in csp
    assert "style-src 'self'" in csp
    sw = web.get("/capture/sw.js")
    assert sw.headers["Service-Worker-Allowed"] == "/capture/"
    assert sw.mimetype == "text/javascript"
    assert "__APP_VERSION__" not in sw.get_data(as_text=True)
    manifest = web.get("/capture/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    assert manifest.get_json()["scope"] == "/capture/"
    assert web.get("/capture/js/app.js").mimetype == "text/javascript"
    tus = web.get("/capture/vendor/tus-js-client@4.3.1/dist/tus.js")
    assert tus.status_code == 200
    assert web.get("/capture/vendor/tus-js-client@4.3.1/LICENSE").status_code == 404
    assert web.get("/capture/vendor/../capture.py").status_code == 404


def test_assignments_need_a_token(web: FlaskClient) -> None:
    answer = web.get("/capture/api/assignments")
    assert answer.status_code == 401
    assert set(answer.get_json()) >= {"code", "status", "message"}
