"""Streaming BagIt 1.0 (RFC 8493) writer: a sealed bag as tar or zip, byte range by byte range.

A bag is described by a :class:`BagRecipe` — the tag files' bytes and, for each payload
file, its bag path, size, recorded SHA-256/SHA-512 and storage key. The recipe is all a
server needs to produce the archive again, byte for byte (fixed times, owners, order),
so a resumed download (HTTP ``Range``) re-streams the same bytes from any offset.

Every digest of the payload manifests is known before the first byte (SHA-256 verified
at ingest against the device's signed manifest; SHA-512 recorded by the first re-read
after ingest), so the archive opens with its tag files — ``bagit.txt``,
``bag-info.txt``, the manifests, the ``casetrail/`` tag directory — and the payload
follows. A reader can therefore check a bag in one streaming pass. While streaming,
every payload file's size and SHA-256 are re-checked (hashed in a worker thread); a file
whose bytes differ from its record raises :class:`FixityMismatch` before anything after it is sent, so the
archive stays visibly incomplete (no end-of-archive marker, short of its
``Content-Length``).

Serialisations (RFC 8493 §4.2: one top-level directory, the bag's base directory):

* ``tar`` — POSIX pax (UTF-8 names), mode 0644, owner 0/0, mtime = the seal time,
  padded to 10240-byte records like GNU tar and Python's ``tarfile``;
* ``zip`` — stored (no compression: evidence media is already compressed), ZIP64
  everywhere, UTF-8 names, data descriptors after each payload file (its CRC-32 is
  computed on the way). A range that needs a CRC-32 of a file it does not stream (the
  central directory) re-reads that file once.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from server.archive.layout import encode_manifest_path
from storage.hashing import Digester
from storage.port import BLOCK_SIZE

ALGORITHMS = ("sha256", "sha512")
"""The digests of every manifest and tag manifest a bag carries."""
TAR_BLOCK = 512
TAR_RECORD = 20 * TAR_BLOCK


class BagFormat(StrEnum):
    """How a bag is serialised."""

    TAR = "tar"
    ZIP = "zip"

    @property
    def media_type(self) -> str:
        """HTTP ``Content-Type`` of the archive."""
        return "application/x-tar" if self is BagFormat.TAR else "application/zip"


class FixityMismatch(Exception):
    """A payload file's bytes differ from their record (size or digest) while streaming."""

    def __init__(self, entry: PayloadEntry, problems: Sequence[str]) -> None:
        self.entry = entry
        self.problems = tuple(problems)
        super().__init__(
            f"固定性校验失败，导出已中止 / fixity check failed, export aborted: {entry.path}: "
            + "; ".join(problems)
        )


@dataclass(frozen=True)
class PayloadEntry:
    """One payload file: bag path (``data/…``), size, recorded digests, where it is stored."""

    path: str
    size: int
    sha256: str
    sha512: str
    storage_key: str
    blake3: str | None = None
    """What the stream re-checks the file against (:func:`_verified_blocks`); not in the
    bag. None: not known when sealed (SHA-256 is re-checked instead)."""


@dataclass(frozen=True)
class TagEntry:
    """One tag file: bag path and its bytes."""

    path: str
    content: bytes


