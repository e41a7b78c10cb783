"""``casetrail worker``: run media inspection jobs and upload expiry outside the web server."""

from __future__ import annotations

import signal
import threading
import time

import click

from server.cli.common import open_components


@click.command()
@click.option("--once", is_flag=True, help="处理完当前待办即退出 (drain the queue once, then exit)")
@click.option("--poll", default=2.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="轮询间隔秒数 (seconds between queue polls)")  # fmt: skip
def worker(once: bool, poll: float) -> None:
    """运行媒体检查与过期上传清理 Run inspection jobs and upload expiry (scale-out worker)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open_components() as parts:
        click.echo("检查任务进程已启动 (inspection worker started)")
        next_expiry = 0.0
        while not stop.is_set():
            ran = parts.jobs.run_pending()
            if ran:
                click.echo(f"已检查 {ran} 项证据 (inspected {ran} evidence items)")
            if time.monotonic() >= next_expiry:
                ended = parts.ingest.expire()
                if ended:
                    click.echo(f"已清理 {ended} 个过期上传 (ended {ended} expired uploads)")
                next_expiry = time.monotonic() + 60
            if once:
                return
            stop.wait(poll)


COMMANDS = [worker]
