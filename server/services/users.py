"""Agencies, users (执法人员 with 执法证号, reviewers, archivists, admins) and their tokens."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from server.auth import Principal, new_token, require_admin, require_person, token_expiry
from server.errors import Conflict, Invalid, NotFound
from server.models import Agency, ApiToken, Role, User, WebSession, utcnow
from server.services.unit_of_work import UnitOfWork

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
CERT_NO = re.compile(r"^[0-9A-Za-z-]{4,64}$")
MAX_TOKEN_DAYS = 3650
ROLE_NAMES = {
    Role.INSPECTOR: "执法人员",
    Role.REVIEWER: "法制审核",
    Role.ARCHIVIST: "档案管理",
    Role.HEAD: "负责人",
    Role.ADMIN: "管理员",
}
LAST_ADMIN = (
    "不能更改本机关最后一位在用管理员的角色 "
    "(the agency's last active admin cannot be given another role)"
)

log = logging.getLogger("casetrail.security")


@dataclass(frozen=True)
class NewUser:
    """What an admin supplies to create a user."""

    username: str
    display_name: str
    role: Role
    cert_no: str | None = None


@dataclass(frozen=True)
class UserChange:
    """What an admin may change on a user: the role and the 执法证号, nothing else.

    ``None`` leaves a field as it is; an empty ``cert_no`` removes the 执法证号.
    """

    role: Role | None = None
    cert_no: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    """A token row plus its secret, which exists only in this value (shown once)."""

    row: ApiToken
    token: str


def create_agency(uow: UnitOfWork, code: str, name: str) -> Agency:
    """A new agency (used by ``serve --init`` and the admin CLI)."""
    if uow.session.scalar(select(Agency).where(Agency.code == code)) is not None:
        raise Conflict(f"机关代码已存在 (agency code {code!r} already exists)")
    agency = Agency(code=code, name=name)
    uow.session.add(agency)
    uow.session.flush()
    return agency


def add_user(uow: UnitOfWork, agency_id: str, draft: NewUser) -> User:
    """Create a user in ``agency_id`` after checking every field; no permission check.

    Callers are the API (after :func:`create_user` checks the admin) and the admin CLI.
    """
    errors: dict[str, list[str]] = {}
    if not USERNAME.fullmatch(draft.username):
        errors["username"] = [
            "用户名须为 2–64 位小写字母、数字或 . _ - "
            "(2–64 lowercase letters, digits, '.', '_' or '-')"
        ]
    if not draft.display_name.strip():
        errors["display_name"] = ["姓名不能为空 (display name must not be empty)"]
    if draft.role == Role.INSPECTOR and not draft.cert_no:
        errors["cert_no"] = ["执法人员必须填写执法证号 (an inspector needs a 执法证号 cert_no)"]
    elif draft.cert_no and not CERT_NO.fullmatch(draft.cert_no):
        errors["cert_no"] = ["执法证号格式不正确 (cert_no: 4–64 letters, digits or '-')"]
    if errors:
        raise Invalid(errors=errors)
    session = uow.session
    if session.scalar(select(User.id).where(User.username == draft.username)):
        raise Conflict(
            f"用户名已被使用 (username {draft.username!r} is taken)",
            errors={"username": ["已被使用 (taken)"]},
        )
    if draft.cert_no and session.scalar(
        select(User.id).where(User.agency_id == agency_id, User.cert_no == draft.cert_no)
    ):
        raise Conflict(
            f"本机关已有此执法证号 (cert_no {draft.cert_no!r} already belongs to a user)",
            errors={"cert_no": ["已被使用 (taken)"]},
        )
    user = User(
        agency_id=agency_id,
        username=draft.username,
        display_name=draft.display_name.strip(),
        role=draft.role.value,
        cert_no=draft.cert_no or None,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request took the name first
        raise Conflict("用户名或执法证号已被使用 (username or cert_no taken)") from exc
    return user


def create_user(uow: UnitOfWork, principal: Principal, draft: NewUser) -> User:
    """An admin creates a user in their own agency."""
    require_admin(principal)
    return add_user(uow, principal.agency_id, draft)


def list_users(uow: UnitOfWork, principal: Principal, role: Role | None = None) -> list[User]:
    """Users of the admin's agency, by username."""
    require_admin(principal)
    query = select(User).where(User.agency_id == principal.agency_id).order_by(User.username)
    if role is not None:
        query = query.where(User.role == role.value)
    return list(uow.session.scalars(query))


def get_user(uow: UnitOfWork, principal: Principal, user_id: str) -> User:
    """A user of the caller's agency: admins see all, others only themselves."""
    user = uow.session.get(User, user_id)
    if user is None or user.agency_id != principal.agency_id:
        raise NotFound(f"用户不存在 (user {user_id} not found)")
    if user.id != principal.user_id or principal.is_device:
        require_admin(principal)
    return user


def deactivate_user(uow: UnitOfWork, principal: Principal, user_id: str) -> User:
    """An admin deactivates a user: every token of theirs stops working at once."""
    require_admin(principal)
    user = get_user(uow, principal, user_id)
    if user.id == principal.user_id:
        raise Conflict("不能停用自己的账户 (you cannot deactivate your own account)")
    return revoke_user(uow, user)


