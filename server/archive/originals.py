"""The originals a seal bags (案卷原件), checked in storage before the seal locks the log.

A seal first takes stock (:func:`take_stock`) with no transaction open: every stored
original's object is stat'ed — missing, or not the recorded size, is an
:class:`ObjectProblem` — and an original whose SHA-512 or BLAKE3 is not known yet (stored,
but not yet re-read by the inspection job; ingest verifies SHA-256 only) is read once:
SHA-256 and size re-checked, SHA-512 and BLAKE3 found (the BLAKE3 is what the stream
re-checks the original against, :mod:`server.archive.bag`). The seal's write unit then
lists the originals again (:func:`stored_originals`) and stats only those stored since
(:func:`object_problems`), so a case of thousands of photos costs no storage round trip
while uploads wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.verify import parse_json
from server.models import CaptureManifest, Evidence, EvidenceStatus
from storage.errors import NotFound as BlobNotFound
from storage.hashing import digest_object


@dataclass(frozen=True)
class Original:
    """A stored original to bag: its evidence row, capture manifest and the manifest's JSON."""

    evidence: Evidence
    manifest: CaptureManifest
    wire: dict[str, Any]


@dataclass(frozen=True)
class ObjectProblem:
    """An original whose object is missing or whose bytes are not the recorded ones."""

    evidence_id: str
    why: str
    missing: bool
    """The object is gone (else it is there with other bytes)."""


@dataclass(frozen=True)
class RecordedCopy:
    """What the database records about one stored original's object."""

    evidence_id: str
    storage_key: str | None
    size: int
    sha256: str
    sha512: str | None
    blake3: str | None


@dataclass(frozen=True)
class FoundDigests:
    """The digests a stocktake's read found for an original whose SHA-256 matched."""

    sha512: str | None
    blake3: str | None


@dataclass
class Stocktake:
    """Every stored original checked: which were found as recorded, the problems, and the
    digests found by reading."""

    found: set[str] = field(default_factory=set)
    problems: list[ObjectProblem] = field(default_factory=list)
    digests: dict[str, FoundDigests] = field(default_factory=dict)


def _stored(case_id: str) -> Any:
    return (Evidence.case_id == case_id) & (Evidence.status == EvidenceStatus.STORED.value)


def recorded_copies(session: Session, case_id: str) -> list[RecordedCopy]:
    """The case's stored originals as recorded (for :func:`take_stock`, read-only)."""
    return [_recorded(e) for e in session.scalars(select(Evidence).where(_stored(case_id)))]


def _recorded(e: Evidence) -> RecordedCopy:
    return RecordedCopy(e.id, e.storage_key, e.expected_size, e.expected_sha256, e.sha512, e.blake3)


def stored_originals(session: Session, case_id: str) -> list[Original]:
    """The case's stored originals in capture order, each with its capture manifest."""
    rows = session.execute(
        select(Evidence, CaptureManifest)
        .join(CaptureManifest, Evidence.manifest_id == CaptureManifest.id)
        .where(_stored(case_id))
        .order_by(CaptureManifest.received_at, CaptureManifest.id, Evidence.file_index)
    ).all()
    return [Original(e, m, parse_json(m.signed_json)) for e, m in rows]


def _object_problem(store: Any, copy: RecordedCopy) -> ObjectProblem | None:
    key = copy.storage_key
    try:
        if key is None:
            raise BlobNotFound("no storage key", key=None)
        size = store.stat(key).size
    except BlobNotFound:
        return ObjectProblem(copy.evidence_id, f"对象缺失 / object missing at {key}", True)
    if size != copy.size:
        why = f"大小不符 / size: recorded {copy.size}, stored {size}"
        return ObjectProblem(copy.evidence_id, why, False)
    return None


def take_stock(store: Any, copies: Iterable[RecordedCopy]) -> Stocktake:
    """Stat every object; read those with no SHA-512 or BLAKE3 yet and check SHA-256 and
    size."""
    stock = Stocktake()
    for copy in copies:
        problem = _object_problem(store, copy)
        if problem is None and (copy.sha512 is None or copy.blake3 is None):
            assert copy.storage_key is not None
            try:
                digester = digest_object(store, copy.storage_key, blake3=True)
            except BlobNotFound:
                problem = ObjectProblem(copy.evidence_id, "对象缺失 / object missing", True)
            else:
                if (digester.sha256, digester.size) == (copy.sha256, copy.size):
                    found = FoundDigests(digester.sha512, digester.blake3)
                    stock.digests[copy.evidence_id] = found
                else:
                    why = f"摘要不符 / read {digester.sha256} ({digester.size} B)"
                    problem = ObjectProblem(copy.evidence_id, why, False)
        if problem is None:
            stock.found.add(copy.evidence_id)
        else:
            stock.problems.append(problem)
    return stock


def object_problems(
    store: Any, originals: Iterable[Original], found: set[str]
) -> list[ObjectProblem]:
    """The problems of the originals not already ``found`` as recorded (stat each)."""
    problems = []
    for o in originals:
        if o.evidence.id in found:
            continue
        if (problem := _object_problem(store, _recorded(o.evidence))) is not None:
            problems.append(problem)
    return problems
