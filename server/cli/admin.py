"""``casetrail users|devices|cases …``: admin tasks straight on the configured database."""

from __future__ import annotations

import sys
from datetime import datetime

import click
from sqlalchemy import func, select

from server.cli.common import find_agency, load_settings, print_table, service_errors, unit_of_work
from server.models import Case, CaseOfficer, CaseStatus, Device, Role, User
from server.services import accounts as account_service
from server.services import agencies as agency_service
from server.services import devices as device_service
from server.services import users as user_service
from server.services.completeness import CHINA
from server.services.unit_of_work import SqlUnitOfWork

ROLE_NAMES = {role.value: name for role, name in user_service.ROLE_NAMES.items()}


def beijing_text(moment: datetime | None) -> str:
    """A stored time as people read it: Beijing time (北京时间)."""
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if moment else "—"


def _user_by_name(uow: SqlUnitOfWork, username: str) -> User:
    user = uow.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"没有用户 {username!r} (no such user)")
    return user


@click.group()
def users() -> None:
    """用户管理 Users: add, list, revoke."""


@users.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="姓名 display name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True,
              help="inspector 执法人员 | reviewer 法制审核 | archivist 档案管理 | admin")  # fmt: skip
@click.option("--cert-no", help="执法证号 (required for inspectors)")
@click.option("--agency", "agency_code", help="机关代码 agency code (default: the only one)")
@service_errors
def users_add(
    username: str, display_name: str, role: str, cert_no: str | None, agency_code: str | None
) -> None:
    """添加用户并签发令牌 Add a user and print their first token (once)."""
    with unit_of_work(load_settings()) as uow:
        agency = find_agency(uow, agency_code)
        user = user_service.add_user(
            uow, agency.id, user_service.NewUser(username, display_name, Role(role), cert_no)
        )
        issued = user_service.issue_user_token(uow, user, "created by casetrail users add")
        uow.commit()
    click.echo(f"已添加用户 added {user.username} ({ROLE_NAMES[role]} {role}) id={user.id}")
    click.echo(f"令牌 token (只显示一次 shown once): {issued.token}")


@users.command("list")
@click.option("--agency", "agency_code", help="机关代码 agency code")
@service_errors
def users_list(agency_code: str | None) -> None:
    """列出用户 List users."""
    with unit_of_work(load_settings()) as uow:
        query = select(User).order_by(User.username)
        if agency_code:
            query = query.where(User.agency_id == find_agency(uow, agency_code).id)
        rows = [
            (
                u.username,
                u.display_name,
                f"{ROLE_NAMES[u.role]} {u.role}",
                u.cert_no or "",
                u.agency.code,
                "在用 active" if u.active else "停用 revoked",
                u.id,
            )
            for u in uow.session.scalars(query)
        ]
    print_table(
        ["用户名 user", "姓名 name", "角色 role", "执法证号", "机关 agency", "状态 status", "id"],
        rows,
    )


@users.command("revoke")
@click.argument("username")
@service_errors
def users_revoke(username: str) -> None:
    """停用用户并吊销其全部令牌 Deactivate a user and revoke all their tokens."""
    with unit_of_work(load_settings()) as uow:
        user = user_service.revoke_user(uow, _user_by_name(uow, username))
        uow.commit()
    click.echo(f"已停用 {user.username}，其令牌均已吊销 (deactivated; all tokens revoked)")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", "from_stdin", is_flag=True,
              help="从标准输入读取密码（第一行）read the password from stdin (first line)")  # fmt: skip
@click.option("--one-time", is_flag=True,
              help="生成随机密码并显示一次 make a random password and print it once")  # fmt: skip
@service_errors
def users_set_password(username: str, from_stdin: bool, one_time: bool) -> None:
    """设置网页工作台登录密码 Set a user's sign-in password for the web workspace."""
    if from_stdin == one_time:
        raise click.UsageError("请二选一：--password-stdin 或 --one-time (choose one of them)")
    password = (
        account_service.one_time_password() if one_time else sys.stdin.readline().rstrip("\r\n")
    )
    with unit_of_work(load_settings()) as uow:
        user = _user_by_name(uow, username)
        account_service.set_password(uow, user, password)
        uow.commit()
    click.echo(
        f"已为 {user.username} 设置登录密码，其已登录的会话均已退出 (password set; sessions ended)"
    )
    if one_time:
        click.echo(f"一次性密码 one-time password (只显示一次 shown once): {password}")


@users.command("set-role")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]),
              help="新角色 new role (head = 负责人)")  # fmt: skip
