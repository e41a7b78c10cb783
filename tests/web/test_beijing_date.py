"""One date for people everywhere: at 23:30 UTC (07:30 the next day in Beijing) the CLI,
the completeness report and the workspace all give the Beijing date."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

import server.services.completeness as completeness_service
import server.web.cases as case_pages
from server.cli import main
from server.models import Case, StageChange
from tests.server.conftest import World, parts
from tests.server.manifest_support import cli_env, open_case

LATE = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # 2026-03-03 07:30 in Beijing
BEIJING_DAY, UTC_DAY = "2026-03-03", "2026-03-02"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_a_case_opened_at_2330_utc_has_the_beijing_date_everywhere(
    app: Flask, world: World, signed_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = open_case(world, "黔市监罚〔2026〕30号")
    moved = world.as_("a_insp1").post(f"/cases/{case['id']}/stage", {"stage": "filing"})
    assert moved.status_code == 200
    with parts(app).unit_of_work() as uow:  # opened and filed at 23:30 UTC
        uow.session.get(Case, case["id"]).created_at = LATE
        for change in uow.session.scalars(
            select(StageChange).where(StageChange.case_id == case["id"])
        ):
            change.changed_at = LATE
        uow.commit()
    # ... and it is still 23:30 UTC when people look
    monkeypatch.setattr(completeness_service, "utcnow", lambda: LATE)
    monkeypatch.setattr(case_pages, "utcnow", lambda: LATE)

    report = world.as_("a_reviewer").get(f"/cases/{case['id']}/completeness").get_json()
    assert report["assessed_on"] == BEIJING_DAY
    assert {s["id"]: s["entered"] for s in report["stages"]}["filing"] == BEIJING_DAY

    listed = CliRunner().invoke(main, ["cases", "list"], env=cli_env(world))
    assert listed.exit_code == 0, listed.output
    [row] = [line for line in listed.output.splitlines() if "〔2026〕30号" in line]
    assert BEIJING_DAY in row and UTC_DAY not in row

    reviewer = signed_in("a_reviewer")
    table = reviewer.get("/ui/cases").text
    assert f"<td>{BEIJING_DAY}</td>" in table and UTC_DAY not in table
    page = reviewer.get(f"/ui/cases/{case['id']}").text
    assert f"评估日 {BEIJING_DAY}" in page and f"{BEIJING_DAY} 进入" in page
    assert UTC_DAY not in page
