"""Signing in and out of the workspace (``/ui/sign-in``, ``/ui/sign-out``).

The sign-in form has no session yet, so its CSRF protection is a double-submit token:
a random value in a short-lived ``SameSite=Strict`` cookie that must come back in the
form. After sign-in every form carries the session's own token (:mod:`server.web.common`).
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Response, make_response, redirect, render_template, request, url_for

from server.components import components
from server.errors import Forbidden, Unauthorized
from server.services import accounts
from server.services.accounts import IDLE_TIMEOUT, MAX_AGE
from server.web.common import (
    CSRF_FIELD,
    CSRF_REFUSED,
    SESSION_COOKIE,
    client_ip,
    current_session,
    safe_next,
    template_values,
    workspace_blueprint,
)

bp = workspace_blueprint("ui_signin", __name__, public=True, static=True)
bp.app_context_processor(template_values)

LOGIN_CSRF_COOKIE = "casetrail_signin_csrf"


def _form(error: str | None = None, status: int = 200, username: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = make_response(
        render_template(
            "sign_in.html",
            error=error,
            login_csrf=token,
            username=username,
            next=request.values.get("next", ""),
            idle_minutes=int(IDLE_TIMEOUT.total_seconds() // 60),
        ),
        status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
        path="/ui/sign-in",
    )
    return response


@bp.get("/")
def home() -> Any:
    """The workspace's front door: the case list, or the sign-in form."""
    if current_session() is None:
        return redirect(url_for("ui_signin.sign_in_form"))
    return redirect(url_for("ui_cases.case_list"))


@bp.get("/login")
def login() -> Any:
    """``/ui/login``, the address people type: the sign-in form."""
    query = request.query_string.decode("ascii", "replace")  # e.g. ?next=… passes through
    return redirect(url_for("ui_signin.sign_in_form") + (f"?{query}" if query else ""))


@bp.get("/sign-in")
def sign_in_form() -> Response:
    """The sign-in form (登录)."""
    return _form()


@bp.post("/sign-in")
def sign_in() -> Any:
    """Check the password (throttled) and open a session."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not accounts.csrf_matches(expected, request.form.get(CSRF_FIELD)):
        raise Forbidden(CSRF_REFUSED)
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    with components().unit_of_work() as uow:
        try:
            signed = accounts.sign_in(uow, username, password, client_ip())
        except accounts.SignInThrottled as exc:
            return _form(exc.message, 429, username)
        except Unauthorized as exc:
            uow.commit()  # the failed attempt counts towards the throttle
            return _form(exc.message, 401, username)
        uow.commit()
    response = redirect(safe_next(request.form.get("next")))
    response.set_cookie(
        SESSION_COOKIE,
        signed.cookie,
        max_age=int(MAX_AGE.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/sign-in")
    return response


@bp.post("/sign-out")
def sign_out() -> Any:
    """End the session (退出登录)."""
    found = current_session()
    if found is None:
        return redirect(url_for("ui_signin.sign_in_form"))
    if not accounts.csrf_matches(found.csrf_token, request.form.get(CSRF_FIELD)):
        raise Forbidden(CSRF_REFUSED)
    with components().unit_of_work() as uow:
        accounts.sign_out(uow, request.cookies.get(SESSION_COOKIE))
        uow.commit()
    response = redirect(url_for("ui_signin.sign_in_form"))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
