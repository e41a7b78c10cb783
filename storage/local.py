"""``LocalBlobStore``: the embedded default, objects as files under one root directory.

Layout under ``root``::

    <key>                       objects, one file per key (keys checked by storage.keys)
    .tmp/                       temp files of ``write`` (same filesystem: rename is atomic)
    .staging/<upload id>/       one resumable upload: ``key``, ``data``, ``journal``

Durability: every object is written to a temp file, fsynced, then linked (write-once)
or renamed into place, and the directory is fsynced. Write-once uses ``os.link``, which
fails if the key exists, so two writers of one key cannot both win.

Resumable parts are appended in order to one ``data`` file (fsynced after each part);
the ``journal`` gets one fsynced line per part (``{"n": 3, "size": 16777216}``). Bytes
past the last journalled part are leftovers of an interrupted part and are cut off; so
is a torn last journal line (no newline) before the next record is appended, and a line
that still cannot be read is ``Unavailable``, never a bare ``ValueError``.
Completion links ``data`` to the key: no second copy of the bytes. Parts are not hashed
here: a caller that kept its own running SHA-256 passes it as ``verified_sha256``;
otherwise the data file is re-hashed once at completion.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from storage.errors import (
    AlreadyExists,
    DeleteRefused,
    DigestMismatch,
    InvalidParts,
    NotFound,
    StorageError,
    StorageFull,
    Unavailable,
    UploadNotFound,
)
from storage.hashing import Digester, HashWorker, digest_blocks, limited, read_blocks
from storage.keys import (
    check_key,
    check_prefix,
    is_original_key,
    new_quarantine_token,
    quarantine_key,
    quarantine_note,
    quarantine_note_key,
)
from storage.port import (
    BLOCK_SIZE,
    BlobInfo,
    Block,
    Capabilities,
    ObjectStat,
    PartInfo,
    UploadInfo,
    completion_problems,
)

_UPLOAD_ID_LEN = 32


@contextlib.contextmanager
def _os_errors(key: str | None) -> Iterator[None]:
    """Turn any ``OSError`` not handled on the spot into a storage error."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(
                "存储空间已满，请清理磁盘或扩容后重试 / storage full: free disk space or "
                f"grow the volume, then retry ({exc.strerror})",
                key=key,
            ) from exc
        raise Unavailable(
            f"本地存储读写失败，请检查磁盘与权限后重试 / local storage I/O failed: {exc}",
            key=key,
        ) from exc


_THREADED_WRITE = 256 << 10
"""Blocks at least this large are written by a worker thread (smaller ones inline)."""


class _Writer:
    """Writes blocks through ``write`` in a pooled worker thread (a
    :class:`storage.hashing.HashWorker` lane, as the digests use), a few blocks behind.

    Small blocks (below ``_THREADED_WRITE``) are written inline until a large one comes.
    After a failed write nothing more is written, and the error is raised again in the
    caller as it was raised (``ENOSPC`` stays an ``OSError`` for ``_os_errors``): at its
    next block, or on leaving the ``with`` block, which waits until every queued block is
    written. A thread started and joined for each object cost more than a photo's write.
    """

    def __init__(self, write: Callable[[Block], object]) -> None:
        self._write = write
        self._worker: HashWorker | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> _Writer:
        return self

    def update(self, block: Block) -> None:
        """The worker's side: write ``block`` unless a write already failed."""
        if self._error is None:
            try:
                self._write(block)
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc
                raise

    def write(self, block: Block) -> None:
        """Write ``block`` (queued once blocks are large); raise an earlier write's error."""
        if self._error is not None:
            raise self._error
        if self._worker is None:
            if len(block) < _THREADED_WRITE:
                self._write(block)
                return
            self._worker = HashWorker(self)
        self._worker.update(block)

    def __exit__(self, exc_type: object, *rest: object) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            try:
                worker.close()
            except Exception:
                if exc_type is None:
                    raise
        if self._error is not None and exc_type is None:
            raise self._error


