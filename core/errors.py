"""Errors raised by the core. Every core error is a ``CoreError``.

::

    CoreError
    ├── StandardError              recording standards
    │   ├── UnknownStandard        no such standard id / version
    │   └── StandardInvalid        a standard file is malformed (.problems lists every one)
    ├── CalendarError              working-day calendar
    │   ├── CalendarNotCovered     a date no loaded calendar covers (says how to supply one)
    │   └── CalendarFileInvalid    an agency calendar file is malformed (.problems)
    ├── DeadlineError              deadline rules
    │   └── UnknownDeadlineRule
    ├── LegalReviewRequired        a decision on a major case without a passed 法制审核
    ├── CanonicalJSONError         a value cannot be canonicalised (e.g. a float)
    ├── ManifestInvalid            a capture manifest is malformed (.problems)
    ├── SignatureInvalid           a signature does not verify / unsupported algorithm
    ├── ProofInvalid               an inclusion or consistency proof does not verify
    └── CheckpointInvalid          a checkpoint note is malformed or its signature fails

Errors that carry several findings keep them in ``problems`` (a tuple of strings), so
callers can report every finding, not the first.
"""

from __future__ import annotations

from collections.abc import Iterable


class CoreError(Exception):
    """Base of every error raised by ``core``."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[str, ...] = tuple(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class StandardError(CoreError):
    """A recording standard cannot be found or used."""


class UnknownStandard(StandardError):
    """No recording standard with that id (or version)."""


class StandardInvalid(StandardError):
    """A recording standard file is malformed; ``problems`` lists every fault with its place."""


class CalendarError(CoreError):
    """The working-day calendar cannot answer."""


class CalendarNotCovered(CalendarError):
    """A date falls in a year no loaded calendar covers."""


class CalendarFileInvalid(CalendarError):
    """An agency-supplied calendar file is malformed; ``problems`` lists every fault."""


class DeadlineError(CoreError):
    """A deadline cannot be computed."""


class UnknownDeadlineRule(DeadlineError):
    """No deadline rule with that id."""


class LegalReviewRequired(CoreError):
    """A decision on a major case (重大执法决定) was attempted without a passed 法制审核."""


class CanonicalJSONError(CoreError):
    """A value has no RFC 8785 canonical form in CaseTrail (floats, non-string keys, …)."""


class ManifestInvalid(CoreError):
    """A capture manifest is malformed; ``problems`` lists every fault."""


class SignatureInvalid(CoreError):
    """A signature does not verify, or its algorithm or key is not supported."""


class ProofInvalid(CoreError):
    """An inclusion or consistency proof does not verify."""


class CheckpointInvalid(CoreError):
    """A checkpoint note is malformed or its signature does not verify."""
