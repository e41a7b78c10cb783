"""People signing in to the web workspace: passwords, browser sessions, throttling.

* **Passwords** are argon2id hashes (``argon2-cffi``, its default parameters); a hash
  made with older parameters is upgraded at the next successful sign-in.
* **Sessions**: signing in makes a :class:`~server.models.WebSession`; the browser's
  cookie holds a random secret, the row only its SHA-256 (like API tokens). A session
  ends on sign-out, after :data:`IDLE_TIMEOUT` without a request, after
  :data:`MAX_AGE` in all, or when the user is deactivated.
* **CSRF**: each session carries its own random form token (synchroniser token
  pattern) that pages put in every form and htmx sends as a header; the web layer
  compares it. Because it lives in the database it needs no shared secret key across
  server processes and restarts.
* **Throttling**: every attempt is stored (:class:`~server.models.SignInAttempt`), so
  the limits hold across server processes: more than :data:`MAX_USER_FAILURES` failures
  for one username or :data:`MAX_IP_FAILURES` from one address within
  :data:`THROTTLE_WINDOW` refuse further attempts (even right ones) until the window
  moves on.

Bearer tokens for the API are untouched (:mod:`server.auth`).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from server.auth import Principal, hash_secret, require_admin
from server.errors import Invalid, Locked, Unauthorized
from server.models import Role, SignInAttempt, User, UserPassword, WebSession, utcnow
from server.services.unit_of_work import UnitOfWork
from server.services.users import end_sessions as end_sessions  # re-exported
from server.services.users import get_user

IDLE_TIMEOUT = timedelta(minutes=30)
MAX_AGE = timedelta(hours=12)
SEEN_RESOLUTION = timedelta(seconds=30)  # don't write the row on every request
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_USER_FAILURES = 5
MAX_IP_FAILURES = 20
MIN_PASSWORD = 10
SESSION_PREFIX = "cts_"

_hasher = PasswordHasher()


class SignInThrottled(Locked):
    """Too many failed sign-ins for this username or from this address; wait."""

    default_message = (
        "登录失败次数过多，请 15 分钟后再试 (too many failed sign-ins; try again in 15 minutes)"
    )


BAD_CREDENTIALS = "用户名或密码错误 (wrong username or password)"


@dataclass(frozen=True)
class SignedIn:
    """A new session: the cookie secret (exists only here) and the session's form token."""

    cookie: str
    csrf_token: str
    user: User


@dataclass(frozen=True)
class ActiveSession:
    """The signed-in person behind a cookie."""

    principal: Principal
    user: User
    session_id: str
    csrf_token: str


def check_password_rules(password: str) -> None:
    """Refuse a password that is too short (:class:`Invalid`)."""
    if len(password) < MIN_PASSWORD:
        raise Invalid(
            errors={
                "password": [
                    f"密码至少 {MIN_PASSWORD} 个字符 (a password needs {MIN_PASSWORD}+ characters)"
                ]
            }
        )


def set_password(uow: UnitOfWork, user: User, password: str) -> None:
    """Set ``user``'s password (no permission check: CLI, admin pages) and end their sessions."""
    check_password_rules(password)
    row = uow.session.get(UserPassword, user.id)
    digest = _hasher.hash(password)
    if row is None:
        uow.session.add(UserPassword(user_id=user.id, password_hash=digest, set_at=utcnow()))
    else:
        row.password_hash = digest
        row.set_at = utcnow()
    end_sessions(uow, user.id)
    uow.session.flush()


def one_time_password() -> str:
    """A random password to hand over once (16 URL-safe characters)."""
    return secrets.token_urlsafe(12)


def _failures(uow: UnitOfWork, since: datetime, **where: str) -> int:
    query = (
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.succeeded.is_(False), SignInAttempt.at > since)
    )
    for column, value in where.items():
        query = query.where(getattr(SignInAttempt, column) == value)
    return int(uow.session.scalar(query) or 0)


def sign_in(
    uow: UnitOfWork, username: str, password: str, client_ip: str, now: datetime | None = None
) -> SignedIn:
    """Check a username and password and open a session; every attempt is recorded.

    Raises :class:`SignInThrottled` over the limits (nothing checked) and
    :class:`Unauthorized` for any wrong, unknown or deactivated account (one message,
    so it does not tell which). The caller commits in both cases (the attempt must stay
    recorded): use :func:`sign_in` inside a unit that commits before re-raising.
    """
    now = now or utcnow()
    username = username.strip().lower()[:64]
    client_ip = client_ip[:64]
    since = now - THROTTLE_WINDOW
    if (
        _failures(uow, since, username=username) >= MAX_USER_FAILURES
        or _failures(uow, since, client_ip=client_ip) >= MAX_IP_FAILURES
    ):
        raise SignInThrottled()
    user = uow.session.scalar(select(User).where(User.username == username))
    stored = uow.session.get(UserPassword, user.id) if user is not None else None
    ok = False
    if user is not None and stored is not None and user.active:
        try:
            ok = _hasher.verify(stored.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    else:
        _hasher.hash(password)  # same work either way: timing does not reveal the username
    uow.session.add(SignInAttempt(username=username, client_ip=client_ip, succeeded=ok, at=now))
    if not ok or user is None or stored is None:
        uow.session.flush()
        raise Unauthorized(BAD_CREDENTIALS)
    if _hasher.check_needs_rehash(stored.password_hash):
        stored.password_hash = _hasher.hash(password)
    cookie = SESSION_PREFIX + secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=hash_secret(cookie),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        client_ip=client_ip,
    )
    uow.session.add(row)
    uow.session.flush()
    return SignedIn(cookie, row.csrf_token, user)


def active_session(
    uow: UnitOfWork, cookie: str | None, now: datetime | None = None
) -> ActiveSession | None:
    """The person signed in with ``cookie``, or None (unknown, ended, idle or too old).

    Touches ``last_seen_at`` (at most every :data:`SEEN_RESOLUTION`); commit afterwards.
    """
    if not cookie or not cookie.startswith(SESSION_PREFIX):
        return None
    now = now or utcnow()
    digest = hash_secret(cookie)
    row = uow.session.scalar(select(WebSession).where(WebSession.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.ended_at is not None:
        return None
    if now - row.last_seen_at > IDLE_TIMEOUT or now - row.created_at > MAX_AGE:
        row.ended_at = now
        return None
    user = uow.session.get(User, row.user_id)
    if user is None or not user.active:
        row.ended_at = now
        return None
    if now - row.last_seen_at >= SEEN_RESOLUTION:
        row.last_seen_at = now
    principal = Principal(
        user_id=user.id, agency_id=user.agency_id, role=Role(user.role), token_id=f"web:{row.id}"
    )
    return ActiveSession(principal, user, row.id, row.csrf_token)


def sign_out(uow: UnitOfWork, cookie: str | None) -> None:
    """End the session behind ``cookie`` (harmless when there is none)."""
    if not cookie:
        return
    row = uow.session.scalar(select(WebSession).where(WebSession.token_hash == hash_secret(cookie)))
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a session's form token with the one a request sent."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def reset_password(uow: UnitOfWork, principal: Principal, user_id: str, password: str) -> User:
    """An admin sets the sign-in password of a user of their agency (their sessions end)."""
    require_admin(principal)
    user = get_user(uow, principal, user_id)
    set_password(uow, user, password)
    return user
