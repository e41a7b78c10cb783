"""Progress lines for long CLI work (export, reconcile, fixity): only on a terminal."""

from __future__ import annotations

import sys

import pytest

from server.cli import common


def test_byte_progress_shows_percent_size_rate_and_time_left_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    update = common.byte_progress("导出 export", 64 << 20)
    assert update is not None
    update(64 << 20)  # the last update is always shown
    line = capsys.readouterr().err
    assert "导出 export 100%" in line and "64/64 MiB" in line
    assert "MiB/s" in line and "ETA 0s" in line


def test_no_progress_noise_when_output_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert common.byte_progress("导出 export", 1) is None
    assert common.progress_printer("核验 fixity") is None
