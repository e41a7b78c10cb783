"""Fixity (完整性核验): re-read a stored object and compare it with its recorded digests."""

from __future__ import annotations

from dataclasses import dataclass

from storage.hashing import digest_object
from storage.port import BlobStore


@dataclass(frozen=True)
class FixityResult:
    """Outcome of one fixity check; ``problems`` lists every mismatch found (empty = ok)."""

    key: str
    size: int
    sha256: str
    sha512: str | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when size and every given digest match."""
        return not self.problems


def check_fixity(
    store: BlobStore,
    key: str,
    expected_sha256: str,
    expected_sha512: str | None = None,
    expected_size: int | None = None,
) -> FixityResult:
    """Stream ``key`` once, hashing SHA-256 (and SHA-512 when ``expected_sha512`` is
    given: it runs at a quarter of SHA-256's speed), and report every mismatch.

    Raises ``NotFound`` if the object is gone (a missing object is not a fixity result).
    """
    digester = digest_object(store, key, sha512=expected_sha512 is not None)
    problems: list[str] = []
    if expected_size is not None and digester.size != expected_size:
        problems.append(f"长度不符 / size: expected {expected_size}, found {digester.size}")
    if digester.sha256 != expected_sha256:
        problems.append(
            f"SHA-256 不符 / sha256: expected {expected_sha256}, found {digester.sha256}"
        )
    if expected_sha512 is not None and digester.sha512 != expected_sha512:
        problems.append(
            f"SHA-512 不符 / sha512: expected {expected_sha512}, found {digester.sha512}"
        )
    return FixityResult(key, digester.size, digester.sha256, digester.sha512, tuple(problems))
