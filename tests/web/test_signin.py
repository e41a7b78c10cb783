"""Signing in to the workspace: passwords, cookie sessions, CSRF, idle timeout, throttling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from server.app import create_app
from server.cli import main
from server.models import SignInAttempt, WebSession
from server.services import accounts
from server.services.accounts import IDLE_TIMEOUT, MAX_USER_FAILURES
from server.services.setup import create_first_admin
from tests.server.conftest import World, parts
from tests.support.fake_uow import FakeUnits
from tests.web.conftest import PASSWORD, csrf_of, set_password, sign_in


def test_a_person_signs_in_sees_the_case_list_and_signs_out(app: Flask, world: World) -> None:
    set_password(app, "a-reviewer")
    client = app.test_client()
    typed = client.get("/ui/login", follow_redirects=True)  # the address people type
    assert typed.status_code == 200 and "登录" in typed.text and 'type="password"' in typed.text
    response = sign_in(client, "a-reviewer")
    assert response.status_code == 302 and response.headers["Location"] == "/ui/cases"
    cookie = response.headers["Set-Cookie"]
    assert "casetrail_session=cts_" in cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get("/ui/cases")
    assert page.status_code == 200 and "案件列表" in page.text and "A-Reviewer" in page.text
    out = client.post("/ui/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 302
    client.set_cookie("casetrail_session", cookie.split(";")[0].split("=", 1)[1])
    again = client.get("/ui/cases")  # the old cookie no longer opens anything
    assert again.status_code == 302 and again.headers["Location"].startswith("/ui/sign-in")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_the_session_cookie_is_secure_over_https(app: Flask, world: World) -> None:
    set_password(app, "a-reviewer")
    client = app.test_client()
    form = client.get("/ui/sign-in", base_url="https://localhost")
    response = client.post(
        "/ui/sign-in",
        base_url="https://localhost",
        data={"username": "a-reviewer", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_wrong_password_and_unknown_user_get_the_same_answer(app: Flask, world: World) -> None:
    set_password(app, "a-reviewer")
    wrong = sign_in(app.test_client(), "a-reviewer", "not the password")
    unknown = sign_in(app.test_client(), "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text


def test_failed_attempts_are_throttled_across_server_processes(
    app: Flask, world: World, settings
) -> None:  # type: ignore[no-untyped-def]
    set_password(app, "a-archivist")
    for _ in range(MAX_USER_FAILURES):
        assert sign_in(app.test_client(), "a-archivist", "guess guess guess").status_code == 401
    # A second app on the same database stands for another server process.
    other = create_app(settings)
    try:
        refused = sign_in(other.test_client(), "a-archivist", PASSWORD)
        assert refused.status_code == 429 and "登录失败次数过多" in refused.text
        assert sign_in(other.test_client(), "a-reviewer", "x" * 12).status_code == 401
    finally:
        parts(other).engine.dispose()
    with parts(app).unit_of_work() as uow:
        failures = uow.session.scalar(
            select(func.count())
            .select_from(SignInAttempt)
            .where(SignInAttempt.succeeded.is_(False))
        )
    assert failures == MAX_USER_FAILURES + 1


def test_an_idle_session_ends(app: Flask, world: World) -> None:
    set_password(app, "a-reviewer")
    client = app.test_client()
    sign_in(client, "a-reviewer")
    assert client.get("/ui/cases").status_code == 200
    with parts(app).unit_of_work() as uow:
        for row in uow.session.scalars(select(WebSession)):
            row.last_seen_at = row.last_seen_at - IDLE_TIMEOUT - timedelta(minutes=1)
        uow.commit()
    assert client.get("/ui/cases").headers["Location"].startswith("/ui/sign-in")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_forms_without_the_csrf_token_are_refused(app: Flask, world: World) -> None:
    set_password(app, "a-reviewer")
    client = app.test_client()
    no_token = client.post("/ui/sign-in", data={"username": "a-reviewer", "password": PASSWORD})
    assert no_token.status_code == 403 and "安全令牌" in no_token.text
    sign_in(client, "a-reviewer")
    refused = client.post("/ui/sign-out", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert client.get("/ui/cases").status_code == 200  # still signed in


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_pages_carry_a_strict_csp_and_chinese_error_pages(app: Flask, world: World) -> None:
    client = app.test_client()
    page = client.get("/ui/sign-in")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in page.text and "style=" not in page.text
    missing = client.get("/ui/no-such-page")
    assert missing.status_code == 404 and "页面不存在" in missing.text
    wrong_method = client.put("/ui/sign-in")
    assert wrong_method.status_code == 405 and "不支持此操作方式" in wrong_method.text
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json["code"] == 404  # the API keeps its JSON shape


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_bearer_tokens_keep_working(app: Flask, world: World) -> None:
    assert world.as_("a_reviewer").get("/me").status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_cli_sets_a_password_from_stdin(app: Flask, world: World, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CASETRAIL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CASETRAIL_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(
        main, ["users", "set-password", "b-admin", "--password-stdin"], input="a long enough pw\n"
    )
    assert result.exit_code == 0, result.output
    assert "已为 b-admin 设置登录密码" in result.output
    assert sign_in(app.test_client(), "b-admin", "a long enough pw").status_code == 302
    short = CliRunner().invoke(
        main, ["users", "set-password", "b-admin", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 1 and "至少" in short.output


def test_first_run_gives_the_admin_a_one_time_password_that_signs_in(
    fake_units: FakeUnits,
) -> None:
    with fake_units() as uow:
        first = create_first_admin(uow, "测试机关")
        uow.commit()
    assert (uow.commits, uow.rollbacks) == (1, 0)
    assert first is not None and len(first.password) >= 16
    text = first.sign_in_text()
    assert "/ui/" in text and first.password in text and "set-password admin" in text
    with fake_units() as uow:
        signed = accounts.sign_in(uow, "admin", first.password, "127.0.0.1")
        uow.commit()
    assert signed.user.username == "admin" and signed.cookie
    with fake_units() as uow:  # a second start creates no second admin
        assert create_first_admin(uow, "测试机关") is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no SQL of its own
def test_an_admin_sets_a_password_over_the_api(app: Flask, world: World) -> None:
    target = world.people["a_insp1"]
    path = f"/users/{target.id}/password"
    assert world.as_("a_admin").post(path, {"password": "new password 1"}).status_code == 204
    assert sign_in(app.test_client(), "a-insp1", "new password 1").status_code == 302
    assert world.as_("a_reviewer").post(path, {"password": "new password 2"}).status_code == 403
    assert world.as_("b_admin").post(path, {"password": "new password 2"}).status_code == 404
    assert world.as_("a_admin").post(path, {"password": "short"}).status_code == 422
