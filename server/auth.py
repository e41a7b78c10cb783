"""Who is calling, and what they may see and do. No Flask here: views pass the header.

Tokens are ``ct_`` + 40 random URL-safe characters, sent as ``Authorization: Bearer
ct_…``. Only ``sha256:<hex>`` of a token is stored; its first characters (``prefix``)
are kept so people can tell their tokens apart. A device token acts for the device's
owner, with less power: it never passes an admin check, and it sees only cases its
owner is assigned to.

Object-level rules (another agency's or another inspector's case is *not found*, never
*forbidden*, so its existence does not leak):

========== ====================================== =====================================
who        sees                                   writes (stage, officers)
========== ====================================== =====================================
inspector  cases of their agency they're assigned  the same cases
reviewer   every case of their agency             — (records legal reviews, 法制审核)
archivist  every case of their agency             —
admin      every case of their agency             every case of their agency
device     cases its owner is assigned to          — (manifests/uploads only)
========== ====================================== =====================================
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, exists, func, select
from sqlalchemy.orm import Session

from server.errors import Forbidden, NotFound, Unauthorized
from server.models import (
    ApiToken,
    Case,
    CaseOfficer,
    Device,
    DeviceStatus,
    Role,
    User,
    utcnow,
)

TOKEN_PREFIX = "ct_"
TOKEN_SHOWN_CHARS = 10  # "ct_" + 7: enough to tell tokens apart, useless to an attacker
LAST_USED_RESOLUTION = timedelta(minutes=1)  # don't write a row on every request


def hash_secret(secret: str) -> str:
    """``sha256:<hex>`` of a token or enrolment code, as stored."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> tuple[str, str, str]:
    """A fresh token: ``(token, stored hash, shown prefix)``. Show ``token`` once only."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(30)
    return token, hash_secret(token), token[:TOKEN_SHOWN_CHARS]


@dataclass(frozen=True)
class Principal:
    """The caller: a user, or a device acting for its owner (``device_id`` set)."""

    user_id: str
    agency_id: str
    role: Role
    token_id: str
    device_id: str | None = None

    @property
    def is_device(self) -> bool:
        """True when a device token made the request."""
        return self.device_id is not None

    @property
    def actor_id(self) -> str:
        """Who did it, for custody events: ``user:<id>`` or ``device:<id>``."""
        return f"device:{self.device_id}" if self.device_id else f"user:{self.user_id}"

    @property
    def actor_role(self) -> str:
        """The role recorded in custody events (``device`` for device tokens)."""
        return "device" if self.device_id else self.role.value


def bearer_token(authorization: str | None) -> str:
    """The token from an ``Authorization: Bearer …`` header, or :class:`Unauthorized`."""
    if not authorization:
        raise Unauthorized()
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
        raise Unauthorized(
            "令牌格式错误，应为 'Authorization: Bearer ct_…' "
            "(malformed credentials: expected 'Authorization: Bearer ct_…')"
        )
    return token


TOKEN_OWNER = (
    select(
        ApiToken.id.label("token_id"),
        ApiToken.token_hash,
        ApiToken.revoked_at,
        ApiToken.expires_at,
        ApiToken.last_used_at,
        ApiToken.device_id,
        Device.status.label("device_status"),
        User.id.label("user_id"),
        User.agency_id.label("user_agency_id"),
        User.role,
        User.active,
    )
    .outerjoin(Device, Device.id == ApiToken.device_id)
    .outerjoin(User, User.id == func.coalesce(Device.owner_user_id, ApiToken.user_id))
    .where(ApiToken.token_hash == bindparam("digest"))
)
"""The token, its device (a device token) and the user behind it, in one statement of
plain columns (built once: on the hot path, building a statement cost as much as running
it, and loading three ORM objects four times as much as the columns). Its parameter
``digest`` is :func:`token_digest` of the header; a use case may add columns (the photo
path reads the evidence it names in the same statement) and pass the row to
:func:`principal_of`."""


def token_digest(authorization: str | None) -> str:
    """The stored form of the header's bearer token (:class:`Unauthorized` if malformed)."""
    return hash_secret(bearer_token(authorization))


def authenticate(session: Session, authorization: str | None) -> Principal:
    """The principal behind ``authorization``; :class:`Unauthorized` for anything not valid."""
    digest = token_digest(authorization)
    found = session.connection().execute(TOKEN_OWNER, {"digest": digest}).first()
    return principal_of(session, found, digest)


