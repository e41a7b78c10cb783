"""双随机 draws end to end: commit, draw from the next checkpoint, publish, verify anywhere, open cases."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from server.cli import main
from server.services.annual_report import CHINA
from tests.server.conftest import World
from tests.server.manifest_support import event_types

TARGETS = [
    {"code": f"GZ-{n:04d}", "name": f"贵阳商户{n}号店", "sector": "食品销售"} for n in range(12)
]


def _verify(tmp_path: Path, published: dict, name: str) -> tuple[int, str]:  # type: ignore[type-arg]
    """``casetrail draw verify`` in an empty data dir: nothing but the published file."""
    path = tmp_path / name
    path.write_text(json.dumps(published, ensure_ascii=False), "utf-8")
    fresh = tmp_path / f"fresh-{name}"
    fresh.mkdir()
    env = {"CASETRAIL_DATA_DIR": str(fresh), "CASETRAIL_DATABASE_URL": f"sqlite:///{fresh}/x.db"}
    done = CliRunner().invoke(main, ["draw", "verify", str(path)], env=env)
    return done.exit_code, done.output


def test_a_draw_is_committed_drawn_published_verified_and_opens_cases(
    world: World, tmp_path: Path
) -> None:
    admin = world.as_("a_admin")
    assert (
        admin.post("/registries/items", {"code": "SJ-001", "name": "食品经营检查"}).status_code
        == 201
    )
    assert admin.post("/registries/targets", {"targets": TARGETS}).status_code == 201
    plan = {
        "title": "2026年12月食品经营双随机抽查",
        "item_codes": ["SJ-001"],
        "target_count": 3,
        "exclusions": [{"cert_no": "A00001", "target_code": "GZ-0000", "reason": "近亲属经营"}],
    }
    assert world.as_("a_insp1").post("/draws", plan).status_code == 403
    too_many = admin.post("/draws", {**plan, "target_count": 13})
    assert too_many.status_code == 422 and "不足 13 户" in str(too_many.get_json()["errors"])
    committed = admin.post("/draws", plan)
    assert committed.status_code == 201, committed.get_json()
    draw = committed.get_json()
    assert draw["status"] == "committed" and draw["result"] is None
    client = world.app.test_client()
    assert client.get(f"/public/draws/{draw['id']}.json").status_code == 404  # not drawn yet

    drawn = admin.post(f"/draws/{draw['id']}/perform")
    assert drawn.status_code == 200, drawn.get_json()
    result = drawn.get_json()["result"]["assignments"]
    assert len(result) == 3 and all(len(a["inspectors"]) == 2 for a in result)
    assert admin.post(f"/draws/{draw['id']}/perform").status_code == 409

    published = client.get(f"/public/draws/{draw['id']}.json").get_json()
    assert published["result"] == result
    page = client.get(f"/public/draws/{draw['id']}").get_data(as_text=True)
    assert "复核通过" in page and result[0]["target"]["name"] in page

    code, output = _verify(tmp_path, published, "draw.json")
    assert code == 0 and "复核通过" in output, output

    # one pool entry changed after the commitment: verification fails, saying why
    tampered = json.loads(json.dumps(published))
    tampered["plan"]["targets"][5]["name"] = "换了名字的商户"
    code, output = _verify(tmp_path, tampered, "tampered.json")
    assert code == 1 and "计划哈希不符" in output, output
    # a result edited by hand fails too
    forged = json.loads(json.dumps(published))
    forged["result"][0], forged["result"][1] = forged["result"][1], forged["result"][0]
    code, output = _verify(tmp_path, forged, "forged.json")
    assert code == 1 and "重算结果" in output, output

    opened = admin.post(f"/draws/{draw['id']}/cases")
    assert opened.status_code == 201, opened.get_json()
    case_ids = opened.get_json()["case_ids"]
    assert len(case_ids) == 3
    first = admin.get(f"/cases/{case_ids[0]}").get_json()
    assert first["category"] == "inspection"
    assert sorted(o["cert_no"] for o in first["officers"]) == sorted(
        i["cert_no"] for i in result[0]["inspectors"]
    )
    assert admin.post(f"/draws/{draw['id']}/cases").status_code == 409
    year = datetime.now(CHINA).year
    report = client.get(f"/public/reports/annual.json?agency=A-AGENCY&year={year}").get_json()
    assert report["sections"]["cases"]["opened"] == 3  # the drawn inspections, not the ledger
    commitment = json.loads(published["commitment"]["event"])
    assert commitment["type"] == "draw_committed"
    assert event_types(admin, commitment["case_id"]) == [
        "case_opened",
        "draw_committed",
        "draw_performed",
    ]
