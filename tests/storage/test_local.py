"""The contract suite on ``LocalBlobStore`` (a real directory), plus local-only checks."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import InvalidParts, LocalBlobStore, StorageFull, Unavailable
from storage.port import PartInfo
from tests.storage.contract import BlobStoreContract, StoreEnv, payload, read_all


def _tree(root: Path) -> int:
    entries = sorted((str(p), p.stat().st_size) for p in root.rglob("*"))
    return hash(tuple(entries))


@pytest.fixture
def env(tmp_path: Path) -> StoreEnv:
    root = tmp_path / "blobs"

    def corrupt(key: str, data: bytes) -> None:
        root.joinpath(*key.split("/")).write_bytes(data)

    return StoreEnv(
        store=LocalBlobStore(root),
        reopen=lambda: LocalBlobStore(root),
        io_count=lambda: _tree(tmp_path),
        corrupt=corrupt,
    )


class TestLocalBlobStore(BlobStoreContract):
    """Everything the port promises, on the local filesystem."""


def test_quarantined_upload_keeps_its_bytes(env: StoreEnv) -> None:
    store = env.store
    uid = store.start_upload("originals/x")
    part = store.put_part("originals/x", uid, 1, [b"suspect bytes"])
    moved = store.quarantine_upload("originals/x", uid, [part], "test")
    assert read_all(store, moved) == b"suspect bytes"


def test_interrupted_part_leftovers_are_cut_off(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    uid = store.start_upload("u/k")
    p1 = store.put_part("u/k", uid, 1, [b"kept"])
    # a crash mid-part leaves bytes in the data file that the journal never recorded
    with (tmp_path / ".staging" / uid / "data").open("ab") as f:
        f.write(b"half-written garbage")
    again = LocalBlobStore(tmp_path)
    assert again.list_parts("u/k", uid) == [p1]
    p2 = again.put_part("u/k", uid, 2, [b"-more"])
    info = again.complete_upload("u/k", uid, [p1, p2])
    assert read_all(again, "u/k") == b"kept-more" and info.size == 9


def test_completion_does_not_copy_the_bytes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    uid = store.start_upload("u/big")
    store.put_part("u/big", uid, 1, [payload(1 << 20)])
    inode = (tmp_path / ".staging" / uid / "data").stat().st_ino
    store.complete_upload("u/big", uid, store.list_parts("u/big", uid))
    assert (tmp_path / "u" / "big").stat().st_ino == inode
    assert not (tmp_path / ".staging" / uid).exists()


def test_disk_full_is_a_clear_storage_full_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageFull) as caught:
        store.write("a/b", [b"data"])
    assert "存储空间已满" in str(caught.value)
    monkeypatch.undo()
    assert not store.exists("a/b")
    assert list((tmp_path / ".tmp").iterdir()) == []


def test_a_failed_write_of_large_blocks_reaches_the_caller_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # large blocks are written by a worker thread: its error must not get lost there
    disk = (tmp_path / "f").open("wb")
    real_write = os.write
    sizes: list[int] = []

    def filling_up(fd: int, data: Any) -> int:
        if fd != disk.fileno():
            return real_write(fd, data)
        if len(sizes) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        sizes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", filling_up)
    blocks = (payload(1 << 20) for _ in range(8))
    with pytest.raises(OSError) as caught:
        LocalBlobStore._stream_to(disk, blocks, None)
    assert caught.value.errno == errno.ENOSPC
    assert sizes == [1 << 20, 1 << 20]
    sizes.clear()
    assert LocalBlobStore._stream_to(disk, iter([b"ab", b"c"]), None) == 3  # written inline
    assert sizes == [2, 1]
    disk.close()


def test_a_torn_journal_line_is_cut_off_and_the_upload_resumes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    uid = store.start_upload("u/k")
    p1 = store.put_part("u/k", uid, 1, [b"kept"])
    # a crash while appending part 2's journal line: half a line, no newline
    with (tmp_path / ".staging" / uid / "journal").open("ab") as f:
        f.write(b'{"n": 2, "si')
    again = LocalBlobStore(tmp_path)
    assert again.list_parts("u/k", uid) == [p1]
    p2 = again.put_part("u/k", uid, 2, [b"-more"])
    assert again.list_parts("u/k", uid) == [p1, p2]
    info = again.complete_upload("u/k", uid, [p1, p2])
    assert read_all(again, "u/k") == b"kept-more" and info.size == 9


def test_a_journal_line_appended_after_a_torn_one_is_repaired(tmp_path: Path) -> None:
    # what earlier versions left behind: the next record appended right after a torn one
    store = LocalBlobStore(tmp_path)
    uid = store.start_upload("u/k")
    p1 = store.put_part("u/k", uid, 1, [b"kept"])
    with (tmp_path / ".staging" / uid / "data").open("ab") as f:
        f.write(b"-more")
    with (tmp_path / ".staging" / uid / "journal").open("ab") as f:
        f.write(b'{"n": 2, "si{"n": 2, "size": 5}\n')
    assert store.list_parts("u/k", uid) == [p1, PartInfo(2, 5, "2-5")]


def test_a_torn_line_after_what_this_process_read_is_cut_off_and_the_upload_resumes(
    tmp_path: Path,
) -> None:
    # the store read the journal up to part 1 (and goes on from there), then a crash of
    # another process tore part 2's line
    store = LocalBlobStore(tmp_path)
    uid = store.start_upload("u/k")
    p1 = store.put_part("u/k", uid, 1, [b"kept"])
    assert store.list_parts("u/k", uid) == [p1]
    with (tmp_path / ".staging" / uid / "journal").open("ab") as f:
        f.write(b'{"n": 2, "si')
    assert store.list_parts("u/k", uid) == [p1]
    p2 = store.put_part("u/k", uid, 2, [b"-more"])
    assert store.list_parts("u/k", uid) == [p1, p2]
    assert LocalBlobStore(tmp_path).list_parts("u/k", uid) == [p1, p2]
    store.complete_upload("u/k", uid, [p1, p2])
    assert read_all(store, "u/k") == b"kept-more"


def test_parts_put_by_two_processes_in_turn_are_seen_by_both(tmp_path: Path) -> None:
    one, two = LocalBlobStore(tmp_path), LocalBlobStore(tmp_path)  # two server processes
    uid = one.start_upload("u/k")
    parts = [one.put_part("u/k", uid, 1, [b"a"])]
    parts.append(two.put_part("u/k", uid, 2, [b"bb"]))
    parts.append(one.put_part("u/k", uid, 3, [b"ccc"]))
    assert two.list_parts("u/k", uid) == parts
    parts[2] = two.put_part("u/k", uid, 3, [b"CCCC"])  # the last part put again
    assert one.list_parts("u/k", uid) == parts
    assert [(p.number, p.size) for p in parts] == [(1, 1), (2, 2), (3, 4)]
    with pytest.raises(InvalidParts):
        one.put_part("u/k", uid, 5, [b"e"])
    parts += [one.put_part("u/k", uid, n, [bytes([n % 256]) * n]) for n in range(4, 300)]
    assert two.list_parts("u/k", uid) == parts
    two.complete_upload("u/k", uid, parts)
    assert read_all(one, "u/k") == b"abbCCCC" + b"".join(
        bytes([n % 256]) * n for n in range(4, 300)
    )


@pytest.mark.parametrize(
    "damage",
    [b"\x00\x00garbage\n", b'{"n": 3, "size": 2}\n'],  # unreadable; skips part 2
    ids=["unreadable", "skips-a-number"],
)
def test_an_unreadable_journal_is_a_storage_error_not_a_crash(
    tmp_path: Path, damage: bytes
) -> None:
    store = LocalBlobStore(tmp_path)
    uid = store.start_upload("u/k")
    store.put_part("u/k", uid, 1, [b"kept"])
    with (tmp_path / ".staging" / uid / "journal").open("ab") as f:
        f.write(damage)
    for reader in (store, LocalBlobStore(tmp_path)):  # read on, or read whole
        with pytest.raises(Unavailable) as caught:
            reader.list_parts("u/k", uid)
        assert "新建上传" in str(caught.value)
        with pytest.raises(Unavailable):
            reader.put_part("u/k", uid, 2, [b"x"])


class _ClientGone(Exception):
    pass


def test_a_write_cut_short_leaves_nothing_behind(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")

    def cut() -> Iterator[bytes]:
        yield b"x" * (1 << 20)
        raise _ClientGone("the body ended early")

    with pytest.raises(_ClientGone):
        store.write("originals/sha256/ab/cd/abcd", cut())
    with pytest.raises(_ClientGone):
        store.write("derivatives/x/thumb", cut(), write_once=False)
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert files == []  # no object, no temporary file (written-once ones have no name)
    assert not store.exists("originals/sha256/ab/cd/abcd")


def test_a_stream_is_refused_as_blocks(tmp_path: Path) -> None:
    import io

    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(TypeError, match="read_blocks"):
        store.write("derivatives/x/note", io.BytesIO(b"line one\nline two\n"))  # type: ignore[arg-type]


_SIZE = 3 * (1 << 20) + 12_345  # a photo: whole pages, then a partial one


def _photo_buffer() -> mmap.mmap:
    buffer = mmap.mmap(-1, _SIZE + 8192)  # page-aligned, as the receive buffers are
    buffer.write(os.urandom(len(buffer)))
    return buffer


@settings(max_examples=40, deadline=None)
@given(
    start=st.sampled_from([0, 1, 4096, 4097]),
    cuts=st.lists(st.integers(0, _SIZE), max_size=5),
    as_bytes=st.sets(st.integers(0, 5)),
)
def test_blocks_written_past_the_page_cache_come_back_byte_for_byte(
    tmp_path_factory: pytest.TempPathFactory, start: int, cuts: list[int], as_bytes: set[int]
) -> None:
    """Aligned whole pages go to the disk directly, anything else through the cache —
    any split of any buffer, at any offset, reads back as sent, with its digest."""
    store = LocalBlobStore(tmp_path_factory.mktemp("direct"))
    view = memoryview(_photo_buffer())[start : start + _SIZE]
    edges = [0, *sorted(cuts), _SIZE]
    blocks = [view[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    blocks = [bytes(b) if i in as_bytes else b for i, b in enumerate(blocks)]
    expected = bytes(view)
    sha256 = "sha256:" + hashlib.sha256(expected).hexdigest()
    info = store.write("photos/p", blocks, max_size=_SIZE, expected_sha256=sha256)
    assert info.sha256 == sha256 and info.size == _SIZE
    assert read_all(store, "photos/p") == expected


def _direct_io(directory: Path) -> bool:
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    return True


def test_a_photo_in_a_page_aligned_buffer_skips_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _direct_io(tmp_path):
        pytest.skip("this filesystem has no O_DIRECT")
    switched: list[bool] = []
    real = fcntl.fcntl

    def spy(fd: int, command: int, arg: int = 0) -> int:
        if command == fcntl.F_SETFL:
            switched.append(bool(arg & os.O_DIRECT))
        return real(fd, command, arg)

    monkeypatch.setattr(fcntl, "fcntl", spy)
    view = memoryview(_photo_buffer())[:_SIZE]
    blocks = [view[i : i + (1 << 20)] for i in range(0, _SIZE, 1 << 20)]
    LocalBlobStore(tmp_path).write("photos/p", blocks, max_size=_SIZE)
    assert switched == [True, False]  # on for the whole pages, off for the last partial one
    assert read_all(LocalBlobStore(tmp_path), "photos/p") == bytes(view)


def test_a_filesystem_refusing_direct_io_gets_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fcntl.fcntl
    tried: list[int] = []

    def refuse(fd: int, command: int, arg: int = 0) -> int:
        if command == fcntl.F_SETFL and arg & os.O_DIRECT:
            tried.append(fd)
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))  # what tmpfs once said
        return real(fd, command, arg)

    monkeypatch.setattr(fcntl, "fcntl", refuse)
    view = memoryview(_photo_buffer())[:_SIZE]
    store = LocalBlobStore(tmp_path)
    blocks = [view[i : i + (1 << 20)] for i in range(0, _SIZE, 1 << 20)]
    store.write("photos/p", blocks, max_size=_SIZE)
    assert len(tried) == 1  # asked once, then every block went through the cache
    assert read_all(store, "photos/p") == bytes(view)