@dataclass(frozen=True)
class BagRecipe:
    """Everything needed to stream one sealed bag again, byte for byte."""

    format: BagFormat
    base: str
    """The bag's base directory name (the archive's one top-level directory)."""
    mtime: int
    """Seal time, seconds since the epoch (every member carries it)."""
    tags: tuple[TagEntry, ...]
    payload: tuple[PayloadEntry, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON form to keep beside the export (tag bytes in base64)."""
        return {
            "format": self.format.value,
            "base": self.base,
            "mtime": self.mtime,
            "tags": [
                {"path": t.path, "content": base64.b64encode(t.content).decode("ascii")}
                for t in self.tags
            ],
            "payload": [
                {
                    "path": p.path,
                    "size": p.size,
                    "sha256": p.sha256,
                    "sha512": p.sha512,
                    "storage_key": p.storage_key,
                    "blake3": p.blake3,
                }
                for p in self.payload
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BagRecipe:
        """Inverse of :meth:`to_json`."""
        return cls(
            BagFormat(data["format"]),
            str(data["base"]),
            int(data["mtime"]),
            tuple(TagEntry(t["path"], base64.b64decode(t["content"])) for t in data["tags"]),
            tuple(
                PayloadEntry(
                    p["path"],
                    p["size"],
                    p["sha256"],
                    p["sha512"],
                    p["storage_key"],
                    p.get("blake3"),  # absent from recipes sealed before BLAKE3 was kept
                )
                for p in data["payload"]
            ),
        )

    @property
    def payload_oxum(self) -> str:
        """``<octets>.<file count>`` of the payload."""
        return payload_oxum(self.payload)

    def length(self) -> int:
        """Total length of the serialised archive in bytes."""
        return self._layout[1]

    @cached_property
    def _layout(self) -> tuple[tuple[_Segment, ...], int]:
        """The archive's segments and total length, laid out once per recipe (a sealed
        export is measured, named in ``bag_sealed`` and streamed from the same layout)."""
        segments = tuple(
            _tar_segments(self) if self.format is BagFormat.TAR else _zip_segments(self)
        )
        return segments, sum(s.length for s in segments)


# --------------------------------------------------------------------------- bag text files


def payload_oxum(payload: Sequence[PayloadEntry]) -> str:
    """``Payload-Oxum`` value: total octets, a dot, number of files."""
    return f"{sum(p.size for p in payload)}.{len(payload)}"


def _hex(digest: str, algorithm: str) -> str:
    prefix = algorithm + ":"
    if not digest.startswith(prefix):
        raise ValueError(f"expected a {algorithm}:<hex> digest, got {digest!r}")
    return digest[len(prefix) :]


def manifest_text(lines: Sequence[tuple[str, str]]) -> bytes:
    """A BagIt manifest: ``<hex>  <path>`` lines (paths encoded per RFC 8493), sorted."""
    return "".join(
        f"{hexdigest}  {encode_manifest_path(path)}\n" for path, hexdigest in sorted(lines)
    ).encode("utf-8")


def payload_manifest(payload: Sequence[PayloadEntry], algorithm: str) -> bytes:
    """``manifest-<algorithm>.txt`` from the recorded digests."""
    return manifest_text([(p.path, _hex(getattr(p, algorithm), algorithm)) for p in payload])


def tag_manifest(tags: Sequence[TagEntry], algorithm: str) -> bytes:
    """``tagmanifest-<algorithm>.txt`` over ``tags`` (computed here from their bytes)."""
    return manifest_text([(t.path, hashlib.new(algorithm, t.content).hexdigest()) for t in tags])


BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def bag_info(fields: Sequence[tuple[str, str]]) -> bytes:
    """``bag-info.txt``: one ``Label: value`` line each (newlines in values become spaces)."""
    out = []
    for label, value in fields:
        clean = " ".join(str(value).replace("\r", " ").replace("\n", " ").split())
        out.append(f"{label}: {clean}\n")
    return "".join(out).encode("utf-8")


# --------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class _Literal:
    data: bytes

    @property
    def length(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class _Payload:
    index: int
    entry: PayloadEntry

    @property
    def length(self) -> int:
        return self.entry.size


@dataclass(frozen=True)
class _Deferred:
    """Bytes of known length that need the payload CRC-32s of ``needs`` (zip only)."""

    length: int
    needs: tuple[int, ...]
    make: Callable[[Mapping[int, int]], bytes]


_Segment = _Literal | _Payload | _Deferred


def _tar_header(recipe: BagRecipe, path: str, size: int) -> bytes:
    info = tarfile.TarInfo(f"{recipe.base}/{path}")
    info.size = size
    info.mtime = recipe.mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def _tar_pad(size: int) -> bytes:
    return b"\0" * (-size % TAR_BLOCK)


def _tar_segments(recipe: BagRecipe) -> list[_Segment]:
    out: list[_Segment] = []
    for tag in recipe.tags:  # the tag's own bytes, never copied into a bigger buffer
        out.append(_Literal(_tar_header(recipe, tag.path, len(tag.content))))
        out.append(_Literal(tag.content))
        if pad := _tar_pad(len(tag.content)):
            out.append(_Literal(pad))
    for i, entry in enumerate(recipe.payload):
        out.append(_Literal(_tar_header(recipe, entry.path, entry.size)))
        out.append(_Payload(i, entry))
        if pad := _tar_pad(entry.size):
            out.append(_Literal(pad))
    total = sum(s.length for s in out) + 2 * TAR_BLOCK
    out.append(_Literal(b"\0" * (2 * TAR_BLOCK + (-total % TAR_RECORD))))
    return out


# ZIP (APPNOTE 6.3.x): stored members, ZIP64 extra fields everywhere, data descriptors.
_ZIP_VERSION = 45
_ZIP_FLAGS = 0x0008 | 0x0800  # data descriptor follows; names are UTF-8
_U32 = 0xFFFFFFFF


def _dos_time(mtime: int) -> tuple[int, int]:
    t = time.gmtime(mtime)
    year = max(t.tm_year, 1980)
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), (
        ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    )


def _zip_local_header(name: bytes, mtime: int) -> bytes:
    dos_time, dos_date = _dos_time(mtime)
    extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0)
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            _ZIP_VERSION,
            _ZIP_FLAGS,
            0,
            dos_time,
            dos_date,
            0,
            _U32,
            _U32,
            len(name),
            len(extra),
        )
        + name
        + extra
    )


def _zip_descriptor(crc: int, size: int) -> bytes:
    return struct.pack("<IIQQ", 0x08074B50, crc, size, size)


_ZIP_DESCRIPTOR_LEN = 24


def _zip_central(name: bytes, mtime: int, crc: int, size: int, offset: int) -> bytes:
    dos_time, dos_date = _dos_time(mtime)
    extra = struct.pack("<HHQQQ", 0x0001, 24, size, size, offset)
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            (3 << 8) | _ZIP_VERSION,  # made by: UNIX
            _ZIP_VERSION,
            _ZIP_FLAGS,
            0,
            dos_time,
            dos_date,
            crc,
            _U32,
            _U32,
            len(name),
            len(extra),
            0,
            0,
            0,
            (0o100644 << 16),
            _U32,
        )
        + name
        + extra
    )


def _zip_end(count: int, cd_offset: int, cd_size: int) -> bytes:
    zip64_end = struct.pack(
        "<IQHHIIQQQQ",
        0x06064B50,
        44,
        (3 << 8) | _ZIP_VERSION,
        _ZIP_VERSION,
        0,
        0,
        count,
        count,
        cd_size,
        cd_offset,
    )
    locator = struct.pack("<IIQI", 0x07064B50, 0, cd_offset + cd_size, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, _U32, _U32, 0)
    return zip64_end + locator + end


def _descriptor_maker(index: int, size: int) -> Callable[[Mapping[int, int]], bytes]:
    def make(crcs: Mapping[int, int]) -> bytes:
        return _zip_descriptor(crcs[index], size)

    return make


def _zip_segments(recipe: BagRecipe) -> list[_Segment]:
    out: list[_Segment] = []
    offset = 0
    # (name, size, offset, crc or payload index)
    members: list[tuple[bytes, int, int, int | None, int | None]] = []
    for tag in recipe.tags:
        name = f"{recipe.base}/{tag.path}".encode()
        crc = zlib.crc32(tag.content)
        header = _zip_local_header(name, recipe.mtime)
        descriptor = _zip_descriptor(crc, len(tag.content))
        members.append((name, len(tag.content), offset, crc, None))
        out += [_Literal(header), _Literal(tag.content), _Literal(descriptor)]
        offset += len(header) + len(tag.content) + len(descriptor)
    for i, entry in enumerate(recipe.payload):
        name = f"{recipe.base}/{entry.path}".encode()
        header = _zip_local_header(name, recipe.mtime)
        members.append((name, entry.size, offset, None, i))
        out.append(_Literal(header))
        out.append(_Payload(i, entry))
        out.append(_Deferred(_ZIP_DESCRIPTOR_LEN, (i,), _descriptor_maker(i, entry.size)))
        offset += len(header) + entry.size + _ZIP_DESCRIPTOR_LEN
    cd_offset = offset
    cd_size = sum(46 + len(name) + 28 for name, *_ in members)

    def central(crcs: Mapping[int, int]) -> bytes:
        parts = [
            _zip_central(name, recipe.mtime, crc if crc is not None else crcs[index or 0], size, at)
            for name, size, at, crc, index in members
        ]
        return b"".join(parts) + _zip_end(len(members), cd_offset, cd_size)

    out.append(
        _Deferred(
            cd_size + 56 + 20 + 22,
            tuple(range(len(recipe.payload))),
            central,
        )
    )
    return out


# --------------------------------------------------------------------------- streaming


PayloadOpener = Callable[[str, int, int | None], Iterator[bytes]]
"""``open(storage_key, start, end)`` → blocks, as :meth:`storage.BlobStore.open`."""


def _verified_blocks(
    entry: PayloadEntry, blocks: Iterator[bytes], crc: list[int] | None
) -> Iterator[bytes]:
    """Pass ``blocks`` through, re-hashing; raise FixityMismatch at the end if they differ.

    The fixity check on the way out is size + the original's recorded BLAKE3 — found by
    the re-read whose SHA-256 matched the record, so the same BLAKE3 means the bytes the
    SHA-256 vouches for: a cryptographic digest at ≈ 9 GB/s where SHA-256 runs at ≈ 1.9
    and cost a CPU-bound export a third of its speed; SHA-256 where no BLAKE3 is recorded.
    Hashed in a worker thread while the blocks stream on. The SHA-512 manifest carries the
    digest recorded after ingest — SHA-512 would prove nothing more here.
    """
    by_blake3 = entry.blake3 is not None
    digester = Digester(sha256=not by_blake3, sha512=False, blake3=by_blake3)
    running = 0
    held = b""  # the last block waits for the verdict: a bad file never arrives whole
    with digester:
        for block in blocks:
            digester.update(block)
            if crc is not None:
                running = zlib.crc32(block, running)
            if digester.size > entry.size:
                break
            if held:
                yield held
            held = block
    problems = []
    if digester.size != entry.size:
        problems.append(f"长度 / size: recorded {entry.size}, read {digester.size}")
    if by_blake3 and digester.blake3 != entry.blake3:
        problems.append(
            f"SHA-256: recorded {entry.sha256}, not the bytes read (their BLAKE3 "
            f"{digester.blake3}, recorded {entry.blake3})"
        )
    if not by_blake3 and digester.sha256 != entry.sha256:
        problems.append(f"SHA-256: recorded {entry.sha256}, read {digester.sha256}")
    if problems:
        raise FixityMismatch(entry, problems)
    if crc is not None:
        crc.append(running)
    if held:
        yield held


def _crc_of(entry: PayloadEntry, open_payload: PayloadOpener) -> int:
    crc = [0]
    for _ in _verified_blocks(entry, open_payload(entry.storage_key, 0, None), crc):
        pass
    return crc[-1]


def stream_bag(
    recipe: BagRecipe,
    open_payload: PayloadOpener,
    *,
    start: int = 0,
    end: int | None = None,
) -> Iterator[bytes]:
    """The archive bytes ``[start, end)`` in blocks of at most ``BLOCK_SIZE``.

    Payload files streamed whole are re-hashed and checked against the recipe
    (:class:`FixityMismatch` before any later byte); parts of a file (a resumed range)
    cannot be checked and are passed as read — verify the finished bag.
    """
    segments, total = recipe._layout
    end = total if end is None else min(end, total)
    crcs: dict[int, int] = {}
    at = 0
    for seg in segments:
        seg_start, seg_end = at, at + seg.length
        at = seg_end
        lo, hi = max(start, seg_start), min(end, seg_end)
        if lo >= hi:
            if seg_start >= end:
                break
            continue
        a, b = lo - seg_start, hi - seg_start
        if isinstance(seg, _Literal):
            if a == 0 and b == seg.length <= BLOCK_SIZE:
                yield seg.data  # whole: the bytes themselves, no slice
                continue
            for i in range(a, b, BLOCK_SIZE):
                yield seg.data[i : min(b, i + BLOCK_SIZE)]
        elif isinstance(seg, _Payload):
            if a == 0 and b == seg.length:
                want_crc: list[int] | None = [] if recipe.format is BagFormat.ZIP else None
                yield from _verified_blocks(
                    seg.entry, open_payload(seg.entry.storage_key, 0, None), want_crc
                )
                if want_crc:
                    crcs[seg.index] = want_crc[-1]
            else:
                yield from open_payload(seg.entry.storage_key, a, b)
        else:
            for i in seg.needs:
                if i not in crcs:
                    crcs[i] = _crc_of(recipe.payload[i], open_payload)
            data = seg.make(crcs)
            yield data[a:b]
