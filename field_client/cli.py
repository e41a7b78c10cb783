"""The `casetrail-field` command, run on inspectors' devices and docking stations (采集站)."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="casetrail")
def main() -> None:
    """CaseTrail 现场采集端 — capture evidence on site and sync it when a network is there."""