def principal_of(session: Session, found: Any, digest: str) -> Principal:
    """The principal of a :data:`TOKEN_OWNER` row read for ``digest`` (``None``: no such
    token); :class:`Unauthorized` unless the token, its device and its user are all in
    force. The token's last use moves in ``session`` when due (once a minute)."""
    invalid = Unauthorized(
        "令牌无效、已过期或已吊销，请向管理员申请新令牌 "
        "(token invalid, expired or revoked: ask your admin for a new one)"
    )
    if found is None or not hmac.compare_digest(found.token_hash, digest):
        raise invalid
    now = utcnow()
    if found.revoked_at is not None or (found.expires_at is not None and found.expires_at <= now):
        raise invalid
    if found.device_id is not None and found.device_status != DeviceStatus.ACTIVE:
        raise invalid
    if found.user_id is None or not found.active:
        raise invalid
    if _use_due(found.last_used_at, now):
        row = session.get(ApiToken, found.token_id)
        if row is not None:
            _note_use(row, now)
    return Principal(
        user_id=found.user_id,
        agency_id=found.user_agency_id,
        role=Role(found.role),
        token_id=found.token_id,
        device_id=found.device_id,
    )


def _use_due(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION


def _note_use(row: ApiToken, now: datetime) -> bool:
    """Move the token's last use to ``now`` when it is due (once a minute); whether it moved."""
    if _use_due(row.last_used_at, now):
        row.last_used_at = now
        return True
    return False


def note_token_use(session: Session, principal: Principal) -> None:
    """Record the token's use in a later unit of work than the one that authenticated it
    (when that one was read-only)."""
    row = session.get(ApiToken, principal.token_id)
    if row is not None:
        _note_use(row, utcnow())


def require_person(principal: Principal) -> None:
    """Refuse device tokens (:class:`Forbidden`): the action needs a person's token."""
    if principal.is_device:
        raise Forbidden("设备令牌不能执行此操作 (a device token may not do this; use a user token)")


def require_role(principal: Principal, *roles: Role) -> None:
    """Refuse devices and every role not in ``roles`` (:class:`Forbidden`)."""
    require_person(principal)
    if principal.role not in roles:
        names = ", ".join(r.value for r in roles)
        raise Forbidden(
            f"需要以下角色之一：{names}；您的角色是 {principal.role.value} "
            f"(requires one of: {names}; your role is {principal.role.value})"
        )


def require_admin(principal: Principal) -> None:
    """Only an admin's own token passes."""
    require_role(principal, Role.ADMIN)


def sees_all_agency_cases(principal: Principal) -> bool:
    """Reviewers, archivists, admins and heads see all cases of their agency; devices never do."""
    return not principal.is_device and principal.role in (
        Role.REVIEWER,
        Role.ARCHIVIST,
        Role.ADMIN,
        Role.HEAD,
    )


def visible_cases(principal: Principal) -> Select[Case]:
    """``SELECT`` of the cases ``principal`` may see (add filters and order to it)."""
    query = select(Case).where(Case.agency_id == principal.agency_id)
    if not sees_all_agency_cases(principal):
        query = query.where(
            exists().where(CaseOfficer.case_id == Case.id, CaseOfficer.user_id == principal.user_id)
        )
    return query


def get_visible_case(
    session: Session, principal: Principal, case_id: str, *, for_update: bool = False
) -> Case:
    """The case if ``principal`` may see it, else :class:`NotFound` (never Forbidden).

    ``for_update`` locks the row on PostgreSQL until the unit of work ends.
    """
    query = visible_cases(principal).where(Case.id == case_id)
    if for_update:
        query = query.with_for_update(of=Case)
    case = session.scalar(query)
    if case is None:
        raise NotFound(f"案件不存在或您无权查看 (case {case_id} not found or not visible to you)")
    return case


def is_assigned(session: Session, user_id: str, case_id: str) -> bool:
    """Whether ``user_id`` is an officer of the case."""
    return session.get(CaseOfficer, (case_id, user_id)) is not None


def require_case_write(session: Session, principal: Principal, case: Case) -> None:
    """Admins of the case's agency and its assigned inspectors may change it."""
    require_person(principal)
    if principal.agency_id != case.agency_id:
        raise NotFound()
    if principal.role == Role.ADMIN:
        return
    if principal.role == Role.INSPECTOR and is_assigned(session, principal.user_id, case.id):
        return
    raise Forbidden(
        "只有承办该案的执法人员或管理员可以修改此案件 "
        "(only the case's assigned inspectors or an admin may change this case)"
    )


def require_device_case_access(session: Session, principal: Principal, case: Case) -> None:
    """For manifest registration and uploads: a device whose owner is assigned, or that owner."""
    if not is_assigned(session, principal.user_id, case.id):
        raise NotFound(f"案件不存在或您无权查看 (case {case.id} not found or not visible to you)")


def token_expiry(days: int | None, now: datetime | None = None) -> datetime | None:
    """Expiry time ``days`` from ``now`` (``None``: never expires)."""
    return None if days is None else (now or utcnow()) + timedelta(days=days)
