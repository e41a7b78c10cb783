"""The `casetrail-field` command, run on inspectors' devices and docking stations (采集站)."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from core.errors import CoreError
from core.manifest import Interruption, Location
from field_client.capture import Capturer, CaptureRequest
from field_client.config import FieldHome, resolve_home
from field_client.enrolment import enrol
from field_client.errors import FieldClientError
from field_client.importer import Importer, ImportReport
from field_client.keys import load_device_key
from field_client.progress import TtyProgress
from field_client.queue import ItemState, Queue, QueueItem
from field_client.server_api import make_http_client
from field_client.sync import Syncer, SyncReport, prune
from field_client.tus_client import MAX_CHUNK, MIN_CHUNK, START_CHUNK, ChunkSizer
from field_client.vault import Vault

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED_ITEMS = 3
"""`sync` exit status when some items need a person (see `status`)."""
EXIT_OFFLINE = 75
"""`sync --once` exit status when the server could not be reached (EX_TEMPFAIL)."""


def _home(ctx: click.Context) -> FieldHome:
    home: FieldHome = ctx.obj
    return home


def friendly_errors(fn: F) -> F:
    """Show field-client and core errors as a readable message (and every problem), exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (FieldClientError, CoreError) as e:
            lines = [f"错误 / error: {e}"]
            if not isinstance(e, FieldClientError):
                lines += [f"  - {p}" for p in getattr(e, "problems", ())]
            click.echo("\n".join(lines), err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="casetrail")
@click.option(
    "--home",
    envvar="CASETRAIL_FIELD_HOME",
    type=click.Path(file_okay=False, path_type=Path),
    help="本设备数据目录 data directory of this device (key, token, queue, vault) "
    "[env CASETRAIL_FIELD_HOME; default: per-user data dir]",
)
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """CaseTrail 现场采集端 — capture evidence on site and sync it when a network is there.

    \b
    典型流程 Typical use:
      casetrail-field enroll --server https://casetrail.example --code ABCD-EFGH-...
      casetrail-field capture IMG_0001.jpg --case "黔市监罚〔2025〕12号" \\
          --category inspection --stage implementation --record-type inspection-record \\
          --officer 52010012345 --officer 52010012346 --credentials-shown
      (环节与记录类型编号见 stage and record ids: casetrail standards show inspection)
      casetrail-field sync          # 上传并核验回执 upload and verify receipts
      casetrail-field status        # 查看队列 see where every file stands
    """
    ctx.obj = resolve_home(home)


# --------------------------------------------------------------------------- enroll


@main.command()
@click.option(
    "--server",
    "server_url",
    required=True,
    help="服务器地址 server URL, e.g. https://casetrail.example",
)
@click.option(
    "--code", required=True, help="管理员给出的一次性注册码 one-time enrolment code from your admin"
)
@click.option("--alg", type=click.Choice(["Ed25519", "ES256"]), default="Ed25519", show_default=True,
              help="设备密钥算法 device key algorithm")  # fmt: skip
@click.option("--log-key", help="管理员提供的服务器日志公钥（可选，用于核对）the server's log verifier key, "
              "if your admin gave you one (checked against the server)")  # fmt: skip
@click.pass_context
@friendly_errors
def enroll(ctx: click.Context, server_url: str, code: str, alg: str, log_key: str | None) -> None:
    """注册本设备 Enrol this device: make its key pair and register it with the server."""
    home = _home(ctx)
    with make_http_client(server_url) as http:
        cfg = enrol(home, http, code, alg="ES256" if alg == "ES256" else "Ed25519", log_key=log_key)
    click.echo(
        f"注册成功 / enrolled: 设备 device {cfg.device_id}（{cfg.device_name}）\n"
        f"  服务器 server: {cfg.server_url}\n"
        f"  设备密钥 key: {cfg.alg} {cfg.key_id}\n"
        f"  已记下服务器日志公钥 pinned log key: {cfg.log_key}\n"
        f"  数据目录 home: {home.root}"
    )


# --------------------------------------------------------------------------- capture / import


def _interruption(text: str) -> Interruption:
    parts = [p.strip() for p in text.split("|")]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise click.BadParameter(
            '格式应为 "时间|原因[|恢复时间[|恢复说明]]" / expected "time|reason[|resumed_at[|note]]", '
            'e.g. "2025-03-01T09:41:00+08:00|更换电池"'
        )
    parts += [""] * (4 - len(parts))
    return Interruption(parts[0], parts[2] or None, parts[1], parts[3] or None)


