"""The global custody log as an RFC 6962 / RFC 9162 §2 Merkle tree: production side.

Hashing: ``leaf_hash(d) = SHA-256(0x00 || d)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``;
the tree of ``n`` leaves splits at the largest power of two smaller than ``n``. The empty
tree's root is ``SHA-256("")``. Verification (``verify_inclusion``,
``verify_consistency``) lives in :mod:`core.verify` and is re-exported here.

Storage is the caller's: every function reads through a :class:`TreeReader` that
answers the hash of an *aligned complete subtree* ``(level, index)`` — the subtree over
leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 are the leaf hashes. A
database keeps one row per such node; :func:`nodes_completed_by_append` says which rows
one append adds (on average two). Example, 7 leaves (``a``…``g`` leaf hashes)::

    level 2:  (2,0)=H(H(a,b),H(c,d))
    level 1:  (1,0)=H(a,b)  (1,1)=H(c,d)  (1,2)=H(e,f)
    level 0:  a b c d e f g

    root(7) = H((2,0), H((1,2), g))   — reads (2,0), (1,2), (0,6)

Cost: :func:`root_hash` reads at most ``popcount(size)`` nodes; :func:`inclusion_proof`
at most ``2·log2(size)``; :func:`consistency_proof` at most ``3·log2(size)``;
:func:`nodes_completed_by_append` at most ``log2(size)``. Nothing needs all leaves in
memory.
"""

from __future__ import annotations

from typing import Protocol

from core.verify import (
    EMPTY_ROOT,
    consistency_ok,
    inclusion_ok,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "MemoryTree",
    "TreeReader",
    "consistency_ok",
    "consistency_proof",
    "inclusion_ok",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "nodes_completed_by_append",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]


class TreeReader(Protocol):
    """Read access to stored aligned complete subtree hashes."""

    def node(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``.

        Level 0 answers leaf hashes. Only nodes whose subtree is complete are ever asked.
        """
        ...


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(reader: TreeReader, start: int, end: int) -> bytes:
    """RFC 6962 hash of leaves ``[start, end)``, where ``start`` is a multiple of a power
    of two ``>= end - start`` (true of every subtree the RFC recursion visits)."""
    peaks: list[bytes] = []
    pos = start
    while pos < end:
        level = (end - pos).bit_length() - 1
        peaks.append(reader.node(level, pos >> level))
        pos += 1 << level
    h = peaks.pop()
    while peaks:
        h = node_hash(peaks.pop(), h)
    return h


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"tree size must be an integer >= 0, got {size!r}")


def root_hash(reader: TreeReader, size: int) -> bytes:
    """Root hash of the first ``size`` leaves (``EMPTY_ROOT`` for 0)."""
    _check_size(size)
    return EMPTY_ROOT if size == 0 else _range_hash(reader, 0, size)


def nodes_completed_by_append(
    reader: TreeReader, size: int, leaf: bytes
) -> list[tuple[int, int, bytes]]:
    """The ``(level, index, hash)`` nodes completed by appending leaf hash ``leaf`` at index ``size``.

    ``leaf`` is the RFC 6962 leaf hash (32 bytes), not the leaf data. The first entry is
    ``(0, size, leaf)``; each further one is the parent completed by it. Store them all.
    """
    _check_size(size)
    if len(leaf) != 32:
        raise ValueError("leaf must be a 32-byte leaf hash (use leaf_hash(data))")
    out = [(0, size, leaf)]
    h, index, level = leaf, size, 0
    while index & 1:
        h = node_hash(reader.node(level, index - 1), h)
        index >>= 1
        level += 1
        out.append((level, index, h))
    return out


def inclusion_proof(reader: TreeReader, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof (audit path, leaf upward) of leaf ``index`` in tree ``size``."""
    _check_size(size)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    top_down: list[bytes] = []
    start, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            top_down.append(_range_hash(reader, start + k, start + n))
            n = k
        else:
            top_down.append(reader.node(k.bit_length() - 1, start // k))
            start, m, n = start + k, m - k, n - k
    return top_down[::-1]


def consistency_proof(reader: TreeReader, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof from tree ``old_size`` to tree ``new_size``.

    Empty when ``old_size`` is 0 or equals ``new_size``.
    """
    _check_size(old_size)
    _check_size(new_size)
    if old_size > new_size:
        raise ValueError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    top_down: list[bytes] = []
    start, n, m, complete = 0, new_size, old_size, True
    while m != n:
        k = _split(n)
        if m <= k:
            top_down.append(_range_hash(reader, start + k, start + n))
            n = k
        else:
            top_down.append(reader.node(k.bit_length() - 1, start // k))
            start, m, n, complete = start + k, m - k, n - k, False
    if not complete:
        top_down.append(_range_hash(reader, start, start + n))
    return top_down[::-1]


class MemoryTree:
    """An in-memory :class:`TreeReader` with append, for tests and small logs.

    >>> t = MemoryTree(); _ = t.append(leaf_hash(b"event"))
    >>> t.root() == leaf_hash(b"event")
    True
    """

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = []
        self._size = 0

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    def node(self, level: int, index: int) -> bytes:
        """Stored hash of a complete aligned subtree (raises IndexError if not complete)."""
        return self._levels[level][index]

    def append(self, leaf: bytes) -> int:
        """Append a leaf hash; return its index."""
        index = self._size
        for level, i, h in nodes_completed_by_append(self, index, leaf):
            if level == len(self._levels):
                self._levels.append([])
            assert len(self._levels[level]) == i
            self._levels[level].append(h)
        self._size += 1
        return index

    def append_data(self, data: bytes) -> int:
        """Append ``leaf_hash(data)``; return its index."""
        return self.append(leaf_hash(data))

    def root(self, size: int | None = None) -> bytes:
        """Root of the first ``size`` leaves (default: all)."""
        return root_hash(self, self._size if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof of leaf ``index`` in the tree of ``size`` (default: all)."""
        return inclusion_proof(self, index, self._size if size is None else size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Consistency proof from ``old_size`` to ``new_size`` (default: all)."""
        return consistency_proof(self, old_size, self._size if new_size is None else new_size)
