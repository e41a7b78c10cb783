"""Capture sanity a reviewer sees with the completeness report: officers who are not active
inspectors of the case's agency (``capture_findings``), and a 笔录 filed only as a video
(a finding of the report)."""

from __future__ import annotations

import pytest

from tests.server.conftest import World
from tests.server.manifest_support import enrol, file_entry, open_case
from tests.server.procedure_support import mark_stored


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unknown_or_foreign_officers_and_a_video_only_written_record_are_findings(
    world: World,
) -> None:
    case = open_case(world, "罚-采集-1")
    device = enrol(world, "a_insp1")
    stored = []
    # B00001 is an inspector of the other agency; A09999 is nobody's 执法证号
    site = device.api.post(
        "/manifests",
        device.manifest(case["case_no"], officers=("A00001", "B00001", "A09999")),
    )
    assert site.status_code == 201, site.get_json()
    stored.append(site.get_json()["files"][0]["evidence_id"])
    inquiry = device.api.post(
        "/manifests",
        device.manifest(
            case["case_no"],
            stage="inquiry",
            record_type="inquiry-record",
            files=(file_entry("询问.mp4", b"video of the questioning", "video/mp4"),),
        ),
    )
    assert inquiry.status_code == 201, inquiry.get_json()
    stored.append(inquiry.get_json()["files"][0]["evidence_id"])
    mark_stored(world, stored)

    report = world.as_("a_reviewer").get(f"/cases/{case['id']}/completeness").get_json()
    found = {(f["code"], f["stage"], f["item"]): f for f in report["findings"]}
    site_id = stored[0]
    # shown beside the report (the case file recomputes the report without the register)
    capture = report["capture_findings"]
    assert {(f["code"], f["item"]) for f in capture} == {("unregistered_officer", site_id)}
    assert sorted(f["message_zh"].split("执法证号 ")[1].split(" ")[0] for f in capture) == [
        "A09999",
        "B00001",
    ]
    assert all(f["severity"] == "defect" and f["basis"] for f in capture)
    video_only = found[("written_record_only_av", "inquiry", "inquiry-record")]
    assert "音像记录不能代替书面笔录" in video_only["message_zh"]
