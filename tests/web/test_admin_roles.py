"""Admin users page: changing a role and 执法证号 ends the person's sessions; the last admin stays."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.server.conftest import World
from tests.web.conftest import csrf_of

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_an_admin_makes_a_reviewer_head_and_their_session_ends(
    app: Flask, world: World, signed_in: Any
) -> None:
    reviewer = signed_in("a_reviewer")
    assert reviewer.get("/ui/cases").status_code == 200
    admin = signed_in("a_admin")
    page = admin.get("/ui/admin/users")
    user_id = world.people["a_reviewer"].id
    assert f'<label for="role-{user_id}"' in page.text and "负责人" in page.text
    changed = admin.post(
        f"/ui/admin/users/{user_id}/role",
        data={"csrf_token": csrf_of(page.text), "role": "head", "cert_no": "A-HEAD-7"},
    )
    assert changed.status_code == 302
    listed = admin.get(changed.headers["Location"]).text
    assert "已保存 A-Reviewer（a-reviewer）的角色和执法证号：负责人，A-HEAD-7" in listed
    row = listed.split(f'id="role-{user_id}"')[1].split("</tr>")[0]
    assert '<option value="head" selected>负责人</option>' in row and 'value="A-HEAD-7"' in row
    # the reviewer's page was made for the old role: they must sign in again
    again = reviewer.get("/ui/cases")
    assert again.status_code == 302 and "/ui/sign-in" in again.headers["Location"]
    # without the form token nothing changes
    forged = admin.post(f"/ui/admin/users/{user_id}/role", data={"role": "admin"})
    assert forged.status_code == 403


@SQLITE_ONLY
def test_the_last_admin_is_told_why_in_chinese(app: Flask, world: World, signed_in: Any) -> None:
    admin = signed_in("a_admin")
    page = admin.get("/ui/admin/users")
    refused = admin.post(
        f"/ui/admin/users/{world.people['a_admin'].id}/role",
        data={"csrf_token": csrf_of(page.text), "role": "reviewer", "cert_no": ""},
    )
    assert refused.status_code == 409 and "最后一位在用管理员" in refused.text
    assert admin.get("/ui/admin/users").status_code == 200  # still an admin, still signed in
    inspector = world.people["a_insp1"].id
    no_cert = admin.post(
        f"/ui/admin/users/{inspector}/role",
        data={"csrf_token": csrf_of(page.text), "role": "inspector", "cert_no": ""},
    )
    assert no_cert.status_code == 422 and "执法证号" in no_cert.text
