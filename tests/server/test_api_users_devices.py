"""Users, tokens, devices and enrolment through HTTP, with every authorization edge."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.server.conftest import World, parts, snapshot


def ed25519_public() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def es256_public() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def enrolled_device(world: World, owner: str, alg: str = "Ed25519") -> tuple[str, str]:
    """Register a device for ``owner`` as agency admin and enrol it; (device id, token)."""
    admin = "a_admin" if owner.startswith("a_") else "b_admin"
    registered = world.as_(admin).post(
        "/devices", {"owner_user_id": world.people[owner].id, "name": f"执法记录仪 {owner}"}
    )
    assert registered.status_code == 201, registered.get_json()
    public = ed25519_public() if alg == "Ed25519" else es256_public()
    enrolled = world.as_(None).post(
        "/devices/enrol",
        {
            "enrolment_code": registered.get_json()["enrolment_code"],
            "alg": alg,
            "public_key": public,
        },
    )
    assert enrolled.status_code == 201, enrolled.get_json()
    return enrolled.get_json()["device"]["id"], enrolled.get_json()["token"]


def test_admin_creates_an_inspector_who_can_use_the_issued_token(world: World) -> None:
    admin = world.as_("a_admin")
    created = admin.post(
        "/users",
        {
            "username": "zhang.san",
            "display_name": "张三",
            "role": "inspector",
            "cert_no": "11010012345",
        },
    )
    assert created.status_code == 201
    user = created.get_json()
    assert (user["role"], user["cert_no"], user["active"]) == ("inspector", "11010012345", True)
    issued = admin.post(f"/users/{user['id']}/tokens", {"name": "phone"}).get_json()
    assert issued["token"].startswith("ct_") and issued["token"].startswith(issued["prefix"])
    me = world.token_api(issued["token"]).get("/me").get_json()
    assert me["user"]["username"] == "zhang.san" and me["device_id"] is None
    listed = admin.get(f"/users/{user['id']}/tokens").get_json()
    assert listed[0]["last_used_at"] is not None
    assert "token" not in listed[0]  # the secret is never shown again


def test_an_inspector_without_cert_no_and_a_taken_username_are_refused(world: World) -> None:
    admin = world.as_("a_admin")
    missing = admin.post(
        "/users", {"username": "li.si", "display_name": "李四", "role": "inspector"}
    )
    assert missing.status_code == 422 and "cert_no" in missing.get_json()["errors"]
    taken = admin.post(
        "/users", {"username": "a-insp1", "display_name": "重名", "role": "reviewer"}
    )
    assert taken.status_code == 409


@pytest.mark.parametrize(("field", "value"), [("username", "wang.wu\n"), ("cert_no", "F12345\n")])
def test_a_trailing_newline_is_not_a_valid_username_or_cert_no(
    world: World, field: str, value: str
) -> None:
    admin = world.as_("a_admin")
    engine = parts(world.app).engine
    before = snapshot(engine)
    draft = {
        "username": "wang.wu",
        "display_name": "王五",
        "role": "inspector",
        "cert_no": "F12345",
    }
    refused = admin.post("/users", {**draft, field: value})
    assert refused.status_code == 422 and field in refused.get_json()["errors"]
    assert snapshot(engine) == before  # nothing created


@pytest.mark.parametrize("who", ["a_insp1", "a_reviewer", "a_archivist"])
def test_only_admins_manage_users(world: World, who: str) -> None:
    api = world.as_(who)
    assert api.get("/users").status_code == 403
    assert (
        api.post("/users", {"username": "x1", "display_name": "x", "role": "admin"}).status_code
        == 403
    )
    other = world.people["a_insp2"]
    assert api.post(f"/users/{other.id}/deactivate").status_code == 403
    assert api.post(f"/users/{other.id}/tokens", {}).status_code == 403
    assert api.get(f"/users/{world.people[who].id}").status_code == 200  # themselves


def test_admins_cannot_reach_users_of_another_agency(world: World) -> None:
    other = world.people["b_insp1"]
    api = world.as_("a_admin")
    assert api.get(f"/users/{other.id}").status_code == 404
    assert api.post(f"/users/{other.id}/tokens", {}).status_code == 404
    assert api.post(f"/users/{other.id}/deactivate").status_code == 404
    assert all(
        u["agency_id"] == world.people["a_admin"].agency_id for u in api.get("/users").get_json()
    )


def test_deactivating_a_user_stops_their_tokens(world: World) -> None:
    target = world.people["a_insp2"]
    assert world.as_("a_insp2").get("/me").status_code == 200
    assert world.as_("a_admin").post(f"/users/{target.id}/deactivate").get_json()["active"] is False
    assert world.as_("a_insp2").get("/me").status_code == 401


@pytest.mark.parametrize("alg", ["Ed25519", "ES256"])
def test_device_enrolment_gives_a_device_token_acting_for_its_owner(world: World, alg: str) -> None:
    device_id, token = enrolled_device(world, "a_insp1", alg)
    me = world.token_api(token).get("/me").get_json()
    assert me["device_id"] == device_id and me["user"]["username"] == "a-insp1"
    device = world.as_("a_admin").get(f"/devices/{device_id}").get_json()
    assert device["status"] == "active" and device["key_alg"] == alg
    assert device["key_id"].startswith("sha256:")


def test_an_enrolment_code_works_once(world: World) -> None:
    registered = (
        world.as_("a_admin")
        .post("/devices", {"owner_user_id": world.people["a_insp1"].id, "name": "采集站 1"})
        .get_json()
    )
    body = {
        "enrolment_code": registered["enrolment_code"],
        "alg": "Ed25519",
        "public_key": ed25519_public(),
    }
    assert world.as_(None).post("/devices/enrol", body).status_code == 201
    again = world.as_(None).post("/devices/enrol", {**body, "public_key": ed25519_public()})
    assert again.status_code == 401


def test_a_bad_public_key_is_422_and_leaves_the_device_pending(world: World) -> None:
    registered = (
        world.as_("a_admin")
        .post("/devices", {"owner_user_id": world.people["a_insp1"].id, "name": "手机"})
        .get_json()
    )
    engine = parts(world.app).engine
    before = snapshot(engine)
    for alg, key in (("Ed25519", base64.b64encode(b"short").decode()), ("ES256", ed25519_public())):
        response = world.as_(None).post(
            "/devices/enrol",
            {"enrolment_code": registered["enrolment_code"], "alg": alg, "public_key": key},
        )
        assert response.status_code == 422 and "public_key" in response.get_json()["errors"]
    assert snapshot(engine) == before


def test_device_tokens_never_pass_admin_or_user_management_endpoints(world: World) -> None:
    _, token = enrolled_device(world, "a_insp1")
    api = world.token_api(token)
    insp = world.people["a_insp1"]
    assert api.get("/users").status_code == 403
    assert (
        api.post("/users", {"username": "evil", "display_name": "x", "role": "admin"}).status_code
        == 403
    )
    assert api.post("/devices", {"owner_user_id": insp.id, "name": "x"}).status_code == 403
    assert api.get("/devices").status_code == 403
    assert api.post(f"/users/{insp.id}/tokens", {}).status_code == 403
    assert api.get(f"/users/{insp.id}/tokens").status_code == 403
    assert (
        api.post("/cases", {"category": "penalty", "case_no": "1", "title": "x"}).status_code == 403
    )


def test_a_revoked_device_loses_access_at_once(world: World) -> None:
    device_id, token = enrolled_device(world, "a_insp1")
    assert world.token_api(token).get("/me").status_code == 200
    assert world.as_("a_insp1").post(f"/devices/{device_id}/revoke").status_code == 403
    assert world.as_("b_admin").post(f"/devices/{device_id}/revoke").status_code == 404
    revoked = world.as_("a_admin").post(f"/devices/{device_id}/revoke").get_json()
    assert revoked["status"] == "revoked"
    assert world.token_api(token).get("/me").status_code == 401


def test_devices_are_listed_for_admins_and_owners_only(world: World) -> None:
    device_id, _ = enrolled_device(world, "a_insp1")
    assert [d["id"] for d in world.as_("a_insp1").get("/devices").get_json()] == [device_id]
    assert world.as_("a_insp2").get("/devices").get_json() == []
    assert world.as_("a_insp2").get(f"/devices/{device_id}").status_code == 404
    assert world.as_("b_admin").get("/devices").get_json() == []
    assert world.as_("b_admin").get(f"/devices/{device_id}").status_code == 404


def test_a_device_cannot_be_registered_for_another_agencys_user(world: World) -> None:
    response = world.as_("a_admin").post(
        "/devices", {"owner_user_id": world.people["b_insp1"].id, "name": "x"}
    )
    assert response.status_code == 422 and "owner_user_id" in response.get_json()["errors"]
