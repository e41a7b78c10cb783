"""``casetrail reconcile`` and ``casetrail fixity``: scheduled maintenance that loses nothing.

Both are safe while servers serve and meant for cron / systemd timers. Exit codes:

== =====================================================================================
0  all is well (repairs, if any, were made and are listed)
1  the run could not complete (settings, database or store unreachable); run it again
2  EVIDENCE AT RISK: a stored original is missing or fails its digests — act now
== =====================================================================================
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import click

from server.cli.common import open_components, progress_printer
from server.services.fixity import EXIT_ERROR, FixitySweeper, SweepReport
from server.services.reconcile import Reconciler, ReconcileReport
from storage.errors import StorageError


def _fail(exc: Exception) -> None:
    click.echo(
        f"✗ 无法完成，请检查存储与数据库后重试 (could not complete; check the store and the "
        f"database, then run again): {exc}",
        err=True,
    )
    sys.exit(EXIT_ERROR)


@click.command()
@click.option("--dry-run", is_flag=True, help="只报告，不做任何更改 (report only, change nothing)")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出报告 (print the report as JSON)")
@click.option(
    "--grace-minutes",
    type=click.IntRange(0, 7 * 24 * 60),
    default=60,
    show_default=True,
    help="更新的存储上传/临时对象不处理 (storage uploads and scratch objects younger than "
    "this are left alone)",
)
def reconcile(dry_run: bool, as_json: bool, grace_minutes: int) -> None:
    """对账 Make the database and the blob store agree after crashes (nothing deleted).

    Finishes interrupted completions, ends expired/lost uploads, aborts orphaned storage
    uploads, quarantines objects without rows, flags rows without objects.
    Exit 0 = fine, 1 = could not run, 2 = evidence at risk.
    """
    # completions it finishes only queue inspection: the servers' background or
    # ``casetrail worker`` picks them up
    with open_components(inspection="worker") as parts:
        reconciler = Reconciler(
            parts.unit_of_work,
            parts.store,
            parts.ingest,
            grace=timedelta(minutes=grace_minutes),
            dry_run=dry_run,
            progress=progress_printer("对账 reconcile"),
        )
        try:
            report = reconciler.run()
        except StorageError as exc:
            _fail(exc)
    if sys.stderr.isatty():
        click.echo("", err=True)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_reconcile(report)
    sys.exit(report.exit_code)


def _print_reconcile(report: ReconcileReport) -> None:
    for f in report.findings:
        mark = "!!" if f.kind == "missing_object" else ("✓" if f.changed else "·")
        click.echo(f"{mark} [{f.kind.value}] {f.subject}: {f.action} — {f.message}")
    mode = "（演练，未做更改 dry run, nothing changed）" if report.dry_run else ""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts().items())) or "无 none"
    click.echo(
        f"对账完成{mode} reconcile done: 发现 {len(report.findings)} 项 findings ({counts}); "
        f"更改 {report.changes} 项 changes"
    )
    if report.at_risk:
        click.echo(
            f"!! {len(report.at_risk)} 份证据面临风险：已入库但原始文件缺失。请保全存储，从备份恢复，"
            f"并联系管理员 ({len(report.at_risk)} evidence AT RISK: stored but the original is "
            "missing — preserve the store, restore from backup, contact the admin)"
        )


@click.command()
@click.option("--case", "case_id", help="只核验此案件 (only this case's originals)")
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1),
    help="读取限速 MB/s (throttle reading to this many MB per second)",
)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出报告 (print the report as JSON)")
@click.option(
    "--restart", is_flag=True, help="放弃未完成的核验，从头开始 (start over instead of resuming)"
)
@click.option(
    "--full",
    is_flag=True,
    help="同时核验 SHA-512（较慢）(also re-check the recorded SHA-512; slower)",
)
def fixity(
    case_id: str | None, rate: float | None, as_json: bool, restart: bool, full: bool
) -> None:
    """完整性核验 Re-read stored originals and compare their digests (resumable).

    Appends fixity_ok / fixity_failed custody events. A killed sweep resumes where it
    stopped. Exit 0 = all intact, 1 = could not run, 2 = an original failed.
    """
    show = progress_printer("核验 fixity")
    with open_components() as parts:
        sweeper = FixitySweeper(
            parts.unit_of_work,
            parts.store,
            rate=None if rate is None else rate * 1_000_000,
            progress=None if show is None else lambda d, t, b: show(f"{d}/{t}", f"{b >> 20} MiB"),
            full=full,
        )
        try:
            report = sweeper.run(case_id, restart=restart)
        except StorageError as exc:
            _fail(exc)
    if show is not None:
        click.echo("", err=True)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_fixity(report)
    sys.exit(report.exit_code)


def _print_fixity(report: SweepReport) -> None:
    for o in report.failed:
        click.echo(f"!! [{o.status}] {o.evidence_id} {o.storage_key}: " + "; ".join(o.problems))
    resumed = "（续上次 resumed）" if report.resumed else ""
    mb = report.bytes_read / 1_000_000
    speed = mb / report.seconds if report.seconds > 0 else 0.0
    click.echo(
        f"核验完成{resumed} fixity done: 核验 {len(report.outcomes)} 份 checked, "
        f"失败 {len(report.failed)} failed, {mb:.1f} MB in {report.seconds:.1f}s "
        f"({speed:.0f} MB/s)"
    )
    if report.failed:
        click.echo(
            f"!! {len(report.failed)} 份原始证据未通过核验。原件未被改动或移动；请保全存储，从备份恢复，"
            f"并联系管理员 ({len(report.failed)} original(s) FAILED; nothing was moved — preserve "
            "the store, restore from backup, contact the admin)"
        )


COMMANDS = [reconcile, fixity]
