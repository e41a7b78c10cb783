"""In real Chromium against a real ``casetrail serve``: from the case gallery to the
evidence detail page, where the video plays (HTTP Range) and its facts and custody
events are shown in Chinese, Beijing time."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tusclient.client import TusClient

from tests.server.e2e_support import field_device, sha256_file
from tests.support.browser import artefact
from tests.support.server_process import ServerProcess
from tests.web.test_workspace_browser import LAPTOP, _person, _playable_video, _sign_in


def test_the_evidence_page_plays_the_video_and_shows_its_facts(
    browser: Any, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path / "var", env={"CASETRAIL_INSPECTION": "sync"}).start(init=True)
    try:
        device = field_device(server, case_no="黔市监罚〔2026〕21号")
        video = _playable_video(tmp_path / "执法记录.mp4")
        [evidence] = device.announce(
            [(video.name, video.stat().st_size, sha256_file(video), "video/mp4")]
        )
        TusClient(
            server.url + "/api/v1/uploads", headers={"Authorization": f"Bearer {device.token}"}
        ).uploader(
            str(video), chunk_size=8 << 20, metadata={"evidence_id": evidence["evidence_id"]}
        ).upload()
        _person(server, "reviewer1", "reviewer")

        context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport=LAPTOP)
        page = context.new_page()
        failed: list[str] = []
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(page, server, "reviewer1")
        page.goto(f"{server.url}/ui/cases/{device.case_id}")
        page.get_by_role("link", name="执法记录.mp4").click()
        page.wait_for_url(f"**/ui/evidence/{evidence['evidence_id']}")
        assert page.get_by_role("heading", level=1).inner_text() == "执法记录.mp4"
        facts = page.locator("dl.facts").inner_text()
        assert sha256_file(video).removeprefix("sha256:") in facts
        assert (
            "执法人员1（" in facts
            and "设备时间（北京）" in facts
            and "2025-03-03 09:30:00" in facts
        )
        assert re.search(r"时长\s+3\.0 秒", facts) and re.search(r"640 × 360 像素", facts)

        page.locator("#player").evaluate("v => { v.muted = true; return v.play(); }")
        page.wait_for_function(
            "() => document.querySelector('#player').currentTime > 0", timeout=15000
        )
        page.reload()  # the plays above are custody events now on the page
        events = page.locator("table.events").inner_text()
        assert "入库核验通过" in events and "下载" in events and "法制审核" in events
        page.screenshot(path=artefact("workspace-evidence-detail-laptop.png"), full_page=True)
        assert not failed, failed
        assert not errors, errors  # the strict CSP refused nothing
        context.close()
    finally:
        server.stop()
