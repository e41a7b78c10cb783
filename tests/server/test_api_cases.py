"""Cases through HTTP: open, list with filters, read, assign, change stage — and who may."""

from __future__ import annotations

from typing import Any

import pytest

from core.standards import load_standard
from tests.server.conftest import World, parts, snapshot

PENALTY = load_standard("penalty")
STAGES = [s.id for s in PENALTY.stages]


def open_case(world: World, who: str = "a_admin", **extra: Any) -> dict[str, Any]:
    body = {
        "category": "penalty",
        "case_no": extra.pop("case_no", "京市监罚〔2026〕18号"),
        "title": extra.pop("title", "某超市销售过期食品案"),
        "parties": [{"name": "某超市有限公司", "kind": "organisation", "id_number": "91110000X"}],
        "officer_ids": extra.pop(
            "officer_ids", [world.people["a_insp1"].id, world.people["a_insp2"].id]
        ),
        **extra,
    }
    response = world.as_(who).post("/cases", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_an_opened_case_pins_the_newest_standard_and_starts_at_its_first_stage(
    world: World,
) -> None:
    case = open_case(world)
    assert (case["standard_id"], case["standard_version"]) == ("penalty", PENALTY.version)
    assert case["current_stage"] == STAGES[0] and case["status"] == "open"
    assert [o["cert_no"] for o in case["officers"]] == ["A00001", "A00002"]
    assert case["parties"][0]["name"] == "某超市有限公司"
    history = world.as_("a_insp1").get(f"/cases/{case['id']}/stages").get_json()
    assert [(h["from_stage"], h["to_stage"]) for h in history] == [(None, STAGES[0])]


def test_unknown_category_or_version_and_non_inspector_officers_are_all_reported(
    world: World,
) -> None:
    response = world.as_("a_admin").post(
        "/cases",
        {
            "category": "penalty",
            "standard_version": "1999.1",
            "case_no": "X",
            "title": "x",
            "officer_ids": [world.people["a_reviewer"].id, world.people["b_insp1"].id],
        },
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert "1999.1" in errors["standard_version"][0]
    assert len(errors["officer_ids"]) == 2
    unknown = world.as_("a_admin").post(
        "/cases", {"category": "parking", "case_no": "Y", "title": "y"}
    )
    assert "category" in unknown.get_json()["errors"]


def test_case_no_is_unique_per_agency_only(world: World) -> None:
    open_case(world, case_no="2026-001")
    dup = world.as_("a_admin").post(
        "/cases", {"category": "penalty", "case_no": "2026-001", "title": "x"}
    )
    assert dup.status_code == 409
    other = world.as_("b_admin").post(
        "/cases", {"category": "penalty", "case_no": "2026-001", "title": "x"}
    )
    assert other.status_code == 201


def test_an_inspector_opening_a_case_is_assigned_to_it(world: World) -> None:
    case = open_case(world, who="a_insp3", officer_ids=[world.people["a_insp1"].id])
    assert {o["cert_no"] for o in case["officers"]} == {"A00003", "A00001"}


def test_visibility_follows_assignment_and_agency(world: World) -> None:
    case = open_case(world)
    path = f"/cases/{case['id']}"
    for who in ("a_insp1", "a_insp2", "a_reviewer", "a_archivist", "a_admin"):
        assert world.as_(who).get(path).status_code == 200, who
    for who in ("a_insp3", "b_insp1", "b_reviewer", "b_archivist", "b_admin"):
        response = world.as_(who).get(path)
        assert response.status_code == 404, who
        assert "某超市" not in response.get_data(as_text=True)
        assert world.as_(who).get(path + "/stages").status_code == 404
        assert world.as_(who).get("/cases").get_json()["total"] == 0


@pytest.mark.parametrize("who", ["a_insp3", "b_insp1", "b_admin"])
def test_outsiders_cannot_change_a_case_and_learn_nothing(world: World, who: str) -> None:
    case = open_case(world)
    engine = parts(world.app).engine
    before = snapshot(engine)
    api = world.as_(who)
    assert api.post(f"/cases/{case['id']}/stage", {"stage": STAGES[1]}).status_code == 404
    officers = {"officer_ids": [world.people["a_insp3"].id]}
    assert api.post(f"/cases/{case['id']}/officers", officers).status_code == 404
    assert snapshot(engine) == before


@pytest.mark.parametrize("who", ["a_reviewer", "a_archivist"])
def test_reviewers_and_archivists_read_but_do_not_change_cases(world: World, who: str) -> None:
    case = open_case(world)
    api = world.as_(who)
    assert api.post(f"/cases/{case['id']}/stage", {"stage": STAGES[1]}).status_code == 403
    assert (
        api.post("/cases", {"category": "penalty", "case_no": "9", "title": "x"}).status_code == 403
    )


def test_a_device_token_sees_only_its_owners_cases_and_changes_none(world: World) -> None:
    from tests.server.test_api_users_devices import enrolled_device

    mine = open_case(world, case_no="mine")
    other = open_case(world, case_no="other", officer_ids=[world.people["a_insp3"].id])
    _, token = enrolled_device(world, "a_insp1")
    device = world.token_api(token)
    assert device.get(f"/cases/{other['id']}").status_code == 404
    assert device.get(f"/cases/{mine['id']}").status_code == 200
    assert device.post(f"/cases/{mine['id']}/stage", {"stage": STAGES[1]}).status_code == 403


def test_listing_filters_by_status_category_stage_officer_and_text(world: World) -> None:
    first = open_case(world, case_no="2026-001", title="销售过期食品")
    open_case(world, case_no="2026-002", title="无证经营", officer_ids=[world.people["a_insp3"].id])
    world.as_("a_admin").post(f"/cases/{first['id']}/stage", {"stage": STAGES[1]})
    api = world.as_("a_reviewer")

    def numbers(query: str) -> list[str]:
        response = api.get("/cases" + query)
        assert response.status_code == 200, response.get_json()
        return sorted(c["case_no"] for c in response.get_json()["items"])

    assert numbers("") == ["2026-001", "2026-002"]
    assert numbers("?status=open&category=penalty") == ["2026-001", "2026-002"]
    assert numbers("?status=closed") == []
    assert numbers(f"?stage={STAGES[1]}") == ["2026-001"]
    assert numbers(f"?officer_id={world.people['a_insp3'].id}") == ["2026-002"]
    assert numbers("?q=过期") == ["2026-001"]
    assert numbers("?q=%25") == []  # a literal %, not a wildcard
    assert numbers("?limit=1&offset=1") in (["2026-001"], ["2026-002"])
    assert api.get("/cases?limit=1").get_json()["total"] == 2
    assert api.get("/cases?status=archived").status_code == 422
    assert world.as_("a_insp3").get("/cases").get_json()["total"] == 1


def test_stages_move_forward_and_out_of_order_needs_a_reason(world: World) -> None:
    case = open_case(world)
    api = world.as_("a_insp1")
    path = f"/cases/{case['id']}/stage"
    assert api.post(path, {"stage": STAGES[1]}).get_json()["current_stage"] == STAGES[1]
    back = api.post(path, {"stage": STAGES[0]})
    assert back.status_code == 422 and "out_of_order" in back.get_json()["errors"]["stage"][0]
    no_reason = api.post(path, {"stage": STAGES[0], "out_of_order": True})
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    assert api.post(path, {"stage": "no-such-stage"}).status_code == 422
    assert api.post(path, {"stage": STAGES[1]}).status_code == 409  # already there
    moved = api.post(path, {"stage": STAGES[0], "out_of_order": True, "reason": "补充立案材料"})
    assert moved.status_code == 200
    history = api.get(f"/cases/{case['id']}/stages").get_json()
    assert [(h["to_stage"], h["out_of_order"], h["reason"]) for h in history] == [
        (STAGES[0], False, None),
        (STAGES[1], False, None),
        (STAGES[0], True, "补充立案材料"),
    ]


def test_skipping_a_required_stage_is_out_of_order(world: World) -> None:
    required = [s.id for s in PENALTY.stages if s.requirement.value == "required"]
    last_required = PENALTY.stage_index(required[-1])
    case = open_case(world)
    response = world.as_("a_insp1").post(
        f"/cases/{case['id']}/stage", {"stage": STAGES[last_required]}
    )
    assert response.status_code == 422
    assert "跳过" in response.get_json()["errors"]["stage"][0]


def test_assigning_officers_adds_inspectors_once(world: World) -> None:
    case = open_case(world, officer_ids=[world.people["a_insp1"].id])
    path = f"/cases/{case['id']}/officers"
    insp3 = world.people["a_insp3"].id
    updated = world.as_("a_insp1").post(path, {"officer_ids": [insp3, insp3]}).get_json()
    assert [o["cert_no"] for o in updated["officers"]] == ["A00001", "A00003"]
    assert world.as_("a_insp3").get(f"/cases/{case['id']}").status_code == 200
    bad = world.as_("a_admin").post(path, {"officer_ids": [world.people["a_archivist"].id]})
    assert bad.status_code == 422
    assert world.as_("a_admin").post(path, {"officer_ids": []}).status_code == 422


def test_opening_assigning_and_moving_a_case_are_custody_events_in_one_chain(world: World) -> None:
    from sqlalchemy import select

    from server.models import CustodyEventRow

    case = open_case(world, officer_ids=[world.people["a_insp1"].id])
    api = world.as_("a_insp1")
    api.post(f"/cases/{case['id']}/officers", {"officer_ids": [world.people["a_insp2"].id]})
    api.post(f"/cases/{case['id']}/stage", {"stage": STAGES[1]})
    api.post(f"/cases/{case['id']}/stage", {"stage": "bogus"})  # refused: no event
    with parts(world.app).engine.connect() as conn:
        rows = conn.execute(
            select(CustodyEventRow.case_seq, CustodyEventRow.event_type)
            .where(CustodyEventRow.case_id == case["id"])
            .order_by(CustodyEventRow.case_seq)
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, "case_opened"),
        (2, "officers_assigned"),
        (3, "stage_changed"),
    ]
