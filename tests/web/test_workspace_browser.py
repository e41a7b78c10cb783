"""Acceptance: the workspace in real Chromium against a real ``casetrail serve``.

A reviewer signs in, finds an incomplete 行政处罚 case through the 缺项 filter, opens it,
sees the missing-record finding with its legal basis, plays the inspector's video from
the gallery, waives one finding with a reason and records a 法制审核 opinion; an
inspector of another case and a user of another agency get 404 for the case's page,
and a form posted without its CSRF token is refused.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
from tusclient.client import TusClient

from server.media import FFmpegTools
from tests.server.e2e_support import field_device, sha256_file
from tests.support.browser import artefact
from tests.support.server_process import BIN, ServerProcess

PASSWORD = "browser test password"
LAPTOP = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}


def _playable_video(path: Path) -> Path:
    """A 3-second H.264 MP4 (what body cameras record; Chromium has no MPEG-4 part 2
    decoder, so ``make_video``'s test pattern would not play)."""
    ffmpeg = str(FFmpegTools.resolve().ffmpeg)
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
         "-t", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
         str(path)],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def _person(server: ServerProcess, username: str, role: str, **extra: Any) -> None:
    """A user with a workspace password, made by the admin over the API."""
    with server.admin() as admin:
        made = admin.post(
            "/users",
            json={"username": username, "display_name": username, "role": role, **extra},
        )
        assert made.status_code == 201, made.text
        password = admin.post(f"/users/{made.json()['id']}/password", json={"password": PASSWORD})
        assert password.status_code == 204, password.text


