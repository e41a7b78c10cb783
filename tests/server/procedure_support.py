"""Test helpers for the decision gates: records on file, a head, what a refusal left behind."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, update

from server.models import Evidence, EvidenceStatus, Role
from tests.server.conftest import World, add_person, parts, snapshot
from tests.server.manifest_support import Device, enrol, event_types, file_entry

LOG_TABLES = ("custody_events", "merkle_nodes", "log_head", "api_tokens")
"""What a logged refusal may change: the custody log, and the token's last use."""


def mark_stored(world: World, evidence_ids: list[str]) -> None:
    """What the ingest path does once bytes arrived and matched (not part of this API)."""
    with parts(world.app).unit_of_work() as uow:
        uow.session.execute(
            update(Evidence)
            .where(Evidence.id.in_(evidence_ids))
            .values(status=EvidenceStatus.STORED.value)
        )
        uow.commit()


def add_head(world: World, name: str = "a_head", agency: str = "a") -> None:
    """A 负责人 (agency head) of agency ``agency`` in the test world."""
    agency_id = world.people[f"{agency}_admin"].agency_id
    world.people[name] = add_person(world.app, agency_id, name.replace("_", "-"), Role.HEAD)


def file_records(
    world: World, device: Device, case: dict[str, Any], *records: tuple[str, ...]
) -> None:
    """File one stored PDF per (stage, record type[, capture date]) on the case, as the
    ingest path would; the capture date (China) defaults to the device's default time."""
    stored = []
    for stage, record_type, *day in records:
        body = f"{case['case_no']} {stage} {record_type}".encode()
        when = {"device_time": f"{day[0]}T10:00:00+08:00"} if day else {}
        response = device.api.post(
            "/manifests",
            device.manifest(
                case["case_no"],
                stage=stage,
                record_type=record_type,
                files=(file_entry(f"{record_type}.pdf", body, "application/pdf"),),
                **when,
            ),
        )
        assert response.status_code == 201, response.get_json()
        stored.append(response.get_json()["files"][0]["evidence_id"])
    mark_stored(world, stored)


NOTIFIED = (("notification", "penalty-notice"), ("statement-defence", "statement-record"))
"""告知 (Art. 44) and 陈述申辩 heard (Art. 45): what Art. 62 needs for any penalty."""


def notified_case(world: World, case: dict[str, Any], owner: str = "a_insp1") -> Device:
    """Enrol a device for ``owner`` and file the 告知 and 陈述申辩 records on ``case``."""
    device = enrol(world, owner)
    file_records(world, device, case, *NOTIFIED)
    return device


def without_log(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {k: v for k, v in rows.items() if k not in LOG_TABLES}


def assert_only_refusal_logged(
    world: World, engine: Engine, before: dict[str, list[tuple[Any, ...]]], case_id: str
) -> dict[str, Any]:
    """Nothing but one ``decision_refused`` custody event changed; its details returned."""
    after = snapshot(engine)
    assert without_log(after) == without_log(before)
    assert len(after["custody_events"]) == len(before["custody_events"]) + 1
    types = event_types(world.as_("a_admin"), case_id)
    assert types[-1] == "decision_refused"
    page = world.as_("a_admin").get(f"/cases/{case_id}/custody?limit=500").get_json()
    details: dict[str, Any] = page["items"][-1]["event"]["details"]
    return details
