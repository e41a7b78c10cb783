"""The completeness report over HTTP: what a reviewer sees for a case, and waivers."""

from __future__ import annotations

from sqlalchemy import update

from core.completeness import CompletenessReport
from core.manifest import Interruption
from server.models import Evidence, EvidenceStatus
from tests.server.conftest import World, parts
from tests.server.manifest_support import enrol, event_types, file_entry, open_case


def mark_stored(world: World, evidence_ids: list[str]) -> None:
    """What the ingest path does once bytes arrived and matched (not part of this API)."""
    with parts(world.app).unit_of_work() as uow:
        uow.session.execute(
            update(Evidence)
            .where(Evidence.id.in_(evidence_ids))
            .values(status=EvidenceStatus.STORED.value)
        )
        uow.commit()


def findings(report: dict) -> set[tuple[str, str | None, str]]:  # type: ignore[type-arg]
    return {
        (f["code"], f["stage"], f["item"])
        for f in report["findings"]
        if not f["code"].startswith("deadline")
    }


def test_report_shows_every_gap_and_waivers_apply(world: World) -> None:
    case = open_case(world, "罚-完整-1")
    inspector = world.as_("a_insp1")
    for stage in ("filing", "site-inspection"):
        moved = inspector.post(f"/cases/{case['id']}/stage", {"stage": stage})
        assert moved.status_code == 200, moved.get_json()
    device = enrol(world, "a_insp1")
    source = device.api.post(
        "/manifests",
        device.manifest(
            case["case_no"],
            stage="case-source",
            record_type="case-source-register",
            officers=("A00001",),
        ),
    ).get_json()
    site = device.api.post(
        "/manifests",
        device.manifest(
            case["case_no"],
            officers=("A00001",),
            files=(
                file_entry("笔录.pdf", b"record", "application/pdf"),
                file_entry("执法记录.mp4", b"video", "video/mp4"),
            ),
            interruptions=(
                Interruption(
                    "2025-03-03T09:41:00+08:00", "2025-03-03T09:43:00+08:00", "电池耗尽", None
                ),
            ),
        ),
    )
    assert site.status_code == 201, site.get_json()
    site_files = site.get_json()["files"]
    mark_stored(world, [source["files"][0]["evidence_id"], site_files[0]["evidence_id"]])

    response = world.as_("a_reviewer").get(f"/cases/{case['id']}/completeness")
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["status"] == "incomplete"
    assert report["case"]["case_no"] == "罚-完整-1"
    evidence_pdf = site_files[0]["evidence_id"]
    assert findings(report) == {
        ("missing_record", "filing", "filing-approval"),
        ("av_recommended", "case-source", "audio-video"),
        ("av_neither_recording_nor_reason", "site-inspection", "audio-video"),
        ("too_few_officers", "site-inspection", evidence_pdf),
        ("credentials_not_shown", "site-inspection", "credentials"),
        ("interruption_without_resumption_note", "site-inspection", evidence_pdf),
    }
    # the video was announced but has not arrived: pending, not evidence
    assert [(p["name"], p["status"]) for p in report["pending"]] == [("执法记录.mp4", "expected")]
    assert [d["rule"] for d in report["deadlines"]] == ["penalty-decision"]
    assert CompletenessReport.from_json(report).status.value == "incomplete"

    waived = world.as_("a_reviewer").post(
        f"/cases/{case['id']}/waivers",
        {"stage": "site-inspection", "item": "credentials", "reason": "录像中可见亮证，笔录漏记"},
    )
    assert waived.status_code == 201, waived.get_json()
    again = world.as_("a_admin").get(f"/cases/{case['id']}/completeness").get_json()
    assert ("credentials_not_shown", "site-inspection", "credentials") not in findings(again)
    assert [w["waiver"]["reason"] for w in again["waived"]] == ["录像中可见亮证，笔录漏记"]
    assert event_types(world.as_("a_admin"), case["id"]).count("completeness_checked") == 3


def test_waiver_needs_reviewer_and_a_known_stage(world: World) -> None:
    case = open_case(world, "罚-完整-2")
    path = f"/cases/{case['id']}/waivers"
    body = {"stage": "site-inspection", "item": "credentials", "reason": "理由"}
    assert world.as_("a_insp1").post(path, body).status_code == 403
    assert world.as_("b_reviewer").post(path, body).status_code == 404
    device = enrol(world, "a_insp1")
    assert device.api.post(path, body).status_code == 403
    bad = world.as_("a_reviewer").post(path, {**body, "stage": "nowhere", "reason": " "})
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"stage", "reason"}
    mass = world.as_("a_reviewer").post(path, {**body, "waived_by": "someone"})
    assert mass.status_code == 422


def test_completeness_of_other_cases_is_not_found_and_devices_are_refused(world: World) -> None:
    case = open_case(world, "罚-完整-3", officers=("a_insp1",))
    path = f"/cases/{case['id']}/completeness"
    for who in ("a_insp2", "b_reviewer", "b_admin"):
        assert world.as_(who).get(path).status_code == 404
    device = enrol(world, "a_insp1")
    assert device.api.get(path).status_code == 403
    assert world.as_("a_insp1").get(path).status_code == 200


def test_credentials_shown_on_the_capture_clears_the_liangzheng_finding(world: World) -> None:
    case = open_case(world, "罚-完整-4")
    inspector = world.as_("a_insp1")
    for stage in ("filing", "site-inspection"):
        assert inspector.post(f"/cases/{case['id']}/stage", {"stage": stage}).status_code == 200
    device = enrol(world, "a_insp1")
    site = device.api.post(
        "/manifests", device.manifest(case["case_no"], credentials_shown=True)
    ).get_json()
    mark_stored(world, [site["files"][0]["evidence_id"]])

    report = world.as_("a_reviewer").get(f"/cases/{case['id']}/completeness").get_json()
    codes = {code for code, _stage, _item in findings(report)}
    assert "credentials_not_shown" not in codes
    assert "missing_record" in codes  # the rest of the assessment still runs
