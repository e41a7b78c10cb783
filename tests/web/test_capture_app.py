"""The capture app (/capture/) in real headless Chromium against a real ``casetrail serve``.

An inspector enrols a phone with the one-time code, loses the network, captures photos
and a 40 MiB video, closes and reopens the app offline, and gets every file stored once
with the SHA-256 the page computed and a receipt the page verified; a network cut in the
middle of the video costs at most one chunk; a manifest altered in the phone's storage
is refused and shown as refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.browser import artefact
from tests.support.counting_proxy import CountingProxy
from tests.support.server_process import ServerProcess

PHONE = {"width": 390, "height": 844}
CASE_NO = "黔市监罚〔2026〕13号"
VIDEO_SIZE = 40 * 1024 * 1024
CHUNK = 4 * 1024 * 1024  # server/web/capture/js/sync.js CHUNK_SIZE
DONE = "已存证 ✓（回执已验证）"


@dataclass
class World:
    server: ServerProcess
    case_id: str
    owner_id: str
    certs: tuple[str, str]

    def enrolment_code(self) -> str:
        with self.server.admin() as admin:
            r = admin.post("/devices", json={"owner_user_id": self.owner_id, "name": "执法手机"})
        assert r.status_code == 201, r.text
        code: str = r.json()["enrolment_code"]
        return code

    def registrations(self) -> list[dict[str, Any]]:
        with self.server.admin() as admin:
            r = admin.get(f"/cases/{self.case_id}/manifests")
        assert r.status_code == 200, r.text
        regs: list[dict[str, Any]] = r.json()
        return regs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = ServerProcess(tmp_path_factory.mktemp("capture") / "data").start(init=True)
    tag = uuid.uuid4().hex[:6]
    certs = (f"GZ{tag}1".upper(), f"GZ{tag}2".upper())
    try:
        with server.admin() as admin:
            ids = []
            for n, cert in enumerate(certs, 1):
                r = admin.post(
                    "/users",
                    json={
                        "username": f"insp{n}-{tag}",
                        "display_name": ["张明", "李华"][n - 1],
                        "role": "inspector",
                        "cert_no": cert,
                    },
                )
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            case = admin.post(
                "/cases",
                json={
                    "category": "penalty",
                    "case_no": CASE_NO,
                    "title": "某超市销售过期食品案",
                    "officer_ids": ids,
                },
            )
            assert case.status_code == 201, case.text
        yield World(server, case.json()["id"], ids[0], certs)
    finally:
        server.stop()


def _photos(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        image = Image.new("RGB", (640, 480), (40 * i, 120, 200 - 30 * i))
        image.putpixel((i, i), (255, 255, 255))
        path = folder / f"IMG_{i + 1:04d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def _video(folder: Path) -> Path:
    path = folder / "VID_0001.mp4"
    with path.open("wb") as f:
        for _ in range(VIDEO_SIZE // (1 << 20)):
            f.write(os.urandom(1 << 20))
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _open_app(context: Any, url: str) -> Any:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        # refused requests and the network cuts are logged by the browser itself
        lambda m: (
            errors.append(m.text)
            if m.type == "error"
            and "ERR_" not in m.text
            and "Failed to load resource" not in m.text
            else None
        ),
    )
    page.errors = errors
    page.goto(url + "/capture/")
    page.wait_for_selector("body[data-ready='1']")
    return page


def _phone(browser: Any) -> Any:
    return browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        geolocation={"latitude": 26.647, "longitude": 106.6302, "accuracy": 8.5},
        permissions=["geolocation"],
    )


def _enrol(page: Any, world: World, screenshot: str | None = None) -> None:
    page.fill("#enrol-code", world.enrolment_code())
    if screenshot:
        page.screenshot(path=artefact(screenshot))
    page.click("#enrol-submit")
    page.wait_for_selector("#screen-capture:not([hidden])")
    # the service worker controls the page once it has cached the app
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)


def _capture(page: Any, world: World, files: list[Path], record: str, seq: int) -> None:
    page.select_option("#case-select", world.case_id)
    page.select_option("#stage-select", "site-inspection")
    page.select_option("#record-select", record)
    for cert in world.certs:
        page.check(f"#officer-list input[value='{cert}']")
    page.check("#credentials-shown")
    page.click("#locate")
    page.wait_for_function("() => document.getElementById('where').textContent.includes('精度')")
    page.set_input_files("#pick-files", [str(p) for p in files])
    page.wait_for_function(
        "(n) => document.querySelectorAll('#file-list li').length === n && "
        "![...document.querySelectorAll('#file-list .state')].some(s => s.textContent.includes('哈希'))",
        arg=len(files),
        timeout=60_000,
    )
    if seq == 1:
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=artefact("capture-capture.png"))
        page.locator("#file-list").scroll_into_view_if_needed()
        page.screenshot(path=artefact("capture-capture-files.png"))
    page.click("#capture-save")
    page.wait_for_function(
        "(seq) => document.getElementById('capture-message').textContent"
        ".includes(`已签名并加入待传队列（第 ${seq} 号清单`)",
        arg=seq,
    )


def _states(page: Any) -> list[tuple[str, str]]:
    rows = page.query_selector_all("#queue-list li.file")
    return [
        (r.query_selector(".name").inner_text(), r.query_selector(".state").inner_text())
        for r in rows
    ]


def _queued_files(page: Any) -> list[dict[str, Any]]:
    """The files as the page recorded them (name, size, SHA-256, state) from IndexedDB."""
    files: list[dict[str, Any]] = page.evaluate(
        """async () => {
        const store = await import('/capture/js/store.js');
        return (await store.loadCaptures()).flatMap(c => c.files.map(f => ({
          manifest_id: c.manifest_id, name: f.name, size: f.size, sha256: f.sha256,
          state: f.state, receipt_verified: !!f.receipt_verified})));
    }"""
    )
    return files


def test_offline_capture_then_sync_stores_each_file_once_with_verified_receipts(
    browser: Any, world: World, tmp_path: Path
) -> None:
    photos = _photos(tmp_path, 3)
    video = _video(tmp_path)
    expected = {p.name: (p.stat().st_size, _sha256(p)) for p in [*photos, video]}
    context = _phone(browser)
    try:
        page = _open_app(context, world.server.url)
        assert page.inner_text("h2") == "设备注册"
        _enrol(page, world, screenshot="capture-enrol.png")

        context.set_offline(True)
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.inner_text("#net") == "离线"
        assert page.is_visible("#screen-capture")
        # the cached case list works offline
        assert CASE_NO in page.inner_text("#case-select")

        _capture(page, world, photos, "site-inspection-record", 1)
        _capture(page, world, [video], "evidence-extraction-list", 2)

        # the tab is closed and the app reopened, still with no network
        page.close()
        page = _open_app(context, world.server.url)
        page.click("#tabs button[data-screen='queue']")
        page.wait_for_function(
            "() => document.querySelectorAll('#queue-list li.file').length === 4"
        )
        assert sorted(_states(page)) == sorted((name, "等待") for name in expected)
        assert "离线" in page.inner_text("#sync-state")
        assert world.registrations() == []

        context.set_offline(False)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#queue-list li.file .state')]"
            f".filter(s => s.textContent === '{DONE}').length === 4",
            timeout=90_000,
        )
        page.screenshot(path=artefact("capture-status.png"))
        assert page.errors == []

        queued = _queued_files(page)
        assert {f["name"]: (f["size"], f["sha256"]) for f in queued} == expected
        assert all(f["receipt_verified"] for f in queued)
    finally:
        context.close()

    regs = world.registrations()
    assert [r["device_seq"] for r in sorted(regs, key=lambda r: r["device_seq"])] == [1, 2]
    stored = [f for r in regs for f in r["files"]]
    assert len(stored) == 4  # each file exactly once
    assert {f["name"]: (f["size"], f["sha256"]) for f in stored} == expected
    assert {f["status"] for f in stored} == {"stored"}
    for r in regs:
        assert r["verification"]["signature"] == "ok", r["verification"]


def _js_delete_capture(page: Any, seq: int) -> None:
    """Delete the capture with ``device_seq`` from the phone's storage (as a user might)."""
    page.evaluate(
        """async (seq) => {
        const store = await import('/capture/js/store.js');
        const capture = (await store.loadCaptures()).find(c => c.signed.manifest.device_seq === seq);
        const db = await store.openDb();
        const tx = db.transaction(['captures', 'blobs'], 'readwrite');
        tx.objectStore('captures').delete(capture.manifest_id);
        capture.files.forEach((f, i) => tx.objectStore('blobs').delete(`${capture.manifest_id}/${i}`));
        await new Promise((ok, fail) => { tx.oncomplete = ok; tx.onerror = fail; });
    }""",
        seq,
    )


