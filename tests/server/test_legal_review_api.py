"""Legal review (法制审核) and the decision gate over HTTP."""

from __future__ import annotations

from tests.server.conftest import World, snapshot
from tests.server.manifest_support import enrol, event_types, open_case
from tests.server.procedure_support import notified_case

DRAFT = {"decision_type": "penalty", "major_public_interest": True}
MAJOR = {**DRAFT, "summary": "罚款"}


def test_major_decision_refused_until_a_passed_review(world: World, engine) -> None:  # type: ignore[no-untyped-def]
    case = open_case(world, "罚-审核-1")
    notified_case(world, case)
    decisions = f"/cases/{case['id']}/decisions"
    reviews = f"/cases/{case['id']}/legal-reviews"
    inspector, reviewer = world.as_("a_insp1"), world.as_("a_reviewer")

    before = snapshot(engine)["decisions"]
    refused = inspector.post(decisions, MAJOR)
    assert refused.status_code == 409
    body = refused.get_json()
    assert "法制审核" in body["message"] and "legal review" in body["message"]
    assert body["errors"]["legal_review"] == ["涉及重大公共利益"]
    assert snapshot(engine)["decisions"] == before

    returned = reviewer.post(reviews, {"result": "returned", "opinion": "事实不清，退回补充调查"})
    assert returned.status_code == 201, returned.get_json()
    assert inspector.post(decisions, MAJOR).status_code == 409

    passed = reviewer.post(
        reviews,
        {"result": "passed", "opinion": "同意", "opinion_ref": "法审〔2025〕3号", "draft": DRAFT},
    )
    assert passed.status_code == 201
    allowed = inspector.post(decisions, MAJOR)
    assert allowed.status_code == 201, allowed.get_json()
    decision = allowed.get_json()
    assert decision["major"] is True
    assert decision["legal_review_id"] == passed.get_json()["id"]
    assert [r["result"] for r in reviewer.get(reviews).get_json()] == ["returned", "passed"]
    # both reviews and the decision are in the chain; the two refusals left only their log
    assert [t for t in event_types(reviewer, case["id"]) if t != "capture_registered"] == [
        "case_opened",
        "decision_refused",
        "legal_review_recorded",
        "decision_refused",
        "legal_review_recorded",
        "decision_recorded",
    ]


def test_catalogue_fine_makes_a_decision_major_and_ordinary_ones_pass(world: World) -> None:
    case = open_case(world, "罚-审核-2")
    notified_case(world, case)
    path = f"/cases/{case['id']}/decisions"
    small = world.as_("a_insp1").post(path, {"decision_type": "penalty", "fine_yuan": "200"})
    assert small.status_code == 201, small.get_json()
    assert small.get_json()["major"] is False
    big = world.as_("a_insp1").post(
        path, {"decision_type": "penalty", "fine_yuan": "5000000", "party": "organisation"}
    )
    assert big.status_code == 409
    assert any("罚款" in r for r in big.get_json()["errors"]["legal_review"])


def test_who_may_review_and_decide(world: World) -> None:
    case = open_case(world, "罚-审核-3", officers=("a_insp1",))
    reviews = f"/cases/{case['id']}/legal-reviews"
    decisions = f"/cases/{case['id']}/decisions"
    review = {"result": "passed", "opinion": "同意"}
    assert world.as_("a_insp1").post(reviews, review).status_code == 403
    assert world.as_("a_admin").post(reviews, review).status_code == 403
    assert world.as_("b_reviewer").post(reviews, review).status_code == 404
    assert world.as_("b_reviewer").get(reviews).status_code == 404
    device = enrol(world, "a_insp1")
    assert device.api.post(reviews, review).status_code == 403
    assert device.api.post(decisions, {"decision_type": "penalty"}).status_code == 403
    assert world.as_("a_insp2").post(decisions, {"decision_type": "penalty"}).status_code == 404
    assert world.as_("a_reviewer").post(decisions, {"decision_type": "penalty"}).status_code == 403
    bad = world.as_("a_reviewer").post(
        reviews, {"result": "maybe", "opinion": "x", "outcome": "passed"}
    )
    assert bad.status_code == 422
