"""In real Chromium against a real ``casetrail serve``: the admin makes a reviewer the
agency head (负责人) with a 执法证号 on the users page; the reviewer's open session ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.browser import artefact
from tests.support.server_process import ServerProcess
from tests.web.test_workspace_browser import LAPTOP, PASSWORD, _person, _sign_in


def test_the_admin_gives_a_reviewer_the_head_role(browser: Any, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "var").start(init=True)
    try:
        _person(server, "wang.wu", "reviewer")
        with server.admin() as admin:
            me = admin.get("/me").json()["user"]
            assert admin.post(f"/users/{me['id']}/password", json={"password": PASSWORD})
        reviewer_context = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport=LAPTOP
        )
        reviewer = reviewer_context.new_page()
        _sign_in(reviewer, server, "wang.wu")

        context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport=LAPTOP)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(page, server, "admin")
        page.get_by_role("link", name="系统管理").click()
        page.get_by_role("link", name="用户").first.click()
        page.wait_for_url("**/ui/admin/users")
        page.get_by_label("wang.wu的角色").select_option(label="负责人")
        page.get_by_label("wang.wu的执法证号").fill("52-HEAD-001")
        row = page.locator("tr", has=page.get_by_label("wang.wu的角色"))
        row.get_by_role("button", name="保存角色").click()
        saved = page.locator("#role-saved")
        saved.wait_for()
        assert (
            "已保存 wang.wu（wang.wu）的角色和执法证号：负责人，52-HEAD-001" in saved.inner_text()
        )
        assert page.get_by_label("wang.wu的角色").evaluate("s => s.selectedOptions[0].text") == (
            "负责人"
        )
        assert page.get_by_label("wang.wu的执法证号").input_value() == "52-HEAD-001"
        page.screenshot(path=artefact("workspace-admin-users-role-laptop.png"), full_page=True)
        assert not errors, errors

        reviewer.reload()  # the old role's session is over: back to the sign-in page
        assert "/ui/sign-in" in reviewer.url
        assert reviewer.get_by_role("button", name="登录").is_visible()
        context.close()
        reviewer_context.close()
    finally:
        server.stop()
