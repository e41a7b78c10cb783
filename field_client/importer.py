"""Docking-station import (采集站导入): capture every finished file of a body-camera folder.

The folder is walked recursively in a stable order (by relative path, so captures get
device_seq numbers in the same order every time). A file is imported only when it is
*settled*: its size and modification time are the same on two looks some seconds
apart — a camera still writing a file is left for the next round. Hidden files and
names a camera uses for unfinished files (``*.tmp``, ``*.part``, ``*.partial``,
``*~``) are never imported; symbolic links are not followed. Each imported file
becomes its own capture (one manifest), and the queue remembers ``(path, size, mtime)``
so a file is never imported twice. ``watch`` repeats the round until stopped.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import CoreError
from field_client.capture import Capturer, CaptureRequest
from field_client.errors import CaptureError

__all__ = ["ImportReport", "Importer", "is_candidate", "scan"]

_UNFINISHED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", "~")


def is_candidate(rel: Path) -> bool:
    """False for hidden files/folders and names of files still being written."""
    if any(part.startswith(".") for part in rel.parts):
        return False
    return not rel.name.lower().endswith(_UNFINISHED_SUFFIXES)


def scan(root: Path) -> list[tuple[Path, os.stat_result]]:
    """Regular files under ``root`` (recursively, no symlinks), sorted by relative path."""
    found: list[tuple[str, Path, os.stat_result]] = []

    def walk(d: Path) -> Iterator[Path]:
        try:
            entries = list(os.scandir(d))
        except OSError:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                yield from walk(Path(e.path))
            elif e.is_file(follow_symlinks=False):
                yield Path(e.path)

    for path in walk(root):
        rel = path.relative_to(root)
        if not is_candidate(rel):
            continue
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            found.append((rel.as_posix(), path, st))
    found.sort(key=lambda t: t[0])
    return [(p, st) for _, p, st in found]


@dataclass
class ImportReport:
    """What one import round did."""

    imported: list[tuple[Path, str]] = field(default_factory=list)
    """``(file, manifest_id)`` for each new capture."""
    busy: list[Path] = field(default_factory=list)
    """Files skipped because they are still changing (next round)."""
    already: int = 0
    """Files imported in an earlier round."""
    failed: list[tuple[Path, str]] = field(default_factory=list)
    """``(file, reason)`` for files that could not be captured."""


class Importer:
    """Imports a folder through a :class:`Capturer`, all files under one :class:`CaptureRequest`."""

    def __init__(
        self,
        capturer: Capturer,
        request: CaptureRequest,
        *,
        settle: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.capturer = capturer
        self.request = request
        self.settle = settle
        self.sleep = sleep
        self._seen: dict[Path, tuple[int, int]] = {}

    def _look(self, root: Path, report: ImportReport) -> list[tuple[Path, os.stat_result]]:
        """Files not yet imported; updates what was seen on this look."""
        queue = self.capturer.queue
        fresh = []
        for path, st in scan(root):
            if queue.was_imported(str(path.absolute()), st.st_size, st.st_mtime_ns):
                report.already += 1
                continue
            fresh.append((path, st))
        return fresh

    def round(self, root: Path, *, first_look: bool = True) -> ImportReport:
        """One import round: look, wait ``settle`` seconds (if needed), look again, import.

        With ``first_look=False`` the previous round's look counts as the first one
        (the ``watch`` loop), so no extra wait is needed.
        """
        if not root.is_dir():
            raise CaptureError(
                f"找不到目录 {root} / folder not found; check the docking-station path"
            )
        report = ImportReport()
        if first_look or not self._seen:
            self._seen = {p: (st.st_size, st.st_mtime_ns) for p, st in self._look(root, report)}
            if not self._seen:
                return report
            report = ImportReport()
            self.sleep(self.settle)
        now_seen: dict[Path, tuple[int, int]] = {}
        for path, st in self._look(root, report):
            sig = (st.st_size, st.st_mtime_ns)
            now_seen[path] = sig
            if self._seen.get(path) != sig:
                report.busy.append(path)
                continue
            try:
                result = self.capturer.capture(
                    [path],
                    self.request,
                    imported=[(str(path.absolute()), st.st_size, st.st_mtime_ns)],
                )
            except (CaptureError, CoreError) as e:
                report.failed.append((path, str(e)))
                continue
            report.imported.append((path, result.manifest_id))
        self._seen = now_seen
        return report

    def watch(
        self,
        root: Path,
        *,
        interval: float = 5.0,
        on_round: Callable[[ImportReport], None] = lambda r: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Import ``root`` every ``interval`` seconds until ``should_stop()``."""
        first = True
        while not should_stop():
            on_round(self.round(root, first_look=first))
            first = False
            if should_stop():
                break
            self.sleep(interval)
