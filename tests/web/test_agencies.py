"""Agencies: admins add and list them over the API; the CLI does the same on the server."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from flask import Flask

from server.cli import main
from tests.server.conftest import World


def test_admins_add_and_list_agencies(world: World) -> None:
    admin = world.as_("a_admin")
    made = admin.post("/agencies", {"code": "C-AGENCY", "name": "贵阳市综合行政执法局"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["name"] == "贵阳市综合行政执法局"
    codes = [a["code"] for a in admin.get("/agencies").get_json()]
    assert codes == ["A-AGENCY", "B-AGENCY", "C-AGENCY"]
    again = admin.post("/agencies", {"code": "C-AGENCY", "name": "重复"})
    assert again.status_code == 409
    bad = admin.post("/agencies", {"code": "有 空格", "name": "x"})
    assert bad.status_code == 422 and "code" in bad.get_json()["errors"]
    assert world.as_("a_reviewer").get("/agencies").status_code == 403
    assert world.as_("a_reviewer").post("/agencies", {"code": "D1", "name": "x"}).status_code == 403


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_cli_adds_and_lists_agencies_in_beijing_time(app: Flask, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CASETRAIL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CASETRAIL_DATABASE_URL", settings.database_url)
    added = CliRunner().invoke(main, ["agencies", "add", "GY-ZF", "--name", "贵阳市执法局"])
    assert added.exit_code == 0, added.output
    listed = CliRunner().invoke(main, ["agencies", "list"])
    assert listed.exit_code == 0 and "GY-ZF" in listed.output and "贵阳市执法局" in listed.output
    assert "北京时间" in listed.output
    twice = CliRunner().invoke(main, ["agencies", "add", "GY-ZF", "--name", "x"])
    assert twice.exit_code == 1 and "已存在" in twice.output
