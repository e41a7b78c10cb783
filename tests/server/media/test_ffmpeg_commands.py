"""Every ffmpeg command line is built by ffmpeg-python and keeps the sandbox's guards."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.media import FFmpegTools
from server.media.av import poster_command, probe_command, scan_command
from server.media.report import InspectionLimits
from server.media.sandbox import child_limits, run_limited


def _input_half(argv: list[str]) -> list[str]:
    return argv[: argv.index("-i") + 2]


@pytest.fixture
def commands(ffmpeg: FFmpegTools, tmp_path: Path) -> dict[str, list[str]]:
    link = tmp_path / "input"
    return {
        "probe": probe_command(ffmpeg, "mov", link, tmp_path / "meta.txt"),
        "scan": scan_command(ffmpeg, "matroska", link),
        "poster": poster_command(ffmpeg, "mov", link, tmp_path / "poster.jpg", 640, "1.000"),
    }


@pytest.mark.parametrize("name", ["probe", "scan", "poster"])
def test_compiled_command_carries_both_whitelists_before_its_only_input(
    name: str, commands: dict[str, list[str]], ffmpeg: FFmpegTools, tmp_path: Path
) -> None:
    argv = commands[name]
    assert argv[0] == str(ffmpeg.ffmpeg)
    assert argv.count("-i") == 1
    head = _input_half(argv)
    pairs = list(zip(head, head[1:], strict=False))
    assert ("-protocol_whitelist", "file") in pairs
    assert ("-format_whitelist", "aac,amr,avi,flac,matroska,mov,mp3,mpegts,ogg,wav") in pairs
    assert head[-1] == f"file:{(tmp_path / 'input').absolute()}"
    assert "-nostdin" in argv and "-hide_banner" in argv
    # The demuxer is forced from the sniffed type, never guessed by ffmpeg.
    assert ("-f", "matroska" if name == "scan" else "mov") in pairs


def test_poster_command_seeks_on_the_input_and_writes_one_frame(
    commands: dict[str, list[str]], tmp_path: Path
) -> None:
    argv = commands["poster"]
    head = _input_half(argv)
    assert ("-ss", "1.000") in zip(head, head[1:], strict=False)
    tail = argv[len(head) :]
    assert tail[tail.index("-map") + 1] == "0:v:0"
    assert tail[tail.index("-frames:v") + 1] == "1"
    assert f"file:{tmp_path / 'poster.jpg'}" in tail


def test_compiled_commands_run_in_the_sandbox_on_a_real_video(
    media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path
) -> None:
    link = tmp_path / "input"
    link.symlink_to(media["video.mp4"])
    limits = child_limits(InspectionLimits())
    probe = run_limited(
        probe_command(ffmpeg, "mov", link, tmp_path / "meta.txt"), limits, work_dir=tmp_path
    )
    assert probe.returncode == 0, probe.stderr[-500:]
    assert "Stream #0:0" in probe.stderr and "Video: h264" in probe.stderr
    scan = run_limited(scan_command(ffmpeg, "mov", link), limits, work_dir=tmp_path)
    assert scan.returncode == 0 and "out_time_us=" in scan.stdout
    poster = tmp_path / "poster.jpg"
    made = run_limited(
        poster_command(ffmpeg, "mov", link, poster, 64, None), limits, work_dir=tmp_path
    )
    assert made.returncode == 0, made.stderr[-500:]
    assert poster.read_bytes()[:2] == b"\xff\xd8"  # a JPEG, at most 64 px on a side
