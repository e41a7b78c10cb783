"""`casetrail standards …` and `casetrail deadline …`: the recording rules for agency staff."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
