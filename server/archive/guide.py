"""The short human guide placed in every bag: ``casetrail/README.zh-en.md`` (中文在前, English after).

The text lives with the bag's verifier (``core/verify.py``, through ``core.case_file``),
which renders it again from the facts the signed log vouches for: an edited guide is a
finding of ``casetrail verify`` and of the bag's own ``verify.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.case_file import render_case_file_guide


@dataclass(frozen=True)
class GuideFacts:
    """What the guide shows about one export."""

    case_no: str
    title: str
    agency: str
    category: str
    export_id: str
    exported_at: str
    checkpoint_size: int
    checkpoint_root: str
    log_key: str


def render_guide(facts: GuideFacts) -> bytes:
    """``README.zh-en.md`` for one export (UTF-8)."""
    return render_case_file_guide(**vars(facts))