def _sync(fd: int, offset: int = 0, length: int = 0) -> None:
    """Make the file's bytes durable, then let the kernel drop them from the page cache
    (``[offset, offset + length)``; ``length=0``: to the end).

    Evidence is written once and read again rarely and later (inspection, export): kept
    cached it would only grow the page cache into memory the machine has never touched,
    and on a virtual machine that first touch made copying a photo into the cache cost
    ten times the copy itself (P1: 5 ms per 3 MiB written; 0.5 ms when the pages of the
    previous photo are reused). Dropping clean pages after ``fsync`` loses nothing.
    """
    os.fsync(fd)
    if _FADV_DONTNEED is not None:
        os.posix_fadvise(fd, offset, length, _FADV_DONTNEED)


_FADV_DONTNEED: int | None = getattr(os, "POSIX_FADV_DONTNEED", None)


_PAGE = 4096
"""``O_DIRECT``'s alignment: buffer addresses, lengths and file offsets in whole pages."""

_O_DIRECT: int | None = getattr(os, "O_DIRECT", None)


def _address(block: Block) -> int:
    """Where a writable block's bytes start in memory (-1 for a read-only block)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(block))
    except (TypeError, ValueError):
        return -1


class _DirectWrites:
    """Writes to ``fd`` (from ``offset``) that skip the page cache where they can.

    Copied into the page cache, a photo cost more CPU than its SHA-256: the copy, the
    write-back started from there, the pages dropped after ``fsync`` (≈ 0.85 ms per
    3 MiB here). With ``O_DIRECT`` the disk reads the receive buffer itself (≈ 0.3 ms; the
    same wall time, ``fsync`` included). Whole pages of page-aligned blocks — the ingest's
    receive buffers are anonymous mappings — go direct; the rest (a last partial page, a
    block of ``bytes``, every block on a filesystem that refuses ``O_DIRECT``) through
    the cache. ``fsync`` makes both durable.

    Left alone, the kernel writes cached pages back seconds later, and the ``fsync`` at
    the end of a part waited for all of it (80–100 ms for 256 MiB here, while nothing else
    happened): a large block that goes through the cache has its write-back started at
    once (``POSIX_FADV_DONTNEED`` on the pages just written, Linux), so the disk works
    while the next block arrives.
    """

    def __init__(self, fd: int, offset: int) -> None:
        self._fd = fd
        self._position = offset
        self._direct = False
        self._refused = _O_DIRECT is None

    def write(self, block: Block) -> None:
        view = memoryview(block)
        whole = len(view) - len(view) % _PAGE
        if (
            whole
            and not self._refused
            and self._position % _PAGE == 0
            and _address(view) % _PAGE == 0
            and self._switch(direct=True)
        ):
            try:
                self._write_all(view[:whole])
                view = view[whole:]
            except OSError as exc:  # an alignment this disk does not take: cached, then
                if exc.errno != errno.EINVAL:
                    raise
                self._refused = True
        if view:
            self._switch(direct=False)
            self._write_all(view)

    def _switch(self, *, direct: bool) -> bool:
        """Turn ``O_DIRECT`` on or off for the descriptor; False if refused."""
        if direct == self._direct:
            return True
        assert _O_DIRECT is not None
        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        try:
            fcntl.fcntl(
                self._fd, fcntl.F_SETFL, flags | _O_DIRECT if direct else flags & ~_O_DIRECT
            )
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._refused = True
            return False
        self._direct = direct
        return True

    def _write_all(self, view: memoryview) -> None:
        start = self._position
        while view:
            n = os.write(self._fd, view)
            self._position += n
            view = view[n:]
        written = self._position - start
        if not self._direct and written >= _THREADED_WRITE and _FADV_DONTNEED is not None:
            os.posix_fadvise(self._fd, start, written, _FADV_DONTNEED)


_TMPFILE_LINKABLE = hasattr(os, "O_TMPFILE") and Path("/proc/self/fd").is_dir()
"""Files without a name can be made and later linked by name (Linux)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _not_found(key: str) -> NotFound:
    return NotFound(f"对象不存在 / no object at key {key!r}", key=key)


