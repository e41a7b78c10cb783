"""A running SHA-256 whose state can be saved and restored (续传哈希状态).

Python's ``hashlib`` cannot export its state, so a running SHA-256 would not survive a
restart or a resumed upload landing on another server process. Two implementations, one
saved form, wrapped here and nowhere else:

- **libcrypto's** ``SHA256_Init/Update/Final`` through ``ctypes`` on a ``SHA256_CTX``
  whose fields are the state (the low-level API OpenSSL 3 deprecates but still ships;
  the library ``hashlib`` itself uses, SHA-NI included). A ``ctypes`` call releases
  the GIL, so hashing a 1 MiB block (≈ 0.5 ms) no longer stalls the thread receiving
  the next one — the reason this exists.
- **rehashes** (``PySha256``), the fallback when libcrypto or its ``SHA256_*`` symbols
  are missing or fail a self-test at import (one warning says so). It holds the GIL.

Saved form (``bytes``, stored in ``uploads.hash_state``)::

    b"CTH1" | size (8 bytes, big endian) | state (104 bytes) | check (8 bytes)

``check`` is the first 8 bytes of SHA-256 over everything before it, and ``size`` is
the number of bytes the state covers, so a corrupt or stale state is refused
(:func:`restore` returns ``None``) instead of silently yielding a wrong digest.
``state`` is rehashes' serialisation of a SHA-256: the eight chaining words (32-bit
little endian), the count of whole 64-byte blocks (64-bit little endian), the count of
buffered bytes (one byte, < 64) and those bytes, zero-padded to 63. The libcrypto side
converts its ``SHA256_CTX`` to and from exactly these bytes, so a state saved by either
implementation is restored by the other (a server with and one without libcrypto can
share uploads; ``tests/server/test_ingest_hashstate.py`` holds them to it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import struct
from collections.abc import Iterator
from typing import Any, Protocol

import rehashes

log = logging.getLogger(__name__)

MAGIC = b"CTH1"
_STATE_LEN = 104
_STATE = struct.Struct("<8IQB63s")
"""rehashes' 104-byte state: chaining words, whole blocks, buffered length, buffer."""
assert _STATE.size == _STATE_LEN


class _Engine(Protocol):
    """One implementation's running SHA-256 (see the module docstring)."""

    def update(self, block: Any, /) -> None: ...

    def hexdigest(self) -> str: ...

    def state(self) -> bytes: ...


class RunningSha256:
    """SHA-256 fed block by block; ``size`` counts the bytes fed.

    ``update`` takes any contiguous bytes-like block (``bytes``, ``bytearray``, a
    ``memoryview``), read in place.
    """

    def __init__(self, _inner: _Engine | None = None, size: int = 0) -> None:
        self._h: _Engine = _inner if _inner is not None else _new()
        self.size = size

    def update(self, block: Any) -> None:
        """Feed ``block``."""
        self._h.update(block)
        self.size += len(block)

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of everything fed so far (the state keeps going)."""
        return "sha256:" + self._h.hexdigest()

    def save(self) -> bytes:
        """The state as bytes (see the module docstring)."""
        body = MAGIC + self.size.to_bytes(8, "big") + self._h.state()
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
    state = body[12:]
    *_, blocks, buffered, _ = _STATE.unpack(state)
    if buffered >= 64 or blocks * 64 + buffered != covered:
        return None
    try:
        inner = _restore(state)
    except Exception:  # rehashes' own error types are not part of its API
        return None
    return RunningSha256(inner, covered)


# -- libcrypto ------------------------------------------------------------------------


class _Sha256Ctx(ctypes.Structure):
    """OpenSSL's ``SHA256_CTX`` (unchanged from 0.9.8 to 3.x): ``Nh:Nl`` counts bits,
    ``data`` holds the ``num`` buffered bytes in order, ``md_len`` is the digest size."""

    _fields_ = (
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_ubyte * 64),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    )


class _PyBuffer(ctypes.Structure):
    """CPython's ``Py_buffer`` (stable ABI since 3.11): a read-only block's address."""

    _fields_ = (
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),  # a reference PyBuffer_Release gives back
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    )


_PyBUF_SIMPLE = 0
_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = (ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int)
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = (ctypes.POINTER(_PyBuffer),)
_release_buffer.restype = None


def _names() -> Iterator[str]:
    """Where libcrypto may be: the sonames first (already loaded by ``hashlib``), then
    wherever ``ldconfig`` knows it (a subprocess: only when those are missing)."""
    yield from ("libcrypto.so.3", "libcrypto.so.1.1")
    found = ctypes.util.find_library("crypto")
    if found:
        yield found


def _libcrypto() -> tuple[Any, Any, Any] | None:
    """``SHA256_Init``, ``SHA256_Update``, ``SHA256_Final`` of the system's libcrypto."""
    for name in _names():
        try:
            lib = ctypes.CDLL(name)  # CDLL: every call releases the GIL
            init, update, final = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
        except (OSError, AttributeError):
            continue
        ctx_p = ctypes.POINTER(_Sha256Ctx)
        init.argtypes, init.restype = (ctx_p,), ctypes.c_int
        update.argtypes, update.restype = (ctx_p, ctypes.c_void_p, ctypes.c_size_t), ctypes.c_int
        final.argtypes, final.restype = (ctypes.c_char_p, ctx_p), ctypes.c_int
        return init, update, final
    return None