def test_tampered_manifest_is_refused_and_a_deleted_capture_is_a_chain_gap(
    browser: Any, world: World, tmp_path: Path
) -> None:
    photos = _photos(tmp_path, 3)
    context = _phone(browser)
    try:
        page = _open_app(context, world.server.url)
        _enrol(page, world)
        before = {r["manifest_id"] for r in world.registrations()}
        context.set_offline(True)
        for seq, photo in enumerate(photos, 1):
            _capture(page, world, [photo], "site-inspection-record", seq)
        # someone edits the first capture in the phone's storage and deletes the second
        page.evaluate(
            """async () => {
            const store = await import('/capture/js/store.js');
            const [first] = await store.loadCaptures();
            await store.updateCapture(first.manifest_id, c => { c.signed.manifest.case_ref = '黔市监罚〔2026〕99号'; });
        }"""
        )
        _js_delete_capture(page, 2)

        page.click("#tabs button[data-screen='queue']")
        context.set_offline(False)
        page.wait_for_function(
            "() => document.querySelector('#queue-list li.capture.refused') !== null && "
            f"[...document.querySelectorAll('.file .state')].some(s => s.textContent === '{DONE}')",
            timeout=30_000,
        )
        page.screenshot(path=artefact("capture-status-refused.png"))
        refused = page.inner_text("#queue-list li.capture.refused")
        assert "#1" in refused and "清单被拒绝" in refused and "签名" in refused
        assert "怎么办" in refused
        assert "被拒绝" in page.inner_text("#queue-list li.capture.refused .file .state")
        assert page.errors == []
    finally:
        context.close()

    new = [r for r in world.registrations() if r["manifest_id"] not in before]
    assert [r["device_seq"] for r in new] == [3]  # the altered #1 never entered the case
    assert new[0]["verification"]["chain"] == "gap", new[0]["verification"]


