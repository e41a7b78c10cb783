"""Docking-station import: recursive, stable order, settled files only, never twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from field_client.capture import Capturer, CaptureRequest
from field_client.errors import CaptureError
from field_client.importer import Importer
from field_client.queue import Queue
from tests.field_client.conftest import make_file


def _camera_folder(root: Path) -> None:
    make_file(root / "DCIM" / "100CAM" / "B.MP4", 3000, seed=1)
    make_file(root / "DCIM" / "100CAM" / "A.MP4", 2000, seed=2)
    make_file(root / "DCIM" / "099CAM" / "Z.JPG", 1000, seed=3)
    make_file(root / "notes.pdf", 500, seed=4)
    make_file(root / ".Trashes" / "old.mp4", 10)
    make_file(root / "DCIM" / "100CAM" / "C.MP4.part", 10)
    make_file(root / "DCIM" / "100CAM" / ".hidden", 10)


def test_imports_recursively_in_stable_order_and_only_once(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    root = tmp_path / "cam"
    _camera_folder(root)
    imp = Importer(capturer, request_facts, sleep=lambda s: None)
    report = imp.round(root)
    rel = [p.relative_to(root).as_posix() for p, _ in report.imported]
    assert rel == ["DCIM/099CAM/Z.JPG", "DCIM/100CAM/A.MP4", "DCIM/100CAM/B.MP4", "notes.pdf"]
    assert [i.name for i in queue.items()] == ["Z.JPG", "A.MP4", "B.MP4", "notes.pdf"]
    assert [i.device_seq for i in queue.items()] == [1, 2, 3, 4]

    again = Importer(capturer, request_facts, sleep=lambda s: None).round(root)
    assert again.imported == [] and again.already == 4
    assert len(queue.items()) == 4


def test_file_still_being_written_waits_for_the_next_round(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    root = tmp_path / "cam"
    done = make_file(root / "done.mp4", 1000)
    growing = make_file(root / "rec.mp4", 1000, seed=9)

    def camera_keeps_writing(_seconds: float) -> None:
        with open(growing, "ab") as f:
            f.write(b"x" * 100)

    imp = Importer(capturer, request_facts, sleep=camera_keeps_writing)
    report = imp.round(root)
    assert [p for p, _ in report.imported] == [done]
    assert report.busy == [growing]
    # the camera finished: next round (watch mode) the file is settled and imported whole
    imp.sleep = lambda s: None
    report = imp.round(root, first_look=False)
    assert [p for p, _ in report.imported] == [growing]
    assert queue.items()[-1].size == 1100


def test_watch_picks_up_new_files(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    root = tmp_path / "cam"
    make_file(root / "1.jpg", 10)
    rounds: list[int] = []

    def on_round(r: object) -> None:
        rounds.append(len(queue.items()))
        if len(rounds) == 1:
            make_file(root / "sub" / "2.jpg", 10, seed=5)  # a camera docks later

    imp = Importer(capturer, request_facts, sleep=lambda s: None)
    imp.watch(root, interval=0, on_round=on_round, should_stop=lambda: len(rounds) >= 3)
    assert [i.name for i in queue.items()] == ["1.jpg", "2.jpg"]


def test_missing_folder_names_the_fix(capturer: Capturer, request_facts: CaptureRequest) -> None:
    with pytest.raises(CaptureError, match="docking-station path"):
        Importer(capturer, request_facts).round(Path("/nonexistent/cam"))