@click.option("--cert-no", help="执法证号；空字符串删除 (empty removes it; inspectors need one)")
@service_errors
def users_set_role(username: str, role: str | None, cert_no: str | None) -> None:
    """更改用户角色或执法证号 Change a user's role and/or 执法证号 (their web sessions end)."""
    if role is None and cert_no is None:
        raise click.UsageError("请给出 --role 或 --cert-no (give --role and/or --cert-no)")
    change = user_service.UserChange(role=Role(role) if role else None, cert_no=cert_no)
    with unit_of_work(load_settings()) as uow:
        user = user_service.change_user(uow, _user_by_name(uow, username), change)
        uow.commit()
    click.echo(
        f"已更新 {user.username}：{ROLE_NAMES[user.role]} {user.role}，"
        f"执法证号 {user.cert_no or '—'} (updated)"
    )


@click.group()
def devices() -> None:
    """采集设备管理 Devices: add, list, revoke."""


@devices.command("add")
@click.option("--owner", required=True, help="设备使用人用户名 username of the owner")
@click.option("--name", required=True, help="设备名称 device name, e.g. 执法记录仪 07")
@service_errors
def devices_add(owner: str, name: str) -> None:
    """登记设备并生成一次性注册码 Register a device; prints its one-time enrolment code."""
    with unit_of_work(load_settings()) as uow:
        registered = device_service.add_device(uow, _user_by_name(uow, owner), name)
        uow.commit()
    device = registered.device
    click.echo(f"已登记设备 registered {device.name} id={device.id} (owner {owner})")
    click.echo(f"一次性注册码 enrolment code: {registered.enrolment_code}")
    click.echo(
        f"有效期至 valid until: {beijing_text(device.enrol_code_expires_at)} 北京时间"
        "（只显示一次 shown once）"
    )


@devices.command("list")
@service_errors
def devices_list() -> None:
    """列出设备 List devices."""
    labels = {"pending": "待注册 pending", "active": "在用 active", "revoked": "已吊销 revoked"}
    with unit_of_work(load_settings()) as uow:
        rows = [
            (d.name, d.owner.username, labels[d.status], d.key_alg or "", d.device_seq_head, d.id)
            for d in uow.session.scalars(select(Device).order_by(Device.created_at))
        ]
    print_table(["设备 device", "使用人 owner", "状态 status", "算法 alg", "序号 seq", "id"], rows)


@devices.command("revoke")
@click.argument("device_id")
@service_errors
def devices_revoke(device_id: str) -> None:
    """吊销设备及其令牌 Revoke a device and its tokens."""
    with unit_of_work(load_settings()) as uow:
        device = uow.session.get(Device, device_id)
        if device is None:
            raise click.ClickException(f"没有设备 {device_id} (no such device)")
        device_service.retire_device(uow, device)
        uow.commit()
    click.echo(f"已吊销设备 revoked {device.name} ({device.id})")


@click.group()
def cases() -> None:
    """案件 Cases."""


@cases.command("list")
@click.option("--status", type=click.Choice([s.value for s in CaseStatus]))
@click.option("--agency", "agency_code", help="机关代码 agency code")
@service_errors
def cases_list(status: str | None, agency_code: str | None) -> None:
    """列出案件 List cases."""
    officers = (
        select(func.count()).where(CaseOfficer.case_id == Case.id).correlate(Case).scalar_subquery()
    )
    with unit_of_work(load_settings()) as uow:
        query = select(Case, officers).order_by(Case.created_at.desc())
        if status:
            query = query.where(Case.status == status)
        if agency_code:
            query = query.where(Case.agency_id == find_agency(uow, agency_code).id)
        rows = [
            (
                c.case_no,
                c.title,
                f"{c.standard_id}@{c.standard_version}",
                c.current_stage or "",
                n,
                "办理中 open" if c.status == "open" else "已结案 closed",
                beijing_text(c.created_at)[:10],
                c.id,
            )
            for c, n in uow.session.execute(query)
        ]
    print_table(
        [
            "案号",
            "案件名称 title",
            "标准 standard",
            "环节 stage",
            "人员 officers",
            "状态 status",
            "立案 opened",
            "id",
        ],
        rows,
    )


@click.group()
def agencies() -> None:
    """执法机关 Agencies: add, list."""


@agencies.command("add")
@click.argument("code")
@click.option("--name", required=True, help="机关名称 agency name")
@service_errors
def agencies_add(code: str, name: str) -> None:
    """添加执法机关 Add an agency (then add its admin: casetrail users add … --agency CODE)."""
    with unit_of_work(load_settings()) as uow:
        agency = agency_service.add_agency(uow, code, name)
        uow.commit()
    click.echo(f"已添加机关 added {agency.name} (code {agency.code}) id={agency.id}")


@agencies.command("list")
@service_errors
def agencies_list() -> None:
    """列出执法机关 List agencies."""
    with unit_of_work(load_settings()) as uow:
        rows = [
            (a.code, a.name, beijing_text(a.created_at), a.id)
            for a in agency_service.all_agencies(uow)
        ]
    print_table(["代码 code", "名称 name", "创建 created (北京时间)", "id"], rows)


COMMANDS: list[click.Command] = [users, devices, cases, agencies]
