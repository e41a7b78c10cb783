"""决定公示 in the workspace (SQLite and PostgreSQL): list states, forms, refusals, reminder.

A reviewer finds a penalty decision through the case list's 公示 filter, sees the
automatic redaction proposal, previews with the 文书号, confirms, publishes, corrects
and withdraws through the page's forms; each step is a custody event from the service.
The list's SQL filter agrees with :func:`core.publication.publication_state` day by day.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask

from core.calendar import WorkingCalendar
from server.auth import Principal
from server.models import Role
from server.services import case_list, publication
from tests.server.conftest import World, parts
from tests.server.manifest_support import event_types, open_case
from tests.server.procedure_support import notified_case
from tests.web.conftest import csrf_of

PERSON = "张三丰"
ID_NO = "11010519491231002X"


def rows(html: str) -> list[str]:
    """The 案号 of each row of the case table, in order."""
    return re.findall(r'<td><a href="/ui/cases/[^"]+">([^<]+)</a></td>', html)


def _decided(world: World, case_no: str) -> tuple[str, str]:
    """A 行政处罚 decision against a natural person: (publication id, case id)."""
    case = (
        world.as_("a_admin")
        .post(
            "/cases",
            {
                "category": "penalty",
                "case_no": case_no,
                "title": f"案件 {case_no}",
                "parties": [{"name": PERSON, "kind": "person", "id_number": ID_NO}],
                "officer_ids": [world.people["a_insp1"].id],
            },
        )
        .get_json()
    )
    notified_case(world, case)
    made = world.as_("a_insp1").post(
        f"/cases/{case['id']}/decisions",
        {"decision_type": "penalty", "summary": f"当事人{PERSON}（身份证号{ID_NO}）罚款五千元"},
    )
    assert made.status_code == 201, made.get_json()
    found = world.as_("a_reviewer").get(f"/publications?case_id={case['id']}").get_json()
    return found[0]["id"], case["id"]


def test_a_reviewer_publishes_corrects_and_withdraws_through_the_pages(
    world: World, signed_in: Any
) -> None:
    pid, case_id = _decided(world, "黔市监罚〔2026〕31号")
    open_case(world, "黔市监罚〔2026〕32号")  # no decision: never in a 公示 filter
    reviewer = signed_in("a_reviewer")

    pending = reviewer.get("/ui/cases?publication=pending")
    assert rows(pending.text) == ["黔市监罚〔2026〕31号"]
    assert "待公开" in pending.text and "个工作日）" in pending.text
    assert rows(reviewer.get("/ui/cases?publication=published").text) == []

    page = reviewer.get(f"/ui/publications/{pid}")
    assert page.status_code == 200
    assert "自动脱敏建议" in page.text and "张某" in page.text
    assert PERSON not in page.text and ID_NO not in page.text

    base = f"/ui/publications/{pid}"
    token = csrf_of(page.text)
    doc = {"doc_no": "黔市监罚〔2026〕31号决定", "csrf_token": token}
    preview = reviewer.post(base + "/preview", data=doc)
    assert "公开预览" in preview.text and "黔市监罚〔2026〕31号决定" in preview.text
    assert PERSON not in preview.text and ID_NO not in preview.text
    assert reviewer.post(base + "/publish", data={"csrf_token": token}).status_code == 409
    assert reviewer.post(base + "/redaction", data=doc).status_code == 302
    confirmed = reviewer.get(base + "?saved=confirmed")
    assert "已确认的公开内容" in confirmed.text and "发布到公示网站" in confirmed.text
    assert reviewer.post(base + "/publish", data={"csrf_token": token}).status_code == 302

    public = world.app.test_client().get(f"/public/decisions/{pid}")
    assert public.status_code == 200 and "张某" in public.text and ID_NO not in public.text
    listed = reviewer.get("/ui/cases?publication=published")
    assert rows(listed.text) == ["黔市监罚〔2026〕31号"]

    corrected = {"doc_no": doc["doc_no"], "conclusion": "罚款四千元", "reason": "金额笔误"}
    assert (
        reviewer.post(base + "/correct", data={**corrected, "csrf_token": token}).status_code == 302
    )
    page = reviewer.get(base)
    assert "已更正" in page.text and "第 2 版" in page.text and "金额笔误" in page.text

    refused = reviewer.post(base + "/withdraw", data={"reason": "撤销"})  # no form token
    assert refused.status_code == 403
    withdrawn = {"reason": "复议机关撤销原处罚决定", "csrf_token": token}
    assert reviewer.post(base + "/withdraw", data=withdrawn).status_code == 302
    page = reviewer.get(base)
    assert 'id="pub-state">已撤回' in page.text and "复议机关撤销原处罚决定" in page.text
    assert "按期撤回" in page.text  # withdrawn the day it was revoked: within 3 working days
    case_page = reviewer.get(f"/ui/cases/{case_id}")
    assert "决定公示" in case_page.text and "已撤回" in case_page.text

    logged = event_types(world.as_("a_reviewer"), case_id)
    assert [t for t in logged if "publi" in t] == [
        "publication_redaction_confirmed",
        "decision_published",
        "publication_corrected",
        "publication_withdrawn",
    ]


def test_inspectors_see_states_but_no_forms_and_other_agencies_nothing(
    world: World, signed_in: Any
) -> None:
    pid, _ = _decided(world, "黔市监罚〔2026〕41号")
    inspector = signed_in("a_insp1")
    page = inspector.get(f"/ui/publications/{pid}")
    assert page.status_code == 200 and "待公开" in page.text
    assert "确认脱敏结果" not in page.text and PERSON not in page.text
    confirm = {"doc_no": "x", "csrf_token": csrf_of(page.text)}
    assert inspector.post(f"/ui/publications/{pid}/redaction", data=confirm).status_code == 403
    other = signed_in("b_reviewer")
    assert other.get(f"/ui/publications/{pid}").status_code == 404
    assert "黔市监罚〔2026〕41号" not in other.get("/ui/publications").text
    listed = signed_in("a_reviewer").get("/ui/publications?state=pending")
    assert "黔市监罚〔2026〕41号" in listed.text


def test_the_list_filter_agrees_with_publication_state_day_by_day(world: World) -> None:
    pid, case_id = _decided(world, "黔市监罚〔2026〕51号")
    calendar = WorkingCalendar()
    person = world.people["a_reviewer"]
    who = Principal(person.id, person.agency_id, Role.REVIEWER, "test")
    with parts(world.app).unit_of_work() as uow:
        [view] = publication.list_publications(uow, who, calendar, case_id=case_id)
        due = view.publication.due_on
        for offset in range(-12, 4):
            today = due + timedelta(days=offset)
            [state] = [
                v.state
                for v in publication.list_publications(uow, who, calendar, today=today)
                if v.publication.id == pid
            ]
            for candidate in ("pending", "due_soon", "overdue", "published"):
                found = case_list.list_page(
                    uow,
                    who,
                    case_list.ListQuery(publication=candidate),
                    today=today,
                    calendar=calendar,
                )
                assert (found.total == 1) == (candidate == state.value), (today, candidate)


@pytest.mark.parametrize("role", ["a_admin", "a_reviewer"])
def test_the_january_reminder_shows_to_admins_only(
    app: Flask, world: World, signed_in: Any, monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    from server.web import cases

    monkeypatch.setattr(cases, "_today", lambda: date(2027, 1, 20))
    page = signed_in(role).get("/ui/cases")
    shown = "2026 年度行政执法统计年报须于 2027-01-31 前公开" in page.text
    assert shown == (role == "a_admin")
    report = signed_in(role).get("/ui/reports/annual")
    assert "/public/reports/annual.xlsx?year=" in report.text and "agency=A-AGENCY" in report.text
