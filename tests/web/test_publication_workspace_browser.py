"""Acceptance: 决定公示 in real Chromium against a real ``casetrail serve``.

A reviewer finds a 行政处罚 decision against a natural person as 待公开 through the case
list's 公示 filter, opens its publication page, sees the proposed redaction (name masked
张某, ID number absent) in the preview, confirms and publishes it; the public site shows
it; the reviewer withdraws it with a reason and the workspace shows 已撤回 with the notice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.server.publication_support import decide, ok, person
from tests.support.browser import artefact
from tests.support.server_process import ServerProcess

PASSWORD = "browser test password"
PERSON = "张三丰"
ID_NO = "520102199003071236"
CASE_NO = "黔市监立〔2026〕88号"
DOC_NO = "黔市监罚〔2026〕88号"


def test_a_reviewer_publishes_and_withdraws_a_decision_in_the_browser(
    browser: Any, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path / "var").start(init=True)
    try:
        with server.admin() as admin:
            inspector = person(admin, "insp-pub", "inspector", "PUB0001")
            reviewer = person(admin, "reviewer-pub", "reviewer")
            set_password = admin.post(
                f"/users/{reviewer.user_id}/password",  # type: ignore[attr-defined]
                json={"password": PASSWORD},
            )
            assert set_password.status_code == 204, set_password.text
            pid = decide(
                server,
                admin,
                inspector,
                CASE_NO,
                "penalty",
                [{"name": PERSON, "kind": "person", "id_number": ID_NO}],
                f"当事人{PERSON}（身份证号{ID_NO}）销售过期食品，罚款五千元。",
            )

        context = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server.url + "/ui/")
        page.get_by_label("用户名").fill("reviewer-pub")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url("**/ui/cases")

        page.locator("#publication").select_option("pending")  # htmx swaps the table
        page.wait_for_url("**publication=pending**")
        row = page.locator("tr", has=page.get_by_role("link", name=CASE_NO))
        row.wait_for()
        assert "待公开" in row.inner_text() and "个工作日" in row.inner_text()
        page.screenshot(path=artefact("publication-case-list.png"), full_page=True)

        row.get_by_role("link", name="待公开").click()
        page.wait_for_url(f"**/ui/publications/{pid}")
        proposal = page.locator("#preview").inner_text()
        assert "自动脱敏建议" in proposal and "张某" in proposal
        assert PERSON not in proposal and ID_NO not in proposal

        page.get_by_label("决定书文书号").fill(DOC_NO)
        page.get_by_role("button", name="预览").click()
        page.wait_for_url(f"**/ui/publications/{pid}/preview**")
        preview = page.locator("#preview").inner_text()
        assert "公开预览" in preview and DOC_NO in preview and "张某" in preview
        assert PERSON not in preview and ID_NO not in preview
        page.screenshot(path=artefact("publication-preview.png"), full_page=True)

        page.get_by_role("button", name="确认脱敏结果").click()
        page.wait_for_url("**saved=confirmed")
        page.get_by_role("button", name="发布到公示网站").click()
        page.wait_for_url("**saved=published")
        assert page.locator("#pub-state").inner_text() == "已公开"
        page.screenshot(path=artefact("publication-published.png"), full_page=True)

        public = httpx.get(server.url + "/public/", timeout=30).text
        assert DOC_NO in public and "张某" in public and ID_NO not in public

        page.get_by_label("撤回理由（向社会公开）").fill("行政复议机关撤销原处罚决定")
        page.get_by_role("button", name="撤回").click()
        page.wait_for_url("**saved=withdrawn")
        assert page.locator("#pub-state").inner_text() == "已撤回"
        notice = page.locator("#withdrawal").inner_text()
        assert "行政复议机关撤销原处罚决定" in notice and "按期撤回" in notice
        page.screenshot(path=artefact("publication-withdrawn.png"), full_page=True)
        shown = httpx.get(f"{server.url}/public/decisions/{pid}", timeout=30).text
        assert "撤回公告" in shown and "行政复议机关撤销原处罚决定" in shown

        page.goto(server.url + "/ui/cases?publication=withdrawn")
        assert (
            "已撤回" in page.locator("tr", has=page.get_by_role("link", name=CASE_NO)).inner_text()
        )
        page.get_by_role("link", name="决定公示", exact=True).click()
        page.wait_for_url("**/ui/publications")
        assert (
            "已撤回" in page.locator("tr", has=page.get_by_role("link", name=CASE_NO)).inner_text()
        )
        page.screenshot(path=artefact("publication-list.png"), full_page=True)
        assert errors == []  # no CSP violation, no failed script
        context.close()
        assert ok(httpx.get(f"{server.url}/public/decisions.json", timeout=30))["total"] == 1
    finally:
        server.kill()
