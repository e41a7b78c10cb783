"""Helpers shared by the commands: settings, the server's parts, errors, tables, progress."""

from __future__ import annotations

import functools
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from rich.cells import cell_len, set_cell_size
from sqlalchemy import make_url, select

from server.components import Components, build_components
from server.db import current_revision
from server.errors import ServiceError
from server.models import Agency
from server.services.unit_of_work import SqlUnitOfWork
from server.settings import Settings, SettingsInvalid

P = ParamSpec("P")
T = TypeVar("T")


def load_settings() -> Settings:
    """Settings from the environment, or a clean CLI error listing every fault."""
    try:
        return Settings.from_env()
    except SettingsInvalid as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def open_components(
    settings: Settings | None = None, *, migrated: bool = True, inspection: str | None = None
) -> Iterator[Components]:
    """The server's parts for one command (:func:`build_components`), closed afterwards.

    The database is checked to be migrated first (unless ``migrated=False``);
    ``inspection`` overrides the mode (``worker``: completions only queue inspection).
    """
    settings = settings or load_settings()
    if migrated:
        require_database(settings)
    parts = build_components(settings, inspection=inspection)
    try:
        if migrated and current_revision(parts.engine) is None:
            raise click.ClickException(
                "数据库尚未初始化，请先运行 `casetrail db upgrade` 或 `casetrail serve --init` "
                "(database not initialised: run `casetrail db upgrade` first) — "
                f"{make_url(parts.settings.database_url).render_as_string(hide_password=True)}"
            )
        yield parts
    finally:
        parts.close()


def require_database(settings: Settings) -> None:
    """Refuse, before anything is created, when the embedded SQLite database is missing.

    Opening it would create an empty ``casetrail.db`` (and its data directory) wherever
    the command happens to run; instead the message names the database it looked for and
    where the settings came from.
    """
    if not settings.is_sqlite:
        return
    path = settings.database_url.split(":///", 1)[-1]
    if path in ("", ":memory:") or Path(path).is_file():
        return
    source = (
        f"配置文件 config file {settings.config_file}"
        if settings.config_file
        else "CASETRAIL_DATA_DIR / CASETRAIL_DATABASE_URL，未设置时为当前目录下的 ./var "
        "(unset: ./var of the current directory)"
    )
    raise click.ClickException(
        f"找不到数据库 {path}（no database there; nothing was created）。"
        f"设置来源 settings from: {source}。"
        "请设置 CASETRAIL_DATA_DIR 或 CASETRAIL_CONFIG 指向已初始化的数据目录，"
        "或在此初始化：`casetrail db upgrade` 或 `casetrail serve --init` "
        "(point CASETRAIL_DATA_DIR or CASETRAIL_CONFIG at the initialised data, "
        "or initialise it there)."
    )


@contextmanager
def unit_of_work(settings: Settings, *, migrated: bool = True) -> Iterator[SqlUnitOfWork]:
    """A unit of work on the configured database (checked to be migrated)."""
    with open_components(settings, migrated=migrated) as parts, parts.unit_of_work() as uow:
        yield uow


def service_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Turn service errors into one readable line (exit status 1) instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except ServiceError as exc:
            details = ""
            if exc.errors:
                details = "".join(
                    f"\n  - {field}: {'; '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                    for field, msgs in exc.errors.items()
                )
            raise click.ClickException(exc.message + details) from exc

    return wrapper


def find_agency(uow: SqlUnitOfWork, code: str | None) -> Agency:
    """The agency with ``code``, or the only agency when there is exactly one."""
    agencies = list(uow.session.scalars(select(Agency).order_by(Agency.code)))
    if code is not None:
        for agency in agencies:
            if agency.code == code:
                return agency
        raise click.ClickException(
            f"没有机关代码 {code!r} (no agency {code!r}); 已有 known: "
            + (", ".join(a.code for a in agencies) or "（无 none）")
        )
    if len(agencies) == 1:
        return agencies[0]
    if not agencies:
        raise click.ClickException(
            "还没有任何机关，请先运行 `casetrail serve --init` (no agency yet: run `casetrail serve --init`)"
        )
    raise click.ClickException(
        "有多个机关，请用 --agency 指定 (several agencies: choose one with --agency): "
        + ", ".join(a.code for a in agencies)
    )


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table; CJK characters count double so columns line up."""

    width = cell_len  # screen cells: a 汉字 takes two

    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([width(h), *(width(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v + " " * (w - width(v)) for v, w in zip(values, widths, strict=True)
        ).rstrip()

    click.echo(line(list(headers)))
    click.echo(line(["-" * w for w in widths]))
    for row in cells:
        click.echo(line(row))
    if not rows:
        click.echo("（无 none）")


def progress_printer(label: str) -> Callable[..., None] | None:
    """A one-line progress display on a terminal (stderr); ``None`` when not a TTY."""
    if not sys.stderr.isatty():
        return None
    last: list[str] = [""]

    def show(*values: int | str) -> None:
        text = f"{label} " + " ".join(str(v) for v in values)
        if text != last[0]:
            # Padded to cover a longer previous line, cut to the terminal, both in screen
            # cells (a 汉字 is two), so the line never wraps.
            columns = shutil.get_terminal_size((80, 24)).columns - 1
            cells = min(columns, max(60, cell_len(text)))
            click.echo("\r" + set_cell_size(text, cells), nl=False, err=True)
            last[0] = text

    return show


def byte_progress(label: str, total: int) -> Callable[[int], None] | None:
    """Percentage, MiB, rate and time left for a byte stream of ``total`` bytes (TTY only)."""
    show = progress_printer(label)
    if show is None:
        return None
    started = time.monotonic()
    shown_at = [0.0]

    def update(done: int) -> None:
        now = time.monotonic()
        if done < total and now - shown_at[0] < 0.2:
            return
        shown_at[0] = now
        rate = done / max(now - started, 1e-6)
        left = (total - done) / rate if rate > 0 else 0.0
        show(
            f"{done * 100 // max(total, 1)}%",
            f"{done >> 20}/{total >> 20} MiB",
            f"{rate / 2**20:.1f} MiB/s",
            f"剩余 ETA {left:.0f}s",
        )

    return update
