"""The annual statistics report on a generated year of 2,100 cases, checked against direct SQL."""

from __future__ import annotations

import io
import json
import time
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import Engine, and_, func, select
from sqlalchemy.orm import Session

from core.calendar import WorkingCalendar
from server.cli import main
from server.models import Case, Decision, Evidence, FixityCheck, LegalReview, Publication
from server.services.annual_report import CHINA, build_annual_report
from tests.server.conftest import World
from tests.server.manifest_support import cli_env, open_case
from tests.server.procedure_support import add_head, file_records, notified_case
from tests.server.report_support import generate_year, year_bounds_utc

YEAR = 2026
CASES = 2_100


@pytest.fixture
def generated(world: World, engine: Engine):  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        truth = generate_year(session, "A-AGENCY", YEAR, CASES)
        session.commit()
    return truth


def _count(session: Session, stmt) -> int:  # type: ignore[no-untyped-def]
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def test_the_report_builds_in_under_a_minute_and_matches_direct_sql(
    world: World, engine: Engine, generated
) -> None:  # type: ignore[no-untyped-def]
    agency_id = world.people["a_admin"].agency_id
    seen: list[str] = []
    started = time.monotonic()
    with Session(engine) as session:
        report = build_annual_report(
            session,
            agency_id,
            YEAR,
            WorkingCalendar(),
            today=date(YEAR + 1, 1, 10),
            progress=lambda n, total, name: seen.append(f"{n}/{total} {name}"),
        )
        session.commit()
    took = time.monotonic() - started
    print(f"\nannual report over {CASES} generated cases: {took:.2f}s")
    assert took < 60
    assert seen[0] == "1/9 cases" and seen[-1] == "9/9 fixity"
    s = report.sections
    start, end = year_bounds_utc(YEAR)

    with Session(engine) as session:
        year_cases = select(Case.id).where(
            Case.agency_id == agency_id, Case.created_at >= start, Case.created_at < end
        )
        assert s["cases"]["opened"] == _count(session, year_cases) == CASES
        penalty_cases = year_cases.where(Case.category == "penalty")
        assert s["cases"]["opened_by_category"]["行政处罚"] == _count(
            session, year_cases.where(Case.category.in_(["penalty", "penalty-simple"]))
        )
        assert _count(session, penalty_cases) > 0
        decisions = (
            select(Decision.id)
            .join(Case, Case.id == Decision.case_id)
            .where(
                Case.agency_id == agency_id, Decision.decided_at >= start, Decision.decided_at < end
            )
        )
        assert s["decisions"]["total"] == _count(session, decisions)
        assert s["decisions"]["by_category"]["行政许可"] == _count(
            session, decisions.where(Case.category == "licensing")
        )
        assert s["decisions"]["by_outcome"]["grant"] == _count(
            session, decisions.where(Decision.decision_type == "grant")
        )
        reviews = (
            select(LegalReview.id)
            .join(Case, Case.id == LegalReview.case_id)
            .where(LegalReview.reviewed_at >= start, LegalReview.reviewed_at < end)
        )
        assert s["legal_reviews"]["returned"] == _count(
            session, reviews.where(LegalReview.outcome == "returned")
        )
        assert s["legal_reviews"]["passed"] == _count(
            session, reviews.where(LegalReview.outcome == "passed")
        )
        pubs = select(Publication.id).where(
            Publication.decided_on >= date(YEAR, 1, 1), Publication.decided_on <= date(YEAR, 12, 31)
        )
        published = pubs.where(Publication.first_published_on.is_not(None))
        assert s["publication"]["on_time"] == _count(
            session, published.where(Publication.first_published_on <= Publication.due_on)
        )
        assert s["publication"]["late"] == _count(
            session, published.where(Publication.first_published_on > Publication.due_on)
        )
        assert s["publication"]["withdrawn"] == _count(
            session, pubs.where(Publication.status == "withdrawn")
        )
        assert s["publication"]["corrected"] == _count(session, pubs.where(Publication.version > 1))
        # decisions without a record got one while the report was built (due 7/20 working days)
        unpublished = _count(session, pubs.where(Publication.first_published_on.is_(None)))
        assert unpublished > 200
        assert s["publication"]["overdue"] + s["publication"]["due"] == unpublished
        stored = (
            select(Evidence.id, Evidence.expected_size)
            .join(Case, Case.id == Evidence.case_id)
            .where(Evidence.received_at >= start, Evidence.received_at < end)
        )
        assert s["evidence"]["files"] == _count(session, stored)
        assert s["evidence"]["bytes"] == session.scalar(
            select(func.sum(Evidence.expected_size)).where(
                and_(Evidence.received_at >= start, Evidence.received_at < end)
            )
        )
        assert s["evidence"]["by_kind"]["video"] == _count(
            session, stored.where(Evidence.media_type == "video/mp4")
        )
        fixity = select(FixityCheck.evidence_id).where(
            FixityCheck.checked_at >= start, FixityCheck.checked_at < end
        )
        for status in ("ok", "failed", "missing"):
            assert s["fixity"][status] == _count(
                session, fixity.where(FixityCheck.status == status)
            )

    # figures held in JSON columns, against what the generator counted
    assert {k: v for k, v in s["penalties"]["by_type"].items() if v} == dict(
        generated.penalty_types
    )
    assert {k: v for k, v in s["penalties"]["fine_bands"].items() if v} == dict(
        generated.fine_bands
    )
    assert s["penalties"]["fine_total_yuan"] == str(generated.fine_total)
    assert s["hearings"]["held"] == generated.hearings
    assert s["hearings"]["eligible"] == generated.hearing_eligible > 0
    assert {k: s["completeness"][k] for k in generated.completeness} == dict(generated.completeness)