def capture_facts(fn: F) -> F:
    """The options stating a capture's facts (shared by `capture` and `import`)."""
    options = [
        click.option("--case", "case_ref", required=True, help="案号 case number, e.g. 黔市监罚〔2025〕12号"),
        click.option("--category", required=True, envvar="CASETRAIL_FIELD_CATEGORY",
                     help="执法类别 enforcement category (recording standard id), e.g. inspection"),
        click.option("--stage", required=True, help="执法环节 stage id, e.g. implementation"),
        click.option("--record-type", required=True, help="记录类型编号 record type id, e.g. inspection-record（现场检查笔录）"),
        click.option("--officer", "officers", multiple=True, required=True,
                     help="执法证号 officer certificate number; repeat for each officer (≥ 2 on site)"),
        click.option("--lat", help="纬度 latitude in decimal degrees, e.g. 26.6470"),
        click.option("--lon", help="经度 longitude in decimal degrees, e.g. 106.6302"),
        click.option("--accuracy", help="定位精度（米）location accuracy in metres"),
        click.option("--gnss-time", help="卫星时间 GNSS time, RFC 3339 with offset"),
        click.option("--interruption", "interruptions", multiple=True,
                     help='录制中断 recording interruption "time|reason[|resumed_at[|note]]"; repeatable'),
        click.option("--av-reason", help="未录音像的原因 why there is no audio/video, if none"),
        click.option("--credentials-shown", is_flag=True,
                     help="已亮证：执法人员已出示执法证件 the officers showed their credentials (亮证)"),
        click.option("--note", help="备注 free note"),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _request(kw: dict[str, Any]) -> CaptureRequest:
    if (kw["lat"] is None) != (kw["lon"] is None):
        raise click.UsageError("--lat 与 --lon 须同时给出 / give both --lat and --lon")
    location = None if kw["lat"] is None else Location(kw["lat"], kw["lon"], kw["accuracy"])
    return CaptureRequest(
        case_ref=kw["case_ref"],
        category=kw["category"],
        stage=kw["stage"],
        record_type=kw["record_type"],
        officers=tuple(kw["officers"]),
        location=location,
        interruptions=tuple(_interruption(t) for t in kw["interruptions"]),
        av_reason=kw["av_reason"],
        credentials_shown=kw["credentials_shown"],
        note=kw["note"],
        gnss_time=kw["gnss_time"],
    )


def _capturer(home: FieldHome, queue: Queue) -> Capturer:
    config = home.load_config()
    return Capturer(home, config, load_device_key(home), queue)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@capture_facts
@click.pass_context
@friendly_errors
def capture(ctx: click.Context, /, files: tuple[Path, ...], **kw: Any) -> None:
    """采集文件 Capture FILES as one record: copy into the vault, sign, queue for sync.

    The originals are only read, never changed. Nothing is sent now: run `sync`.
    """
    home = _home(ctx)
    request = _request(kw)
    with Queue(home.queue_db) as queue:
        result = _capturer(home, queue).capture(list(files), request)
    click.echo(
        f"已采集 {len(result.files)} 个文件并加入上传队列 / captured {len(result.files)} file(s), "
        f"queued for sync\n  清单 manifest {result.manifest_id} · 设备序号 device_seq "
        f"{result.device_seq}"
    )
    for f, vf in zip(files, result.files, strict=True):
        click.echo(f"  {f.name}  {_size(vf.size)}  {vf.sha256}")
    if result.set_aside:
        click.echo(_unqueued_notice(list(result.set_aside)), err=True)


@main.command("import")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@capture_facts
@click.option("--watch", is_flag=True, help="持续导入新文件 keep importing new files until Ctrl-C")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="--watch 时的扫描间隔（秒）seconds between looks")  # fmt: skip
@click.option("--settle", default=2.0, show_default=True, type=click.FloatRange(0),
              help="两次查看的间隔：大小与时间不变才导入 seconds between the two looks that "
              "must agree before a file is imported")  # fmt: skip
