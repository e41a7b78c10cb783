"""``/capture/api/assignments``: what the capture app caches before it goes offline — the
open cases of the device's owner, with officers and the pinned standard's stages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from server.models import Case, CaseStatus
from tests.server.conftest import World, parts
from tests.server.manifest_support import enrol, open_case


def _assignments(world: World, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = world.app.test_client().get("/capture/api/assignments", headers=headers)
    return answer.status_code, answer.get_json()


def test_a_device_sees_its_owners_open_cases_with_their_standard(world: World) -> None:
    mine = open_case(world, "黔市监罚〔2026〕1号")
    open_case(world, "黔市监罚〔2026〕2号", officers=("a_insp3",))
    closed = open_case(world, "黔市监罚〔2026〕3号")
    with parts(world.app).unit_of_work() as uow:
        uow.session.execute(
            update(Case).where(Case.id == closed["id"]).values(status=CaseStatus.CLOSED.value)
        )
        uow.commit()

    status, body = _assignments(world, enrol(world, "a_insp1").token)
    assert status == 200
    [case] = body["cases"]
    assert (case["id"], case["case_no"], case["category"]) == (
        mine["id"],
        mine["case_no"],
        "penalty",
    )
    assert sorted(o["cert_no"] for o in case["officers"]) == ["A00001", "A00002"]
    assert case["standard"]["id"] == "penalty"
    stage = next(s for s in case["standard"]["stages"] if s["id"] == "site-inspection")
    assert stage["on_site"] is True
    assert {"id": "site-inspection-record", "name_zh": "现场检查（勘验）笔录"} in stage["records"]

    # another agency's inspector, and no token at all
    assert _assignments(world, enrol(world, "b_insp1", admin="b_admin").token) == (
        200,
        {"cases": []},
    )
    status, error = _assignments(world, None)
    assert status == 401 and set(error) >= {"code", "status", "message"}
