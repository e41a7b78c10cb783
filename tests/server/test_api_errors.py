"""Every error comes in the one JSON shape, in Chinese with English, and changes nothing."""

from __future__ import annotations

import io
import json

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from tests.server.conftest import World, parts, snapshot


def assert_shape(response, code: int) -> dict:
    assert response.status_code == code, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == code
    assert isinstance(body["status"], str) and body["status"]
    assert "(" in body["message"] and any("\u4e00" <= ch <= "\u9fff" for ch in body["message"])
    return body


def test_unknown_path_and_wrong_method_answer_in_the_one_shape(world: World) -> None:
    api = world.as_("a_admin")
    assert_shape(api.get("/no-such-thing"), 404)
    wrong_method = api.client.delete("/api/v1/health")
    assert_shape(wrong_method, 405)
    assert "GET" in wrong_method.headers["Allow"]  # says which methods would work


def test_missing_malformed_and_revoked_tokens_are_401(world: World) -> None:
    assert_shape(world.as_(None).get("/cases"), 401)
    assert world.as_(None).get("/cases").headers["WWW-Authenticate"].startswith("Bearer")
    assert_shape(world.token_api("not-a-token").get("/cases"), 401)
    assert_shape(world.token_api("ct_guessed0000000000000000000000000000000").get("/cases"), 401)
    admin = world.people["a_admin"]
    insp = world.people["a_insp1"]
    tokens = world.as_("a_admin").get(f"/users/{insp.id}/tokens").get_json()
    world.as_("a_admin").post(f"/users/{insp.id}/tokens/{tokens[0]['id']}/revoke")
    body = assert_shape(world.as_("a_insp1").get("/cases"), 401)
    assert "吊销" in body["message"]
    assert world.token_api(admin.token).get("/cases").status_code == 200


CASE = {"category": "penalty", "case_no": "京市监罚〔2026〕1号", "title": "无照经营"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({**CASE, "status": "closed"}, "status"),
        ({**CASE, "case_seq": 7}, "case_seq"),
        ({**CASE, "sha256": "sha256:00"}, "sha256"),
        ({**CASE, "case_id": "x"}, "case_id"),
        ({**CASE, "id": "chosen-id"}, "id"),
        ({**CASE, "title": 12}, "title"),
        ({**CASE, "parties": "张三"}, "parties"),
        ({**CASE, "parties": [{"name": "张三", "role": "boss"}]}, "parties"),
        ({"category": "penalty", "title": "缺案号"}, "case_no"),
    ],
)
def test_mass_assignment_wrong_types_and_missing_fields_are_422_and_change_nothing(
    world: World, body: dict, field: str
) -> None:
    engine = parts(world.app).engine
    before = snapshot(engine)
    response = world.as_("a_admin").post("/cases", body)
    error = assert_shape(response, 422)
    assert field in error["errors"]["json"]
    assert snapshot(engine) == before


def test_malformed_json_is_400_and_changes_nothing(world: World) -> None:
    engine = parts(world.app).engine
    before = snapshot(engine)
    response = world.as_("a_admin").client.post(
        "/api/v1/cases",
        data=b'{"category": "penalty", "case_no": ',
        headers={**world.as_("a_admin").headers, "Content-Type": "application/json"},
    )
    assert_shape(response, 400)
    response = world.as_("a_admin").client.post(
        "/api/v1/cases",
        data="[1, 2]",
        headers={**world.as_("a_admin").headers, "Content-Type": "application/json"},
    )
    assert_shape(response, 422)
    assert snapshot(engine) == before


def post_chunked(app: Flask, path: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST like a WSGI server does for ``Transfer-Encoding: chunked``: no Content-Length."""
    environ = EnvironBuilder(
        path=path,
        method="POST",
        input_stream=io.BytesIO(body),
        headers={**headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    return Response.from_app(app, environ)


def test_chunked_body_within_the_limit_is_accepted(world: World) -> None:
    body = json.dumps({**CASE, "case_no": "chunked-1"}).encode()
    response = post_chunked(world.app, "/api/v1/cases", body, world.as_("a_admin").headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert json.loads(response.get_data())["case_no"] == "chunked-1"


def test_oversized_body_is_413_with_and_without_content_length(world: World) -> None:
    engine = parts(world.app).engine
    before = snapshot(engine)
    limit = parts(world.app).settings.max_json_body
    huge = {**CASE, "title": "大" * limit}
    api = world.as_("a_admin")
    assert_shape(api.post("/cases", huge), 413)
    payload = (
        '{"category": "penalty", "case_no": "1", "title": "' + "x" * (limit + 10) + '"}'
    ).encode()
    chunked = post_chunked(world.app, "/api/v1/cases", payload, api.headers)
    assert_shape(chunked, 413)
    assert snapshot(engine) == before


def test_unexpected_failure_is_500_in_the_one_shape_without_internals(
    app: Flask, world: World
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    response = world.as_("a_admin").get("/boom")
    body = assert_shape(response, 500)
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert "联系管理员" in body["message"]
