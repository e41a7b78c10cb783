"""The capture app with a (fake) camera and microphone: enrolling by scanning the admin's
QR code (BarcodeDetector, else the vendored jsQR), and MediaRecorder video with an
interruption — its reason and resumption note go into the signed manifest and reach the
server with the recording."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import segno
from PIL import Image

from tests.support.browser import CHROMIUM_ARGS, artefact, find_chromium
from tests.web.capture_support import (
    DONE,
    World,
    enrol,
    fill_details,
    open_app,
    phone,
    save,
    start_world,
    wait_hashed,
)

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with start_world(tmp_path_factory.mktemp("media")) as w:
        yield w


@pytest.fixture(scope="module")
def camera_browser(browser: Any) -> Iterator[Any]:
    """A second Chromium with a fake camera and microphone (same Playwright driver)."""
    chromium = browser.browser_type.launch(
        executable_path=find_chromium(), args=[*CHROMIUM_ARGS, *FAKE_MEDIA]
    )
    try:
        yield chromium
    finally:
        chromium.close()


def test_recording_with_an_interruption_is_signed_and_stored(
    camera_browser: Any, world: World, tmp_path: Path
) -> None:
    context = phone(camera_browser)
    context.grant_permissions(["geolocation", "camera", "microphone"])
    try:
        page = open_app(context, world.server.url)
        enrol(page, world)
        context.set_offline(True)
        fill_details(page, world, "site-inspection-record")
        page.click("#rec-video")
        page.wait_for_selector("#recorder:not([hidden])")
        page.wait_for_timeout(1200)
        page.click("#rec-pause")
        page.select_option("#rec-reason", "电量不足")
        page.fill("#rec-note", "更换电池后继续")
        page.locator("#recorder").scroll_into_view_if_needed()
        page.screenshot(path=artefact("capture-recording-interrupted.png"))
        page.wait_for_timeout(1100)
        page.click("#rec-resume")
        page.wait_for_timeout(800)
        page.click("#rec-stop")
        wait_hashed(page, 1)
        assert page.inner_text("#file-list .name").startswith("录像-")
        save(page, 1)
        manifest = page.evaluate(
            """async () => {
            const store = await import('/capture/js/store.js');
            return (await store.loadCaptures())[0].signed.manifest;
        }"""
        )
        [interruption] = manifest["interruptions"]
        assert interruption["reason"] == "电量不足"
        assert interruption["resumption_note"] == "更换电池后继续"
        assert interruption["at"] < interruption["resumed_at"]
        assert interruption["at"].endswith("+08:00")
        [file] = manifest["files"]
        assert file["media_type"] == "video/webm" and file["size"] > 1000

        context.set_offline(False)
        page.click("#tabs button[data-screen='queue']")
        page.wait_for_function(
            f"() => document.querySelector('.file .state')?.textContent === '{DONE}'",
            timeout=30_000,
        )
        assert page.errors == []
    finally:
        context.close()
    [registration] = world.registrations()
    [stored] = registration["files"]
    assert (stored["status"], stored["sha256"], stored["size"]) == (
        "stored",
        file["sha256"],
        file["size"],
    )


def write_y4m(image: Image.Image, path: Path) -> Path:
    """One 4:2:0 frame in YUV4MPEG2, the format Chromium's fake camera plays in a loop."""
    width, height = image.size
    y, cb, cr = image.convert("YCbCr").split()
    half = (width // 2, height // 2)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        f.write(b"FRAME\n")
        f.write(y.tobytes())
        f.write(cb.resize(half).tobytes())
        f.write(cr.resize(half).tobytes())
    return path


def test_scanning_the_enrolment_qr_code_fills_it_in_and_enrols(
    browser: Any, world: World, tmp_path: Path
) -> None:
    code = world.enrolment_code()
    link = f"{world.server.url}/capture/#enrol={code}"
    rows = list(segno.make(link, error="m").matrix_iter(scale=6, border=4))
    qr = Image.new("L", (len(rows[0]), len(rows)))
    qr.putdata([0 if dark else 255 for row in rows for dark in row])
    frame = Image.new("RGB", (640, 480), "white")
    frame.paste(qr, ((640 - qr.width) // 2, (480 - qr.height) // 2))
    camera = write_y4m(frame, tmp_path / "qr.y4m")
    chromium = browser.browser_type.launch(
        executable_path=find_chromium(),
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}",
        ],
    )
    try:
        context = phone(chromium)
        context.grant_permissions(["camera"])
        page = open_app(context, world.server.url)
        page.click("#scan-start")
        page.wait_for_function(
            "(code) => document.getElementById('enrol-code').value === code",
            arg=code,
            timeout=20_000,
        )
        assert "已识别二维码" in page.inner_text("#enrol-message")
        assert page.is_hidden("#scan-box")
        page.screenshot(path=artefact("capture-enrol-scanned.png"))
        page.click("#enrol-submit")
        page.wait_for_selector("#screen-capture:not([hidden])")
        assert page.errors == []
    finally:
        chromium.close()
