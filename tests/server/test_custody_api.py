"""Custody log endpoints and `casetrail custody verify|checkpoint`, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64

from click.testing import CliRunner
from sqlalchemy import delete, select

from core.merkle import verify_inclusion
from core.verify import open_checkpoint
from server.cli import main as cli
from server.models import CustodyEventRow, LogHead
from tests.server.conftest import World, parts
from tests.server.manifest_support import cli_env, enrol, open_case


def test_case_events_chain_and_prove_against_the_signed_checkpoint(world: World) -> None:
    case = open_case(world, "罚-链-1")
    inspector = world.as_("a_insp1")
    inspector.post(f"/cases/{case['id']}/stage", {"stage": "filing"})
    page = world.as_("a_reviewer").get(f"/cases/{case['id']}/custody").get_json()
    items = page["items"]
    assert page["total"] == 2
    assert [i["event"]["type"] for i in items] == ["case_opened", "stage_changed"]
    assert items[1]["event"]["case_prev"] == items[0]["event_hash"]

    key = world.as_(None).get("/log/public-key").get_json()
    assert key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    cp = inspector.get("/log/checkpoint").get_json()
    assert inspector.get("/log/checkpoint.txt").get_data(as_text=True) == cp["note"]
    body = open_checkpoint(cp["note"], key["verifier_key"])
    assert body.size == cp["size"] >= 2
    proof = inspector.get(f"/log/events/{items[1]['event']['event_id']}/proof").get_json()
    verify_inclusion(
        bytes.fromhex(items[1]["leaf_hash"]),
        proof["leaf_index"],
        proof["tree_size"],
        [base64.b64decode(h) for h in proof["hashes"]],
        body.root_hash,
    )
    too_small = inspector.get(f"/log/events/{items[1]['event']['event_id']}/proof?size=1")
    assert too_small.status_code == 422
    assert inspector.get("/log/consistency?old=5&new=2").status_code == 422


def test_other_inspectors_agencies_and_devices_get_404(world: World) -> None:
    case = open_case(world, "罚-链-2", officers=("a_insp1",))
    event_id = (
        world.as_("a_admin")
        .get(f"/cases/{case['id']}/custody")
        .get_json()["items"][0]["event"]["event_id"]
    )
    other_device = enrol(world, "a_insp2")
    for api in (
        world.as_("a_insp2"),
        world.as_("b_admin"),
        world.as_("b_reviewer"),
        other_device.api,
    ):
        assert api.get(f"/cases/{case['id']}/custody").status_code == 404
        response = api.get(f"/log/events/{event_id}/proof")
        assert response.status_code == 404
        assert case["id"] not in response.get_data(as_text=True)
    assert world.as_(None).get("/log/checkpoint").status_code == 401
    assert world.as_(None).get(f"/cases/{case['id']}/custody").status_code == 401


def test_cli_checkpoint_and_verify_find_tampering(world: World) -> None:
    case = open_case(world, "罚-链-3")
    world.as_("a_insp1").post(f"/cases/{case['id']}/stage", {"stage": "filing"})
    runner = CliRunner()
    signed = runner.invoke(cli, ["custody", "checkpoint"], env=cli_env(world))
    assert signed.exit_code == 0, signed.output
    assert "检查点 checkpoint: size 2" in signed.output
    ok = runner.invoke(cli, ["custody", "verify", "--case", case["id"]], env=cli_env(world))
    assert ok.exit_code == 0, ok.output

    with parts(world.app).unit_of_work() as uow:
        row = uow.session.scalars(
            select(CustodyEventRow).where(CustodyEventRow.case_seq == 1)
        ).one()
        row.canonical_json = row.canonical_json.replace("罚-链-3", "罚-链-X")
        uow.commit()
    bad = runner.invoke(cli, ["custody", "verify"], env=cli_env(world))
    assert bad.exit_code == 1
    for code in ("event_hash_mismatch", "chain_altered", "leaf_hash_mismatch"):
        assert f"[{code}]" in bad.output
    assert "发现" in bad.output and "problem" in bad.output


def test_an_unmigrated_log_head_is_a_clear_503_not_a_500(world: World) -> None:
    case = open_case(world, "罚-链-未升级")
    with parts(world.app).engine.begin() as conn:
        conn.execute(delete(LogHead))
    response = world.as_("a_insp1").post(f"/cases/{case['id']}/stage", {"stage": "filing"})
    assert response.status_code == 503, response.get_json()
    message = response.get_json()["message"]
    assert "数据库尚未升级" in message and "casetrail db upgrade" in message
