"""``casetrail serve`` and ``casetrail db upgrade``: run and prepare the sync server."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

import click
import gunicorn
from gunicorn.app.base import BaseApplication
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from server.cli.common import load_settings, unit_of_work
from server.db import current_revision, make_engine, upgrade
from server.services.setup import create_first_admin
from server.settings import Settings
from server.signing_key import create_signing_key


def default_workers() -> int:
    return max(2, min(4, (os.cpu_count() or 1)))


class CaseTrailServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn with gthread workers, each building its own app (no shared connections)."""

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


GUNICORN_BODY_LAYOUT = ((23, 0), (28, 0))
"""gunicorn versions whose body objects :class:`SocketBody` knows (checked by a test)."""


class SocketBody:
    """A gunicorn ``Content-Length`` request body with ``readinto`` straight from the socket.

    gunicorn's own ``read(n)`` gathers ``recv`` pieces in a ``BytesIO``, takes its value,
    slices it and pushes the rest back, at both its ``LengthReader`` and ``Body`` layers:
    about four copies of every byte under the GIL, a quarter of the server's time in a
    1 GiB ingest. ``readinto`` first hands over what gunicorn already buffered (never
    past the body's end: a pipelined next request stays in gunicorn's buffer), then
    ``recv_into`` the caller's buffer, and keeps ``LengthReader.length`` exact so
    gunicorn drains and reuses the connection as usual. Everything else (``read``,
    ``readline``, iteration) is gunicorn's own. It relies on gunicorn's internal
    layout (``Body.buf``/``reader``, ``LengthReader.unreader``/``length``,
    ``SocketUnreader.buf``/``sock``), the same in 23–27; :meth:`wrap` checks that layout
    and the version range :data:`GUNICORN_BODY_LAYOUT` and otherwise leaves the input
    alone, and ``tests/server/test_serve_body.py`` fails if the installed gunicorn no
    longer matches.
    """

    def __init__(self, body: Body) -> None:
        self._body = body
        self._reader: LengthReader = body.reader
        self._unreader: SocketUnreader = body.reader.unreader

    @classmethod
    def wrap(cls, wsgi_input: Any) -> Any:
        """``wsgi_input`` as a :class:`SocketBody` when its layout is known, else unchanged."""
        low, high = GUNICORN_BODY_LAYOUT
        if not low <= tuple(gunicorn.version_info[:2]) < high:
            return wsgi_input
        if type(wsgi_input) is not Body or type(wsgi_input.reader) is not LengthReader:
            return wsgi_input
        unreader: Any = getattr(wsgi_input.reader, "unreader", None)
        if type(unreader) is not SocketUnreader or not hasattr(unreader, "sock"):
            return wsgi_input
        if not isinstance(wsgi_input.buf, io.BytesIO) or not isinstance(unreader.buf, io.BytesIO):
            return wsgi_input
        return cls(wsgi_input)

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next body bytes; 0 at the end of the body (or EOF)."""
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        held = self._body.buf.getvalue()  # already counted off the length by gunicorn
        if held:
            n = min(len(view), len(held))
            view[:n] = held[:n]
            self._body.buf = io.BytesIO()
            self._body.buf.write(held[n:])
            return n
        want = min(len(view), self._reader.length)
        if want <= 0:
            return 0
        ahead = self._unreader.buf.getvalue()  # may run past the body: take only ours
        if ahead:
            n = min(want, len(ahead))
            view[:n] = ahead[:n]
            self._unreader.buf = io.BytesIO()
            self._unreader.buf.write(ahead[n:])
        else:
            sock = self._unreader.sock
            # a plain blocking socket fills the whole buffer in one call (one GIL hand-back
            # per block, not one per TCP segment batch); with a timeout it returns early
            flags = socket.MSG_WAITALL if type(sock) is socket.socket else 0
            try:
                n = int(sock.recv_into(view[:want], want, flags))
            except Exception:
                self._body.failed = True  # the connection's position is unknown now
                raise
        self._reader.length -= n
        return n

    def read(self, size: int | None = None) -> bytes:
        return bytes(self._body.read(size))

    def readline(self, size: int | None = None) -> bytes:
        return bytes(self._body.readline(size))

    def readlines(self, size: int | None = None) -> list[bytes]:
        return list(self._body.readlines(size))

    def __iter__(self) -> Any:
        return iter(self._body)


class SocketBodyMiddleware:
    """WSGI middleware giving gunicorn ``Content-Length`` bodies :meth:`SocketBody.readinto`."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if "wsgi.input" in environ:
            environ["wsgi.input"] = SocketBody.wrap(environ["wsgi.input"])
        return self.app(environ, start_response)


def initialise(settings: Settings, agency_name: str) -> None:
    """Migrate, create the signing key and the first admin; print what was done."""
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
        f"  用法 usage: curl -H 'Authorization: Bearer {first.token[:10]}…' …/api/v1/me\n"
        f"{bar}\n"
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址 address to bind")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(1, 64), help="进程数 worker processes [2–4]")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="每进程线程数 threads per worker (slow clients don't stall others)")  # fmt: skip
@click.option("--init", "init", is_flag=True,
              help="首次运行时初始化：迁移数据库、生成签名密钥、创建管理员 "
                   "(first run: migrate, create signing key and admin; harmless later)")  # fmt: skip
@click.option("--agency-name", default="本机关 (default agency)", show_default=True,
              help="--init 创建的机关名称 (agency name used by --init)")  # fmt: skip
def serve(
    host: str, port: int, workers: int | None, threads: int, init: bool, agency_name: str
) -> None:
    """运行同步服务器 Run the sync server (gunicorn, threaded workers)."""
    settings = load_settings()
    if init:
        initialise(settings, agency_name)
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
        f"CaseTrail 正在监听 serving on http://{host}:{port}/api/v1 "
        f"(docs /api/v1/docs, data {settings.data_dir})"
    )
    CaseTrailServer(
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers or default_workers(),
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 120,
            "graceful_timeout": 30,
            "keepalive": 5,
            "accesslog": "-",
            "errorlog": "-",
            "loglevel": "info",
        },
    ).run()


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
