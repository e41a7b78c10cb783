"""Checking a case file (案卷核验) someone hands in: exactly what ``casetrail verify`` checks.

:func:`check_bag` runs the bag verifier (:func:`core.verify.verify_bag`: BagIt
manifests, every payload re-hashed, custody chain, inclusion proofs, checkpoint
signature) and recomputes the completeness report, and returns every finding of both,
in the order the CLI prints them. The caller owns the file (a temporary copy of an
upload, streamed to disk).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.verify import Problem, verify_bag
from server.archive.recompute import recompute_completeness


@dataclass(frozen=True)
class BagCheck:
    """Every problem and note, and what was re-hashed."""

    problems: list[Problem]
    notes: list[str]
    payload_files: int
    payload_bytes: int

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def check_bag(path: Path, log_key: str | None = None) -> BagCheck:
    """Verify the bag at ``path`` (directory, ``.tar`` or ``.zip``) in full.

    Raises ``OSError`` / ``ValueError`` when the file cannot be read as a bag at all.
    """
    report = verify_bag(path, log_key=log_key)
    recomputed = recompute_completeness(path)
    notes = report.notes[:-2] + recomputed.notes + report.notes[-1:]
    return BagCheck(
        list(report.problems) + list(recomputed.problems),
        notes,
        report.payload_files,
        report.payload_bytes,
    )
