"""The `casetrail` command: server, admin, reviewer and archivist tasks.

Each command family lives in its own module of this package and is registered here.
"""

from __future__ import annotations

import importlib

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
        for command in importlib.import_module(name).COMMANDS:
            main.add_command(command)


_register()
