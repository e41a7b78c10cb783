"""A penalty case walked through the API from 立案 to 送达 with a hearing: every legal
clock shows on the case, with due dates counted across the 2026 Spring Festival
(放假 2026-02-15..02-23; 调休上班 Saturday 02-14 and 02-28)."""

from __future__ import annotations

from datetime import date
from typing import Any

from core.calendar import WorkingCalendar
from core.completeness import assess
from server.archive.recompute import facts_from_json, facts_json
from server.models import Case
from server.services.cases import pinned_standard
from server.services.completeness import case_facts
from tests.server.conftest import World, parts
from tests.server.manifest_support import enrol, open_case
from tests.server.procedure_support import add_head, file_records

STAGES = (
    "filing",
    "preservation",
    "investigation-end",
    "legal-review",
    "collective-discussion",
    "notification",
    "statement-defence",
    "hearing",
    "decision",
    "service",
)
DRAFT = {
    "decision_type": "penalty",
    "party": "organisation",
    "fine_yuan": "50000",
    "measures": ["licence_revocation"],
}


def clocks(body: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        c["rule"]: (c["start"], c["due"], c["rolled_from"], c["state"], c["done_on"])
        for c in body["deadlines"]
    }


def test_penalty_case_from_filing_to_service_shows_every_clock_across_spring_festival(
    world: World,
) -> None:
    add_head(world)
    case = open_case(world, "罚-期限-1")
    path = f"/cases/{case['id']}"
    inspector = world.as_("a_insp1")
    for stage in STAGES[:3]:
        assert inspector.post(f"{path}/stage", {"stage": stage}).status_code == 200
    device = enrol(world, "a_insp1")
    file_records(
        world,
        device,
        case,
        ("filing", "filing-approval", "2025-11-22"),
        ("preservation", "preservation-approval", "2026-02-11"),
        ("preservation", "preservation-notice", "2026-02-11"),
        ("investigation-end", "investigation-report", "2026-01-20"),
    )
    # 立案 2025-11-22: the 90-day limit ends 2026-02-20, inside the Spring Festival
    assert clocks(inspector.get(path).get_json())["penalty-decision"] == (
        "2025-11-22",
        "2026-02-24",
        "2026-02-20",
        "overdue",  # seen today, long after: nothing decided yet
        None,
    )
    for stage in STAGES[3:]:
        moved = inspector.post(f"{path}/stage", {"stage": stage})
        assert moved.status_code == 200, moved.get_json()
    file_records(
        world,
        device,
        case,
        ("notification", "penalty-notice", "2026-01-26"),
        ("notification", "hearing-rights-notice", "2026-01-26"),
        ("statement-defence", "statement-record", "2026-01-28"),
        ("hearing", "hearing-application", "2026-01-28"),
        ("hearing", "hearing-notice", "2026-02-03"),
        ("hearing", "hearing-transcript", "2026-02-12"),
        ("collective-discussion", "discussion-record", "2026-02-12"),
        ("preservation", "handling-notice", "2026-02-13"),
        ("decision", "decision-document", "2026-02-13"),
        ("service", "service-receipt", "2026-02-14"),
    )
    review = {"result": "passed", "opinion": "同意", "draft": DRAFT}
    assert world.as_("a_reviewer").post(f"{path}/legal-reviews", review).status_code == 201
    chair = world.people["a_insp3"].id
    decided = world.as_("a_head").post(
        f"{path}/decisions", {**DRAFT, "hearing_chair_user_id": chair}
    )
    assert decided.status_code == 201, decided.get_json()

    shown = clocks(world.as_("a_reviewer").get(path).get_json())
    assert shown == {
        # 处罚法 Art. 60: 90 natural days, end on a holiday → first working day after
        "penalty-decision": ("2025-11-22", "2026-02-24", "2026-02-20", "done", "2026-02-13"),
        # Art. 56: 02-12, 02-13, 02-14 (调休), 02-24, 02-25, 02-26, 02-27
        "preservation-decision": ("2026-02-11", "2026-02-27", None, "done", "2026-02-13"),
        # Art. 64 (一): the party's five working days after the notice
        "hearing-request": ("2026-01-26", "2026-02-02", None, "done", "2026-01-28"),
        # Art. 64 (二): seven working days before the hearing on 02-12
        "hearing-notice": ("2026-02-12", "2026-02-03", None, "done", "2026-02-03"),
        # Art. 61: 02-14 (调休), 02-24 … 02-27, 02-28 (调休), 03-02
        "serve-absent-party": ("2026-02-13", "2026-03-02", None, "done", "2026-02-14"),
        # Art. 66: 15 natural days from service end on Sunday 03-01 → 03-02; unpaid: lapsed
        "fine-payment": ("2026-02-14", "2026-03-02", "2026-03-01", "lapsed", None),
    }
    report = world.as_("a_reviewer").get(f"{path}/completeness").get_json()
    assert {d["rule"]: d["due"] for d in report["deadlines"]} == {
        rule: due for rule, (_, due, *_) in shown.items()
    }
    lapsed = [f for f in report["findings"] if f["code"] == "deadline_lapsed"]
    assert [(f["item"], f["severity"]) for f in lapsed] == [("fine-payment", "advice")]

    # an exported case file recomputes this very report from the facts it carries
    with parts(world.app).unit_of_work() as uow:
        row = uow.session.get(Case, case["id"])
        assert row is not None
        carried = facts_from_json(facts_json(case_facts(uow, row).facts))
        again = assess(
            pinned_standard(row),
            carried,
            today=date.fromisoformat(report["assessed_on"]),
            calendar=WorkingCalendar(),
        ).to_json()
    for key in ("status", "stages", "findings", "waived", "deadlines"):
        assert again[key] == report[key], key
