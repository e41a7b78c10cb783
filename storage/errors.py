"""Errors raised by ``storage``. Every storage error is a ``StorageError``.

::

    StorageError                   anything the blob store could not do
    ├── InvalidKey                 a key failed the one key check (nothing was touched)
    ├── NotFound                   no object at that key
    ├── AlreadyExists              write-once: the key already holds an object
    ├── DigestMismatch             the bytes do not hash to the expected SHA-256
    ├── TooLarge                   the stream is longer than the allowed size
    ├── UploadNotFound             no open resumable upload with that id
    ├── InvalidParts               parts out of order, missing, too small or mismatched
    ├── DeleteRefused              delete of a write-once original outside retention expiry
    ├── ConfigInvalid              storage settings incomplete or malformed (.problems)
    ├── StorageFull                the disk / bucket has no room left (ENOSPC, quota)
    └── Unavailable                the backend cannot be reached or failed; retry later

Adapters translate vendor errors (``OSError``, ``botocore``) into these; nothing above
``storage/`` needs to know which backend is in use. Messages are Chinese first with
English alongside and say what to do next. Errors that carry several findings keep
them in ``problems`` so callers can report every one.
"""

from __future__ import annotations

from collections.abc import Iterable


class StorageError(Exception):
    """Base of every error raised by ``storage``."""

    def __init__(self, message: str, problems: Iterable[str] = (), *, key: str | None = None):
        super().__init__(message)
        self.message = message
        self.key = key
        self.problems: tuple[str, ...] = tuple(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class InvalidKey(StorageError):
    """A key failed the key check; ``problems`` lists every reason. No I/O happened."""


class NotFound(StorageError):
    """No object exists at the key."""


class AlreadyExists(StorageError):
    """Write-once: the key already holds an object, which was left untouched."""


class DigestMismatch(StorageError):
    """The bytes written do not hash to the expected digest; nothing appears at the key.

    ``expected`` and ``actual`` are ``sha256:<hex>`` strings.
    """

    def __init__(self, message: str, *, key: str | None, expected: str, actual: str) -> None:
        super().__init__(message, key=key)
        self.expected = expected
        self.actual = actual


class TooLarge(StorageError):
    """The stream exceeded ``max_size`` (or a part exceeded the part limit); nothing kept."""

    def __init__(self, message: str, *, key: str | None, limit: int) -> None:
        super().__init__(message, key=key)
        self.limit = limit


class UploadNotFound(StorageError):
    """No open resumable upload with that id (never started, completed or aborted)."""


class InvalidParts(StorageError):
    """The parts given (or put) do not form a valid upload; ``problems`` lists each fault."""


class DeleteRefused(StorageError):
    """Deleting a write-once original is refused unless its retention has expired."""


class StorageFull(StorageError):
    """The backend has no space left (disk full, quota). Nothing partial was kept."""


class Unavailable(StorageError):
    """The backend cannot be reached or failed unexpectedly; the operation may be retried."""


class ConfigInvalid(StorageError):
    """Storage settings are incomplete or malformed; ``problems`` lists every fault."""
