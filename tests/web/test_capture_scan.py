"""Enrolling by scanning the admin's QR code with the phone camera (a fake camera that
films a QR code): the page decodes it (BarcodeDetector, else the vendored jsQR), fills
in the one-time code and enrols."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import segno
from PIL import Image

from tests.support.browser import CHROMIUM_ARGS, artefact, find_chromium
from tests.web.capture_support import World, open_app, phone, start_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with start_world(tmp_path_factory.mktemp("scan")) as w:
        yield w


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
