"""Every finder of a missing or altered original records ``fixity_failed`` the same way."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from server.models import Evidence, FixityCheck
from tests.server.conftest import World, parts
from tests.server.maintenance_support import object_path, reconcile, send, storage_key
from tests.server.test_fixity import flip_a_byte, sweeper

SHAPE = {"evidence_id", "storage_key", "source", "reason", "problems"}


def _failures(world: World, case_id: str) -> list[dict[str, Any]]:
    page = world.as_("a_admin").get(f"/cases/{case_id}/custody?limit=500").get_json()
    return [i["event"]["details"] for i in page["items"] if i["event"]["type"] == "fixity_failed"]


def _latest_check(world: World, evidence_id: str) -> tuple[str, str]:
    with parts(world.app).unit_of_work() as uow:
        check = uow.session.get(FixityCheck, evidence_id)
        assert check is not None
        return check.status, check.detail


def test_sweep_reconciler_and_inspection_record_one_detail_shape(world: World) -> None:
    swept, reconciled, inspected = send(world), send(world), send(world)

    flip_a_byte(world, swept.evidence_id)
    sweeper(world).run(swept.case_id)

    object_path(world, storage_key(world, reconciled.evidence_id)).unlink()
    reconcile(world)

    # inspection's first re-read finds bytes changed right after ingest
    with parts(world.app).unit_of_work() as uow:
        uow.session.execute(
            update(Evidence)
            .where(Evidence.id == inspected.evidence_id)
            .values(sha512=None, inspection=None, inspection_status="pending")
        )
        uow.commit()
    flip_a_byte(world, inspected.evidence_id)
    parts(world.app).jobs.run_pending()

    found = {
        "sweep": (swept, "mismatch", "failed"),
        "reconcile": (reconciled, "object_missing", "missing"),
        "inspection": (inspected, "mismatch", "failed"),
    }
    for source, (sent, reason, status) in found.items():
        (details,) = _failures(world, sent.case_id)
        assert set(details) >= SHAPE, (source, details)
        assert details["source"] == source and details["reason"] == reason
        assert details["evidence_id"] == sent.evidence_id
        assert details["storage_key"] == storage_key(world, sent.evidence_id)
        assert details["problems"] and all(isinstance(p, str) for p in details["problems"])
        # the evidence's latest fixity result says the same, whoever found it
        assert _latest_check(world, sent.evidence_id) == (status, "; ".join(details["problems"]))
    assert _failures(world, swept.case_id)[0]["sweep_id"]
