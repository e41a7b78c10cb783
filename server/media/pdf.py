"""PDF facts: page count, digital signatures, encryption — via pypdf in a limited child.

pypdf (not a raw byte scan) counts pages, so object streams and incremental updates
are handled; it runs in a child process under ``sandbox.run_limited`` because a crafted
PDF can make any parser loop. A PDF counts as signed when it has a signature field whose
value carries ``/ByteRange``, or its ``/AcroForm /SigFlags`` has SignaturesExist (bit 1);
when pypdf cannot parse the file, a bounded scan of the raw bytes for ``/ByteRange`` and
``/Type /Sig`` stands in.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from server.media.report import Flag, FlagCode, InspectionLimits, PdfFacts
from server.media.sandbox import child_limits, run_limited

_PROBE = Path(__file__).with_name("_pdf_probe.py")


@dataclass
class PdfOutcome:
    """What inspecting one PDF found."""

    facts: PdfFacts | None = None
    flags: list[Flag] = field(default_factory=list)


def inspect_pdf(link: Path, *, limits: InspectionLimits, work_dir: Path) -> PdfOutcome:
    """Page count, signatures and encryption of the PDF at ``link``."""
    outcome = PdfOutcome()
    result = run_limited(
        [sys.executable, "-I", str(_PROBE), str(link.absolute())],
        child_limits(limits),
        work_dir=work_dir,
    )
    if result.timed_out:
        outcome.flags.append(Flag.of(FlagCode.INSPECTION_TIMEOUT, "pdf"))
        return outcome
    if result.hit_resource_limit:
        outcome.flags.append(Flag.of(FlagCode.RESOURCE_LIMIT_EXCEEDED, "pdf"))
        return outcome
    try:
        data = json.loads(result.stdout)
    except ValueError:
        detail = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        outcome.flags.append(Flag.of(FlagCode.UNREADABLE, detail[:300]))
        return outcome
    pages = data["pages"] if isinstance(data.get("pages"), int) else None
    signatures = int(data.get("signatures") or 0)
    sig_flags = int(data.get("sig_flags") or 0)
    signed = signatures > 0 or bool(sig_flags & 1)
    if data.get("error") and not signed:
        signed = bool(data.get("raw_signature_markers"))
    outcome.facts = PdfFacts(
        page_count=pages,
        signed=signed,
        signature_count=signatures,
        encrypted=bool(data.get("encrypted")),
        version=data.get("version") if isinstance(data.get("version"), str) else None,
    )
    if outcome.facts.encrypted:
        outcome.flags.append(Flag.of(FlagCode.ENCRYPTED, str(data.get("error") or "")))
    if not data.get("eof_marker"):
        outcome.flags.append(Flag.of(FlagCode.TRUNCATED, "no %%EOF at the end"))
    elif pages is None and not outcome.facts.encrypted:
        outcome.flags.append(Flag.of(FlagCode.UNREADABLE, str(data.get("error") or "")[:300]))
    return outcome