@click.pass_context
@friendly_errors
def import_(
    ctx: click.Context,
    /,
    directory: Path,
    watch: bool,
    interval: float,
    settle: float,
    **kw: Any,
) -> None:
    """采集站导入 Import a body-camera folder: every finished file becomes one capture.

    Walks DIRECTORY recursively in a stable order; skips hidden files, *.tmp/*.part
    and files still being written (size or time changing); never imports a file twice.
    """
    home = _home(ctx)
    request = _request(kw)
    with Queue(home.queue_db) as queue:
        importer = Importer(_capturer(home, queue), request, settle=settle)

        def show(report: ImportReport) -> None:
            for path, manifest_id in report.imported:
                click.echo(f"已导入 imported  {path}  → {manifest_id}")
            for path in report.busy:
                click.echo(f"写入中，稍后导入 still being written, later: {path}")
            for path, reason in report.failed:
                click.echo(f"无法导入 cannot import {path}: {reason}", err=True)
            if not watch:
                click.echo(
                    f"本次导入 {len(report.imported)} 个，已导入过 {report.already} 个，"
                    f"写入中 {len(report.busy)} 个，失败 {len(report.failed)} 个 / imported "
                    f"{len(report.imported)}, already {report.already}, busy {len(report.busy)}, "
                    f"failed {len(report.failed)}"
                )

        if watch:
            click.echo(f"正在监视 watching {directory}（Ctrl-C 停止 to stop）")
            try:
                importer.watch(directory, interval=interval, on_round=show)
            except KeyboardInterrupt:
                click.echo("已停止 stopped")
        else:
            report = importer.round(directory)
            show(report)
            if report.failed:
                sys.exit(1)


# --------------------------------------------------------------------------- status


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


