"""``casetrail serve`` and ``casetrail db upgrade``: run and prepare the sync server."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from server.cli.common import load_settings, unit_of_work
from server.db import current_revision, make_engine, upgrade
from server.services.setup import create_first_admin
from server.serving import (
    DEFAULT_THREADS,
    GUNICORN_BODY_LAYOUT,
    SocketBody,
    SocketBodyMiddleware,
)
from server.settings import Settings
from server.signing_key import create_signing_key


def default_workers() -> int:
    return max(2, min(4, (os.cpu_count() or 1)))


__all__ = ["GUNICORN_BODY_LAYOUT", "SocketBody", "SocketBodyMiddleware", "serve", "db"]


class CaseTrailServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn with :class:`server.serving.CaseTrailWorker` workers (threads whose request
    heads arrive through the event loop), each building its own app (no shared connections).
    """

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:  # gunicorn ≥ 27; one per user home
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        from server.app import create_app

        app = create_app(self.settings, background=True)
        app.wsgi_app = SocketBodyMiddleware(app.wsgi_app)  # type: ignore[method-assign]
        return app


def initialise(settings: Settings, agency_name: str, served_at: str | None = None) -> None:
    """Migrate, create the signing key and the first admin; print what was done.

    ``served_at`` is where this process will answer (``http://HOST:PORT``); the sign-in
    line names ``CASETRAIL_PUBLIC_URL`` instead when one is configured.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if before != after:
        click.echo(
            f"数据库已迁移到 {after} (database migrated to {after}): {settings.database_url}"
        )
    _key, created = create_signing_key(settings.signing_key_file)
    if created:
        click.echo(
            f"已生成日志签名密钥 (log-signing key created, mode 0600): {settings.signing_key_file}"
        )
    with unit_of_work(settings) as uow:
        first = create_first_admin(uow, agency_name)
        uow.commit()
    if first is None:
        click.echo("已初始化，未做任何更改 (already initialised; nothing changed)")
        return
    bar = "=" * 72
    click.echo(
        f"\n{bar}\n"
        f"  已创建机关「{first.agency}」和管理员账户 {first.username}\n"
        f"  (created agency and admin account '{first.username}')\n\n"
        f"  管理员令牌 (admin token):\n\n      {first.token}\n\n"
        "  此令牌只显示这一次，请立即妥善保存。\n"
        "  This token is shown ONCE. Store it safely now; it cannot be shown again.\n"
        f"  用法 usage: curl -H 'Authorization: Bearer {first.token[:10]}…' …/api/v1/me\n\n"
        f"{first.sign_in_text(_workspace_base(settings, served_at))}\n"
        f"{bar}\n"
    )


def _workspace_base(settings: Settings, served_at: str | None) -> str:
    default = Settings.__dataclass_fields__["public_url"].default
    if served_at is None or settings.public_url != default:
        return settings.public_url.rstrip("/")
    return served_at


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址 address to bind")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(1, 64), help="进程数 worker processes [2–4]")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True,
              type=click.IntRange(1, 512),
              help="每进程请求线程数 request threads per worker (see docs/serving.md)")  # fmt: skip
@click.option("--init", "init", is_flag=True,
              help="首次运行时初始化：迁移数据库、生成签名密钥、创建管理员 "
                   "(first run: migrate, create signing key and admin; harmless later)")  # fmt: skip
@click.option("--agency-name", default="本机关 (default agency)", show_default=True,
              help="--init 创建的机关名称 (agency name used by --init)")  # fmt: skip
def serve(
    host: str, port: int, workers: int | None, threads: int, init: bool, agency_name: str
) -> None:
    """运行同步服务器 Run the sync server (gunicorn, threaded workers)."""
    refuse_taken_port(host, port)
    # everything the server writes (database, originals, derivatives, keys, logs under the
    # data directory) is owner-only: 0600 files, 0700 directories (docs/serving.md)
    os.umask(0o077)
    settings = load_settings()
    if init:
        initialise(settings, agency_name, served_at=f"http://{host}:{port}")
    else:
        engine = make_engine(settings.database_url)
        try:
            if current_revision(engine) is None:
                raise click.ClickException(
                    "数据库尚未初始化，请运行 `casetrail serve --init` 或 `casetrail db upgrade` "
                    "(database not initialised: run `casetrail serve --init`)"
                )
        finally:
            engine.dispose()
    click.echo(
        f"CaseTrail 正在监听 serving on http://{host}:{port}/ — 工作台 workspace /ui/, "
        f"现场采集 capture /capture/, 公示 public /public/, API /api/v1 "
        f"(docs /api/v1/docs, data {settings.data_dir})"
    )
    CaseTrailServer(
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers or default_workers(),
            "threads": threads,
            "worker_class": "server.serving.CaseTrailWorker",
            # idle kept-alive connections and heads being gathered cost a socket each
            "worker_connections": 1000,
            # the app's own caps (16 KiB Upload-Metadata) must be reachable, and what is
            # refused is refused in the JSON error shape (server.serving)
            "limit_request_line": 8190,
            "limit_request_field_size": 32768,
            "timeout": 120,
            "graceful_timeout": 30,
            "keepalive": 5,
            # no access log of gunicorn's: each request's last JSON line (server.logs)
            # says the same, in the one format the logs have
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
        },
    ).run()


def refuse_taken_port(host: str, port: int) -> None:
    """One clear line instead of gunicorn's repeated bind errors when ``port`` is taken."""
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"端口 {port} 已被占用，请换一个端口：casetrail serve --port <其他端口> "
                f"(port {port} on {host} is already in use; choose another with --port)"
            ) from None
        raise click.ClickException(
            f"无法监听 {host}:{port}：{exc.strerror} (cannot listen on {host}:{port})"
        ) from None
    finally:
        probe.close()


@click.group()
def db() -> None:
    """数据库维护 Database maintenance."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """迁移数据库到最新结构 Migrate the configured database."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"数据库已是 {after}，无需迁移 (already at {after}): {settings.database_url}")
    else:
        click.echo(
            f"数据库已从 {before or '空 empty'} 迁移到 {after} (migrated): {settings.database_url}"
        )


COMMANDS: list[click.Command] = [serve, db]
