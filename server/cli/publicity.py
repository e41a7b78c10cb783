"""``casetrail registry|draw|report …``: 公示 tasks straight on the configured database.

- ``registry item-add`` / ``registry targets-import FILE.csv`` / ``registry list``: the
  agency's 随机抽查事项清单 and 检查对象名录库, acting as a named admin (``--admin``).
- ``draw verify FILE``: re-run a published 双随机 draw from its published JSON alone.
- ``report annual --year N``: the annual statistics report (XLSX, HTML, JSON), with
  progress per section on stderr.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import click
from sqlalchemy import select

from core.draw import verify_published_draw
from server.auth import Principal
from server.cli.common import find_agency, load_settings, print_table, service_errors, unit_of_work
from server.models import Role, User, utcnow
from server.services import registries
from server.services.annual_report import build_annual_report
from server.services.annual_report_xlsx import SECTION_ZH, write_xlsx
from server.services.clocks import china_date
from server.services.completeness import calendar_for
from server.services.registries import NewItem, NewTarget
from server.services.unit_of_work import SqlUnitOfWork
from server.web.annual_report import render_annual_html


def admin_principal(uow: SqlUnitOfWork, username: str) -> Principal:
    """The named admin as a :class:`Principal` (commands act on their behalf)."""
    user = uow.session.scalar(select(User).where(User.username == username))
    if user is None or user.role != Role.ADMIN.value or not user.active:
        raise click.ClickException(f"{username!r} 不是在用的管理员 (not an active admin)")
    return Principal(user.id, user.agency_id, Role.ADMIN, token_id="cli")


@click.group()
def registry() -> None:
    """抽查事项清单与检查对象名录库 Registries of 双随机 inspections."""


@registry.command("item-add")
@click.argument("code")
@click.argument("name")
@click.option("--basis", default="", help="抽查依据 legal basis")
@click.option("--subject", default="", help="抽查对象 who is inspected")
@click.option("--method", default="", help="检查方式 how")
@click.option("--admin", "admin", required=True, help="管理员用户名 acting admin")
@service_errors
def item_add(code: str, name: str, basis: str, subject: str, method: str, admin: str) -> None:
    """添加随机抽查事项 Add an item to the 随机抽查事项清单."""
    with unit_of_work(load_settings()) as uow:
        item = registries.add_item(
            uow, admin_principal(uow, admin), NewItem(code, name, basis, subject, method)
        )
        uow.commit()
        click.echo(f"已添加抽查事项 added item {item.code} {item.name}")


@registry.command("targets-import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--admin", "admin", required=True, help="管理员用户名 acting admin")
@service_errors
def targets_import(path: Path, admin: str) -> None:
    """从 CSV 导入检查对象 Import targets: columns code,name[,kind,sector] (UTF-8, header row)."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        drafts = [
            NewTarget(
                row.get("code", ""),
                row.get("name", ""),
                row.get("kind") or "organisation",
                row.get("sector") or "",
            )
            for row in csv.DictReader(f)
        ]
    with unit_of_work(load_settings()) as uow:
        added = registries.add_targets(uow, admin_principal(uow, admin), drafts)
        uow.commit()
    click.echo(f"已导入检查对象 imported {len(added)} targets")


@registry.command("list")
@click.option("--agency", "agency_code", help="机关代码 agency code")
@service_errors
def registry_list(agency_code: str | None) -> None:
    """列出抽查事项与检查对象 List items and targets."""
    with unit_of_work(load_settings()) as uow:
        agency = find_agency(uow, agency_code)
        items = registries.agency_items(uow.session, agency.id)
        targets = registries.agency_targets(uow.session, agency.id)
        item_rows = [(i.code, i.name, i.subject, "有效" if i.active else "已停用") for i in items]
        target_rows = [
            (t.code, t.name, t.sector, "在库" if t.active else "已移出") for t in targets
        ]
    click.echo("随机抽查事项清单 items")
    print_table(["编码 code", "事项 name", "对象 subject", "状态"], item_rows)
    click.echo("\n检查对象名录库 targets")
    print_table(["编码 code", "名称 name", "行业 sector", "状态"], target_rows)


@click.group()
def draw() -> None:
    """双随机抽查 Random inspections: verify a published draw."""


@draw.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "verifier_key",
    help="日志验证公钥 the log's verifier key (<name>+<hash>+<key>); default: the one in the file",
)
def draw_verify(path: Path, verifier_key: str | None) -> None:
    """复核公布的抽查结果 Re-run a published draw from its JSON alone (no database needed)."""
    try:
        published = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"无法读取 {path} (cannot read): {exc}") from exc
    problems = verify_published_draw(published, verifier_key)
    if not verifier_key:
        click.echo("注意：使用文件内的日志公钥；请与机关公布的公钥核对 (using the key in the file)")
    if problems:
        for p in problems:
            click.echo(f"✗ {p}", err=True)
        raise click.ClickException("复核未通过 (verification FAILED)")
    count = len(published["result"])
    click.echo(f"✓ 复核通过 verified: {published.get('title', '')} — {count} 户，结果一致")


@click.group()
def report() -> None:
    """统计年报 Reports."""


@report.command("annual")
@click.option("--year", type=int, required=True, help="统计年度 the year")
@click.option("--agency", "agency_code", help="机关代码 agency code (default: the only one)")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="输出目录 where the XLSX, HTML and JSON go",
)
@service_errors
def report_annual(year: int, agency_code: str | None, out_dir: Path) -> None:
    """生成年度行政执法统计年报 Build the annual statistics report (XLSX, printable HTML, JSON)."""
    settings = load_settings()
    started = time.monotonic()

    def progress(n: int, total: int, section: str) -> None:
        label = SECTION_ZH.get(section, section)
        click.echo(f"[{n}/{total}] {label} ({section}) {time.monotonic() - started:.1f}s", err=True)

    with unit_of_work(settings) as uow:
        agency = find_agency(uow, agency_code)
        built = build_annual_report(
            uow.session,
            agency.id,
            year,
            calendar_for(settings.calendar_file),
            today=china_date(utcnow()),
            progress=progress,
        )
        uow.commit()  # publication records of decisions that had none
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"annual-report-{built.agency_code}-{year}"
    write_xlsx(built, stem.with_suffix(".xlsx"))
    stem.with_suffix(".html").write_text(render_annual_html(built), "utf-8")
    stem.with_suffix(".json").write_text(
        json.dumps(built.to_json(), ensure_ascii=False, indent=2), "utf-8"
    )
    s = built.sections
    click.echo(
        f"{built.agency} {year} 年：立案 {s['cases']['opened']}，决定 {s['decisions']['total']}，"
        f"处罚 {s['penalties']['total']}；用时 {time.monotonic() - started:.1f}s"
    )
    for suffix in (".xlsx", ".html", ".json"):
        click.echo(f"  {stem.with_suffix(suffix)}")


COMMANDS = [registry, draw, report]
