"""``casetrail export`` and ``casetrail verify``: the archivist's case file (案卷), offline checks."""

from __future__ import annotations

import os
from pathlib import Path

import click
from sqlalchemy import select

from core.verify import verify_bag
from server.archive.bag import BagFormat, FixityMismatch
from server.archive.export import CaseExporter, ExportInterrupted
from server.archive.recompute import recompute_completeness
from server.auth import Principal
from server.cli.common import byte_progress, open_components, service_errors
from server.models import Case, Role, User
from server.services.unit_of_work import SqlUnitOfWork


def _principal(uow: SqlUnitOfWork, username: str) -> Principal:
    user = uow.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise click.ClickException(
            f"用户 {username!r} 不存在或已停用 (no active user {username!r})"
        )
    return Principal(user.id, user.agency_id, Role(user.role), token_id="cli")


def _case_id(uow: SqlUnitOfWork, principal: Principal, case: str) -> str:
    found = uow.session.scalar(
        select(Case.id).where(
            Case.agency_id == principal.agency_id, (Case.id == case) | (Case.case_no == case)
        )
    )
    if found is None:
        raise click.ClickException(
            f"本机关没有案件 {case!r} (no case {case!r} in {principal.agency_id}); 请用案件编号或案号 "
            "(give the case id or its 案号)"
        )
    return str(found)


@click.command("export")
@click.argument("case")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in BagFormat]),
    default="tar",
    show_default=True,
)
@click.option(
    "--user",
    "username",
    required=True,
    help="导出人（档案管理员或管理员）的用户名，记入监管链 (archivist or admin username, logged as the actor)",
)
@service_errors
def export(case: str, out: Path, fmt: str, username: str) -> None:
    """导出案卷 Seal CASE (案件编号 id or 案号) as a BagIt bag and write it to --out."""
    with open_components() as parts:
        exporter = parts.require_exporter()
        with parts.unit_of_work() as uow:
            principal = _principal(uow, username)
            case_id = _case_id(uow, principal, case)
        _write(exporter, principal, case_id, BagFormat(fmt), out)
    click.echo(str(out))


def _write(
    exporter: CaseExporter, principal: Principal, case_id: str, fmt: BagFormat, out: Path
) -> None:
    """Seal and stream the export to ``out`` through ``out.part`` (never a partial file)."""
    partial = out.with_name(out.name + ".part")
    try:
        sealed = exporter.seal(principal, case_id, fmt)
        click.echo(
            f"已封存导出 sealed export {sealed.export_id}: {sealed.recipe.payload_oxum} "
            f"(字节.文件数 bytes.files), {sealed.length} 字节 bytes → {out}",
            err=True,
        )
        progress = byte_progress("导出 export", sealed.length)
        written = 0
        with partial.open("wb") as f:
            for block in exporter.stream(principal, sealed):
                f.write(block)
                written += len(block)
                if progress is not None:
                    progress(written)
            f.flush()
            os.fsync(f.fileno())
        partial.replace(out)
        if progress is not None:
            click.echo(err=True)
    except (FixityMismatch, ExportInterrupted) as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(
            f"{exc}\n已记录 fixity_failed，未写出案卷；请联系管理员从备份恢复该证据 "
            "(fixity_failed was logged and no case file was written; restore the evidence from backup)"
        ) from exc


@click.command("verify")
@click.argument("bag", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--log-key",
    default=None,
    help="受信的日志公钥（本机关公布）(the trusted log verifier key your agency publishes)",
)
def verify(bag: Path, log_key: str | None) -> None:
    """核验案卷 Verify a case file in full: a bag directory, .tar or .zip (exit 1 on any problem)."""
    try:
        report = verify_bag(bag, log_key=log_key)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"无法读取案卷包 (cannot read the bag): {exc}") from exc
    problems = list(report.problems)
    recomputed = recompute_completeness(bag)
    problems += recomputed.problems
    for p in problems:
        click.echo(f"✗ [{p.code}] {p.where}: {p.message}")
    for note in report.notes[:-2] + recomputed.notes + report.notes[-1:]:
        click.echo(f"注 note: {note}")
    click.echo(
        f"已重新计算 {report.payload_files} 个载荷文件（{report.payload_bytes} 字节）的 SHA-256 与 "
        f"SHA-512 (re-hashed {report.payload_files} payload files, {report.payload_bytes} bytes)"
    )
    if problems:
        click.echo(f"发现 {len(problems)} 个问题 ({len(problems)} problem(s) found)")
        raise SystemExit(1)
    click.echo(
        "校验通过 verified: 案卷完整未被改动，所有事件均在已签名日志中，链与签名完好 "
        "(bag complete and unaltered, every event in the signed log, chains and signatures intact)"
    )


COMMANDS = [export, verify]