def _cli(server: ServerProcess, args: list[str], stdin: str = "") -> None:
    done = subprocess.run(
        [str(BIN / "casetrail"), *args],
        input=stdin,
        env=server._env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _sign_in(page: Any, server: ServerProcess, username: str) -> None:
    page.goto(server.url + "/ui/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/ui/cases")


def test_a_reviewer_works_a_case_in_the_browser(browser: Any, tmp_path: Path) -> None:
    # No agency calendar here (a bag carries the one it was assessed with, and `casetrail
    # verify` recomputes with it: tests/server/test_archive_calendar.py).
    env = {"CASETRAIL_INSPECTION": "sync"}
    server = ServerProcess(tmp_path / "var", env=env).start(init=True)
    try:
        device = field_device(server, case_no="黔市监罚〔2026〕7号")
        with server.admin() as admin:
            for stage in ("filing", "site-inspection"):
                moved = admin.post(f"/cases/{device.case_id}/stage", json={"stage": stage})
                assert moved.status_code == 200, moved.text
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
        _person(server, "outsider", "inspector", cert_no="X99999")
        _person(server, "archivist1", "archivist")

        context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport=LAPTOP)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        failed: list[str] = []
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        _sign_in(page, server, "reviewer1")
        page.get_by_label("缺项").check()  # htmx swaps the table
        page.wait_for_url("**flag=missing**")
        row = page.get_by_role("link", name="黔市监罚〔2026〕7号")
        row.wait_for()
        page.screenshot(path=artefact("workspace-case-list-laptop.png"), full_page=True)
        page.set_viewport_size(TABLET)
        page.screenshot(path=artefact("workspace-case-list-tablet.png"), full_page=True)
        page.set_viewport_size(LAPTOP)
        row.click()
        page.wait_for_url(f"**/ui/cases/{device.case_id}")
        findings = page.locator("#findings")
        assert "缺项" in findings.inner_text() and "法律依据" in findings.inner_text()
        assert "中华人民共和国行政处罚法" in findings.inner_text()

        player = page.locator("video").first
        player.evaluate("v => { v.muted = true; return v.play(); }")
        page.wait_for_function(
            "() => document.querySelector('video').currentTime > 0", timeout=15000
        )
        page.screenshot(path=artefact("workspace-case-page-laptop.png"), full_page=True)

        waive = page.locator("details.waive").first
        waive.locator("summary").click()
        waive.get_by_label("豁免理由").fill("原件在档案室，已核对")
        waive.get_by_role("button", name="记录豁免").click()
        page.wait_for_url("**saved=waiver**")
        assert "原件在档案室，已核对" in page.locator("#findings").inner_text()

        review = page.locator("#review")
        review.get_by_label("退回").check()
        review.get_by_label("审核意见", exact=True).fill("询问笔录缺失，退回补正")
        review.get_by_role("button", name="提交审核意见").click()
        page.wait_for_url("**saved=review**")
        assert "询问笔录缺失，退回补正" in page.locator("#review").inner_text()
        page.set_viewport_size(TABLET)
        page.screenshot(path=artefact("workspace-case-page-tablet.png"), full_page=True)
        assert errors == [], (errors, failed)  # no CSP violation or script error on any page

        # A form posted without its CSRF token (a forged cross-site post) is refused.
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        forged = httpx.post(
            f"{server.url}/ui/cases/{device.case_id}/reviews",
            data={"outcome": "passed", "opinion": "forged"},
            cookies=cookies,
        )
        assert forged.status_code == 403 and "安全令牌" in forged.text
        context.close()

        # An archivist exports the case and downloads the sealed bag; it verifies offline.
        archive = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport=LAPTOP, accept_downloads=True
        )
        archivist_page = archive.new_page()
        _sign_in(archivist_page, server, "archivist1")
        archivist_page.goto(f"{server.url}/ui/cases/{device.case_id}")
        archivist_page.get_by_role("link", name="案卷导出").click()
        archivist_page.get_by_role("button", name="开始导出").click()
        archivist_page.locator(".job .percent", has_text="100%").wait_for(timeout=60000)
        assert "已完成" in archivist_page.locator(".job").first.inner_text()
        archivist_page.screenshot(path=artefact("workspace-export-laptop.png"), full_page=True)
        with archivist_page.expect_download() as download_info:
            archivist_page.get_by_role("link", name="下载封存案卷").click()
        bag = tmp_path / "case.tar"
        download_info.value.save_as(bag)
        verified = subprocess.run(
            [str(BIN / "casetrail"), "verify", str(bag)],
            env=server._env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "校验通过" in verified.stdout
        archivist_page.set_viewport_size(TABLET)
        archivist_page.screenshot(path=artefact("workspace-export-tablet.png"), full_page=True)
        archive.close()

        # An inspector of another case, and a reviewer of another agency: not found.
        with server.admin() as admin:
            made = admin.post("/agencies", json={"code": "OTHER-AG", "name": "外机关"})
            assert made.status_code == 201, made.text
        _cli(server, ["users", "add", "other-rev", "--name", "外机关审核", "--role", "reviewer",
                      "--agency", "OTHER-AG"])  # fmt: skip
        _cli(server, ["users", "set-password", "other-rev", "--password-stdin"], PASSWORD + "\n")
        for username in ("outsider", "other-rev"):
            outsider = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
            other_page = outsider.new_page()
            _sign_in(other_page, server, username)
            for path in (f"/ui/cases/{device.case_id}", f"/ui/cases/{device.case_id}/export"):
                response = other_page.goto(server.url + path)
                assert response is not None and response.status in (404, 403), (username, path)
            response = other_page.goto(f"{server.url}/ui/cases/{device.case_id}")
            assert response is not None and response.status == 404
            assert (
                "页面不存在" in other_page.content() and device.case_no not in other_page.content()
            )
            outsider.close()

        # The admin registers a device: its enrolment code shows once, as text and QR code.
        with server.admin() as admin:
            me = admin.get("/me").json()["user"]
            assert (
                admin.post(f"/users/{me['id']}/password", json={"password": PASSWORD}).status_code
                == 204
            )
        admin_context = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport=LAPTOP
        )
        admin_page = admin_context.new_page()
        _sign_in(admin_page, server, "admin")
        admin_page.get_by_role("link", name="系统管理").click()
        admin_page.get_by_role("link", name="采集设备").click()
        admin_page.get_by_label("设备名称").fill("执法记录仪 08")
        admin_page.get_by_role("button", name="登记并生成注册码").click()
        admin_page.locator(".qr-box svg").wait_for()
        assert admin_page.locator("#enrolment-code").inner_text().strip()
        admin_page.screenshot(path=artefact("workspace-admin-device-laptop.png"), full_page=True)
        admin_context.close()
    finally:
        server.stop()
