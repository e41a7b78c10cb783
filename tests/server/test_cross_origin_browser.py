"""A third-party browser app on an allowed origin runs enrol → manifest → upload → receipt.

A real ``casetrail serve`` allows one origin (a tiny static page served on another port);
Chromium runs every HTTP call with ``fetch`` from that page, cross-origin: enrolment,
the manifest, a tus upload whose PATCH goes as ``POST`` + ``X-HTTP-Method-Override``
(tus-js-client's ``overridePatchMethod``), the receipt and the log's public key. The
device key and the manifest signature are made in Python (the signing format is
``core.manifest``'s; the capture app has its own tests). A page on an origin not on the
list cannot read anything.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.keys import export_public_key, generate_private_key, key_id
from core.manifest import CaptureManifest, ManifestFile, sign_manifest
from server.services.receipts import receipt_problems
from tests.server.ingest_support import metadata
from tests.support.browser import artefact
from tests.support.server_process import ServerProcess, free_port

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>第三方执法应用</title></head><body><h1>第三方执法应用（跨域）</h1>
<ol id="steps"></ol></body></html>"""

STEP = """async ([api, token, method, path, headers, body]) => {
  const init = {method, headers: {...headers}};
  if (token) init.headers["Authorization"] = "Bearer " + token;
  if (body !== null) init.body = typeof body === "string" ? body : new Uint8Array(body);
  const r = await fetch(path.startsWith("http") ? path : api + path, init);
  const seen = {};
  for (const name of ["Location", "Upload-Offset", "Tus-Resumable", "CaseTrail-Receipt"]) {
    seen[name] = r.headers.get(name);
  }
  const text = await r.text();
  const li = document.createElement("li");
  li.textContent = method + " " + path.replace(api, "") + " → " + r.status;
  document.getElementById("steps").append(li);
  return {status: r.status, headers: seen, text};
}"""


@pytest.fixture
def static_origins(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two static sites on 127.0.0.1 (two ports, so two origins) serving one page."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE, "utf-8")
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(site)
    )  # quiet enough: pytest captures stderr
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _setup_case_and_device(server: ServerProcess) -> tuple[str, str, tuple[str, str]]:
    """An inspector pair, a case, a registered device: (case_no, enrolment code, certs)."""
    tag = uuid.uuid4().hex[:6].upper()
    certs = (f"C{tag}1", f"C{tag}2")
    case_no = "黔市监罚〔2026〕12号"
    with server.admin() as admin:
        ids = []
        for n, cert in enumerate(certs, 1):
            r = admin.post(
                "/users",
                json={
                    "username": f"insp{n}-{tag.lower()}",
                    "display_name": f"执法人员{n}",
                    "role": "inspector",
                    "cert_no": cert,
                },
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        case = admin.post(
            "/cases",
            json={"category": "penalty", "case_no": case_no, "title": "跨域", "officer_ids": ids},
        )
        assert case.status_code == 201, case.text
        device = admin.post("/devices", json={"owner_user_id": ids[0], "name": "第三方应用"})
        assert device.status_code == 201, device.text
    return case_no, device.json()["enrolment_code"], certs


@pytest.mark.timeout(180)
def test_browser_app_on_allowed_origin_runs_the_whole_flow_and_another_origin_is_refused(
    browser: Any, static_origins: tuple[str, str], tmp_path: Path
) -> None:
    allowed, refused = static_origins
    server = ServerProcess(
        tmp_path / "var",
        port=free_port(),
        env={"CASETRAIL_CORS_ORIGINS": allowed, "CASETRAIL_INSPECTION": "thread"},
    ).start(init=True)
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        case_no, code, certs = _setup_case_and_device(server)
        api = server.url + "/api/v1"
        page = context.new_page()
        page.goto(allowed + "/index.html")

        def call(method: str, path: str, token: str | None = None, **kw: Any) -> dict[str, Any]:
            headers, body = kw.get("headers", {}), kw.get("body")
            result: dict[str, Any] = page.evaluate(STEP, [api, token, method, path, headers, body])
            return result

        key = generate_private_key("Ed25519")
        enrolled = call(
            "POST",
            "/devices/enrol",
            headers={"Content-Type": "application/json"},
            body=json.dumps(
                {
                    "enrolment_code": code,
                    "alg": "Ed25519",
                    "public_key": export_public_key(key.public_key()),
                }
            ),
        )
        assert enrolled["status"] == 201, enrolled["text"]
        device = json.loads(enrolled["text"])
        token = device["token"]

        data = "现场检查照片（跨域上传）".encode() * 500
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        manifest = CaptureManifest(
            manifest_id=f"m-{uuid.uuid4().hex[:12]}",
            device_id=device["device"]["id"],
            key_id=key_id(key.public_key()),
            alg="Ed25519",
            case_ref=case_no,
            category="penalty",
            stage="site-inspection",
            record_type="site-inspection-record",
            officers=certs,
            device_time="2026-03-03T09:30:00+08:00",
            gnss_time=None,
            timezone="Asia/Shanghai",
            location=None,
            files=(ManifestFile("现场照片.bin", len(data), digest, "application/octet-stream"),),
            interruptions=(),
            av_reason=None,
            device_seq=1,
            device_prev=None,
            note=None,
        )
        registered = call(
            "POST",
            "/manifests",
            token,
            headers={"Content-Type": "application/json"},
            body=json.dumps(sign_manifest(manifest, key).to_json()),
        )
        assert registered["status"] == 201, registered["text"]
        evidence_id = json.loads(registered["text"])["files"][0]["evidence_id"]

        tus = {"Tus-Resumable": "1.0.0"}
        meta = metadata(evidence_id=evidence_id, filename="现场照片.bin")
        created = call(
            "POST",
            "/uploads",
            token,
            headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
        )
        assert created["status"] == 201, created["text"]
        location = created["headers"]["Location"]
        assert location, "Location must be readable cross-origin (exposed)"
        location = str(httpx.URL(api + "/uploads").join(location))
        patched = call(
            "POST",
            location,
            token,
            headers={
                **tus,
                "X-HTTP-Method-Override": "PATCH",
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
            body=list(data),
        )
        assert patched["status"] == 204, patched["text"]
        assert patched["headers"]["Upload-Offset"] == str(len(data))
        assert patched["headers"]["CaseTrail-Receipt"]

        receipt = call("GET", f"/evidence/{evidence_id}/receipt", token)
        assert receipt["status"] == 200, receipt["text"]
        public_key = call("GET", "/log/public-key")
        assert public_key["status"] == 200
        verifier = json.loads(public_key["text"])["verifier_key"]
        body = json.loads(receipt["text"])
        assert body["sha256"] == digest and receipt_problems(body, verifier) == []
        page.screenshot(path=str(artefact("cross-origin-allowed.png")))

        other = context.new_page()
        other.goto(refused + "/index.html")
        blocked = other.evaluate(
            """async (url) => {
                try { await fetch(url); return "read"; } catch (e) { return "blocked"; }
            }""",
            api + "/log/public-key",
        )
        assert blocked == "blocked"
        raw = httpx.get(api + "/log/public-key", headers={"Origin": refused})
        assert raw.status_code == 200 and "access-control-allow-origin" not in raw.headers
    finally:
        context.close()
        server.stop()
