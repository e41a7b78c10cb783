"""事前公开 registries: admins keep items and targets (API and CLI); the public reads them."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from server.cli import main
from tests.server.conftest import World, snapshot
from tests.server.manifest_support import cli_env

CREDIT = "91520100MA6DL12349"


def test_admins_keep_items_and_targets_and_the_public_sees_them(world: World, engine) -> None:  # type: ignore[no-untyped-def]
    admin = world.as_("a_admin")
    item = admin.post(
        "/registries/items",
        {
            "code": "SJ-001",
            "name": "食品经营许可事项检查",
            "basis": "《食品安全法》第一百一十条",
            "subject": "食品经营者",
            "method": "现场检查",
        },
    )
    assert item.status_code == 201, item.get_json()
    assert admin.post("/registries/items", {"code": "SJ-001", "name": "重复"}).status_code == 409
    assert (
        world.as_("a_insp1").post("/registries/items", {"code": "X", "name": "x"}).status_code
        == 403
    )

    before = snapshot(engine)
    bad = admin.post(
        "/registries/targets",
        {
            "targets": [
                {"code": CREDIT, "name": "黔味食品"},
                {"code": "91520100MA6DL12340", "name": "坏码"},
            ]
        },
    )
    assert bad.status_code == 422 and list(bad.get_json()["errors"]) == ["1"]
    assert snapshot(engine) == before  # all or none

    added = admin.post(
        "/registries/targets",
        {"targets": [
            {"code": CREDIT, "name": "贵州黔味食品有限公司", "sector": "食品销售"},
            {"code": "GT-0001", "name": "王小明", "kind": "person", "sector": "个体餐饮"},
        ]},
    )  # fmt: skip
    assert added.status_code == 201, added.get_json()
    person = added.get_json()[1]["id"]
    assert admin.post(f"/registries/targets/{person}/retire").get_json()["active"] is False
    assert world.as_("b_admin").post(f"/registries/targets/{person}/retire").status_code == 404

    client = world.app.test_client()
    page = client.get("/public/registries").get_data(as_text=True)
    assert "食品经营许可事项检查" in page and "贵州黔味食品有限公司" in page and CREDIT in page
    assert "王某" in page and "王小明" not in page and "GT-0001" not in page and "已移出" in page
    data = client.get("/public/registries.json").get_json()["agencies"]
    assert [a["agency"] for a in data] == ["A-AGENCY 市场监督管理局"]


def test_the_inspector_list_follows_the_users(world: World) -> None:
    client = world.app.test_client()
    found = client.get("/public/inspectors.json?q=A00001").get_json()["items"]
    assert found == [
        {
            "name": "A-Insp1",
            "cert_no": "A00001",
            "agency": "A-AGENCY 市场监督管理局",
            "status": "active",
            "status_zh": "在岗",
        }
    ]
    gone = world.as_("a_admin").post(f"/users/{world.people['a_insp1'].id}/deactivate")
    assert gone.status_code == 200
    page = client.get("/public/inspectors?q=A00001").get_data(as_text=True)
    assert "A00001" in page and "已注销" in page
    everyone = client.get("/public/inspectors.json").get_json()
    assert everyone["total"] == 6  # three inspectors in each agency; no reviewer, no admin


def test_cli_adds_items_and_imports_targets(world: World, tmp_path: Path) -> None:
    env = cli_env(world)
    runner = CliRunner()
    done = runner.invoke(
        main, ["registry", "item-add", "SJ-009", "广告发布检查", "--admin", "a-admin"], env=env
    )
    assert done.exit_code == 0, done.output
    csv_file = tmp_path / "targets.csv"
    csv_file.write_text(f"code,name,sector\n{CREDIT},贵州黔味食品有限公司,食品销售\n", "utf-8")
    done = runner.invoke(
        main, ["registry", "targets-import", str(csv_file), "--admin", "a-admin"], env=env
    )
    assert done.exit_code == 0 and "imported 1" in done.output, done.output
    refused = runner.invoke(
        main, ["registry", "item-add", "SJ-010", "x", "--admin", "a-insp1"], env=env
    )
    assert refused.exit_code == 1 and "管理员" in refused.output
    listing = runner.invoke(main, ["registry", "list", "--agency", "A-AGENCY"], env=env).output
    assert "广告发布检查" in listing and "贵州黔味食品有限公司" in listing
