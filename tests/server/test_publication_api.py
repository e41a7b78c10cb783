"""Publication over the API (SQLite and PostgreSQL): refusals, exemption, search, agencies apart."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.calendar import WorkingCalendar
from server.services.publication_records import sync_publications
from tests.server.conftest import World, snapshot
from tests.server.manifest_support import event_types, open_case
from tests.server.procedure_support import notified_case

ID_NO = "11010519491231002X"


def _decision(
    world: World, case_no: str, *, category: str = "penalty", parties: Any = None
) -> tuple[str, str]:
    case = open_case(world, case_no, category=category)
    if parties is not None:
        # parties are set at opening in real use; the admin opens a second case with them
        case = (
            world.as_("a_admin")
            .post(
                "/cases",
                {
                    "category": category,
                    "case_no": case_no + "-P",
                    "title": "有当事人的案件",
                    "parties": parties,
                    "officer_ids": [world.people["a_insp1"].id],
                },
            )
            .get_json()
        )
    if category == "penalty":
        notified_case(world, case)  # 告知 and 陈述申辩 on file before the decision (Art. 62)
    made = world.as_("a_insp1").post(
        f"/cases/{case['id']}/decisions", {"decision_type": "penalty", "summary": "给予警告"}
    )
    assert made.status_code == 201, made.get_json()
    found = world.as_("a_reviewer").get(f"/publications?case_id={case['id']}").get_json()
    return found[0]["id"], case["id"]


def _publish(world: World, pid: str, doc_no: str) -> None:
    reviewer = world.as_("a_reviewer")
    assert reviewer.post(f"/publications/{pid}/redaction", {"doc_no": doc_no}).status_code == 200
    assert reviewer.post(f"/publications/{pid}/publish").status_code == 200


def test_refusals_change_nothing(world: World, engine) -> None:  # type: ignore[no-untyped-def]
    pid, _ = _decision(world, "罚-公开-1")
    reviewer = world.as_("a_reviewer")
    before = snapshot(engine)
    assert reviewer.post(f"/publications/{pid}/publish").status_code == 409  # not confirmed
    assert reviewer.post(f"/publications/{pid}/withdraw", {"reason": "x"}).status_code == 409
    correction = {"doc_no": "罚〔2026〕1号", "reason": "更正"}
    assert reviewer.post(f"/publications/{pid}/corrections", correction).status_code == 409
    assert (
        world.as_("a_insp1").post(f"/publications/{pid}/redaction", {"doc_no": "x"}).status_code
        == 403
    )
    assert (
        world.as_("b_reviewer").post(f"/publications/{pid}/redaction", {"doc_no": "x"}).status_code
        == 404
    )
    future = reviewer.post(
        f"/publications/{pid}/redaction", {"doc_no": "x", "decided_on": "2099-01-01"}
    )
    assert future.status_code == 422 and "decided_on" in future.get_json()["errors"]
    assert reviewer.post(f"/publications/{pid}/exempt", {"reason": ""}).status_code == 422
    assert snapshot(engine) == before


def test_an_exempt_decision_never_reaches_the_public(world: World) -> None:
    pid, case_id = _decision(world, "罚-公开-2")
    reviewer = world.as_("a_reviewer")
    done = reviewer.post(f"/publications/{pid}/exempt", {"reason": "涉及国家秘密，依法不予公开"})
    assert done.status_code == 200
    assert (done.get_json()["status"], done.get_json()["state_zh"]) == ("exempt", "不予公开")
    assert reviewer.post(f"/publications/{pid}/redaction", {"doc_no": "x"}).status_code == 409
    client = world.app.test_client()
    assert client.get(f"/public/decisions/{pid}").status_code == 404
    assert client.get("/public/decisions.json").get_json()["total"] == 0
    assert event_types(reviewer, case_id)[-1] == "publication_exempted"


def test_public_search_by_text_category_and_date_with_pages(world: World) -> None:
    ids = []
    for n in range(1, 4):
        pid, _ = _decision(world, f"罚-搜索-{n}")
        _publish(world, pid, f"云罚〔2026〕{n}号")
        ids.append(pid)
    org = [
        {"name": "贵州黔味食品有限公司", "kind": "organisation", "id_number": "91520100MA6DL12349"}
    ]
    lic, _ = _decision(world, "许-搜索-1", category="licensing", parties=org)
    _publish(world, lic, "云许〔2026〕9号")
    client = world.app.test_client()

    def found(query: str) -> list[str]:
        return [
            i["doc_no"] for i in client.get("/public/decisions.json?" + query).get_json()["items"]
        ]

    assert found("q=云罚〔2026〕2号") == ["云罚〔2026〕2号"]
    assert found("q=黔味") == ["云许〔2026〕9号"]
    assert found("q=91520100MA6DL12349") == ["云许〔2026〕9号"]
    assert found("category=行政许可") == ["云许〔2026〕9号"]
    assert len(found("category=行政处罚")) == 3
    assert found("from=2099-01-01") == []
    first = client.get("/public/decisions.json?per_page=2").get_json()
    second = client.get("/public/decisions.json?per_page=2&page=2").get_json()
    assert (first["total"], first["pages"], len(first["items"]), len(second["items"])) == (
        4,
        2,
        2,
        2,
    )
    assert {i["id"] for i in first["items"] + second["items"]} == {*ids, lic}
    html = client.get("/public/?per_page=2")
    assert html.status_code == 200 and "下一页" in html.get_data(as_text=True)
    assert client.get("/public/?from=not-a-date").status_code == 400


def test_an_organisation_keeps_its_credit_code_and_a_persons_id_is_gone(world: World) -> None:
    parties = [
        {"name": "李四", "kind": "person", "id_number": ID_NO, "address": "宝山北路1号2单元301室"},
        {"name": "贵州黔味食品有限公司", "kind": "organisation", "id_number": "91520100MA6DL12349"},
    ]
    pid, _ = _decision(world, "罚-对象-1", parties=parties)
    _publish(world, pid, "云罚〔2026〕77号")
    client = world.app.test_client()
    item = client.get("/public/decisions.json").get_json()["items"][0]
    assert item["parties"] == ["李某", "贵州黔味食品有限公司"]
    assert item["credit_codes"] == ["91520100MA6DL12349"]
    for path in (
        "/public/",
        f"/public/decisions/{pid}",
        "/public/decisions.json",
        "/public/decisions.atom",
    ):
        body = client.get(path).get_data(as_text=True)
        assert ID_NO not in body and "李四" not in body and "2单元301室" not in body


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_requests_creating_the_records_at_once_both_succeed(world: World, engine) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: the second insert waits for the first, then yields to it (no 500)."""
    case = open_case(world, "罚-并发-1")
    notified_case(world, case)
    made = world.as_("a_insp1").post(f"/cases/{case['id']}/decisions", {"decision_type": "penalty"})
    assert made.status_code == 201
    agency_id = world.people["a_admin"].agency_id
    created: list[int] = []

    def second() -> None:
        with Session(engine) as session:
            created.append(sync_publications(session, WorkingCalendar(), agency_id))
            session.commit()

    with Session(engine) as first:
        created.append(sync_publications(first, WorkingCalendar(), agency_id))  # not committed
        thread = threading.Thread(target=second)
        thread.start()
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        deadline, blocked = time.monotonic() + 20, 0
        while not blocked and time.monotonic() < deadline:  # the second insert waits on
            time.sleep(0.05)  # the unique index (a new transaction per look: fresh stats)
            with engine.connect() as conn:
                blocked = conn.execute(waiting).scalar() or 0
        assert blocked == 1
        first.commit()
    thread.join(20)
    assert created == [1, 1]  # both inserted; the second yielded to the first
    listed = world.as_("a_reviewer").get(f"/publications?case_id={case['id']}").get_json()
    assert len(listed) == 1
