"""Registries and 双随机 draws in the workspace (SQLite and PostgreSQL), admins only.

An admin adds an item and targets through the forms, commits a draw plan, draws it,
sees the verification data, the public site's copy re-checks, and the inspections open.
"""

from __future__ import annotations

import re
from typing import Any

from core.draw import verify_published_draw
from tests.server.conftest import World
from tests.web.conftest import csrf_of


def test_an_admin_keeps_the_registries_and_runs_a_draw(world: World, signed_in: Any) -> None:
    admin = signed_in("a_admin")
    page = admin.get("/ui/admin/registries")
    assert page.status_code == 200 and "随机抽查事项清单" in page.text
    token = csrf_of(page.text)
    item = {"code": "SJ-001", "name": "食品经营检查", "basis": "食品安全法第一百一十条"}
    added = admin.post("/ui/admin/registries/items", data={**item, "csrf_token": token})
    assert added.status_code == 302
    for n in range(4):
        target = {"code": f"GZ-{n:04d}", "name": f"贵阳商户{n}号店", "kind": "organisation"}
        posted = admin.post("/ui/admin/registries/targets", data={**target, "csrf_token": token})
        assert posted.status_code == 302
    duplicate = admin.post("/ui/admin/registries/items", data={**item, "csrf_token": token})
    assert duplicate.status_code in (409, 422)  # the service's refusal, shown as a page
    listed = admin.get("/ui/admin/registries").text
    assert "食品经营检查" in listed and "贵阳商户3号店" in listed

    plan = {"title": "2026年12月食品经营双随机抽查", "item_codes": "SJ-001", "target_count": "2"}
    committed = admin.post("/ui/admin/draws", data={**plan, "per_target": "2", "csrf_token": token})
    assert committed.status_code == 302
    draw_url = committed.headers["Location"]
    draw_id = draw_url.rsplit("/", 1)[-1]
    page = admin.get(draw_url).text
    assert "已承诺，待抽取" in page and re.search(
        r"<code class=\"hash\">sha256:[0-9a-f]{64}</code>", page
    )

    assert admin.post(draw_url + "/perform", data={"csrf_token": token}).status_code == 302
    page = admin.get(draw_url).text
    assert "已抽取并公开" in page and "签名检查点" in page and "casetrail draw verify" in page
    assert page.count("贵阳商户") >= 2  # two drawn targets in the result table
    published = world.app.test_client().get(f"/public/draws/{draw_id}.json").get_json()
    assert verify_published_draw(published) == []

    assert admin.post(draw_url + "/cases", data={"csrf_token": token}).status_code == 302
    assert "已为抽中对象立案 2 件" in admin.get(draw_url).text


def test_registries_and_draws_are_for_admins_only(world: World, signed_in: Any) -> None:
    reviewer = signed_in("a_reviewer")
    assert reviewer.get("/ui/admin/registries").status_code == 403
    assert reviewer.get("/ui/admin/draws").status_code == 403
    admin = signed_in("a_admin")
    refused = admin.post("/ui/admin/registries/items", data={"code": "X", "name": "无令牌"})
    assert refused.status_code == 403
    assert "无令牌" not in admin.get("/ui/admin/registries").text
