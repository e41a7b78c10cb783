"""Admin pages (系统管理): users, devices (enrolment QR code) and agencies, for admins only.

Each action calls the same service as the API and the CLI. Secrets — a new user's
one-time password, a device's enrolment code — are shown once, on the page that
answers the form, and never stored in clear.
"""

from __future__ import annotations

import io
from typing import Any

import segno
from flask import redirect, render_template, request, url_for
from markupsafe import Markup

from server.components import components
from server.errors import Forbidden
from server.models import Role
from server.services import accounts, agencies, devices, users
from server.services.users import NewUser, UserChange
from server.web.common import ROLE_NAMES, person, run, workspace_blueprint

bp = workspace_blueprint("ui_admin", __name__)


@bp.before_request
def _admins_only() -> None:
    found = person() if request.endpoint else None
    if found is not None and found.principal.role != Role.ADMIN:
        raise Forbidden("只有系统管理员可以使用管理页面 (admin pages are for admins only)")


def enrolment_qr(text: str) -> Markup:
    """An inline SVG QR code of ``text`` (no script, no style attribute)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(
        out,
        kind="svg",
        border=2,
        omitsize=True,
        xmldecl=False,
        svgclass="qr",
        title="设备注册二维码",
    )
    return Markup(out.getvalue().decode("utf-8"))  # segno's own SVG; the text is escaped


@bp.get("/admin/users")
def user_list() -> Any:
    """Users of the agency: add, deactivate, reset password."""
    return render_template(
        "admin/users.html",
        people=run(users.list_users),
        roles=ROLE_NAMES,
        shown=None,
        changed=request.args.get("saved"),
    )


@bp.post("/admin/users")
def add_user() -> Any:
    """Add a user and give them a one-time password (shown once)."""
    form = request.form
    draft = NewUser(
        username=form.get("username", "").strip(),
        display_name=form.get("display_name", ""),
        role=Role(form.get("role", "inspector"))
        if form.get("role") in ROLE_NAMES
        else Role.INSPECTOR,
        cert_no=form.get("cert_no", "").strip() or None,
    )
    user = run(users.create_user, draft)
    password = accounts.one_time_password()
    run(accounts.reset_password, user.id, password)
    return render_template(
        "admin/users.html",
        people=run(users.list_users),
        roles=ROLE_NAMES,
        shown={"user": user, "password": password},
    )


@bp.post("/admin/users/<user_id>/password")
def reset_password(user_id: str) -> Any:
    """Give a user a new one-time password (their sessions end)."""
    password = accounts.one_time_password()
    user = run(accounts.reset_password, user_id, password)
    return render_template(
        "admin/users.html",
        people=run(users.list_users),
        roles=ROLE_NAMES,
        shown={"user": user, "password": password},
    )


@bp.post("/admin/users/<user_id>/role")
def change_role(user_id: str) -> Any:
    """Change a user's role and 执法证号 (a new role ends their sessions)."""
    role = request.form.get("role", "")
    change = UserChange(
        role=Role(role) if role in ROLE_NAMES else None, cert_no=request.form.get("cert_no", "")
    )
    run(users.update_user, user_id, change)
    return redirect(url_for("ui_admin.user_list", saved=user_id))


@bp.post("/admin/users/<user_id>/deactivate")
def deactivate(user_id: str) -> Any:
    """Deactivate a user: tokens revoked, sessions end."""
    run(users.deactivate_user, user_id)
    return redirect(url_for("ui_admin.user_list"))


@bp.get("/admin/devices")
def device_list() -> Any:
    """Devices of the agency: register (enrolment code + QR), revoke."""
    return render_template(
        "admin/devices.html",
        items=run(devices.list_devices),
        people=run(users.list_users),
        registered=None,
    )


@bp.post("/admin/devices")
def register_device() -> Any:
    """Register a device; its one-time enrolment code shows once, as text and QR code."""
    registered = run(
        devices.register_device, request.form.get("owner_user_id", ""), request.form.get("name", "")
    )
    public = components().settings.public_url.rstrip("/")
    # The code travels in the fragment: never sent to a server or written to its logs.
    link = f"{public}/capture/#enrol={registered.enrolment_code}"
    return render_template(
        "admin/devices.html",
        items=run(devices.list_devices),
        people=run(users.list_users),
        registered={
            "device": registered.device,
            "code": registered.enrolment_code,
            "link": link,
            "qr": enrolment_qr(link),
        },  # fmt: skip
    )


@bp.post("/admin/devices/<device_id>/revoke")
def revoke_device(device_id: str) -> Any:
    """Revoke a device and its tokens."""
    run(devices.revoke_device, device_id)
    return redirect(url_for("ui_admin.device_list"))


@bp.get("/admin/agencies")
def agency_list() -> Any:
    """Every agency; add one."""
    return render_template("admin/agencies.html", items=run(agencies.list_agencies))


@bp.post("/admin/agencies")
def add_agency() -> Any:
    """Add an agency."""
    run(agencies.create_agency, request.form.get("code", "").strip(), request.form.get("name", ""))
    return redirect(url_for("ui_admin.agency_list"))
