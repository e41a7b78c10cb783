"""Agencies (执法机关): create and list. Users, devices and cases each belong to one.

A deployment may serve several agencies; an admin of any agency may add one (its own
admin is then added with ``casetrail users add … --agency CODE``) and list them all.
Agency codes are short identifiers (统一社会信用代码 or an internal code).
"""

from __future__ import annotations

import re

from sqlalchemy import select

from server.auth import Principal, require_admin
from server.errors import Invalid
from server.models import Agency
from server.services import users
from server.services.unit_of_work import UnitOfWork

CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{1,63}$")


def add_agency(uow: UnitOfWork, code: str, name: str) -> Agency:
    """Check and create an agency (no permission check: CLI and :func:`create_agency`)."""
    errors: dict[str, list[str]] = {}
    if not CODE.fullmatch(code):
        errors["code"] = ["机关代码须为 2–64 位字母、数字或 . _ - (2–64 letters, digits, . _ -)"]
    if not name.strip():
        errors["name"] = ["机关名称不能为空 (the agency name must not be empty)"]
    if errors:
        raise Invalid(errors=errors)
    return users.create_agency(uow, code, name.strip())


def create_agency(uow: UnitOfWork, principal: Principal, code: str, name: str) -> Agency:
    """An admin adds an agency."""
    require_admin(principal)
    return add_agency(uow, code, name)


def list_agencies(uow: UnitOfWork, principal: Principal) -> list[Agency]:
    """Every agency, by code (admins)."""
    require_admin(principal)
    return all_agencies(uow)


def all_agencies(uow: UnitOfWork) -> list[Agency]:
    """Every agency, by code (no permission check: CLI)."""
    return list(uow.session.scalars(select(Agency).order_by(Agency.code)))
