"""The law's procedure gates before a decision, over HTTP: each refusal is a 409 naming the
article and what is missing, logged as ``decision_refused``, and records nothing else.

The logged refusal (committed before the error) runs on SQLite and PostgreSQL; the other
gates differ only in pure logic and run on SQLite to keep the suite fast."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.server.conftest import World, snapshot
from tests.server.manifest_support import enrol, event_types, open_case
from tests.server.procedure_support import (
    add_head,
    assert_only_refusal_logged,
    file_records,
    notified_case,
)

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_art62_penalty_without_notice_or_statement_is_refused_and_logged(
    world: World, engine: Engine
) -> None:
    case = open_case(world, "罚-62-1")
    before = snapshot(engine)
    refused = world.as_("a_insp1").post(
        f"/cases/{case['id']}/decisions", {"decision_type": "penalty", "fine_yuan": "100"}
    )
    assert refused.status_code == 409
    body = refused.get_json()
    assert "行政处罚法第六十二条" in body["message"]
    [message] = body["errors"]["procedure"]
    assert "行政处罚告知书" in message and "陈述申辩笔录" in message
    details = assert_only_refusal_logged(world, engine, before, case["id"])
    assert [r["code"] for r in details["refusals"]] == ["apl-62"]
    assert details["facts"]["fine_yuan"] == "100"

    # the notice alone is not enough: 陈述申辩 must be heard or waived in writing
    device = enrol(world, "a_insp1")
    file_records(world, device, case, ("notification", "penalty-notice"))
    again = world.as_("a_insp1").post(
        f"/cases/{case['id']}/decisions", {"decision_type": "penalty", "fine_yuan": "100"}
    )
    assert again.status_code == 409
    [message] = again.get_json()["errors"]["procedure"]
    assert "行政处罚告知书" not in message and "陈述申辩笔录" in message

    file_records(world, device, case, ("statement-defence", "statement-record"))
    allowed = world.as_("a_insp1").post(
        f"/cases/{case['id']}/decisions", {"decision_type": "penalty", "fine_yuan": "100"}
    )
    assert allowed.status_code == 201, allowed.get_json()
    assert event_types(world.as_("a_admin"), case["id"])[-1] == "decision_recorded"


@SQLITE
def test_art57_2_serious_violation_needs_collective_discussion_and_the_head(
    world: World, engine: Engine
) -> None:
    add_head(world)
    case = open_case(world, "罚-57-1")
    device = notified_case(world, case)
    decisions = f"/cases/{case['id']}/decisions"
    complex_case = {"decision_type": "penalty", "fine_yuan": "500", "complex_case": True}
    reviewer = world.as_("a_reviewer")
    review = {"result": "passed", "opinion": "同意", "draft": complex_case}
    assert reviewer.post(f"/cases/{case['id']}/legal-reviews", review).status_code == 201

    before = snapshot(engine)
    refused = world.as_("a_insp1").post(decisions, complex_case)
    assert refused.status_code == 409
    [message] = refused.get_json()["errors"]["procedure"]
    assert message.startswith("行政处罚法第五十七条第二款")
    assert "集体讨论笔录" in message and "负责人" in message
    details = assert_only_refusal_logged(world, engine, before, case["id"])
    assert [r["code"] for r in details["refusals"]] == ["apl-57-2"]
    assert details["conditions"]["complex_or_serious"][0]["reason"] == "案件情况疑难复杂"

    file_records(world, device, case, ("collective-discussion", "discussion-record"))
    # the record is there, but an inspector is not the agency's head
    by_inspector = world.as_("a_insp1").post(decisions, complex_case)
    assert by_inspector.status_code == 409
    [message] = by_inspector.get_json()["errors"]["procedure"]
    assert "集体讨论笔录" not in message and "负责人" in message
    by_head = world.as_("a_head").post(decisions, complex_case)
    assert by_head.status_code == 201, by_head.get_json()
    assert by_head.get_json()["decided_by"] == world.people["a_head"].id
    # a head of another agency does not even see the case
    add_head(world, "b_head", "b")
    assert world.as_("b_head").post(decisions, complex_case).status_code == 404
    # an admin registers heads like any user (role head, 负责人; no 执法证号 needed)
    head = world.as_("a_admin").post(
        "/users", {"username": "a-deputy", "display_name": "副局长", "role": "head"}
    )
    assert head.status_code == 201 and head.get_json()["role"] == "head"


@SQLITE
def test_art63_64_hearing_scope_needs_the_hearing_notice_and_a_requested_hearing_held(
    world: World, engine: Engine
) -> None:
    add_head(world)
    case = open_case(world, "罚-63-1")
    device = notified_case(world, case)
    file_records(world, device, case, ("collective-discussion", "discussion-record"))
    decisions = f"/cases/{case['id']}/decisions"
    revocation = {"decision_type": "penalty", "measures": ["licence_revocation"]}

    before = snapshot(engine)
    refused = world.as_("a_head").post(decisions, revocation)
    assert refused.status_code == 409
    messages = refused.get_json()["errors"]["procedure"]
    hearing = [m for m in messages if m.startswith("行政处罚法第六十三条、第六十四条")]
    assert len(hearing) == 1 and "听证告知书" in hearing[0] and "吊销许可证件" in hearing[0]
    details = assert_only_refusal_logged(world, engine, before, case["id"])
    assert "apl-63-64" in [r["code"] for r in details["refusals"]]
    assert "hearing_eligible" in details["conditions"]

    # the party asked for a hearing after the notice: it must be held first
    file_records(
        world,
        device,
        case,
        ("notification", "hearing-rights-notice"),
        ("hearing", "hearing-application"),
    )
    chair = world.people["a_insp3"].id  # not an investigator of this case
    held = {**revocation, "hearing_chair_user_id": chair}
    not_held = world.as_("a_head").post(decisions, held)
    assert not_held.status_code == 409
    hearing = [
        m
        for m in not_held.get_json()["errors"]["procedure"]
        if m.startswith("行政处罚法第六十三条、第六十四条")
    ]
    assert len(hearing) == 1 and "听证笔录" in hearing[0] and "听证告知书" not in hearing[0]

    file_records(world, device, case, ("hearing", "hearing-transcript"))
    review = {"result": "passed", "opinion": "同意", "draft": revocation}
    reviewed = world.as_("a_reviewer").post(f"/cases/{case['id']}/legal-reviews", review)
    assert reviewed.status_code == 201
    allowed = world.as_("a_head").post(decisions, held)
    assert allowed.status_code == 201, allowed.get_json()
    assert set(allowed.get_json()["conditions"]) == {
        "hearing_eligible",
        "complex_or_serious",
        "major_case",
    }


@SQLITE
def test_art64_4_hearing_chaired_by_an_investigator_is_refused(
    world: World, engine: Engine
) -> None:
    case = open_case(world, "罚-64-1")
    device = notified_case(world, case)
    file_records(
        world, device, case, ("hearing", "hearing-application"), ("hearing", "hearing-transcript")
    )
    decisions = f"/cases/{case['id']}/decisions"
    small = {"decision_type": "penalty", "fine_yuan": "500", "hearing_held": True}
    investigator = {**small, "hearing_chair_user_id": world.people["a_insp2"].id}
    before = snapshot(engine)
    refused = world.as_("a_insp1").post(decisions, investigator)
    assert refused.status_code == 409
    messages = refused.get_json()["errors"]["procedure"]
    chair = [m for m in messages if m.startswith("行政处罚法第六十四条第（四）项")]
    assert chair and "听证主持人是本案调查人员" in chair[0]
    assert_only_refusal_logged(world, engine, before, case["id"])

    unnamed = world.as_("a_insp1").post(decisions, small)
    assert any("未载明听证主持人" in m for m in unnamed.get_json()["errors"]["procedure"])


@SQLITE
def test_art51_simple_procedure_refuses_a_fine_above_its_limit(
    world: World, engine: Engine
) -> None:
    case = open_case(world, "简-51-1", category="penalty-simple")
    decisions = f"/cases/{case['id']}/decisions"
    before = snapshot(engine)
    refused = world.as_("a_insp1").post(decisions, {"decision_type": "penalty", "fine_yuan": "201"})
    assert refused.status_code == 409
    [message] = refused.get_json()["errors"]["procedure"]
    assert message.startswith("行政处罚法第五十一条")
    assert "罚款 201 元，超过 200 元" in message and "普通程序" in message
    details = assert_only_refusal_logged(world, engine, before, case["id"])
    assert [r["code"] for r in details["refusals"]] == ["apl-51"]

    company = {"decision_type": "penalty", "fine_yuan": "3000", "party": "organisation"}
    assert world.as_("a_insp1").post(decisions, company).status_code == 201
    warning = {"decision_type": "warning"}
    assert world.as_("a_insp1").post(decisions, warning).status_code == 201


@SQLITE
def test_art58_a_pass_on_one_draft_does_not_cover_a_different_fine(
    world: World, engine: Engine
) -> None:
    add_head(world)
    case = open_case(world, "罚-58-1")
    notified_case(world, case)
    decisions = f"/cases/{case['id']}/decisions"
    reviewed = {"decision_type": "penalty", "fine_yuan": "3000", "major_public_interest": True}
    review = {"result": "passed", "opinion": "同意", "draft": reviewed}
    passed = world.as_("a_reviewer").post(f"/cases/{case['id']}/legal-reviews", review)
    assert passed.status_code == 201
    assert passed.get_json()["draft_digest"].startswith("sha256:")

    before = snapshot(engine)
    other = world.as_("a_insp1").post(decisions, {**reviewed, "fine_yuan": "5000"})
    assert other.status_code == 409
    body = other.get_json()
    [message] = body["errors"]["procedure"]
    assert message.startswith("该决定属于重大执法决定（行政处罚法第五十八条）")
    assert "另一份决定草案" in message
    assert body["errors"]["legal_review"] == ["涉及重大公共利益"]
    assert_only_refusal_logged(world, engine, before, case["id"])

    same = world.as_("a_insp1").post(decisions, reviewed)
    assert same.status_code == 201, same.get_json()
    assert same.get_json()["legal_review_id"] == passed.get_json()["id"]


@SQLITE
def test_conditions_are_derived_and_the_handler_may_only_add_with_a_reason(
    world: World,
) -> None:
    case = open_case(world, "罚-条件-1")
    notified_case(world, case)
    decisions = f"/cases/{case['id']}/decisions"
    # ¥10,000 on a person is 较大数额 under the default thresholds: the hearing scope,
    # whatever the handler typed
    big = world.as_("a_insp1").post(decisions, {"decision_type": "penalty", "fine_yuan": "10000"})
    assert big.status_code == 409
    assert any("听证告知书" in m for m in big.get_json()["errors"]["procedure"])

    no_reason = world.as_("a_insp1").post(
        decisions,
        {
            "decision_type": "penalty",
            "added_conditions": [{"condition": "hearing_eligible", "reason": ""}],
        },
    )
    assert no_reason.status_code == 422
    added = world.as_("a_insp1").post(
        decisions,
        {
            "decision_type": "penalty",
            "fine_yuan": "100",
            "added_conditions": [{"condition": "hearing_eligible", "reason": "当事人为残疾人"}],
        },
    )
    assert added.status_code == 409
    details = world.as_("a_admin").get(f"/cases/{case['id']}/custody?limit=500").get_json()
    refusal = details["items"][-1]["event"]["details"]
    assert refusal["conditions"]["hearing_eligible"] == [
        {"reason": "承办人添加：当事人为残疾人", "added_by_handler": True}
    ]
    unknown = world.as_("a_insp1").post(
        decisions,
        {
            "decision_type": "penalty",
            "added_conditions": [{"condition": "not_a_condition", "reason": "x"}],
        },
    )
    assert unknown.status_code == 422
