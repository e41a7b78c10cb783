"""The public site and the annual report in real Chromium, against a real ``casetrail serve``.

Screenshots go to tests-artefacts/ (public-decisions.png, public-decision.png,
annual-report.png) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from server.db import make_engine
from tests.server.publication_support import decide, ok, person
from tests.server.report_support import generate_year
from tests.support.browser import artefact
from tests.support.server_process import ServerProcess

ID_NO = "520102199003071236"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("public-pages") / "var"
    proc = ServerProcess(data).start(init=True)
    engine = make_engine(f"sqlite:///{data / 'casetrail.db'}")
    with Session(engine) as session:
        generate_year(session, None, 2026, 400)
        session.commit()
    engine.dispose()
    yield proc
    proc.kill()  # throw-away data: no need to wait for a graceful stop


def _context(browser: Any) -> Any:
    return browser.new_context(
        locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1200, "height": 900}
    )


def test_the_public_list_and_a_decision_show_masked_parties(
    server: ServerProcess, browser: Any
) -> None:
    admin = server.admin()
    inspector = person(admin, "web-insp", "inspector", "WEB0001")
    reviewer = person(admin, "web-reviewer", "reviewer")
    pid = decide(
        server,
        admin,
        inspector,
        "云市监立〔2026〕201号",
        "penalty",
        [{"name": "欧阳娜娜", "kind": "person", "id_number": ID_NO}],
        f"当事人欧阳娜娜（身份证号{ID_NO}）未按规定公示食品经营许可证，责令改正，罚款2000元。",
    )
    ok(reviewer.post(f"/publications/{pid}/redaction", json={"doc_no": "云市监罚〔2026〕201号"}))
    ok(reviewer.post(f"/publications/{pid}/publish"))
    for client in (admin, inspector, reviewer):
        client.close()  # no keep-alive connection left to hold up the server's stop

    context = _context(browser)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(server.url + "/public/")
    page.get_by_label("关键词（案号、文书号、执法对象、结论）").fill("201号")
    page.get_by_role("button", name="查询").click()
    row = page.locator("table.decisions tbody tr")
    assert row.count() == 1
    assert "欧阳某" in row.inner_text() and "欧阳娜娜" not in page.content()
    page.screenshot(path=str(artefact("public-decisions.png")), full_page=True)
    page.get_by_role("link", name="云市监罚〔2026〕201号").click()
    assert page.locator("h1").inner_text().startswith("行政处罚决定信息")
    assert ID_NO not in page.content()
    page.screenshot(path=str(artefact("public-decision.png")), full_page=True)
    assert problems == []  # nothing refused by the Content-Security-Policy
    context.close()


def test_the_annual_report_page_draws_its_charts(server: ServerProcess, browser: Any) -> None:
    context = _context(browser)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    response = page.goto(server.url + "/public/reports/annual?year=2026")
    assert response is not None and response.status == 200
    chart = page.locator("#chart-decisions svg")
    chart.wait_for()
    bars = chart.locator("rect.bar")
    assert bars.count() == 4  # 行政处罚 (both procedures), 行政强制, 行政检查, 行政许可
    widths = [bars.nth(i).bounding_box()["width"] for i in range(bars.count())]
    assert max(widths) == pytest.approx(400, abs=1) and min(widths) > 50
    assert page.locator("#chart-fine-bands rect.bar").count() == 5
    figures = httpx.get(server.url + "/public/reports/annual.json?year=2026", timeout=30).json()
    opened = figures["sections"]["cases"]["opened"]
    assert opened >= 400  # the generated year (and a case the other test may have opened)
    assert page.locator(".figure").first.inner_text().split() == [str(opened), "立案"]
    page.screenshot(path=str(artefact("annual-report.png")), full_page=True)
    page.emulate_media(media="print")
    page.pdf(path=str(artefact("annual-report.pdf")), format="A4")
    assert problems == []
    context.close()


def test_a_draw_page_shows_the_result_and_its_check(server: ServerProcess, browser: Any) -> None:
    admin = server.admin()
    person(admin, "web-insp-a", "inspector", "WEB1001")
    person(admin, "web-insp-b", "inspector", "WEB1002").close()
    ok(admin.post("/registries/items", json={"code": "SJ-101", "name": "食品经营检查"}), 201)
    targets = [{"code": f"WEB-{n:03d}", "name": f"云岩区第{n}食品店"} for n in range(8)]
    ok(admin.post("/registries/targets", json={"targets": targets}), 201)
    draw = ok(
        admin.post(
            "/draws",
            json={"title": "食品经营双随机抽查", "item_codes": ["SJ-101"], "target_count": 3},
        ),
        201,
    )
    ok(admin.post(f"/draws/{draw['id']}/perform"))
    admin.close()

    context = _context(browser)
    page = context.new_page()
    page.goto(server.url + "/public/draws")
    page.get_by_role("link", name="食品经营双随机抽查").click()
    assert "复核通过" in page.locator("main").inner_text()
    assert page.locator("table.decisions tbody tr").count() == 3
    assert "— " in page.locator("pre.note").inner_text()  # the signed checkpoint note
    page.screenshot(path=str(artefact("public-draw.png")), full_page=True)
    page.goto(server.url + "/public/inspectors?q=WEB100")
    assert page.locator("table.decisions tbody tr").count() == 2
    context.close()
