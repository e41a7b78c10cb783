"""First-run initialisation of the embedded default (``casetrail serve --init``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from server.models import Agency, Role
from server.services import accounts, users
from server.services.unit_of_work import UnitOfWork

DEFAULT_AGENCY_CODE = "default"
DEFAULT_ADMIN = "admin"


@dataclass(frozen=True)
class FirstAdmin:
    """The agency and admin made on first run, with the admin's token and a one-time
    password for the web workspace (both shown once)."""

    agency: str
    username: str
    token: str
    password: str = ""

    def sign_in_text(self, public_url: str = "http://127.0.0.1:8000") -> str:
        """How the admin signs in to the workspace, for the first-run output."""
        return (
            f"  网页工作台 web workspace: {public_url}/ui/\n"
            f"  用户名 username: {self.username}\n"
            f"  一次性密码 one-time password: {self.password}\n"
            "  登录后请用 `casetrail users set-password "
            f"{self.username} --password-stdin` 换成自己的密码。\n"
            "  (sign in, then set your own password with the command above)"
        )


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
    password = accounts.one_time_password()
    accounts.set_password(uow, admin, password)
    return FirstAdmin(agency.name, admin.username, issued.token, password)
