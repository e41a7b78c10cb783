"""Errors raised by the field client. Every one is a ``FieldClientError``.

::

    FieldClientError
    ├── HomeError                 the device's data directory is unusable or not set up
    │   └── NotEnrolled           no key/token yet: run `casetrail-field enroll`
    ├── CaptureError              a file cannot be captured (missing, not a file, unreadable)
    ├── VaultError                the device vault (本机保管库) is inconsistent
    │   ├── VaultFileMissing      a captured file is gone from the vault
    │   └── VaultFileChanged      a vault file's bytes differ from what was captured
    ├── ServerError               talking to the CaseTrail server failed
    │   ├── ServerUnreachable     network down, timeout, connection refused (retried later)
    │   ├── ServerBusy            5xx / 423 / 429: the server cannot answer now (retried later)
    │   └── ServerRejected        4xx: the server refuses; carries its message (not retried)
    └── ReceiptInvalid            a receipt does not prove the file arrived (.problems)

``ServerUnreachable`` and ``ServerBusy`` are *transient* (:attr:`FieldClientError.transient`):
the queue retries them with exponential backoff. Everything else needs a person; the
message says what to do. Core errors (``core.errors.CoreError``) pass through unchanged.
"""

from __future__ import annotations

__all__ = [
    "CaptureError",
    "FieldClientError",
    "HomeError",
    "NotEnrolled",
    "ReceiptInvalid",
    "ServerBusy",
    "ServerError",
    "ServerRejected",
    "ServerUnreachable",
    "VaultError",
    "VaultFileChanged",
    "VaultFileMissing",
]


class FieldClientError(Exception):
    """Root of the field client's errors; ``str(e)`` is the message shown to the officer."""

    transient = False
    """True when retrying later may succeed without anyone doing anything."""


class HomeError(FieldClientError):
    """The device's data directory (home) cannot be used."""


class NotEnrolled(HomeError):
    """This home has no device key or token yet."""


class CaptureError(FieldClientError):
    """A file could not be captured; nothing was queued for it."""


class VaultError(FieldClientError):
    """The device vault does not hold what the queue says it holds."""


class VaultFileMissing(VaultError):
    """A captured file is no longer in the vault."""


class VaultFileChanged(VaultError):
    """A vault file's size or SHA-256 differs from what was captured and signed."""


class ServerError(FieldClientError):
    """A request to the server failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServerUnreachable(ServerError):
    """No answer from the server (network down, DNS, refused, timeout)."""

    transient = True


class ServerBusy(ServerError):
    """The server answered 5xx/423/429: try again later."""

    transient = True


class ServerRejected(ServerError):
    """The server refused the request (4xx); the message is the server's, plus what to do."""


class ReceiptInvalid(FieldClientError):
    """A receipt failed verification; ``problems`` lists every finding."""

    def __init__(self, message: str, problems: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)

    def __str__(self) -> str:
        base = super().__str__()
        return base + "".join(f"\n  - {p}" for p in self.problems)
