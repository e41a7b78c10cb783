"""First-run initialisation of the embedded default (``casetrail serve --init``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from server.models import Agency, Role
from server.services import users
from server.services.unit_of_work import UnitOfWork

DEFAULT_AGENCY_CODE = "default"
DEFAULT_ADMIN = "admin"


@dataclass(frozen=True)
class FirstAdmin:
    """The agency and admin made on first run, with the admin's token (shown once)."""

    agency: str
    username: str
    token: str


def create_first_admin(
    uow: UnitOfWork, agency_name: str, agency_code: str = DEFAULT_AGENCY_CODE
) -> FirstAdmin | None:
    """Create an agency and its admin with a token — only when no agency exists yet."""
    if uow.session.scalar(select(Agency.id).limit(1)) is not None:
        return None
    agency = users.create_agency(uow, agency_code, agency_name)
    admin = users.add_user(
        uow, agency.id, users.NewUser(DEFAULT_ADMIN, "系统管理员 Administrator", Role.ADMIN)
    )
    issued = users.issue_user_token(uow, admin, "created by serve --init")
    return FirstAdmin(agency.name, admin.username, issued.token)