_LIB = _libcrypto()
_SHA256_INIT: Any
_SHA256_UPDATE: Any
_SHA256_FINAL: Any
_SHA256_INIT, _SHA256_UPDATE, _SHA256_FINAL = _LIB or (None, None, None)


class _CtypesSha256:
    """A ``SHA256_CTX`` driven through libcrypto; blocks are read where they lie."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: _Sha256Ctx | None = None) -> None:
        if ctx is None:
            ctx = _Sha256Ctx()
            if _SHA256_INIT(ctx) != 1:
                raise RuntimeError("SHA256_Init failed")
        self._ctx = ctx

    def update(self, block: Any, /) -> None:
        n = len(block)
        if not n:
            return
        sha_update = _SHA256_UPDATE
        if type(block) is bytes:  # its buffer, in place (c_void_p of bytes points into it)
            ok = sha_update(self._ctx, block, n)
        else:
            view = _PyBuffer()  # any other bytes-like: its buffer, read-only or not, in place
            if _get_buffer(block, ctypes.byref(view), _PyBUF_SIMPLE) != 0:
                raise TypeError("a block must be contiguous bytes")
            try:
                ok = sha_update(self._ctx, view.buf, view.len)
            finally:
                _release_buffer(ctypes.byref(view))
        if ok != 1:
            raise RuntimeError("SHA256_Update failed")

    def hexdigest(self) -> str:
        copy = _Sha256Ctx()  # finalise a copy: the running state goes on
        ctypes.memmove(ctypes.byref(copy), ctypes.byref(self._ctx), ctypes.sizeof(_Sha256Ctx))
        out = ctypes.create_string_buffer(32)
        if _SHA256_FINAL(out, copy) != 1:
            raise RuntimeError("SHA256_Final failed")
        return out.raw.hex()

    def state(self) -> bytes:
        ctx = self._ctx
        total = (ctx.Nh << 32 | ctx.Nl) >> 3
        num = ctx.num
        return _STATE.pack(*ctx.h, (total - num) // 64, num, bytes(ctx.data[:num]))

    @classmethod
    def from_state(cls, state: bytes) -> _CtypesSha256:
        *words, blocks, buffered, data = _STATE.unpack(state)
        ctx = _Sha256Ctx()
        ctx.h[:] = words
        bits = (blocks * 64 + buffered) * 8
        ctx.Nl, ctx.Nh = bits & 0xFFFFFFFF, bits >> 32
        ctypes.memmove(ctx.data, data, buffered)
        ctx.num, ctx.md_len = buffered, 32
        return cls(ctx)


# -- rehashes (the fallback) ----------------------------------------------------------


class _RehashesSha256:
    """rehashes' ``PySha256`` (holds the GIL while hashing)."""

    __slots__ = ("_h",)

    def __init__(self, inner: Any = None) -> None:
        self._h = inner if inner is not None else rehashes.PySha256()

    def update(self, block: Any, /) -> None:
        self._h.update(block if type(block) is bytes else bytes(block))  # it takes bytes only

    def hexdigest(self) -> str:
        return str(self._h.finalize())

    def state(self) -> bytes:
        return bytes(self._h.serialize())

    @classmethod
    def from_state(cls, state: bytes) -> _RehashesSha256:
        return cls(rehashes.PySha256.deserialize(state))


def _works(engine: type[_CtypesSha256]) -> bool:
    """Whether ``engine`` gives hashlib's digests, and its saved states resume to them."""
    sample = bytes(range(256)) * 5
    for cut in (0, 3, 64, 131, len(sample)):
        h = engine()
        h.update(sample[:cut])
        resumed = engine.from_state(h.state())
        resumed.update(memoryview(sample)[cut:])
        if h.hexdigest() != hashlib.sha256(sample[:cut]).hexdigest():
            return False
        if resumed.hexdigest() != hashlib.sha256(sample).hexdigest():
            return False
    return True


def _choose() -> type[_CtypesSha256] | type[_RehashesSha256]:
    if _LIB is not None:
        try:
            if _works(_CtypesSha256):
                return _CtypesSha256
        except Exception:  # a libcrypto we cannot drive: the fallback below says so
            log.debug("libcrypto SHA-256 self-test raised", exc_info=True)
    log.warning(
        "libcrypto SHA256_* unavailable or wrong: the resumable SHA-256 falls back to "
        "rehashes, which holds the GIL while hashing (large uploads are slower)"
    )
    return _RehashesSha256


ENGINE = _choose()
"""The implementation in use (:class:`_CtypesSha256` unless libcrypto is unusable)."""


def _new() -> _Engine:
    return ENGINE()


def _restore(state: bytes) -> _Engine:
    return ENGINE.from_state(state)
