"""Registering signed capture manifests over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy

from tests.server.conftest import World, snapshot
from tests.server.manifest_support import enrol, event_types, file_entry, open_case


def test_valid_manifest_announces_expected_files_and_logs_capture(world: World) -> None:
    case = open_case(world, "黔市监罚〔2025〕1号")
    device = enrol(world, "a_insp1")
    wire = device.manifest(
        case["case_no"],
        files=(
            file_entry("IMG_0001.jpg", b"photo", "image/jpeg"),
            file_entry("VID_0001.mp4", b"video", "video/mp4"),
        ),
    )
    response = device.api.post("/manifests", wire)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["case_id"] == case["id"]
    assert body["upload_url"] == "/api/v1/uploads"
    assert body["verification"]["chain"] == "linked"
    assert [(f["name"], f["size"], f["status"]) for f in body["files"]] == [
        ("IMG_0001.jpg", 5, "expected"),
        ("VID_0001.mp4", 5, "expected"),
    ]
    assert event_types(world.as_("a_reviewer"), case["id"]) == ["case_opened", "capture_registered"]
    events = world.as_("a_insp1").get(f"/cases/{case['id']}/custody").get_json()["items"]
    assert events[-1]["event"]["details"]["manifest_hash"] == body["manifest_hash"]

    listed = world.as_("a_insp1").get(f"/cases/{case['id']}/manifests").get_json()
    assert [m["manifest_id"] for m in listed] == [wire["manifest"]["manifest_id"]]
    evidence = world.as_("a_reviewer").get(f"/evidence/{body['files'][1]['evidence_id']}")
    assert evidence.status_code == 200
    assert evidence.get_json()["sha256"] == wire["manifest"]["files"][1]["sha256"]


def test_retry_is_idempotent_and_reused_id_conflicts(world: World) -> None:
    case = open_case(world, "罚-2")
    device = enrol(world, "a_insp1")
    wire = device.manifest(case["case_no"])
    first = device.api.post("/manifests", wire)
    again = device.api.post("/manifests", wire)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["files"] == first.get_json()["files"]
    assert event_types(world.as_("a_admin"), case["id"]).count("capture_registered") == 1

    other = device.manifest(case["case_no"], manifest_id=wire["manifest"]["manifest_id"])
    response = device.api.post("/manifests", other)
    assert response.status_code == 409
    assert "manifest_id" in response.get_json()["errors"]


def test_bad_signature_is_refused_and_changes_nothing(world: World, engine) -> None:  # type: ignore[no-untyped-def]
    case = open_case(world, "罚-3")
    device = enrol(world, "a_insp1")
    wire = device.manifest(case["case_no"])
    tampered = copy.deepcopy(wire)
    tampered["manifest"]["officers"] = ["A00001", "A00003"]
    before = snapshot(engine)
    response = device.api.post("/manifests", tampered)
    assert response.status_code == 422
    body = response.get_json()
    assert "signature" in body["errors"] and "签名" in body["message"]
    assert snapshot(engine) == before


def test_malformed_and_unknown_stage_report_every_problem(world: World) -> None:
    case = open_case(world, "罚-4")
    device = enrol(world, "a_insp1")
    wire = device.manifest(case["case_no"])
    broken = copy.deepcopy(wire)
    broken["manifest"]["device_seq"] = 0
    broken["manifest"]["files"][0]["sha256"] = "md5:abc"
    response = device.api.post("/manifests", broken)
    assert response.status_code == 422
    problems = response.get_json()["errors"]["manifest"]
    assert any("device_seq" in p for p in problems) and any("sha256" in p for p in problems)

    device.last_seq, device.last_hash = 0, None
    wrong = device.manifest(case["case_no"], stage="no-such-stage", category="inspection")
    response = device.api.post("/manifests", wrong)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {"stage", "category"}
    assert "site-inspection" in errors["stage"][0]  # lists the stages to choose from

    device.last_seq, device.last_hash = 0, None
    wrong = device.manifest(case["case_no"], record_type="hearing-transcript")
    response = device.api.post("/manifests", wrong)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"record_type"}


def test_case_of_unassigned_owner_or_other_agency_is_not_found(world: World) -> None:
    mine = open_case(world, "罚-5", officers=("a_insp2",))
    device = enrol(world, "a_insp1")
    response = device.api.post("/manifests", device.manifest(mine["case_no"]))
    assert response.status_code == 404
    assert mine["id"] not in response.get_data(as_text=True)

    b_case = (
        world.as_("b_admin")
        .post("/cases", {"category": "penalty", "case_no": "罚-B", "title": "B"})
        .get_json()
    )
    device.last_seq, device.last_hash = 0, None
    response = device.api.post("/manifests", device.manifest(b_case["case_no"]))
    assert response.status_code == 404


def test_device_chain_gap_is_flagged_replay_and_broken_link_refused(world: World) -> None:
    case = open_case(world, "罚-6")
    device = enrol(world, "a_insp1")
    assert device.api.post("/manifests", device.manifest(case["case_no"])).status_code == 201
    skipped = device.manifest(case["case_no"])  # seq 2: never sent (deleted on the device)
    gap = device.api.post("/manifests", device.manifest(case["case_no"]))  # seq 3
    assert gap.status_code == 201
    assert gap.get_json()["verification"] == {
        **gap.get_json()["verification"],
        "chain": "gap",
        "missing": [2, 2],
    }
    events = world.as_("a_reviewer").get(f"/cases/{case['id']}/custody").get_json()["items"]
    gap_events = [e for e in events if e["event"]["type"] == "device_chain_gap"]
    assert [e["event"]["details"]["missing_seqs"] for e in gap_events] == [[2, 2]]

    replay = device.manifest(case["case_no"], seq=3, manifest_id="m-replay")
    assert device.api.post("/manifests", replay).status_code == 409
    device.last_seq, device.last_hash = 3, gap.get_json()["manifest_hash"]
    broken = device.manifest(case["case_no"], link=False)  # seq 4, wrong device_prev
    response = device.api.post("/manifests", broken)
    assert response.status_code == 409
    assert "device_prev" in response.get_json()["errors"]

    late = device.api.post("/manifests", skipped)  # the missing seq 2 turns up after all
    assert late.status_code == 201
    assert late.get_json()["verification"]["chain"] == "filled_gap"


def test_inspector_may_register_with_own_token_but_reviewer_and_other_device_may_not(
    world: World,
) -> None:
    case = open_case(world, "罚-7")
    device = enrol(world, "a_insp1")
    wire = device.manifest(case["case_no"])
    assert world.as_("a_reviewer").post("/manifests", wire).status_code == 403
    other = enrol(world, "a_insp2")
    assert other.api.post("/manifests", wire).status_code == 403
    b_inspector = world.as_("b_insp1").post("/manifests", wire)
    assert b_inspector.status_code == 422  # the key is no device of agency B
    assert world.as_("a_insp1").post("/manifests", wire).status_code == 201


def test_evidence_and_manifests_of_other_cases_are_not_found(world: World) -> None:
    case = open_case(world, "罚-8", officers=("a_insp1",))
    device = enrol(world, "a_insp1")
    body = device.api.post("/manifests", device.manifest(case["case_no"])).get_json()
    evidence_id = body["files"][0]["evidence_id"]
    for who in ("a_insp2", "b_admin", "b_reviewer"):
        response = world.as_(who).get(f"/evidence/{evidence_id}")
        assert response.status_code == 404
        assert case["id"] not in response.get_data(as_text=True)
        assert world.as_(who).get(f"/cases/{case['id']}/manifests").status_code == 404
    assert world.as_("a_archivist").get(f"/evidence/{evidence_id}").status_code == 200
