"""Acceptance: in real Chromium, a refused decision draft is what the reviewer reviews.

An inspector records a 疑难复杂 decision with a licence revocation; the gates refuse it
and the page shows the draft, its digest and each article's reasons. The reviewer opens
the case, sees the same draft and digest above the 法制审核 form and passes it; the page
then says the pass covers that draft. No page breaks the CSP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.browser import artefact
from tests.support.server_process import ServerProcess
from tests.web.test_workspace_browser import LAPTOP, _person, _sign_in


def test_the_reviewer_passes_the_draft_the_gates_refused(browser: Any, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "var").start(init=True)
    try:
        _person(server, "insp-d", "inspector", cert_no="D00001")
        _person(server, "rev-d", "reviewer")
        with server.admin() as admin:
            me = admin.get("/users").json()
            insp = next(u["id"] for u in me if u["username"] == "insp-d")
            case = admin.post(
                "/cases",
                json={
                    "category": "penalty",
                    "case_no": "黔市监罚〔2026〕21号",
                    "title": "草案审核",
                    "officer_ids": [insp],
                },
            )
            assert case.status_code == 201, case.text
            case_id = case.json()["id"]

        errors: list[str] = []
        context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport=LAPTOP)
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(page, server, "insp-d")
        page.goto(f"{server.url}/ui/cases/{case_id}")
        form = page.locator("details.decide")
        form.locator("summary").click()
        form.get_by_label("当事人类型").select_option("organisation")
        form.get_by_label("罚款金额（元）").fill("5000")
        form.get_by_label("吊销许可证件").check()
        form.get_by_label("案件情况疑难复杂，涉及多个法律关系").check()
        form.get_by_role("button", name="记录决定").click()
        refused = page.locator("#refused-draft")
        refused.wait_for()
        shown = refused.inner_text()
        assert "吊销许可证件" in shown and "5000 元" in shown and "sha256:" in shown
        assert "行政处罚法第五十八条" in shown and "行政处罚法第六十二条" in shown
        assert "缺少：" in shown  # what each article misses
        digest = page.locator("code.digest").inner_text()
        assert page.get_by_label("吊销许可证件").is_checked()  # the form keeps the draft
        page.screenshot(path=artefact("decision-refused-laptop.png"), full_page=True)
        context.close()

        context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport=LAPTOP)
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(page, server, "rev-d")
        page.goto(f"{server.url}/ui/cases/{case_id}")
        review = page.locator("#review")
        assert page.locator("code.digest").inner_text() == digest
        assert digest[:19] in review.locator("#review-covers").inner_text()
        review.get_by_label("通过").check()
        review.get_by_label("审核意见", exact=True).fill("同意按草案处罚")
        review.get_by_role("button", name="提交审核意见").click()
        page.wait_for_url("**saved=review**")
        assert "最近一次法制审核已通过本草案" in review.inner_text()
        page.screenshot(path=artefact("decision-reviewed-laptop.png"), full_page=True)
        context.close()
        with server.admin() as admin:
            reviews = admin.get(f"/cases/{case_id}/legal-reviews").json()
        assert reviews[-1]["result"] == "passed" and reviews[-1]["draft_digest"] == digest
        refusal = "the server responded with a status of 409"  # the refused post itself
        assert [e for e in errors if refusal not in e] == []  # no CSP violation or script error
    finally:
        server.stop()