def change_user(uow: UnitOfWork, user: User, change: UserChange, by: str = "cli") -> User:
    """Change ``user``'s role and/or 执法证号 (no permission check; CLI and API).

    The agency keeps at least one active admin; an inspector keeps a 执法证号. A new
    role ends the user's web sessions (the pages they hold were made for the old
    role); API tokens follow the role at once, as each request reads it. Every change
    is written to the ``casetrail.security`` log with who made it (``by``).
    """
    role = change.role or Role(user.role)
    cert_no = user.cert_no if change.cert_no is None else change.cert_no.strip() or None
    errors: dict[str, list[str]] = {}
    if role == Role.INSPECTOR and not cert_no:
        errors["cert_no"] = ["执法人员必须填写执法证号 (an inspector needs a 执法证号 cert_no)"]
    elif cert_no and not CERT_NO.fullmatch(cert_no):
        errors["cert_no"] = ["执法证号格式不正确 (cert_no: 4–64 letters, digits or '-')"]
    if errors:
        raise Invalid(errors=errors)
    session = uow.session
    if user.role == Role.ADMIN and role != Role.ADMIN and user.active:
        # Lock the agency's admin rows (PostgreSQL): two admins demoting each other at
        # once are taken one after the other, and the second sees the first's change.
        admins = session.scalars(
            select(User.id)
            .where(
                User.agency_id == user.agency_id,
                User.role == Role.ADMIN.value,
                User.active.is_(True),
            )
            .with_for_update()
        ).all()
        if len(admins) <= 1:
            raise Conflict(LAST_ADMIN)
    if (
        cert_no
        and cert_no != user.cert_no
        and session.scalar(
            select(User.id).where(User.agency_id == user.agency_id, User.cert_no == cert_no)
        )
    ):
        raise Conflict(
            f"本机关已有此执法证号 (cert_no {cert_no!r} already belongs to a user)",
            errors={"cert_no": ["已被使用 (taken)"]},
        )
    before = (user.role, user.cert_no)
    user.role, user.cert_no = role.value, cert_no
    if before[0] != role.value:
        end_sessions(uow, user.id)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request took the 执法证号 first
        raise Conflict("执法证号已被使用 (cert_no taken)") from exc
    if before != (user.role, user.cert_no):
        log.info(
            "user %s changed by %s: role %s -> %s, cert_no %s -> %s",
            user.username, by, before[0], user.role, before[1], user.cert_no,
        )  # fmt: skip
    return user


def update_user(uow: UnitOfWork, principal: Principal, user_id: str, change: UserChange) -> User:
    """An admin changes the role or 执法证号 of a user of their agency."""
    require_admin(principal)
    user = get_user(uow, principal, user_id)
    return change_user(uow, user, change, by=f"user:{principal.user_id}")


def end_sessions(uow: UnitOfWork, user_id: str) -> int:
    """End every open session of a user (password or role change); returns how many."""
    now = utcnow()
    ended = 0
    for row in uow.session.scalars(
        select(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
    ):
        row.ended_at = now
        ended += 1
    return ended


def revoke_user(uow: UnitOfWork, user: User) -> User:
    """Deactivate ``user`` and revoke their tokens (no permission check; CLI and API)."""
    now = utcnow()
    user.active = False
    user.deactivated_at = user.deactivated_at or now
    for token in uow.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ):
        token.revoked_at = now
    uow.session.flush()
    return user


def issue_user_token(
    uow: UnitOfWork, user: User, name: str = "", expires_in_days: int | None = None
) -> IssuedToken:
    """A new token for ``user`` (no permission check; CLI and API)."""
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise Invalid(
            errors={"expires_in_days": [f"须在 1 到 {MAX_TOKEN_DAYS} 之间 (1–{MAX_TOKEN_DAYS})"]}
        )
    if not user.active:
        raise Conflict("用户已停用 (user is deactivated)")
    token, digest, prefix = new_token()
    row = ApiToken(
        token_hash=digest,
        prefix=prefix,
        name=name,
        user_id=user.id,
        expires_at=token_expiry(expires_in_days),
    )
    uow.session.add(row)
    uow.session.flush()
    return IssuedToken(row, token)


def create_token(
    uow: UnitOfWork,
    principal: Principal,
    user_id: str,
    name: str = "",
    expires_in_days: int | None = None,
) -> IssuedToken:
    """A user makes a token for themselves; an admin for anyone of the agency."""
    require_person(principal)
    return issue_user_token(uow, get_user(uow, principal, user_id), name, expires_in_days)


def list_tokens(uow: UnitOfWork, principal: Principal, user_id: str) -> list[ApiToken]:
    """Tokens of a user (never their secrets), newest first."""
    require_person(principal)
    user = get_user(uow, principal, user_id)
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
    return list(uow.session.scalars(query))


def revoke_token(uow: UnitOfWork, principal: Principal, user_id: str, token_id: str) -> ApiToken:
    """Revoke one token of a user; revoking twice is harmless."""
    require_person(principal)
    user = get_user(uow, principal, user_id)
    token = uow.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(f"令牌不存在 (token {token_id} not found)")
    token.revoked_at = token.revoked_at or utcnow()
    uow.session.flush()
    return token


def current_user(uow: UnitOfWork, principal: Principal) -> User:
    """The user behind the token (a device token: the device's owner)."""
    user = uow.session.get(User, principal.user_id)
    if user is None:
        raise NotFound()
    return user
