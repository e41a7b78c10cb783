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


def test_progress_line_fits_the_terminal_in_screen_cells(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from rich.cells import cell_len

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(
        common.shutil, "get_terminal_size", lambda _=None: os.terminal_size((80, 24))
    )
    show = common.progress_printer("核验 fixity")
    assert show is not None
    show("市场监督管理局现场检查执法记录仪录像第一段（第二卷）", "12/40", "已核验 checked")
    line = capsys.readouterr().err
    assert line.startswith("\r核验 fixity 市场监督")
    assert cell_len(line[1:]) == 79  # cut to the terminal, counting 汉字 as two cells