@main.command()
@click.option("--json", "as_json", is_flag=True, help="机器可读输出 machine-readable JSON")
@click.option("--all", "show_all", is_flag=True, help="也列出已完成的文件 also list done files")
@click.pass_context
@friendly_errors
def status(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """查看队列 Show where every captured file stands (captured → … → done / failed)."""
    home = _home(ctx)
    config = home.load_config()
    with Queue(home.queue_db) as queue:
        counts = queue.counts()
        items = queue.items()
        unqueued = Vault(home.vault_dir).unqueued(queue.manifest_ids())
    if as_json:
        click.echo(
            json.dumps(
                {
                    "device_id": config.device_id,
                    "server_url": config.server_url,
                    "counts": {s.value: n for s, n in counts.items()},
                    "items": [i.to_json() for i in items],
                    "unqueued_vault_dirs": [str(p) for p in unqueued],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    click.echo(f"设备 device {config.device_id} → {config.server_url}")
    click.echo("  ".join(f"{s.label}: {n}" for s, n in counts.items()))
    if unqueued:
        click.echo(_unqueued_notice(unqueued))
    shown = [i for i in items if show_all or i.state is not ItemState.DONE]
    if not shown:
        if items:
            click.echo("全部完成，回执均已核验 / everything is done, every receipt verified")
        else:
            click.echo("队列为空 / the queue is empty")
        return
    for i in shown:
        click.echo(_item_line(i))


def _unqueued_notice(paths: list[Path]) -> str:
    listed = "".join(f"\n  {p}" for p in paths)
    return (
        f"注意：保管库中有 {len(paths)} 个采集目录不在上传队列中（已保留，未删除）/ "
        f"{len(paths)} capture folder(s) in the vault are not in the upload queue "
        f"(kept, not deleted):{listed}\n"
        "  原因可能是队列数据库丢失或重建、使用了其他 --home，或采集在入队前中断。"
        "请勿删除：若曾使用其他 --home，请用原目录运行；否则请联系管理员核对"
        "（.pending.json 中有签名清单），必要时用 `casetrail-field capture` 重新采集这些文件。\n"
        "  Likely the queue database was lost or recreated, another --home was used, or a "
        "capture stopped before it was queued. Do not delete them: run with the original "
        "--home if there was one; otherwise ask your admin to check them (a .pending.json "
        "holds the signed manifest) and capture the files again with "
        "`casetrail-field capture` if needed."
    )


def _item_line(i: QueueItem) -> str:
    progress = (
        f"{_size(i.offset)}/{_size(i.size)}" if i.state is ItemState.UPLOADING else _size(i.size)
    )
    line = f"#{i.device_seq:<4} {i.name}  [{i.state.label}]  {progress}  案号 {i.case_ref}"
    if i.attempts:
        wait = max(0, int(i.next_attempt_at - time.time()))
        line += f"  重试 retries {i.attempts}, next in {wait}s"
    if i.last_error:
        line += "\n      " + i.last_error.replace("\n", "\n      ")
    return line


# --------------------------------------------------------------------------- sync


def _summary(report: SyncReport) -> str:
    return (
        f"登记清单 {report.registered} 份，完成 {len(report.done)} 个，失败 {len(report.failed)} 个，"
        f"推迟 {len(report.deferred)} 个，发送 {_size(report.bytes_sent)} / registered "
        f"{report.registered}, done {len(report.done)}, failed {len(report.failed)}, "
        f"deferred {len(report.deferred)}, sent {_size(report.bytes_sent)}"
    )


@main.command()
@click.option("--once", "mode", flag_value="once", default=True,
              help="处理一遍当前可处理的项目后退出（默认）one pass over what is due, then exit (default)")  # fmt: skip
@click.option("--watch", "mode", flag_value="watch",
              help="持续同步，有网络即上传 keep syncing until Ctrl-C")  # fmt: skip
@click.option("--interval", default=10.0, show_default=True, type=click.FloatRange(0.1),
              help="--watch 时两遍之间的秒数 seconds between passes")  # fmt: skip
@click.option("--exit-when-settled", is_flag=True,
              help="--watch 时，所有项目完成或失败后退出 with --watch, exit once every item is "
              "done or failed (for scripts)")  # fmt: skip
@click.option("--max-chunk", type=click.IntRange(MIN_CHUNK), default=MAX_CHUNK, show_default=True,
              help="每次上传的最大字节数（按网速自动调整，不超过此值）largest chunk per request in "
              "bytes; the size adapts to the link below this")  # fmt: skip
@click.pass_context
@friendly_errors
def sync(
    ctx: click.Context, mode: str, interval: float, exit_when_settled: bool, max_chunk: int
) -> None:
    """同步 Register manifests, upload files (resumable), verify receipts.

    Safe to interrupt at any moment: the next sync resumes from what the server holds.
    Exit status: 0 fine, 3 some files need attention (see `status`), 75 server unreachable.
    """
    home = _home(ctx)
    config = home.load_config()
    observer = TtyProgress(sys.stderr.isatty())
    with (
        Queue(home.queue_db) as queue,
        make_http_client(config.server_url, home.load_token()) as http,
    ):
        sizer = ChunkSizer(start=min(START_CHUNK, max_chunk), maximum=max_chunk)
        syncer = Syncer(home, config, queue, http, observer=observer, sizer=sizer)
        if mode == "watch":
            try:
                syncer.watch(
                    interval=interval,
                    exit_when_settled=exit_when_settled,
                    on_pass=lambda r: click.echo(_summary(r)) if r.changed else None,
                )
            except KeyboardInterrupt:
                click.echo(
                    "已停止，下次同步将从服务器已有的进度继续 / stopped; the next sync resumes"
                )
            report = None
        else:
            report = syncer.run_once()
            click.echo(_summary(report))
        failed = queue.counts()[ItemState.FAILED]
    if failed:
        click.echo(
            f"{failed} 个文件需要处理，运行 `casetrail-field status` 查看原因 / {failed} file(s) need "
            "attention: run `casetrail-field status`",
            err=True,
        )
        sys.exit(EXIT_FAILED_ITEMS)
    if report is not None and report.offline:
        click.echo(
            "服务器暂时无法连接，稍后再同步 / server unreachable now; sync again later", err=True
        )
        sys.exit(EXIT_OFFLINE)


@main.command()
@click.argument("manifest_id", required=False)
@click.pass_context
@friendly_errors
def retry(ctx: click.Context, manifest_id: str | None) -> None:
    """重试失败项 Put failed files back in the queue (after fixing the cause), then run `sync`."""
    home = _home(ctx)
    home.load_config()
    with Queue(home.queue_db) as queue:
        n = queue.retry_failed(manifest_id)
    click.echo(f"已重新排队 {n} 个文件 / {n} file(s) queued again; run `casetrail-field sync`")


@main.command("prune")
@click.option("--retention-days", type=click.FloatRange(0),
              help="保留天数（默认取 device.json 中的设置）days to keep originals after their receipt "
              "verified [default: retention_days in device.json]")  # fmt: skip
@click.pass_context
@friendly_errors
def prune_cmd(ctx: click.Context, retention_days: float | None) -> None:
    """清理保管库 Delete vault copies whose receipts verified longer ago than the retention.

    Only files whose every receipt verified are removed; receipts and records stay.
    """
    home = _home(ctx)
    config = home.load_config()
    days = config.retention_days if retention_days is None else retention_days
    with Queue(home.queue_db) as queue:
        removed = prune(home, queue, days, time.time())
    click.echo(
        f"已清理 {len(removed)} 次采集的本地副本（保留期 {days:g} 天）/ removed the vault copies "
        f"of {len(removed)} capture(s) (retention {days:g} days)"
    )