def test_cli_writes_xlsx_html_and_json_with_progress(
    world: World, engine: Engine, tmp_path: Path
) -> None:
    with Session(engine) as session:
        generate_year(session, "A-AGENCY", YEAR, 300)  # a small year: the files are the point
        session.commit()
    out = tmp_path / "out"
    done = CliRunner().invoke(
        main,
        ["report", "annual", "--year", str(YEAR), "--agency", "A-AGENCY", "--out", str(out)],
        env=cli_env(world),
    )
    assert done.exit_code == 0, done.output
    assert "[1/9] 案件" in done.output and "[9/9] 固定性核验" in done.output
    data = json.loads((out / f"annual-report-A-AGENCY-{YEAR}.json").read_text("utf-8"))
    assert data["sections"]["cases"]["opened"] == 300
    assert data["due_on"] == f"{YEAR + 1}-01-31"
    book = load_workbook(out / f"annual-report-A-AGENCY-{YEAR}.xlsx")
    assert book.sheetnames[:3] == ["概况", "案件", "执法决定"]
    rows = {r[1]: r[2] for r in book["案件"].iter_rows(min_row=2, values_only=True)}
    assert rows["立案数"] == 300
    html = (out / f"annual-report-A-AGENCY-{YEAR}.html").read_text("utf-8")
    assert "<style>" in html and html.count('class="bar"') >= 10

    client = world.app.test_client()
    page = client.get(f"/public/reports/annual?agency=A-AGENCY&year={YEAR}")
    assert page.status_code == 200 and "统计年报" in page.get_data(as_text=True)
    xlsx = client.get(f"/public/reports/annual.xlsx?agency=A-AGENCY&year={YEAR}")
    assert load_workbook(io.BytesIO(xlsx.data))["概况"]["B3"].value == YEAR
    assert client.get("/public/reports/annual?agency=NOPE").status_code == 404


def test_a_hearing_held_on_the_way_to_a_decision_counts_and_no_penalty_is_no_penalty(
    world: World, engine: Engine
) -> None:
    """Through the law's procedure: the 听证笔录 on file makes the decision one taken after a
    hearing, whatever its facts say; a 不予处罚 decision is no 行政处罚."""
    add_head(world)
    reviewer, head = world.as_("a_reviewer"), world.as_("a_head")
    case = open_case(world, "罚-年报-听证")
    device = notified_case(world, case)
    file_records(
        world,
        device,
        case,
        ("collective-discussion", "discussion-record"),
        ("notification", "hearing-rights-notice"),
        ("hearing", "hearing-application"),
        ("hearing", "hearing-transcript"),
    )
    revocation = {"decision_type": "penalty", "measures": ["licence_revocation"]}
    review = {"result": "passed", "opinion": "同意", "draft": revocation}
    assert reviewer.post(f"/cases/{case['id']}/legal-reviews", review).status_code == 201
    held = {**revocation, "hearing_chair_user_id": world.people["a_insp3"].id}
    made = head.post(f"/cases/{case['id']}/decisions", held)
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["facts"]["hearing_held"] is False  # the records say it
    # the hearing scope without a hearing asked for: told of the right, none held
    told = open_case(world, "罚-年报-告知")
    device = notified_case(world, told)
    file_records(
        world,
        device,
        told,
        ("collective-discussion", "discussion-record"),
        ("notification", "hearing-rights-notice"),
    )
    closure = {"decision_type": "penalty", "measures": ["order_stop_business"]}
    review = {"result": "passed", "opinion": "同意", "draft": closure}
    assert reviewer.post(f"/cases/{told['id']}/legal-reviews", review).status_code == 201
    made = head.post(f"/cases/{told['id']}/decisions", closure)
    assert made.status_code == 201, made.get_json()
    spared = open_case(world, "罚-年报-不予")
    made = world.as_("a_insp1").post(
        f"/cases/{spared['id']}/decisions", {"decision_type": "no-penalty", "summary": "不予处罚"}
    )
    assert made.status_code == 201, made.get_json()

    year = datetime.now(CHINA).year
    with Session(engine) as session:
        report = build_annual_report(
            session,
            world.people["a_admin"].agency_id,
            year,
            WorkingCalendar(),
            today=date(year + 1, 1, 10),
        )
    s = report.sections
    assert s["hearings"] == {"held": 1, "eligible": 2}
    assert s["decisions"]["by_outcome"] == {"no-penalty": 1, "penalty": 2}
    assert s["penalties"]["total"] == 2
    assert {k: v for k, v in s["penalties"]["by_type"].items() if v} == {
        "吊销许可证件": 1,
        "责令停产停业": 1,
    }
