"""A running SHA-256 whose state can be saved and restored (续传哈希状态).

Python's ``hashlib`` cannot export its state, so a running SHA-256 would not survive a
restart or a resumed upload landing on another server process. The ``rehashes``
package gives a SHA-256 with a 104-byte serialisable state at hashlib speed. It is
young, so it is wrapped here and nowhere else: swapping it means changing this module.

Saved form (``bytes``, stored in ``uploads.hash_state``)::

    b"CTH1" | size (8 bytes, big endian) | state (104 bytes) | check (8 bytes)

``check`` is the first 8 bytes of SHA-256 over everything before it, and ``size`` is
the number of bytes the state covers, so a corrupt or stale state is refused
(:func:`restore` returns ``None``) instead of silently yielding a wrong digest.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rehashes

MAGIC = b"CTH1"
_STATE_LEN = 104


class RunningSha256:
    """SHA-256 fed block by block; ``size`` counts the bytes fed."""

    def __init__(self, _inner: Any = None, size: int = 0) -> None:
        self._h: Any = _inner if _inner is not None else rehashes.PySha256()
        self.size = size

    def update(self, block: bytes) -> None:
        """Feed ``block``."""
        self._h.update(block)
        self.size += len(block)

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of everything fed so far (the state keeps going)."""
        return "sha256:" + str(self._h.finalize())

    def save(self) -> bytes:
        """The state as bytes (see the module docstring)."""
        state = bytes(self._h.serialize())
        body = MAGIC + self.size.to_bytes(8, "big") + state
        return body + hashlib.sha256(body).digest()[:8]


def restore(saved: bytes | None, size: int) -> RunningSha256 | None:
    """The running hash saved by :meth:`RunningSha256.save`, if intact and covering ``size``.

    ``None`` when missing, corrupt, from another format or covering another byte count:
    the caller then re-derives the digest from the stored bytes.
    """
    if saved is None or len(saved) != len(MAGIC) + 8 + _STATE_LEN + 8:
        return None
    body, check = saved[:-8], saved[-8:]
    if not body.startswith(MAGIC) or hashlib.sha256(body).digest()[:8] != check:
        return None
    covered = int.from_bytes(body[4:12], "big")
    if covered != size:
        return None
    try:
        inner = rehashes.PySha256.deserialize(body[12:])
    except Exception:  # the library's own error types are not part of its API
        return None
    return RunningSha256(inner, covered)
