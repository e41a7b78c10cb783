"""What a reconciliation run reports: each :class:`Finding` and the :class:`ReconcileReport`.

The kinds and what the reconciler does about each are tabled in
:mod:`server.services.reconcile`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from server.services.fixity import EXIT_AT_RISK, EXIT_OK


class Kind(StrEnum):
    """What the reconciler found (see the module table)."""

    STALE_LEASE = "stale_lease"
    INTERRUPTED_COMPLETION = "interrupted_completion"
    SUPERSEDED_UPLOAD = "superseded_upload"
    EXPIRED_UPLOAD = "expired_upload"
    LOST_UPLOAD = "lost_upload"
    ORPHAN_MULTIPART = "orphan_multipart"
    ORPHAN_SCRATCH = "orphan_scratch"
    ORPHAN_OBJECT = "orphan_object"
    MISSING_OBJECT = "missing_object"
    UNKNOWN_OBJECT = "unknown_object"


@dataclass(frozen=True)
class Finding:
    """One thing out of place: its kind, what it is (key or id), what was done, why."""

    kind: Kind
    subject: str
    action: str
    message: str
    changed: bool

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "kind": self.kind.value,
            "subject": self.subject,
            "action": self.action,
            "message": self.message,
            "changed": self.changed,
        }


@dataclass(frozen=True)
class ReconcileReport:
    """Every finding of one run; ``at_risk`` are stored evidence whose bytes are gone."""

    findings: tuple[Finding, ...]
    dry_run: bool

    @property
    def at_risk(self) -> tuple[Finding, ...]:
        """Findings that need a person: evidence rows without their object."""
        return tuple(f for f in self.findings if f.kind == Kind.MISSING_OBJECT)

    @property
    def changes(self) -> int:
        """How many findings changed something (0 on a dry run or a clean second run)."""
        return sum(f.changed for f in self.findings)

    @property
    def exit_code(self) -> int:
        """``EXIT_AT_RISK`` when evidence is at risk, else ``EXIT_OK``."""
        return EXIT_AT_RISK if self.at_risk else EXIT_OK

    def counts(self) -> dict[str, int]:
        """Findings per kind."""
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.kind.value] = out.get(f.kind.value, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "dry_run": self.dry_run,
            "changes": self.changes,
            "at_risk": len(self.at_risk),
            "counts": self.counts(),
            "findings": [f.to_json() for f in self.findings],
            "exit_code": self.exit_code,
        }
