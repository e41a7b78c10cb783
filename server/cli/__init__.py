"""The `casetrail` command: server, admin, reviewer and archivist tasks.

Each command family lives in its own module of this package and is registered here.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="casetrail")
def main() -> None:
    """CaseTrail 执法全过程记录 — 证据同步服务器与管理工具 (evidence sync server and admin tools)."""


def _register() -> None:
    from server.cli import rules

    for command in rules.COMMANDS:
        main.add_command(command)


_register()
