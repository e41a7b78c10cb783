"""The sync progress bar fits an 80-column terminal in screen cells, Chinese names included."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console

from field_client.progress import TtyProgress
from field_client.queue import ItemState, QueueItem

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _item(name: str, size: int) -> QueueItem:
    return QueueItem(
        "m-1", 0, name, size, "sha256:" + "0" * 64, "video/mp4", Path("x"), "黔市监罚〔2026〕1号",
        1, ItemState.UPLOADING, 0, None, None, 0, 0.0, None, "2026-03-03T09:30:00+08:00",
        None, None, None,
    )  # fmt: skip


def test_a_long_chinese_name_never_wraps_an_80_column_line() -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=80, force_terminal=True, color_system=None)
    bar = TtyProgress(True, console)
    item = _item("市场监督管理局现场检查执法记录仪录像第一段（超长文件名）.mp4", 300 << 20)
    bar.item_started(item, 0)
    for offset in (10 << 20, 150 << 20, 299 << 20):
        bar.item_progress(item, offset)
        bar._progress.refresh()  # type: ignore[union-attr]
    bar.item_finished(item, ItemState.DONE, None)

    drawn = [ANSI.sub("", part) for part in re.split(r"[\r\n]", screen.getvalue())]
    drawn = [line for line in drawn if line.strip()]
    assert any("市场监督" in line and "%" in line for line in drawn), drawn
    assert max(cell_len(line) for line in drawn) <= 80
    # The name is cut with an ellipsis in its column, counted in cells (2 per 汉字).
    named = next(line for line in drawn if "市场监督" in line)
    assert "…" in named and cell_len(named.split("…")[0]) <= 24


def test_off_a_terminal_only_the_outcome_is_printed(capsys) -> None:  # type: ignore[no-untyped-def]
    screen = io.StringIO()
    bar = TtyProgress(False, Console(file=screen, width=80))
    item = _item("现场照片.jpg", 1 << 20)
    bar.item_started(item, 0)
    bar.item_progress(item, 1 << 19)
    bar.item_finished(item, ItemState.DONE, None)
    assert screen.getvalue() == ""
    assert capsys.readouterr().out == "✓ 现场照片.jpg  回执已核验 receipt verified\n"
