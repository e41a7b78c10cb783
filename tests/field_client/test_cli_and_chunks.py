"""CLI help and error texts; adaptive chunk sizing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from core.manifest import SignedManifest
from field_client.cli import main
from field_client.config import DeviceConfig, FieldHome
from field_client.keys import DeviceKey
from field_client.queue import Queue
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


@pytest.mark.parametrize("flag", [True, False])
def test_capture_records_whether_credentials_were_shown(
    home: FieldHome, config: DeviceConfig, device_key: DeviceKey, tmp_path: Path, flag: bool
) -> None:
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(b"\xff\xd8\xff" + b"x" * 100)
    args = ["--home", str(home.root), "capture", str(photo), "--case", "黔市监罚〔2025〕12号",
            "--category", "penalty", "--stage", "site-inspection",
            "--record-type", "site-inspection-record", "--officer", "52010012345",
            "--officer", "52010012346"]  # fmt: skip
    r = CliRunner().invoke(main, [*args, "--credentials-shown"] if flag else args)
    assert r.exit_code == 0, r.output
    with Queue(home.queue_db) as queue:
        (item,) = queue.items()
        manifest = SignedManifest.from_json(queue.signed_manifest(item.manifest_id)).manifest
    assert manifest.credentials_shown is flag
