"""Admin pages: users (add, one-time password, reset, deactivate), devices (enrolment code
as text and QR code, revoke), agencies — and nobody else gets in."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from tests.server.conftest import World
from tests.web.conftest import csrf_of, sign_in

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _secret(html: str) -> str:
    found = re.search(r'<code class="secret-value"[^>]*>([^<]+)</code>', html)
    assert found, "no one-time secret on the page"
    return found.group(1)


@SQLITE_ONLY
def test_an_admin_adds_a_user_who_signs_in_with_the_one_time_password(
    app: Flask, world: World, signed_in: Any
) -> None:
    admin = signed_in("a_admin")
    page = admin.get("/ui/admin/users")
    assert page.status_code == 200 and "a-insp1" in page.text and "A00001" in page.text
    added = admin.post(
        "/ui/admin/users",
        data={
            "csrf_token": csrf_of(page.text),
            "username": "zhang.san",
            "display_name": "张三",
            "role": "inspector",
            "cert_no": "52010012345",
        },
    )
    assert added.status_code == 200 and "张三" in added.text and "只显示这一次" in added.text
    password = _secret(added.text)
    assert sign_in(app.test_client(), "zhang.san", password).status_code == 302
    # an inspector without 执法证号 is refused with the reason, in Chinese
    refused = admin.post(
        "/ui/admin/users",
        data={
            "csrf_token": csrf_of(page.text),
            "username": "li.si",
            "display_name": "李四",
            "role": "inspector",
        },  # fmt: skip
    )
    assert refused.status_code == 422 and "执法证号" in refused.text
    # reset, then deactivate: the old password stops working, then the user entirely
    user_id = world.people["a_insp2"].id
    reset = admin.post(
        f"/ui/admin/users/{user_id}/password", data={"csrf_token": csrf_of(page.text)}
    )
    new_password = _secret(reset.text)
    assert sign_in(app.test_client(), "a-insp2", new_password).status_code == 302
    gone = admin.post(
        f"/ui/admin/users/{user_id}/deactivate", data={"csrf_token": csrf_of(page.text)}
    )
    assert gone.status_code == 302
    assert sign_in(app.test_client(), "a-insp2", new_password).status_code == 401


@SQLITE_ONLY
def test_a_registered_device_shows_its_enrolment_code_as_text_and_qr(
    app: Flask, world: World, signed_in: Any
) -> None:
    admin = signed_in("a_admin")
    page = admin.get("/ui/admin/devices")
    owner = world.people["a_insp1"].id
    shown = admin.post(
        "/ui/admin/devices",
        data={"csrf_token": csrf_of(page.text), "owner_user_id": owner, "name": "执法记录仪 07"},
    )
    assert shown.status_code == 200
    code = _secret(shown.text)
    assert "<svg" in shown.text and "设备注册二维码" in shown.text
    assert f"/capture/#enrol={code}" in shown.text
    assert "<script" not in shown.text.split("<main")[1] and "style=" not in shown.text
    # the code on the page enrols a device through the API (it really is the code)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from core.keys import export_public_key

    enrolled = app.test_client().post(
        "/api/v1/devices/enrol",
        json={
            "enrolment_code": code,
            "alg": "Ed25519",
            "public_key": export_public_key(Ed25519PrivateKey.generate().public_key()),
        },  # fmt: skip
    )
    assert enrolled.status_code == 201, enrolled.get_json()
    device_id = enrolled.get_json()["device"]["id"]
    listed = admin.get("/ui/admin/devices")
    assert "在用" in listed.text
    revoked = admin.post(
        f"/ui/admin/devices/{device_id}/revoke", data={"csrf_token": csrf_of(listed.text)}
    )
    assert revoked.status_code == 302 and "已吊销" in admin.get("/ui/admin/devices").text


@SQLITE_ONLY
def test_agencies_page_and_admin_only(app: Flask, world: World, signed_in: Any) -> None:
    admin = signed_in("a_admin")
    page = admin.get("/ui/admin/agencies")
    assert "A-AGENCY" in page.text and "B-AGENCY" in page.text
    added = admin.post(
        "/ui/admin/agencies",
        data={"csrf_token": csrf_of(page.text), "code": "GY-ZF", "name": "贵阳市执法局"},
    )
    assert added.status_code == 302 and "贵阳市执法局" in admin.get("/ui/admin/agencies").text
    reviewer = signed_in("a_reviewer")
    for path in ("/ui/admin/users", "/ui/admin/devices", "/ui/admin/agencies"):
        refused = reviewer.get(path)
        assert refused.status_code == 403 and "只有系统管理员" in refused.text
