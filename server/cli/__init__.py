"""The `casetrail` command: server, admin, reviewer and archivist tasks.

Each command family lives in its own module of this package and is registered here.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click


class CaseTrailGroup(click.Group):
    """The top command; says what to install when the server extra is missing."""

    missing_package: str | None = None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if self.missing_package is not None:
            click.echo(
                f"未安装服务器组件（缺少 {self.missing_package}）：请运行 "
                "pip install 'casetrail[server]'；现场设备只需 casetrail-field。"
                f" / The server is not installed (no {self.missing_package}): "
                "pip install 'casetrail[server]'; field devices need only casetrail-field.",
                err=True,
            )
            sys.exit(1)
        return super().main(*args, **kwargs)


@click.group(cls=CaseTrailGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="casetrail")
def main() -> None:
    """CaseTrail 执法全过程记录 — 证据同步服务器与管理工具 (evidence sync server and admin tools)."""


# Each module exposes ``COMMANDS``; add a module here to add its commands.
COMMAND_MODULES = [
    "server.cli.rules",
    "server.cli.serve",
    "server.cli.admin",
    "server.cli.custody",
    "server.cli.maintenance",
    "server.cli.archive",
    "server.cli.worker",
    "server.cli.publicity",
]


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # installed as `casetrail[field]` only
            if exc.name is None or exc.name.split(".")[0] in ("core", "server", "storage"):
                raise
            main.missing_package = exc.name
            return
        for command in module.COMMANDS:
            main.add_command(command)


_register()
