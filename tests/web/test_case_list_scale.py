"""The case list with 10,000 cases: one request assesses only what changed, and stays quick."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import insert

from server.models import Case, CaseSummary, CustodyEventRow
from server.services import case_list
from tests.server.conftest import World, parts

CASES = 10_000
EVENTS_PER_CASE = 3


def _seed(app: Flask, agency_id: str, creator: str) -> list[str]:
    """10,000 cases with custody events and summaries as the list left them."""
    now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    ids = [str(uuid.uuid4()) for _ in range(CASES)]
    cases, events, summaries = [], [], []
    for n, case_id in enumerate(ids):
        cases.append(
            {
                "id": case_id,
                "agency_id": agency_id,
                "category": "penalty",
                "standard_id": "penalty",
                "standard_version": "2026.1",
                "case_no": f"黔市监罚〔2026〕{n}号",
                "title": f"批量案件 {n}",
                "parties": [{"name": f"当事人{n}", "kind": "person"}],
                "status": "open",
                "current_stage": "filing",
                "created_by": creator,
                "created_at": now + timedelta(seconds=n),
            }
        )
        for seq in range(1, EVENTS_PER_CASE + 1):
            events.append(
                {
                    "id": str(uuid.uuid4()),
                    "log_index": n * EVENTS_PER_CASE + seq - 1,
                    "case_id": case_id,
                    "case_seq": seq,
                    "event_type": "case_opened",
                    "event_hash": "sha256:" + "0" * 64,
                    "leaf_hash": b"\0" * 32,
                    "canonical_json": "{}",
                    "created_at": now,
                }
            )
        summaries.append(
            {
                "case_id": case_id,
                "custody_seq": EVENTS_PER_CASE,
                "status": "incomplete" if n % 3 == 0 else "complete",
                "defects": 2 if n % 3 == 0 else 0,
                "deadline_rule": "penalty-decision",
                "deadline_due": (now.date() + timedelta(days=n % 200)).isoformat(),
                "computed_at": now,
            }
        )
    with parts(app).engine.begin() as conn:
        conn.execute(insert(Case), cases)
        conn.execute(insert(CustodyEventRow), events)
        conn.execute(insert(CaseSummary), summaries)
    return ids


def test_ten_thousand_cases_page_without_assessing_them(
    app: Flask, world: World, signed_in: Any
) -> None:
    admin = world.people["a_admin"]
    ids = _seed(app, admin.agency_id, admin.id)
    with parts(app).engine.begin() as conn:  # one case changed since it was summarised
        conn.execute(
            insert(CustodyEventRow),
            [
                {
                    "id": str(uuid.uuid4()),
                    "log_index": CASES * EVENTS_PER_CASE,
                    "case_id": ids[42],
                    "case_seq": EVENTS_PER_CASE + 1,
                    "event_type": "stage_changed",
                    "event_hash": "sha256:" + "1" * 64,
                    "leaf_hash": b"\1" * 32,
                    "canonical_json": "{}",
                    "created_at": datetime.now(UTC),
                }
            ],
        )
    reviewer = signed_in("a_reviewer")
    assessed: list[str] = []
    original = case_list.summarise

    def counting(uow, case, *args, **kwargs):  # type: ignore[no-untyped-def]
        assessed.append(case.id)
        return original(uow, case, *args, **kwargs)

    case_list.summarise = counting  # type: ignore[assignment]
    try:
        timings, pages = [], []
        for url in (
            "/ui/cases?flag=missing&sort=deadline&order=asc",
            "/ui/cases?q=当事人9999",
            "/ui/cases?page=300",
        ):
            started = time.perf_counter()
            response = reviewer.get(url)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200
            pages.append(response.text)
    finally:
        case_list.summarise = original  # type: ignore[assignment]
    assert assessed == [ids[42]]  # only the case that changed, never all 10,000
    missing, searched, deep = pages
    assert re.search(r"共 333[34] 件", missing), re.search(r"共 \d+ 件", missing)
    assert "共 1 件" in searched and "黔市监罚〔2026〕9999号" in searched
    assert "第 300 / 400 页" in deep
    print(f"\n10,000 cases: list requests took {', '.join(f'{t * 1000:.0f} ms' for t in timings)}")
    assert max(timings) < 5.0, timings
