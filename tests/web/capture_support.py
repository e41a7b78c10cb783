"""Helpers of the capture app's browser tests: a real server with a case and two
inspectors, a phone-sized browser context, and the app's enrol and capture steps."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from tests.support.browser import CHROMIUM_ARGS, artefact, find_chromium
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


@contextmanager
def start_world(folder: Path) -> Iterator[World]:
    """A real server with two inspectors (执法证号) assigned to one penalty case."""
    server = ServerProcess(folder / "data").start(init=True)
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


def make_photos(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        image = Image.new("RGB", (640, 480), (40 * i, 120, 200 - 30 * i))
        image.putpixel((i, i), (255, 255, 255))
        path = folder / f"IMG_{i + 1:04d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def make_video(folder: Path) -> Path:
    path = folder / "VID_0001.mp4"
    with path.open("wb") as f:
        for _ in range(VIDEO_SIZE // (1 << 20)):
            f.write(os.urandom(1 << 20))
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def open_app(context: Any, url: str) -> Any:
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


PHONE_CONTEXT: dict[str, Any] = {
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
    "viewport": PHONE,
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "geolocation": {"latitude": 26.647, "longitude": 106.6302, "accuracy": 8.5},
    "permissions": ["geolocation"],
}


def phone(browser: Any) -> Any:
    """A phone-sized browser context in Beijing time with a position."""
    return browser.new_context(**PHONE_CONTEXT)


def phone_with_storage(browser: Any, profile: Path) -> Any:
    """A whole phone browser keeping its storage in ``profile``: closing it and launching
    it again is a browser (phone) restart, as far as the app can tell."""
    return browser.browser_type.launch_persistent_context(
        profile, executable_path=find_chromium(), args=CHROMIUM_ARGS, **PHONE_CONTEXT
    )


def enrol(page: Any, world: World, screenshot: str | None = None) -> None:
    page.fill("#enrol-code", world.enrolment_code())
    if screenshot:
        page.screenshot(path=artefact(screenshot))
    page.click("#enrol-submit")
    page.wait_for_selector("#screen-capture:not([hidden])")
    # the service worker controls the page once it has cached the app
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)


def fill_details(page: Any, world: World, record: str) -> None:
    """Case, stage, record type, both officers, 亮证 and the location."""
    page.select_option("#case-select", world.case_id)
    page.select_option("#stage-select", "site-inspection")
    page.select_option("#record-select", record)
    for cert in world.certs:
        page.check(f"#officer-list input[value='{cert}']")
    page.check("#credentials-shown")
    page.click("#locate")
    page.wait_for_function("() => document.getElementById('where').textContent.includes('精度')")


def wait_hashed(page: Any, n: int) -> None:
    """Wait until ``n`` files are listed, each with its SHA-256."""
    page.wait_for_function(
        "(n) => document.querySelectorAll('#file-list li').length === n && "
        "![...document.querySelectorAll('#file-list .state')].some(s => s.textContent.includes('哈希'))",
        arg=n,
        timeout=60_000,
    )


def save(page: Any, seq: int) -> None:
    """Sign and queue; wait for the confirmation naming manifest ``seq``."""
    page.click("#capture-save")
    page.wait_for_function(
        "(seq) => document.getElementById('capture-message').textContent"
        ".includes(`已签名并加入待传队列（第 ${seq} 号清单`)",
        arg=seq,
    )


def capture_files(
    page: Any,
    world: World,
    files: list[Path],
    record: str,
    seq: int,
    *,
    via: str = "#pick-files",
    screenshot: bool = False,
) -> None:
    """One capture of ``files`` through the input ``via`` (#take-photo and #take-video are
    the camera's ``<input capture>``), signed as manifest ``seq``."""
    fill_details(page, world, record)
    page.set_input_files(via, [str(p) for p in files])
    wait_hashed(page, len(files))
    if screenshot:
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=artefact("capture-capture.png"))
        page.locator("#file-list").scroll_into_view_if_needed()
        page.screenshot(path=artefact("capture-capture-files.png"))
    save(page, seq)


def file_states(page: Any) -> list[tuple[str, str]]:
    rows = page.query_selector_all("#queue-list li.file")
    return [
        (r.query_selector(".name").inner_text(), r.query_selector(".state").inner_text())
        for r in rows
    ]


def queued_files(page: Any) -> list[dict[str, Any]]:
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
