"""A bag exported by a server with an agency calendar (CASETRAIL_CALENDAR_FILE) carries
that calendar, and ``casetrail verify`` assesses completeness again with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.calendar import WorkingCalendar
from server.archive.recompute import recompute_completeness
from server.cli import main
from server.settings import Settings
from tests.server.archive_support import Capture, extract_tar, ingest_case
from tests.server.conftest import World, server_settings
from tests.support.calendars import calendar_2027

FILES = [("立案审批表.pdf", b"%PDF-1.4\n" + b"c" * 2000, "application/pdf")]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return server_settings(tmp_path, db_url, calendar_file=calendar_2027(tmp_path))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_a_bag_from_a_server_with_a_calendar_file_verifies_with_that_calendar(
    world: World, tmp_path: Path
) -> None:
    # 立案 on 1 December 2026 starts the 90-day penalty-decision clock, which ends in 2027
    ingested = ingest_case(
        world,
        [Capture("filing", "filing-approval", FILES)],
        device_time="2026-12-01T10:00:00+08:00",
    )
    archivist = world.as_("a_archivist")
    response = archivist.post(f"/cases/{ingested.case['id']}/export?format=tar")
    assert response.status_code == 200, response.get_json()
    (tmp_path / "case.tar").write_bytes(response.data)
    bag = extract_tar(response.data, tmp_path / "bag")
    log_key = archivist.get("/log/public-key").get_json()["verifier_key"]

    carried = json.loads((bag / "casetrail/case.json").read_text("utf-8"))["agency_calendar"]
    assert [y["year"] for y in carried] == [2027]
    assert "国办发明电〔2026〕99号" in carried[0]["source"]
    assert "2027-02-05" in carried[0]["holidays"] and "2027-02-20" in carried[0]["working_days"]
    report = json.loads((bag / "casetrail/completeness.json").read_text("utf-8"))
    due = [d["due"] for d in report["deadlines"] if d.get("due")]
    assert any(d.startswith("2027-") for d in due), report["deadlines"]

    verified = CliRunner().invoke(
        main, ["verify", str(tmp_path / "case.tar"), "--log-key", log_key]
    )
    assert verified.exit_code == 0, verified.output
    assert "completeness_mismatch" not in verified.output
    assert "completeness recomputed under" in verified.output

    # what the bug was: the bundled calendar alone (chinesecalendar up to 2026) does not
    # know 2027, so the report assessed again without the carried calendar differs
    if not WorkingCalendar().covers(2027):
        bundled_only = recompute_completeness(bag, WorkingCalendar())
        assert "completeness_mismatch" in {p.code for p in bundled_only.problems}
