"""The capture app (/capture/) in real headless Chromium against a real ``casetrail serve``.

An inspector enrols a phone with the one-time code, loses the network, captures photos
and a 40 MiB video, closes and reopens the app offline, and gets every file stored once
with the SHA-256 the page computed and a receipt the page verified; a network cut in the
middle of the video costs at most one chunk; a manifest altered in the phone's storage
is refused and shown as refused.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import artefact
from tests.support.counting_proxy import CountingProxy
from tests.web.capture_support import (
    CASE_NO,
    CHUNK,
    DONE,
    VIDEO_SIZE,
    World,
    capture_files,
    enrol,
    file_states,
    make_photos,
    make_video,
    open_app,
    phone,
    phone_with_storage,
    queued_files,
    sha256_file,
    start_world,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with start_world(tmp_path_factory.mktemp("capture")) as w:
        yield w


def test_offline_capture_then_sync_stores_each_file_once_with_verified_receipts(
    browser: Any, world: World, tmp_path: Path
) -> None:
    photos = make_photos(tmp_path, 3)
    video = make_video(tmp_path)
    expected = {p.name: (p.stat().st_size, sha256_file(p)) for p in [*photos, video]}
    profile = tmp_path / "phone-profile"
    context = phone_with_storage(browser, profile)
    try:
        page = open_app(context, world.server.url)
        assert page.inner_text("h2") == "设备注册"
        enrol(page, world, screenshot="capture-enrol.png")

        context.set_offline(True)
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.inner_text("#net") == "离线"
        assert page.is_visible("#screen-capture")
        # the cached case list works offline
        assert CASE_NO in page.inner_text("#case-select")

        capture_files(
            page, world, photos, "site-inspection-record", 1, via="#take-photo", screenshot=True
        )
        capture_files(page, world, [video], "evidence-extraction-list", 2, via="#take-video")

        # the browser is shut (as a phone restarts) and the app reopened, still offline
        context.close()
        context = phone_with_storage(browser, profile)
        context.set_offline(True)
        page = open_app(context, world.server.url)
        page.click("#tabs button[data-screen='queue']")
        page.wait_for_function(
            "() => document.querySelectorAll('#queue-list li.file').length === 4"
        )
        assert sorted(file_states(page)) == sorted((name, "等待") for name in expected)
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

        queued = queued_files(page)
        assert {f["name"]: (f["size"], f["sha256"]) for f in queued} == expected
        assert all(f["receipt_verified"] for f in queued)

        # the phone's copies of stored files can go; the records and receipts stay
        page.click("#tabs button[data-screen='device']")
        page.click("#prune")
        megabytes = sum(size for size, _ in expected.values()) / 1048576
        page.wait_for_function(
            "(text) => document.getElementById('device-message').textContent === text",
            arg=f"已清理 4 个已存证文件，释放 {megabytes:.1f} MiB",
        )
        assert (
            page.evaluate(
                """async () => {
            const db = await (await import('/capture/js/store.js')).openDb();
            return new Promise(ok => { db.transaction('blobs').objectStore('blobs').count().onsuccess = e => ok(e.target.result); });
        }"""
            )
            == 0
        )
        assert len(queued_files(page)) == 4
        page.screenshot(path=artefact("capture-device.png"))
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
    photos = make_photos(tmp_path, 3)
    context = phone(browser)
    try:
        page = open_app(context, world.server.url)
        enrol(page, world)
        before = {r["manifest_id"] for r in world.registrations()}
        context.set_offline(True)
        for seq, photo in enumerate(photos, 1):
            capture_files(page, world, [photo], "site-inspection-record", seq)
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
    video = make_video(tmp_path)
    before = {r["manifest_id"] for r in world.registrations()}
    proxy = CuttableProxy(world.server.port, rate=12 * 1024 * 1024).start()
    context = phone(browser)
    try:
        page = open_app(context, proxy.url)
        enrol(page, world)
        context.set_offline(True)
        capture_files(page, world, [video], "evidence-extraction-list", 1)
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
        page.wait_for_function(
            "() => document.querySelector('.file .state')?.textContent.includes('将断点续传')"
        )
        page.screenshot(path=artefact("capture-status-interrupted.png"))
        cut = _upload_state(page)
        assert cut["state"] == "uploading" and cut["url"]
        head = httpx.head(
            cut["url"].replace(proxy.url, world.server.url),
            headers={"Authorization": f"Bearer {cut['token']}", "Tus-Resumable": "1.0.0"},
        )
        held = int(head.headers["Upload-Offset"])
        assert CHUNK <= held < VIDEO_SIZE, held  # some chunks are safe on the server

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
    assert (stored["status"], stored["sha256"]) == ("stored", sha256_file(video))


def test_busy_server_and_locked_upload_are_waited_out(
    browser: Any, world: World, tmp_path: Path
) -> None:
    """503 on registration → back off and retry; 423 with Retry-After: 2 → wait 2 s; a
    chunk refused as damaged (460) → sent again, not a refusal."""
    [photo] = make_photos(tmp_path, 1)
    context = browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 390, "height": 844},
        geolocation={"latitude": 26.647, "longitude": 106.6302, "accuracy": 8.5},
        permissions=["geolocation"],
        service_workers="block",  # so that page.route sees every request
    )
    seen: list[tuple[float, str, str]] = []

    def busy_once(route: Any) -> None:
        seen.append((time.monotonic(), route.request.method, route.request.url))
        if sum(1 for _, m, u in seen if m == "POST" and u.endswith("/manifests")) == 1:
            route.fulfill(status=503, json={"code": 503, "status": "Service Unavailable"})
        else:
            route.continue_()

    def locked_then_damaged(route: Any) -> None:
        seen.append((time.monotonic(), route.request.method, route.request.url))
        patches = sum(1 for _, m, _u in seen if m == "PATCH")
        if route.request.method == "PATCH" and patches == 1:
            route.fulfill(
                status=423,
                headers={"Retry-After": "2", "Tus-Resumable": "1.0.0"},
                json={"code": 423, "status": "Locked", "message": "上传正被另一请求占用"},
            )
        elif route.request.method == "PATCH" and patches == 2:
            route.fulfill(
                status=460,
                headers={"Tus-Resumable": "1.0.0"},
                json={"code": 460, "status": "Checksum Mismatch", "message": "数据块校验失败"},
            )
        else:
            route.continue_()

    try:
        page = open_app(context, world.server.url)
        page.fill("#enrol-code", world.enrolment_code())
        page.click("#enrol-submit")
        page.wait_for_selector("#screen-capture:not([hidden])")
        page.route("**/api/v1/manifests", busy_once)
        page.route("**/api/v1/uploads**", locked_then_damaged)
        capture_files(page, world, [photo], "site-inspection-record", 1)
        page.click("#tabs button[data-screen='queue']")
        page.wait_for_function(
            f"() => document.querySelector('.file .state')?.textContent === '{DONE}'",
            timeout=30_000,
        )
    finally:
        context.close()
    posts = [t for t, m, u in seen if m == "POST" and u.endswith("/manifests")]
    assert len(posts) == 2 and posts[1] - posts[0] >= 0.5  # backed off, then registered
    patches = [t for t, m, _ in seen if m == "PATCH"]
    assert len(patches) == 3  # locked, damaged on the way (sent again), stored
    assert patches[1] - patches[0] >= 1.9  # Retry-After honoured
