"""Upload progress for ``casetrail-field sync`` (进度条), drawn by rich.

Widths are screen cells, not characters: a Chinese file name takes two cells a
character, so the bar never wraps an 80-column terminal. The name is cut with an
ellipsis to fit its column; the line fits the terminal's width. Off a terminal only
one line per finished file is printed.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column

from field_client.queue import ItemState, QueueItem

NAME_CELLS = 24


class TtyProgress:
    """A rich progress bar per file on a terminal; one line per finished file elsewhere."""

    def __init__(self, tty: bool, console: Console | None = None) -> None:
        self.tty = tty
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def item_started(self, item: QueueItem, offset: int) -> None:
        """Start a bar for ``item`` at ``offset`` (a resumed upload starts part-way)."""
        if not self.tty or item.size == 0:
            return
        name = Column(width=NAME_CELLS, no_wrap=True, overflow="ellipsis")
        self._progress = Progress(
            TextColumn("{task.description}", table_column=name),
            BarColumn(bar_width=None),
            TaskProgressColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            expand=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(item.name, total=item.size, completed=offset)

    def item_progress(self, item: QueueItem, offset: int) -> None:
        """Move the bar to ``offset`` bytes."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=offset)

    def item_finished(self, item: QueueItem, state: ItemState, message: str | None) -> None:
        """Remove the bar and print the file's outcome."""
        if self._progress is not None:
            self._progress.stop()
            self._progress, self._task = None, None
        if state is ItemState.DONE:
            click.echo(f"✓ {item.name}  回执已核验 receipt verified")
        elif state is ItemState.FAILED:
            click.echo(f"✗ {item.name}  {message}", err=True)
        else:
            click.echo(f"… {item.name}  稍后重试 will retry: {message}", err=True)