class CuttableProxy(CountingProxy):
    """A counting, throttled proxy whose open connections can be cut like a lost signal."""

    def __init__(self, upstream_port: int, *, rate: float) -> None:
        super().__init__(upstream_port, rate=rate)
        self.clients: list[socket.socket] = []

    def _serve(self, client: socket.socket) -> None:
        self.clients.append(client)
        super()._serve(client)

    def cut(self) -> None:
        for client in self.clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)


def _upload_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(
        """async () => {
        const store = await import('/capture/js/store.js');
        const [capture] = await store.loadCaptures();
        const device = await store.loadDevice();
        const f = capture.files[0];
        return {url: f.upload_url, offset: f.offset, state: f.state, token: device.token};
    }"""
    )
    return state


def test_network_cut_mid_video_resumes_from_the_server_offset(
    browser: Any, world: World, tmp_path: Path
) -> None:
    video = _video(tmp_path)
    before = {r["manifest_id"] for r in world.registrations()}
    proxy = CuttableProxy(world.server.port, rate=12 * 1024 * 1024).start()
    context = _phone(browser)
    try:
        page = _open_app(context, proxy.url)
        _enrol(page, world)
        context.set_offline(True)
        _capture(page, world, [video], "evidence-extraction-list", 1)
        page.click("#tabs button[data-screen='queue']")
        sent_before = proxy.sent

        context.set_offline(False)
        page.wait_for_function(
            "() => { const m = /上传中 (\\d+) %/.exec((document.querySelector('.file .state')?.textContent ?? ''));"
            " return m && Number(m[1]) >= 50; }",
            polling=50,
            timeout=30_000,
        )
        context.set_offline(True)  # the signal is gone …
        proxy.cut()  # … and so is the PATCH in flight
        page.wait_for_function(
            "() => document.getElementById('sync-state').textContent.includes('离线')"
        )
        cut = _upload_state(page)
        assert cut["state"] == "uploading" and cut["url"]
        head = httpx.head(
            cut["url"].replace(proxy.url, world.server.url),
            headers={"Authorization": f"Bearer {cut['token']}", "Tus-Resumable": "1.0.0"},
        )
        held = int(head.headers["Upload-Offset"])
        assert VIDEO_SIZE * 0.25 <= held < VIDEO_SIZE, held

        context.set_offline(False)
        page.wait_for_function(
            f"() => (document.querySelector('.file .state')?.textContent ?? '') === '{DONE}'",
            timeout=60_000,
        )
        assert _upload_state(page)["url"] == cut["url"]  # the same upload, resumed
        assert page.errors == []
    finally:
        context.close()
        proxy.stop()

    uploaded = proxy.sent - sent_before
    resent = uploaded - VIDEO_SIZE
    # request lines, headers and the manifest are a few KiB; the rest is re-sent video
    assert 0 <= resent <= CHUNK + 64 * 1024, f"re-sent {resent} bytes"
    print(f"cut at {held} of {VIDEO_SIZE} bytes; re-sent {resent} bytes (chunk {CHUNK})")
    [new] = [r for r in world.registrations() if r["manifest_id"] not in before]
    [stored] = new["files"]
    assert (stored["status"], stored["sha256"]) == ("stored", _sha256(video))
