"""Proofs from the custody log (RFC 9162): an event's inclusion in a signed checkpoint, and
the consistency of two tree sizes (history only grew).

Read-only: a proof reads O(log n) ``merkle_nodes`` rows by primary key and never takes
the log's lock (only a missing current checkpoint is signed, see
:func:`server.services.custody.current_checkpoint`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from core.checkpoint import NoteSigner
from core.merkle import (
    consistency_proof,
    inclusion_proof,
    root_hash,
)
from server.auth import Principal, get_visible_case
from server.errors import Invalid, NotFound
from server.models import CustodyEventRow
from server.services.custody import (
    StoredCheckpoint,
    StoredEvent,
    checkpoint_at,
    current_checkpoint,
    log_size,
    stored_event,
)
from server.services.custody_log import DbTreeReader
from server.services.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class InclusionProof:
    """An RFC 9162 inclusion proof of one event in the tree of ``tree_size`` leaves."""

    event: StoredEvent
    tree_size: int
    hashes: list[bytes]
    checkpoint: StoredCheckpoint | None

    def to_json(self) -> dict[str, Any]:
        """The form ``core.verify.verify_case_file`` takes (``hashes`` base64), plus context."""
        return {
            "event_id": self.event.event.event_id,
            "leaf_index": self.event.log_index,
            "tree_size": self.tree_size,
            "hashes": [base64.b64encode(h).decode("ascii") for h in self.hashes],
            "event": self.event.event.to_json(),
            "checkpoint": None if self.checkpoint is None else self.checkpoint.to_json(),
        }


def _proof_size(
    uow: UnitOfWork, signer: NoteSigner, size: int | None
) -> tuple[int, StoredCheckpoint | None]:
    """The tree size to prove against and its checkpoint (default: a current checkpoint)."""
    if size is None:
        cp = current_checkpoint(uow, signer)
        return cp.size, cp
    current = log_size(uow.session)
    if not 0 <= size <= current:
        raise Invalid(
            errors={
                "size": [f"树大小须在 0 到 {current} 之间 (size must be between 0 and {current})"]
            }
        )
    return size, checkpoint_at(uow.session, size)


def event_inclusion_proof(
    uow: UnitOfWork,
    principal: Principal,
    event_id: str,
    signer: NoteSigner,
    size: int | None = None,
) -> InclusionProof:
    """Inclusion proof of an event of a case the principal may see (else NotFound)."""
    session = uow.session
    row = session.get(CustodyEventRow, event_id)
    missing = NotFound(f"监管链事件不存在或您无权查看 (custody event {event_id} not found)")
    if row is None:
        raise missing
    try:
        get_visible_case(session, principal, row.case_id)
    except NotFound:
        raise missing from None  # never name the case of an event one may not see
    tree_size, cp = _proof_size(uow, signer, size)
    if row.log_index >= tree_size:
        raise Invalid(
            errors={
                "size": [
                    f"事件位于日志第 {row.log_index} 项，树大小 {tree_size} 不包含它 "
                    f"(the event has log index {row.log_index}; choose size > {row.log_index})"
                ]
            }
        )
    hashes = inclusion_proof(DbTreeReader(session), row.log_index, tree_size)
    return InclusionProof(stored_event(row), tree_size, hashes, cp)


@dataclass(frozen=True)
class ConsistencyProof:
    """An RFC 9162 consistency proof between two tree sizes and their roots."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    hashes: list[bytes]

    def to_json(self) -> dict[str, Any]:
        """The API form (hashes and roots base64)."""

        def b64(h: bytes) -> str:
            return base64.b64encode(h).decode("ascii")

        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": b64(self.old_root),
            "new_root": b64(self.new_root),
            "hashes": [b64(h) for h in self.hashes],
        }


def log_consistency_proof(
    uow: UnitOfWork, principal: Principal, old: int, new: int | None, signer: NoteSigner
) -> ConsistencyProof:
    """Consistency proof from size ``old`` to ``new`` (default: a current checkpoint).

    Any authenticated caller may ask: sizes and hashes reveal nothing about a case.
    """
    del principal
    new_size, _ = _proof_size(uow, signer, new)
    if not 0 <= old <= new_size:
        raise Invalid(
            errors={
                "old": [f"old 须在 0 到 {new_size} 之间 (old must be between 0 and new={new_size})"]
            }
        )
    reader = DbTreeReader(uow.session)
    return ConsistencyProof(
        old,
        new_size,
        root_hash(reader, old),
        root_hash(reader, new_size),
        consistency_proof(reader, old, new_size),
    )