_JOURNAL_TAIL = 4096
"""Bytes at a journal's end enough to find its last whole line (a record is ≈ 30)."""


@dataclass
class _JournalRead:
    """An upload's journal as far as this process has read it: the bytes up to and
    including its last newline then, and the sizes of the parts they record (part ``n``
    is ``sizes[n - 1]``) with their sum. Those bytes never change (records are only
    appended; a crash can leave a torn line only after them)."""

    read_to: int = 0
    sizes: builtins.list[int] = field(default_factory=list)
    total: int = 0

    def record(self, number: int, size: int) -> None:
        """Part ``number`` is ``size`` bytes; any part from ``number`` on is replaced."""
        self.total -= sum(self.sizes[number - 1 :])
        del self.sizes[number - 1 :]
        self.sizes.append(size)
        self.total += size

    @property
    def parts(self) -> builtins.list[PartInfo]:
        return [PartInfo(n, size, f"{n}-{size}") for n, size in enumerate(self.sizes, 1)]


class _JournalsRead:
    """:class:`_JournalRead` of the uploads this process used last (at most ``keep``).

    A reader takes an upload's entry out while it reads on, and puts it back after: two
    threads reading one journal at once each read from a consistent entry (one of them
    from the start), never from one the other is changing."""

    def __init__(self, keep: int = 64) -> None:
        self._keep = keep
        self._read: collections.OrderedDict[str, _JournalRead] = collections.OrderedDict()
        self._lock = threading.Lock()

    def take(self, upload_id: str) -> _JournalRead:
        with self._lock:
            return self._read.pop(upload_id, None) or _JournalRead()

    def keep(self, upload_id: str, read: _JournalRead) -> None:
        with self._lock:
            self._read[upload_id] = read
            while len(self._read) > self._keep:
                self._read.popitem(last=False)


