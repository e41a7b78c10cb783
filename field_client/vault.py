"""The device vault (本机保管库): private copies of captured files, kept until receipted.

Capturing copies each original into the vault while hashing it in fixed blocks, in one
pass; the original is only ever opened for reading. A capture's files are first copied
into ``vault/.staging/<manifest_id>/``; each copy becomes read-only (0400) only once it is
complete and synced. The signed manifest is then written beside them as a *pending
marker* (``.pending.json``), the directory is renamed into place (``vault/<manifest_id>/``)
in one step, the capture is queued, and only then is the marker removed. Vault files stay
read-only — the queue uploads these bytes, never the originals, and never re-hashes them
silently: a changed vault file is reported.

The vault never deletes a capture it cannot prove incomplete. After a crash,
:meth:`Vault.recover` (capture lock held) looks only at what a capture of this queue left
half-done:

* ``.staging/<id>/`` holding no complete copy (empty, or one partly written file) is
  deleted — it was never signed or queued, and the originals are untouched;
* ``.staging/<id>/`` holding a complete copy, and ``<id>/`` still carrying the pending
  marker while the queue does not know it, are moved to ``vault/.orphans/<id>/``;
* ``<id>/`` with the marker that *is* queued just loses the marker.

A vault directory without the marker that the queue does not know (a lost or recreated
queue database, another ``--home`` pointed at this vault) is left where it is, so restoring
the queue brings it back. :meth:`Vault.unqueued` lists both kinds for ``status``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from field_client.config import fsync_dir
from field_client.errors import CaptureError, VaultFileChanged, VaultFileMissing

__all__ = [
    "BLOCK_SIZE",
    "PENDING_MARKER",
    "Recovery",
    "Staging",
    "Vault",
    "VaultFile",
    "hash_file",
    "read_blocks",
]

BLOCK_SIZE = 1024 * 1024
"""Bytes read and hashed per step when copying or checking a file."""

PENDING_MARKER = ".pending.json"
"""File in a capture directory until the capture is queued; holds the signed manifest."""

_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")


@dataclass(frozen=True)
class VaultFile:
    """A file in the vault: where it is, its size and ``sha256:<hex>``."""

    path: Path
    size: int
    sha256: str


def read_blocks(path: Path, block_size: int = BLOCK_SIZE, offset: int = 0) -> Iterator[bytes]:
    """Yield the bytes of ``path`` from ``offset`` in blocks of ``block_size``."""
    with open(path, "rb") as f:
        f.seek(offset)
        while block := f.read(block_size):
            yield block


def hash_file(path: Path, block_size: int = BLOCK_SIZE) -> tuple[int, str]:
    """``(size, "sha256:<hex>")`` of ``path``, read in fixed blocks."""
    h = hashlib.sha256()
    size = 0
    for block in read_blocks(path, block_size):
        h.update(block)
        size += len(block)
    return size, "sha256:" + h.hexdigest()


def vault_name(index: int, name: str) -> str:
    """The vault file name for file ``index``: a number and the original's safe suffix.

    The client's own file name is metadata only (it is in the manifest); it never
    becomes a path here.
    """
    suffix = Path(name).suffix
    return f"{index:04d}{suffix.lower() if _SUFFIX.fullmatch(suffix) else ''}"


class Staging:
    """Files of one capture being copied in; :meth:`commit` moves them into the vault."""

    def __init__(self, vault: Vault, manifest_id: str) -> None:
        self.vault = vault
        self.manifest_id = manifest_id
        self.dir = vault.staging_dir / manifest_id
        self.dir.mkdir(parents=True, mode=0o700)
        self.files: list[VaultFile] = []

    def add(self, source: Path, index: int, name: str) -> VaultFile:
        """Copy ``source`` in, hashing as it goes; the source is opened read-only.

        Raises :class:`CaptureError` if the source is not a readable regular file or
        changes while it is copied (e.g. a camera still writing it).
        """
        target = self.dir / vault_name(index, name)
        h = hashlib.sha256()
        size = 0
        try:
            before = os.stat(source)
            if not stat.S_ISREG(before.st_mode):
                raise CaptureError(
                    f"{source} 不是普通文件 / is not a regular file; capture files, not folders "
                    "(use `casetrail-field import DIR` for a folder)"
                )
            with open(source, "rb") as src, open(target, "xb") as dst:
                while block := src.read(self.vault.block_size):
                    h.update(block)
                    dst.write(block)
                    size += len(block)
                dst.flush()
                os.fsync(dst.fileno())
            after = os.stat(source)
        except FileNotFoundError:
            raise CaptureError(f"找不到文件 {source} / file not found; check the path") from None
        except PermissionError:
            raise CaptureError(
                f"无权读取 {source} / permission denied; check the file's permissions"
            ) from None
        except IsADirectoryError:
            raise CaptureError(
                f"{source} 是目录 / is a folder; use `casetrail-field import DIR`"
            ) from None
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or (
            size != after.st_size
        ):
            raise CaptureError(
                f"{source} 在采集过程中被改动 / changed while being captured "
                "(still being written?); wait until the recording is finished and capture again"
            )
        os.chmod(target, 0o400)
        entry = VaultFile(self.vault.root / self.manifest_id / target.name, size, _hex(h))
        self.files.append(entry)
        return entry

    def commit(self, manifest_json: str) -> Path:
        """Mark the capture pending, move it into the vault in one rename; return its directory.

        ``manifest_json`` (the signed manifest) is kept in the pending marker, so a capture
        that never got queued can still be told apart and explained. Call
        :meth:`Vault.settle` once the capture is queued.
        """
        marker = self.dir / PENDING_MARKER
        with open(marker, "x", encoding="utf-8") as f:
            f.write(manifest_json)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(self.dir)
        final = self.vault.root / self.manifest_id
        os.replace(self.dir, final)
        fsync_dir(self.vault.root)
        return final

    def abort(self) -> None:
        """Throw the staged copies away (the capture failed in this process; nothing was signed)."""
        _rmtree(self.dir)


def _hex(h: hashlib._Hash) -> str:
    return "sha256:" + h.hexdigest()


def _rmtree(path: Path) -> None:
    # Read-only (0400) files can be unlinked: only the directory's mode matters on POSIX.
    if path.exists():
        shutil.rmtree(path)


class Vault:
    """The vault directory of one home."""

    def __init__(self, root: Path, block_size: int = BLOCK_SIZE) -> None:
        self.root = root
        self.block_size = block_size
        self.staging_dir = root / ".staging"
        self.orphans_dir = root / ".orphans"

    def stage(self, manifest_id: str) -> Staging:
        """Start copying the files of capture ``manifest_id``."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return Staging(self, manifest_id)

    def check(self, path: Path, size: int, sha256: str) -> None:
        """Re-hash a vault file; raise if it is gone or differs from what was captured."""
        try:
            found_size, found = hash_file(path, self.block_size)
        except FileNotFoundError:
            raise VaultFileMissing(
                f"保管库中的文件 {path} 已丢失 / the captured copy is missing from the vault; "
                "the server will see a gap — record what happened"
            ) from None
        if (found_size, found) != (size, sha256):
            raise VaultFileChanged(
                f"保管库文件 {path} 在采集后被改动 / the vault copy changed after capture: "
                f"captured {size} bytes {sha256}, now {found_size} bytes {found}; "
                "the file cannot be sent as captured — report it and recapture if possible"
            )

    def settle(self, manifest_id: str) -> None:
        """Remove the pending marker of a capture that is now queued."""
        (self.root / manifest_id / PENDING_MARKER).unlink(missing_ok=True)
        fsync_dir(self.root / manifest_id)

    def remove(self, manifest_id: str) -> None:
        """Delete the vault copies of one capture (after retention)."""
        _rmtree(self.root / manifest_id)

    def captures(self) -> set[str]:
        """Manifest ids that have a directory in the vault."""
        if not self.root.exists():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")}

    def recover(self, queued: set[str]) -> Recovery:
        """After a crash: clean or set aside what interrupted captures left (see the module doc).

        ``queued`` are the manifest ids the queue holds. Call with the capture lock held.
        Never deletes a complete copy.
        """
        removed: list[str] = []
        set_aside: list[Path] = []
        settled: list[str] = []
        if self.staging_dir.exists():
            for p in sorted(self.staging_dir.iterdir()):
                if _holds_complete_copy(p):
                    set_aside.append(self._set_aside(p))
                else:
                    _rmtree(p)
                    removed.append(p.name)
        for name in sorted(self.captures()):
            if not (self.root / name / PENDING_MARKER).exists():
                continue  # not left by an interrupted capture: not ours to judge
            if name in queued:
                self.settle(name)
                settled.append(name)
            else:
                set_aside.append(self._set_aside(self.root / name))
        return Recovery(tuple(removed), tuple(set_aside), tuple(settled))

    def unqueued(self, queued: set[str]) -> list[Path]:
        """Capture directories holding copies the queue does not know: in place or set aside.

        Directories still carrying the pending marker are left out (a capture may be in
        progress; :meth:`recover` sets them aside if it crashed).
        """
        in_place = [
            self.root / name
            for name in sorted(self.captures() - queued)
            if not (self.root / name / PENDING_MARKER).exists()
        ]
        aside = sorted(p for p in self.orphans_dir.iterdir()) if self.orphans_dir.exists() else []
        return in_place + aside

    def _set_aside(self, path: Path) -> Path:
        self.orphans_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.orphans_dir / path.name
        n = 1
        while target.exists():
            target = self.orphans_dir / f"{path.name}.{n}"
            n += 1
        os.replace(path, target)
        fsync_dir(self.orphans_dir)
        fsync_dir(path.parent)
        return target


@dataclass(frozen=True)
class Recovery:
    """What :meth:`Vault.recover` did with the debris of interrupted captures."""

    removed: tuple[str, ...]
    """Half-staged captures holding no complete copy: deleted."""
    set_aside: tuple[Path, ...]
    """Complete copies that were never queued: moved to ``vault/.orphans/``."""
    settled: tuple[str, ...]
    """Queued captures whose pending marker was still there: marker removed."""


def _holds_complete_copy(path: Path) -> bool:
    # A staged copy turns read-only only after it is complete, synced and checked.
    if not path.is_dir():
        return False
    return any(
        f.is_file() and not f.name.startswith(".") and stat.S_IMODE(f.stat().st_mode) == 0o400
        for f in path.iterdir()
    )
