"""``casetrail custody verify|checkpoint``: re-check the custody log, sign a checkpoint."""

from __future__ import annotations

import sys

import click

from server.cli.common import open_components, service_errors
from server.services import custody as custody_service
from server.services import custody_audit


@click.group()
def custody() -> None:
    """监管链 Custody log: verify chains and the Merkle log, sign checkpoints."""


@custody.command("verify")
@click.option(
    "--case",
    "case_id",
    help="只检查此案件的链 (check only this case's chain; the log is always checked)",
)
@service_errors
def verify(case_id: str | None) -> None:
    """核验监管链 Re-check every case chain and the Merkle log against the latest checkpoint."""
    with open_components() as parts, parts.unit_of_work() as uow:
        signer = parts.signer()
        total = custody_service.log_size(uow.session)
        click.echo(f"核验中 verifying: 日志共 {total} 个事件 (log has {total} events)…", err=True)
        show = total > 10_000 and sys.stderr.isatty()

        def progress(done: int, size: int) -> None:
            if show or done == size:
                click.echo(f"  日志 log: {done}/{size}", err=True)

        problems = custody_audit.verify_log(
            uow.session, signer.verifier().key_string(), case_id=case_id, progress=progress
        )
        latest = custody_service.latest_checkpoint(uow.session)
    for p in problems:
        click.echo(f"✗ [{p.code}] {p.where}: {p.message}")
    if problems:
        click.echo(
            f"发现 {len(problems)} 个问题，监管链不可信 (found {len(problems)} problem(s)); "
            "请保全数据库与备份并联系管理员 (preserve the database and backups, contact the admin)"
        )
        sys.exit(1)
    scope = f"案件 case {case_id}" if case_id else "全部案件 all cases"
    cp = f"检查点 checkpoint size {latest.size}" if latest else "尚无检查点 no checkpoint yet"
    click.echo(f"✓ 监管链完好 custody log intact: {scope}, 日志 log size {total}, {cp}")


@custody.command("checkpoint")
@service_errors
def checkpoint() -> None:
    """签署检查点 Sign a checkpoint of the log now (re-uses one of the same size)."""
    with open_components() as parts, parts.unit_of_work() as uow:
        cp = custody_service.sign_checkpoint(uow, parts.signer())
        uow.commit()
    click.echo(f"✓ 检查点 checkpoint: size {cp.size}, {cp.created_at.isoformat()}")
    click.echo(cp.note, nl=False)


COMMANDS = [custody]