class LocalBlobStore:
    """A ``BlobStore`` on the local filesystem under ``root`` (created if missing)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self._tmp = self.root / ".tmp"
        self._staging = self.root / ".staging"
        self._journals = _JournalsRead()
        with _os_errors(None):
            for directory in (self.root, self._tmp, self._staging):
                directory.mkdir(parents=True, exist_ok=True)

    # -- basics -------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """Native write-once (``link``), fsync durability, no part size limits."""
        return Capabilities(
            backend="local",
            write_once_native=True,
            object_lock=False,
            fsync=True,
            min_part_size=0,
            max_part_size=None,
            max_parts=10_000,
        )

    def ping(self) -> None:
        """Raise ``Unavailable`` unless the root is a writable directory."""
        if not (self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)):
            raise Unavailable(
                f"本地存储目录不可写，请检查路径与权限 / storage root not writable: {self.root}"
            )

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _makedirs(self, directory: Path) -> builtins.list[Path]:
        """Create ``directory`` below the root; the new levels' parents, which the caller
        fsyncs (after its own last change: on a journalling filesystem one commit then
        covers them all)."""
        missing = []
        while not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):
                new.mkdir()
        return [new.parent for new in missing]

    def _publish(
        self,
        source: Path,
        key: str,
        *,
        write_once: bool,
        unlink_source: bool = True,
        path: Path | None = None,
    ) -> None:
        """Make ``source`` (fsynced) appear at ``key`` (at ``path`` when the caller has it)
        atomically; the source name goes away (``unlink_source=False``: a file without a
        name, ``/proc/self/fd/N``)."""
        path = path or self._path(key)
        new_parents = self._makedirs(path.parent)
        if write_once:
            directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                # linkat with AT_SYMLINK_FOLLOW (a plain link() would link /proc's symlink)
                os.link(source, path.name, dst_dir_fd=directory, follow_symlinks=True)
            except FileExistsError:
                raise AlreadyExists(
                    f"对象已存在，不可覆盖 / write-once key already exists: {key!r}", key=key
                ) from None
            except IsADirectoryError:
                raise AlreadyExists(
                    f"键与已有目录冲突 / key is a prefix: {key!r}", key=key
                ) from None
            finally:
                os.close(directory)
            if unlink_source:
                os.unlink(source)
        else:
            os.replace(source, path)
        for parent in (path.parent, *new_parents):
            _fsync_dir(parent)

    def _new_file(self, write_once: bool) -> tuple[int, Path, bool]:
        """A file to write an object into: (descriptor, path to publish, has a name).

        Write-once objects get a file without a name (``O_TMPFILE``), linked into place
        through ``/proc/self/fd`` once complete: a write cut short leaves nothing behind,
        and no temporary name is created and removed. Elsewhere (no ``O_TMPFILE``, or an
        object to replace) a named temporary file under ``.tmp/``.
        """
        if write_once and _TMPFILE_LINKABLE:
            try:
                fd = os.open(self._tmp, os.O_TMPFILE | os.O_WRONLY, 0o600)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
            else:
                return fd, Path(f"/proc/self/fd/{fd}"), False
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="w-")
        return fd, Path(name), True

    @staticmethod
    def _stream_to(
        fileobj: BinaryIO,
        blocks: Iterator[Block],
        digester: Digester | None,
        *,
        offset: int = 0,
    ) -> int:
        """Write ``blocks`` to ``fileobj``'s descriptor from ``offset``; return the byte count.

        Large blocks are written by a :class:`_Writer` thread while the next block is
        produced (a socket read, for an upload): both spend their time in system calls
        that release the GIL, so on two cores they overlap instead of taking turns. Each
        block goes to the disk as :class:`_DirectWrites` can (from the receive buffer, or
        through the cache with its write-back started), so the ``fsync`` that follows has
        little left to wait for.
        """
        size = 0
        fileobj.flush()
        write = _DirectWrites(fileobj.fileno(), offset).write
        with _Writer(write) as writer:
            for block in blocks:
                if digester is not None:
                    digester.update(block)  # queued first, so hashing runs while we write
                writer.write(block)
                size += len(block)
        return size

    # -- whole objects ------------------------------------------------------------------

    def write(
        self,
        key: str,
        blocks: Iterable[Block],
        *,
        max_size: int | None = None,
        expected_sha256: str | None = None,
        write_once: bool = True,
        sha512: bool = True,
    ) -> BlobInfo:
        """Stream to a temp file (hashing alongside), fsync, then link/rename into place."""
        path = self._path(key)
        with _os_errors(key):
            if write_once and path.exists():
                raise AlreadyExists(
                    f"对象已存在，不可覆盖 / write-once key already exists: {key!r}", key=key
                )
            fd, tmp, named = self._new_file(write_once)
            try:
                # a photo's blocks as well are written by a writer thread while the next
                # is received: written direct, each waits for the disk (P1, one client:
                # +7 % against writing them inline, which held the receive up)
                digester = Digester(sha512=sha512)
                with os.fdopen(fd, "wb", closefd=False) as f, digester:
                    self._stream_to(f, limited(blocks, limit=max_size, key=key), digester)
                    f.flush()
                    _sync(fd)
                if expected_sha256 is not None and digester.sha256 != expected_sha256:
                    raise DigestMismatch(
                        "数据摘要与预期不符，未保存 / SHA-256 mismatch, nothing stored at "
                        f"{key!r}: expected {expected_sha256}, got {digester.sha256}",
                        key=key,
                        expected=expected_sha256,
                        actual=digester.sha256,
                    )
                self._publish(tmp, key, write_once=write_once, unlink_source=named, path=path)
            finally:
                os.close(fd)
                if named:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
        return BlobInfo(key, digester.size, digester.sha256, digester.sha512)

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``[start, end)`` in blocks; ``NotFound`` is raised right away."""
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid range [{start}, {end})")
        path = self._path(key)
        with _os_errors(key):
            try:
                f = path.open("rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise _not_found(key) from None
            size = os.fstat(f.fileno()).st_size
        stop = size if end is None else min(end, size)
        return self._blocks(f, key, min(start, stop), stop)

    def _blocks(self, f: object, key: str, start: int, stop: int) -> Iterator[bytes]:
        with f, _os_errors(key):  # type: ignore[attr-defined]
            f.seek(start)  # type: ignore[attr-defined]
            remaining = stop - start
            while remaining > 0:
                block = f.read(min(BLOCK_SIZE, remaining))  # type: ignore[attr-defined]
                if not block:
                    raise Unavailable(f"对象在读取时被截断 / object shrank while read: {key!r}")
                remaining -= len(block)
                yield block

    def stat(self, key: str) -> ObjectStat:
        """Size and modification time; ``NotFound`` if absent."""
        path = self._path(key)
        with _os_errors(key):
            try:
                st = path.stat()
            except (FileNotFoundError, NotADirectoryError):
                raise _not_found(key) from None
        if not path.is_file():
            raise _not_found(key)
        return ObjectStat(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def exists(self, key: str) -> bool:
        """True if a file is stored at ``key``."""
        path = self._path(key)
        with _os_errors(key):
            return path.is_file()

    def delete(self, key: str, *, retention_expired: bool = False) -> None:
        """Delete ``key``; originals only via ``retention_expired=True``."""
        path = self._path(key)
        if is_original_key(key) and not retention_expired:
            raise DeleteRefused(
                "原始证据不可删除（保管期限未满）/ originals are write-once; delete only "
                f"through the retention-expiry path: {key!r}",
                key=key,
            )
        with _os_errors(key):
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise _not_found(key) from None
            _fsync_dir(path.parent)

    def quarantine(self, key: str, reason: str) -> str:
        """Move ``key`` under ``quarantine/<token>/`` beside a JSON note of ``reason``."""
        path = self._path(key)
        token = new_quarantine_token()
        new_key = quarantine_key(key, token)
        with _os_errors(key):
            if not path.is_file():
                raise _not_found(key)
            note = quarantine_note(key, reason, bytes_kept=True, object=new_key)
            self.write(quarantine_note_key(token), [note])
            target = self._path(new_key)
            new_parents = self._makedirs(target.parent)
            os.rename(path, target)
            for directory in (target.parent, path.parent, *new_parents):
                _fsync_dir(directory)
        return new_key

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, sorted."""
        check_prefix(prefix)
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        top = self.root.joinpath(*base.split("/")) if base else self.root
        found: builtins.list[str] = []
        with _os_errors(None):
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                rel = Path(dirpath).relative_to(self.root).as_posix()
                for name in filenames:
                    key = name if rel == "." else f"{rel}/{name}"
                    if key.startswith(prefix) and not name.startswith("."):
                        found.append(key)
        return iter(sorted(found))

    # -- resumable uploads --------------------------------------------------------------

    def _upload_dir(self, key: str, upload_id: str) -> Path:
        check_key(key)
        directory = self._staging / upload_id
        missing = UploadNotFound(
            f"上传不存在或已结束 / no open upload {upload_id!r} for key {key!r}", key=key
        )
        if len(upload_id) != _UPLOAD_ID_LEN or not upload_id.isalnum():
            raise missing
        with _os_errors(key):
            try:
                stored_key = (directory / "key").read_text("utf-8")
            except (FileNotFoundError, NotADirectoryError):
                raise missing from None
        if stored_key != key:
            raise missing
        return directory

    def _read_journal(self, directory: Path) -> builtins.list[PartInfo]:
        """The parts the journal records (see :meth:`_journal`)."""
        return self._journal(directory).parts

    def _journal(self, directory: Path) -> _JournalRead:
        """What the journal records; a torn last line (a crash mid-append) is ignored.

        A line that cannot be read is a torn record followed by the next one (written by
        versions that appended after a torn line): its last record is kept. Anything else
        unreadable is ``Unavailable`` (the upload cannot be trusted; start a new one).

        Only the lines added since this process last read the journal are read
        (:class:`_JournalsRead`): every part is put after reading it, and reading it whole
        each time made an upload of n parts read n²/2 lines — with the browser's 4 MiB
        chunks a 2 GiB video is 512 parts, and the store allows 10,000.
        """
        upload_id = directory.name
        known = self._journals.take(upload_id)
        with (directory / "journal").open("rb") as j:
            if os.fstat(j.fileno()).st_size < known.read_to:
                known = _JournalRead()  # not the journal read before: read it again
            j.seek(known.read_to)
            added = j.read()
        whole = added.rfind(b"\n") + 1  # after it: "" or an interrupted, unsynced line
        for line in added[:whole].split(b"\n")[:-1]:
            number, size = _journal_record(line, upload_id)
            if number > len(known.sizes) + 1:  # never written so: parts go in order
                raise _damaged_journal(upload_id)
            known.record(number, size)
        known.read_to += whole
        self._journals.keep(upload_id, _JournalRead(known.read_to, list(known.sizes), known.total))
        return known

    @staticmethod
    def _append_journal(directory: Path, number: int, size: int) -> None:
        """Append one fsynced record, first cutting off a torn last line (no newline)."""
        with (directory / "journal").open("r+b") as j:
            end = os.fstat(j.fileno()).st_size
            start = max(0, end - _JOURNAL_TAIL)  # a torn line is shorter than one record
            j.seek(start)
            tail = j.read()
            if start and b"\n" not in tail:  # no whole line in sight: look at all of it
                j.seek(0)
                start, tail = 0, j.read()
            whole = start + tail.rfind(b"\n") + 1
            if whole != end:
                j.truncate(whole)
            j.seek(whole)
            j.write(json.dumps({"n": number, "size": size}).encode() + b"\n")
            j.flush()
            os.fsync(j.fileno())

    def start_upload(self, key: str) -> str:
        """Create the staging directory of a new upload; return its id."""
        check_key(key)
        upload_id = uuid.uuid4().hex
        directory = self._staging / upload_id
        with _os_errors(key):
            directory.mkdir()
            for name, content in (("data", b""), ("journal", b""), ("key", key.encode())):
                with (directory / name).open("wb") as f:
                    f.write(content)
                    os.fsync(f.fileno())
            _fsync_dir(directory)
            _fsync_dir(self._staging)
        return upload_id

    def put_part(self, key: str, upload_id: str, number: int, blocks: Iterable[Block]) -> PartInfo:
        """Append part ``number`` to the upload's data file (or replace the last part)."""
        directory = self._upload_dir(key, upload_id)
        with _os_errors(key):
            journal = self._journal(directory)
            count = len(journal.sizes)
            if number == count + 1:
                offset = journal.total
            elif count and number == count:
                offset = journal.total - journal.sizes[-1]
            else:
                raise InvalidParts(
                    f"分片须按顺序上传 / parts go in order: expected {count + 1} "
                    f"(or {count} to replace the last), got {number}",
                    key=key,
                )
            with (directory / "data").open("r+b") as f:
                f.truncate(offset)
                f.seek(offset)
                size = self._stream_to(f, limited(blocks, key=key), None, offset=offset)
                f.flush()
                _sync(f.fileno(), offset, size)  # once per part, not per block
            self._append_journal(directory, number, size)
        return PartInfo(number, size, f"{number}-{size}")

    def list_parts(self, key: str, upload_id: str) -> builtins.list[PartInfo]:
        """Parts recorded in the upload's journal."""
        directory = self._upload_dir(key, upload_id)
        with _os_errors(key):
            return self._read_journal(directory)

    def _finish_data(
        self, key: str, upload_id: str, parts: builtins.list[PartInfo]
    ) -> tuple[Path, int]:
        """Check ``parts`` against the journal and cut the data file to their total."""
        directory = self._upload_dir(key, upload_id)
        problems = completion_problems(parts, self._read_journal(directory))
        if problems:
            raise InvalidParts(
                "分片清单与已存储分片不符 / parts do not match the stored upload", problems, key=key
            )
        total = sum(p.size for p in parts)
        data = directory / "data"
        if data.stat().st_size != total:
            with data.open("r+b") as f:
                f.truncate(total)
                os.fsync(f.fileno())
        return data, total

    @staticmethod
    def _rehash(data: Path) -> Digester:
        with data.open("rb") as f:
            return digest_blocks(read_blocks(f))

    def _remove_upload(self, upload_id: str) -> None:
        self._journals.take(upload_id)
        shutil.rmtree(self._staging / upload_id, ignore_errors=True)
        _fsync_dir(self._staging)

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: builtins.list[PartInfo],
        *,
        expected_sha256: str | None = None,
        verified_sha256: str | None = None,
        write_once: bool = True,
    ) -> BlobInfo:
        """Verify, then link the upload's data file to ``key`` (no copy of the bytes)."""
        with _os_errors(key):
            data, total = self._finish_data(key, upload_id, parts)
            if verified_sha256 is not None:
                sha256, sha512 = verified_sha256, None
            else:
                digester = self._rehash(data)
                sha256, sha512 = digester.sha256, digester.sha512
            if expected_sha256 is not None and sha256 != expected_sha256:
                raise DigestMismatch(
                    "上传数据摘要与预期不符，未保存 / SHA-256 mismatch, nothing stored at "
                    f"{key!r}: expected {expected_sha256}, got {sha256}",
                    key=key,
                    expected=expected_sha256,
                    actual=sha256,
                )
            path = self._path(key)
            try:
                self._publish(data, key, write_once=write_once)
            except AlreadyExists:
                if not os.path.samefile(data, path):
                    raise
                # an earlier completion linked the data and crashed before cleaning up
            self._remove_upload(upload_id)
        return BlobInfo(key, total, sha256, sha512)

    def quarantine_upload(
        self, key: str, upload_id: str, parts: builtins.list[PartInfo], reason: str
    ) -> str:
        """Move the upload's bytes under ``quarantine/<token>/<key>`` with a note."""
        with _os_errors(key):
            data, total = self._finish_data(key, upload_id, parts)
            token = new_quarantine_token()
            new_key = quarantine_key(key, token)
            note = quarantine_note(key, reason, bytes_kept=True, object=new_key, size=total)
            self.write(quarantine_note_key(token), [note])
            self._publish(data, new_key, write_once=True)
            self._remove_upload(upload_id)
        return new_key

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Delete the upload's staging directory."""
        self._upload_dir(key, upload_id)
        with _os_errors(key):
            self._remove_upload(upload_id)

    def list_incomplete_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]:
        """Open uploads whose key starts with ``prefix``, oldest first."""
        check_prefix(prefix)
        uploads: builtins.list[UploadInfo] = []
        with _os_errors(None):
            for directory in self._staging.iterdir():
                try:
                    key = (directory / "key").read_text("utf-8")
                    started = datetime.fromtimestamp(directory.stat().st_mtime, UTC)
                except FileNotFoundError:
                    continue  # removed meanwhile, or a start that never finished
                if key.startswith(prefix):
                    uploads.append(UploadInfo(key, directory.name, started))
        return sorted(uploads, key=lambda u: (u.started or datetime.min.replace(tzinfo=UTC), u.key))


def _journal_record(line: bytes, upload_id: str) -> tuple[int, int]:
    """``(number, size)`` of one journal line; ``Unavailable`` if it cannot be read."""
    for start in (0, line.rfind(b"{")):  # whole line, else the record after a torn one
        try:
            record = json.loads(line[start:])
            number, size = int(record["n"]), int(record["size"])
        except (ValueError, TypeError, KeyError):
            continue
        if number >= 1 and size >= 0:
            return number, size
    raise _damaged_journal(upload_id)


def _damaged_journal(upload_id: str) -> Unavailable:
    return Unavailable(
        f"上传 {upload_id} 的分片日志已损坏，无法续传；请新建上传重新发送该文件 / the part "
        f"journal of upload {upload_id} is damaged and cannot be resumed: create a new upload "
        "and send the file again"
    )
