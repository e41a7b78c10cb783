"""Shared benchmark plumbing: profiles, timing, ratios, RSS sampling, JSON-lines output.

Every cell prints one JSON line (``{"bench": "B9", "cell": ..., "ratio": ...}``) to
stdout and a human summary at the end. Absolute times on shared 2-core machines are
noise; ratios against a baseline measured in the same run are the result.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Profile:
    """Sizes for one run: ``quick`` (< 5 min on 2 cores) or ``full`` (the targets' sizes)."""

    name: str
    ingest_bytes: int
    rss_sizes: tuple[int, int]
    repeats: int


PROFILES = {
    "quick": Profile("quick", ingest_bytes=256 * MiB, rss_sizes=(256 * MiB, 512 * MiB), repeats=2),
    "full": Profile("full", ingest_bytes=1 * GiB, rss_sizes=(1 * GiB, 2 * GiB), repeats=3),
}


@dataclass
class Results:
    """Collects cells and prints each as a JSON line as it arrives."""

    profile: Profile
    cells: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, bench: str, cell: str, **values: Any) -> dict[str, Any]:
        record = {"bench": bench, "cell": cell, "profile": self.profile.name, **values}
        self.cells.append(record)
        print(json.dumps(record, ensure_ascii=False), flush=True)
        return record

    def summary(self) -> str:
        lines = [f"== summary ({self.profile.name} profile) =="]
        for c in self.cells:
            target = c.get("target")
            verdict = ""
            if target is not None and "ratio" in c:
                verdict = "PASS" if c["ratio"] >= target else "MISS"
            shown = {k: v for k, v in c.items() if k not in ("bench", "cell", "profile")}
            lines.append(f"{c['bench']:>4} {c['cell']:<38} {verdict:<5} {shown}")
        return "\n".join(lines)


def ratio(value: float, baseline: float) -> float:
    """``value / baseline`` rounded for display (throughputs: higher is better)."""
    return round(value / baseline, 3) if baseline else float("nan")


def mb_per_s(nbytes: int, seconds: float) -> float:
    return round(nbytes / MiB / seconds, 1)


def timed(fn: Callable[[], object]) -> float:
    begun = time.perf_counter()
    fn()
    return time.perf_counter() - begun


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """Fastest of ``repeats`` runs (the least disturbed by neighbours on a shared machine)."""
    return min(timed(fn) for _ in range(repeats))


class PatternStream:
    """A non-seekable stream of ``size`` bytes from a repeated random block (cheap to make)."""

    _BLOCK = os.urandom(4 * MiB)

    def __init__(self, size: int) -> None:
        self._left = size

    def read(self, size: int = -1, /) -> bytes:
        n = self._left if size < 0 else min(size, self._left)
        self._left -= n
        if n == len(self._BLOCK):
            return self._BLOCK
        return (self._BLOCK * (n // len(self._BLOCK) + 1))[:n]


def chunks(size: int, chunk: int) -> Iterator[int]:
    while size > 0:
        yield min(chunk, size)
        size -= chunk


def current_rss() -> int:
    """Resident set size of this process in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux ``/proc``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def cpu_seconds(*pids: int) -> float:
    """User + system CPU seconds so far of ``pids`` and their descendants (Linux
    ``/proc``; a process gone meanwhile counts nothing)."""
    total = 0
    for pid in {q for p in pids for q in process_tree(p)}:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples this process's RSS every 20 ms in a thread; ``peak`` after ``stop``."""

    def __init__(self) -> None:
        self.peak = current_rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, current_rss())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss())


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
