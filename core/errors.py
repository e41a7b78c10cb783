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
    ├── CustodyEventInvalid        a custody event record is malformed (.problems)
    │   ── defined in core.verify (the stand-alone verifier), re-exported here: ──
    ├── CanonicalJSONError         a value cannot be canonicalised (e.g. a float)
    ├── ManifestInvalid            a capture manifest is malformed (.problems)
    ├── SignatureInvalid           a signature does not verify / unsupported algorithm
    ├── ProofInvalid               an inclusion or consistency proof does not verify
    └── CheckpointInvalid          a checkpoint note is malformed or its signature fails

Errors that carry several findings keep them in ``problems`` (a tuple of strings), so
callers can report every finding, not the first.
"""

from __future__ import annotations

# The root and the custody errors live in the stand-alone verifier (it is copied into
# every exported case file and may import nothing from core); they are the same classes.
from core.verify import (
    CanonicalJSONError,
    CheckpointInvalid,
    CoreError,
    ManifestInvalid,
    ProofInvalid,
    SignatureInvalid,
)

__all__ = [
    "CalendarError",
    "CalendarFileInvalid",
    "CalendarNotCovered",
    "CanonicalJSONError",
    "CheckpointInvalid",
    "CoreError",
    "CustodyEventInvalid",
    "DeadlineError",
    "LegalReviewRequired",
    "ManifestInvalid",
    "ProofInvalid",
    "SignatureInvalid",
    "StandardError",
    "StandardInvalid",
    "UnknownDeadlineRule",
    "UnknownStandard",
]


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


class CustodyEventInvalid(CoreError):
    """A custody event record is malformed; ``problems`` lists every fault."""
