"""The case list and the case page as reviewers, inspectors and other agencies see them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from server.models import CustodyEventRow
from server.services import case_list
from tests.server.conftest import World, parts
from tests.server.manifest_support import event_types, open_case
from tests.server.procedure_support import add_head, file_records, notified_case
from tests.web.conftest import csrf_of


def rows(html: str) -> list[str]:
    """The 案号 of each row of the case table, in order."""
    return re.findall(r'<td><a href="/ui/cases/[^"]+">([^<]+)</a></td>', html)


def _incomplete_and_complete(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    incomplete = open_case(world, "黔市监罚〔2026〕1号")
    moved = world.as_("a_insp1").post(f"/cases/{incomplete['id']}/stage", {"stage": "filing"})
    assert moved.status_code == 200
    quiet = open_case(world, "黔市监查〔2026〕2号", category="inspection", officers=("a_insp2",))
    reviewer = world.as_("a_reviewer")
    report = reviewer.get(f"/cases/{quiet['id']}/completeness").get_json()
    for finding in report["findings"]:  # accept what the quiet case lacks: nothing 缺项 left
        if finding["severity"] == "defect":
            waiver = {"stage": finding["stage"], "item": finding["item"], "reason": "测试"}
            assert reviewer.post(f"/cases/{quiet['id']}/waivers", waiver).status_code == 201
    return incomplete, quiet


def test_the_missing_filter_finds_incomplete_cases_with_deadline_days(
    app: Flask, world: World, signed_in: Any
) -> None:
    incomplete, quiet = _incomplete_and_complete(world)
    reviewer = signed_in("a_reviewer")
    everything = reviewer.get("/ui/cases")
    assert sorted(rows(everything.text)) == sorted([incomplete["case_no"], quiet["case_no"]])
    missing = reviewer.get("/ui/cases?flag=missing")
    assert rows(missing.text) == [incomplete["case_no"]]
    assert "缺 " in missing.text and "个工作日" in missing.text  # the 行政处罚 decision deadline
    assert "<td>立案</td>" in missing.text  # the stage by its Chinese name
    searched = reviewer.get("/ui/cases?q=" + "监查")
    assert rows(searched.text) == [quiet["case_no"]]
    # htmx asks for the table only
    fragment = reviewer.get(
        "/ui/cases?category=penalty", headers={"HX-Request": "true", "HX-Target": "case-table"}
    )
    assert "<html" not in fragment.text and rows(fragment.text) == [incomplete["case_no"]]
    by_no = reviewer.get("/ui/cases?sort=case_no&order=asc")
    assert rows(by_no.text) == sorted(rows(by_no.text))


def test_the_list_reassesses_only_cases_that_changed(
    app: Flask, world: World, signed_in: Any
) -> None:
    incomplete, _ = _incomplete_and_complete(world)
    reviewer = signed_in("a_reviewer")
    reviewer.get("/ui/cases")
    calls: list[str] = []
    original = case_list.summarise

    def counting(uow, case, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(case.case_no)
        return original(uow, case, *args, **kwargs)

    case_list.summarise = counting  # type: ignore[assignment]
    try:
        reviewer.get("/ui/cases")
        assert calls == []  # nothing changed: nothing assessed
        world.as_("a_insp1").post(f"/cases/{incomplete['id']}/stage", {"stage": "site-inspection"})
        reviewer.get("/ui/cases")
        assert calls == [incomplete["case_no"]]
    finally:
        case_list.summarise = original  # type: ignore[assignment]


def test_case_page_shows_findings_with_legal_basis_and_takes_a_waiver_and_a_review(
    app: Flask, world: World, signed_in: Any
) -> None:
    incomplete, _ = _incomplete_and_complete(world)
    reviewer = signed_in("a_reviewer")
    page = reviewer.get(f"/ui/cases/{incomplete['id']}")
    assert page.status_code == 200
    assert incomplete["case_no"] in page.text and "A00001" in page.text  # 执法证号
    assert "法律依据" in page.text and "中华人民共和国行政处罚法" in page.text
    items = re.findall(r'name="item" value="([^"]+)"', page.text)
    stages = re.findall(r'name="stage" value="([^"]*)"', page.text)
    assert items, "a reviewer gets a waiver form per defect"
    waived = reviewer.post(
        f"/ui/cases/{incomplete['id']}/waivers",
        data={
            "csrf_token": csrf_of(page.text),
            "stage": stages[0],
            "item": items[0],
            "reason": "原件在档案室",
        },
    )
    assert waived.status_code == 302
    after = reviewer.get(waived.headers["Location"])
    assert "已记录豁免" in after.text and "原件在档案室" in after.text
    reviewed = reviewer.post(
        f"/ui/cases/{incomplete['id']}/reviews",
        data={"csrf_token": csrf_of(after.text), "outcome": "returned", "opinion": "证据不足"},
    )
    assert reviewed.status_code == 302
    final = reviewer.get(reviewed.headers["Location"])
    assert "退回" in final.text and "证据不足" in final.text
    types = event_types(world.as_("a_reviewer"), incomplete["id"])
    assert "legal_review_recorded" in types and types.count("completeness_checked") >= 4


def test_other_inspectors_and_agencies_get_not_found(
    app: Flask, world: World, signed_in: Any
) -> None:
    incomplete, quiet = _incomplete_and_complete(world)
    inspector = signed_in("a_insp3")  # assigned to neither case
    assert rows(inspector.get("/ui/cases").text) == []
    assert inspector.get(f"/ui/cases/{incomplete['id']}").status_code == 404
    other_agency = signed_in("b_reviewer")
    missing = other_agency.get(f"/ui/cases/{incomplete['id']}")
    assert missing.status_code == 404 and "页面不存在" in missing.text
    assert incomplete["case_no"] not in missing.text
    # an inspector cannot record a review even with a valid form token
    own = signed_in("a_insp2")
    page = own.get(f"/ui/cases/{quiet['id']}")
    refused = own.post(
        f"/ui/cases/{quiet['id']}/reviews",
        data={"csrf_token": csrf_of(page.text), "outcome": "passed"},
    )
    assert refused.status_code == 403 and "需要以下角色之一" in refused.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_a_post_without_the_form_token_changes_nothing(
    app: Flask, world: World, signed_in: Any
) -> None:
    incomplete, _ = _incomplete_and_complete(world)
    reviewer = signed_in("a_reviewer")
    before = event_types(world.as_("a_reviewer"), incomplete["id"])
    refused = reviewer.post(
        f"/ui/cases/{incomplete['id']}/reviews", data={"outcome": "passed", "opinion": "x"}
    )
    assert refused.status_code == 403 and "安全令牌" in refused.text
    assert event_types(world.as_("a_reviewer"), incomplete["id"]) == before


def test_the_custody_chain_is_verified_on_the_page_with_proofs_per_event(
    app: Flask, world: World, signed_in: Any
) -> None:
    incomplete, _ = _incomplete_and_complete(world)
    reviewer = signed_in("a_reviewer")
    page = reviewer.get(f"/ui/cases/{incomplete['id']}")
    assert "监管链已在本页重新校验" in page.text
    # each event reads in Chinese, with who did it (not the vocabulary's English ids)
    assert "<td>立案</td><td>管理员</td>" in page.text and "case_opened" not in page.text
    proofs = re.findall(r'href="(/ui/custody/events/[^"]+/proof)"', page.text)
    assert proofs
    proof = reviewer.get(proofs[-1]).get_json()  # the case's first event
    assert proof["event"]["type"] == "case_opened" and proof["tree_size"] > proof["leaf_index"]
    assert proof["checkpoint"]["note"]  # a signed checkpoint the proof leads to
    assert signed_in("b_reviewer").get(proofs[-1]).status_code == 404
    with parts(app).unit_of_work() as uow:  # someone edits an event behind our back
        row = uow.session.scalars(
            select(CustodyEventRow)
            .where(CustodyEventRow.case_id == incomplete["id"])
            .order_by(CustodyEventRow.case_seq)
        ).first()
        assert row is not None
        row.canonical_json = row.canonical_json.replace("case_opened", "case_closed")
        uow.commit()
    tampered = reviewer.get(f"/ui/cases/{incomplete['id']}")
    assert "监管链校验发现" in tampered.text and "断裂" in tampered.text


def test_a_blocked_decision_shows_the_legal_review_gates_reasons(
    app: Flask, world: World, signed_in: Any
) -> None:
    """Through the law's procedure in the browser: the refused draft and each gate's
    reasons, a review of exactly that draft, then the head records it."""
    incomplete, _ = _incomplete_and_complete(world)
    case_id = incomplete["id"]
    inspector = signed_in("a_insp1")
    page = inspector.get(f"/ui/cases/{case_id}")
    assert "记录拟作出的决定" in page.text and "吊销许可证件" in page.text  # the measures
    decision = {
        "csrf_token": csrf_of(page.text),
        "decision_type": "penalty",
        "party": "organisation",
        "fine_yuan": "5000",
        "complex_case": "1",
        "summary": "拟罚款",
    }
    bad = inspector.post(f"/ui/cases/{case_id}/decisions", data={**decision, "fine_yuan": "-5"})
    assert bad.status_code == 422 and "罚款金额（fine_yuan）" in bad.text
    blocked = inspector.post(f"/ui/cases/{case_id}/decisions", data=decision)
    assert blocked.status_code == 409
    text = blocked.text
    assert "未获通过的决定草案" in text and "sha256:" in text
    assert "第五十八条" in text and "法制审核" in text  # the review gate
    assert "疑难复杂" in text  # why this decision is major
    assert "第六十二条" in text and "集体讨论" in text  # no 告知, no 集体讨论 by the head
    assert "5000 元" in text and 'value="5000"' in text  # the form keeps the draft
    # the procedure's records go on file; the reviewer reviews that draft in the browser
    device = notified_case(world, incomplete)
    file_records(world, device, incomplete, ("collective-discussion", "discussion-record"))
    reviewer = signed_in("a_reviewer")
    to_review = reviewer.get(f"/ui/cases/{case_id}")
    digest = re.search(r'<code class="digest">(sha256:[0-9a-f]+)</code>', to_review.text)
    assert digest is not None and "本审核意见针对上述决定草案" in to_review.text
    form = dict(
        re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', to_review.text)
    )
    assert form["decision_type"] == "penalty" and form["complex_case"] == "1"
    form.update(outcome="passed", opinion="同意")
    reviewed = reviewer.post(f"/ui/cases/{case_id}/reviews", data=form)
    assert reviewed.status_code == 302
    after = reviewer.get(reviewed.headers["Location"]).text
    assert "通过" in after and "最近一次法制审核已通过本草案" in after
    reviews = world.as_("a_reviewer").get(f"/cases/{case_id}/legal-reviews").get_json()
    assert reviews[-1]["draft_digest"] == digest.group(1)
    # a 疑难复杂 case is decided by the head after 集体讨论 (Art. 57 ¶2)
    add_head(world)
    head = signed_in("a_head")
    filled = head.get(f"/ui/cases/{case_id}")
    assert "已按上述未获通过的草案填写" in filled.text
    recorded = head.post(
        f"/ui/cases/{case_id}/decisions", data={**decision, "csrf_token": csrf_of(filled.text)}
    )
    assert recorded.status_code == 302, recorded.text
    shown = head.get(recorded.headers["Location"]).text
    assert "已记录决定" in shown and "未获通过的决定草案" not in shown
    assert "decision_recorded" in event_types(world.as_("a_admin"), case_id)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_a_deadline_no_calendar_covers_says_so(
    app: Flask, world: World, signed_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond every calendar a natural-day limit still has its date (若遇法定节假日顺延);
    a working-day one cannot be counted, and the page says what to supply."""
    import server.web.cases as pages
    from core.calendar import WorkingCalendar

    monkeypatch.setattr(pages, "calendar", lambda: WorkingCalendar(bundled=False))
    incomplete, _ = _incomplete_and_complete(world)
    licensing = open_case(world, "黔市监许〔2026〕3号", category="licensing")
    moved = world.as_("a_insp1").post(f"/cases/{licensing['id']}/stage", {"stage": "acceptance"})
    assert moved.status_code == 200, moved.get_json()
    reviewer = signed_in("a_reviewer")
    listed = reviewer.get("/ui/cases?flag=missing").text
    penalty_row = listed[listed.index(incomplete["case_no"]) :].split("</tr>")[0]
    assert re.search(r"\d{4}-\d{2}-\d{2}", penalty_row) and "无法计算" not in penalty_row
    licensing_row = listed[listed.index(licensing["case_no"]) :].split("</tr>")[0]
    assert "无法计算（缺少工作日历）" in licensing_row
    penalty = reviewer.get(f"/ui/cases/{incomplete['id']}").text  # 90 natural days (Art. 60)
    assert "若遇法定节假日顺延" in penalty and "届满 无法计算" not in penalty
    working = reviewer.get(f"/ui/cases/{licensing['id']}").text  # 20 working days (Art. 42)
    assert "届满 无法计算" in working and "CASETRAIL_CALENDAR_FILE" in working
