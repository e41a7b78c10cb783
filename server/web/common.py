"""What every workspace page shares: the signed-in person, CSRF, running a service.

Each workspace blueprint is made by :func:`workspace_blueprint`, which gives it the
``/ui`` prefix, the templates folder and two ``before_request`` hooks: one loads the
person behind the session cookie (or sends the browser to the sign-in page), one
refuses any state-changing request whose form token is missing or wrong (403).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Response, g, redirect, request, url_for

from core.deadlines import DEADLINE_RULES
from server.auth import Principal
from server.components import components
from server.errors import Forbidden
from server.services import accounts
from server.services.accounts import ActiveSession
from server.services.unit_of_work import UnitOfWork

P = ParamSpec("P")
T = TypeVar("T")

SESSION_COOKIE = "casetrail_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
ROLE_NAMES = {
    "inspector": "执法人员",
    "reviewer": "法制审核",
    "archivist": "档案管理",
    "head": "负责人",
    "admin": "管理员",
}
DEADLINE_NAMES = {rule_id: rule.name_zh for rule_id, rule in DEADLINE_RULES.items()}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_REFUSED = (
    "表单安全令牌缺失或已失效，请刷新页面后重试 "
    "(the form's CSRF token is missing or stale: reload the page and try again)"
)


def workspace_blueprint(
    name: str,
    import_name: str,
    *,
    public: bool = False,
    static: bool = False,
    body_limit: Callable[[], int] | None = None,
) -> Blueprint:
    """A ``/ui`` blueprint; unless ``public``, its pages need a signed-in person.

    ``static`` serves ``server/web/static/`` under ``/ui/static/`` (one blueprint does).
    ``body_limit`` raises the request body limit for this blueprint's uploads (the
    app's default is ``Settings.max_json_body``); set before any form is parsed.
    """
    bp = Blueprint(
        name,
        import_name,
        url_prefix="/ui",
        template_folder="templates",
        static_folder="static" if static else None,
        static_url_path="/static" if static else None,
    )
    if body_limit is not None:
        limit = body_limit

        def raise_limit() -> None:
            request.max_content_length = limit()

        bp.before_request(raise_limit)
    if not public:
        bp.before_request(_require_person)
    return bp


def client_ip() -> str:
    """The caller's address as the server process sees it."""
    return request.remote_addr or "unknown"


def current_session() -> ActiveSession | None:
    """The session behind this request's cookie (looked up once per request)."""
    if "web_session" not in g:
        with components().unit_of_work() as uow:
            found = accounts.active_session(uow, request.cookies.get(SESSION_COOKIE))
            uow.commit()  # last_seen_at / an ended idle session
        g.web_session = found
    found_session: ActiveSession | None = g.web_session
    return found_session


def person() -> ActiveSession:
    """The signed-in person (pages behind :func:`_require_person` always have one)."""
    found = current_session()
    assert found is not None
    return found


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in; anything else goes to the case list."""
    if target and target.startswith("/ui") and not urlsplit(target).netloc:
        return target
    return url_for("ui_cases.case_list")


def _require_person() -> Response | None:
    if current_session() is None:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        response: Response = redirect(url_for("ui_signin.sign_in_form", next=target))  # type: ignore[assignment]
        return response
    if request.method not in SAFE_METHODS:
        given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
        if not accounts.csrf_matches(person().csrf_token, given):
            raise Forbidden(CSRF_REFUSED)
    return None


def run(
    service: Callable[Concatenate[UnitOfWork, Principal, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run ``service`` as the signed-in person in one unit of work, committed on success."""
    principal = person().principal
    with components().unit_of_work() as uow:
        result = service(uow, principal, *args, **kwargs)
        uow.commit()
    return result


def template_values() -> dict[str, Any]:
    """Values every template gets: the person and their form token."""
    found = current_session() if request.path.startswith("/ui") else None
    return {
        "me": found.user if found else None,
        "csrf_token": found.csrf_token if found else "",
        "role_names": ROLE_NAMES,
        "deadline_names": DEADLINE_NAMES,
    }
