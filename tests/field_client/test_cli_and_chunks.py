"""CLI help and error texts; adaptive chunk sizing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from field_client.cli import main
from field_client.tus_client import MAX_CHUNK, MIN_CHUNK, ChunkSizer

COMMANDS = ["enroll", "capture", "import", "status", "sync", "retry", "prune"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_reads_in_chinese_and_english(command: str | None) -> None:
    args = [command, "--help"] if command else ["--help"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output
    first = r.output.split("\n\n")[1]  # the summary line under Usage
    assert any("\u4e00" <= c <= "\u9fff" for c in first), first  # Chinese first…
    assert any(c.isascii() and c.isalpha() for c in first), first  # …English alongside
    if command is None:
        assert all(c in r.output for c in COMMANDS)


def test_commands_on_a_fresh_home_name_the_fix(tmp_path: Path) -> None:
    for args in (["status"], ["sync"], ["retry"], ["prune"]):
        r = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), *args])
        assert r.exit_code == 1, r.output
        assert "casetrail-field enroll" in r.output and "not enrolled" in r.output


def test_capture_problems_are_all_listed(tmp_path: Path) -> None:
    f = tmp_path / "a.jpg"
    f.write_bytes(b"x")
    r = CliRunner().invoke(
        main,
        ["--home", str(tmp_path / "h"), "capture", str(f), "--case", "X", "--category", "c",
         "--stage", "s", "--record-type", "r", "--officer", "1", "--lat", "1"],
    )  # fmt: skip
    assert r.exit_code == 2 and "--lat" in r.output and "--lon" in r.output


def test_chunks_grow_on_a_fast_link_and_shrink_after_failures() -> None:
    sizer = ChunkSizer(start=MIN_CHUNK, target_seconds=2.0)
    sizes = []
    for _ in range(10):  # 100 MiB/s link
        sizer.sent(sizer.size, sizer.size / (100 * 1024 * 1024))
        sizes.append(sizer.size)
    assert sizes == sorted(sizes) and sizes[-1] == MAX_CHUNK
    assert all(b <= 2 * a for a, b in zip(sizes, sizes[1:], strict=False))  # at most doubling
    sizer.failed()
    sizer.failed()
    assert sizer.size == MAX_CHUNK // 4
    for _ in range(10):  # 64 KiB/s link: about two seconds of data, never below the minimum
        sizer.sent(sizer.size, sizer.size / (64 * 1024))
    assert sizer.size == MIN_CHUNK
    assert sizer.size % (64 * 1024) == 0
