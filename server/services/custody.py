"""The custody log (监管链): every state change and every read, appended in the same transaction.

Each event is one :class:`core.custody.CustodyEvent` and lives twice:

* in its **case chain** — ``case_seq`` 1, 2, 3 … and ``case_prev`` = the previous event's
  ``event_hash`` — stored as ``custody_events`` rows (unique ``(case_id, case_seq)``);
* as a leaf of the **global Merkle log** (RFC 6962): ``custody_events.log_index`` is the
  leaf index, ``merkle_nodes`` keeps every complete aligned subtree hash ``(level,
  index)`` (:func:`core.merkle.nodes_completed_by_append` says which, about two per
  append), and the single ``log_head`` row holds size and root.

Serialisation across threads and processes: an append first locks ``log_head`` (``SELECT
… FOR UPDATE`` on PostgreSQL; on SQLite every unit of work already began with ``BEGIN
IMMEDIATE``, see ``server.db``, so it holds the database write lock). Whoever holds that
lock reads the case head and the log head, appends, and commits — there is no window for
a duplicate ``case_seq``, a forked chain or a duplicate log index. Services that lock a
case row (``get_visible_case(for_update=True)``) do so before recording custody, so the
lock order is always case → log head.

Checkpoints (C2SP signed notes, :mod:`core.checkpoint`) are signed with the server's
log-signing key: on demand (:func:`current_checkpoint`, used by the API and by ``casetrail
custody checkpoint``) and periodically — each server process's background thread
(:class:`server.jobs.checkpointer.Checkpointer`, every ``CASETRAIL_CHECKPOINT_SECONDS``) signs a new
one if the log grew (:func:`checkpoint_if_due`), never inside an API request — and once
per sequencer batch (:mod:`server.services.sequencer`) so a completed upload's receipt can
carry one. Proofs (:mod:`server.services.custody_proofs`) read O(log n) ``merkle_nodes``
rows by primary key; :mod:`server.services.custody_audit` re-checks the whole log.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from core.checkpoint import Checkpoint as CheckpointBody
from core.checkpoint import NoteSigner
from core.checkpoint import sign_checkpoint as sign_checkpoint_note
from core.custody import Actor, CustodyEvent, EventType, ObjectRef
from core.merkle import (
    leaf_hash,
    nodes_completed_by_append,
    root_hash,
)
from core.verify import parse_json, sha256_digest
from server.auth import Principal, get_visible_case
from server.errors import Conflict
from server.models import (
    Case,
    Checkpoint,
    CustodyEventRow,
    LogHead,
    new_id,
    utcnow,
)
from server.services.custody_log import appender
from server.services.unit_of_work import UnitOfWork

SYSTEM_ACTOR = Actor("system", "system")
"""The actor of events the server records by itself (periodic checks, fixity sweeps)."""

MAX_PAGE = 500


@dataclass(frozen=True)
class StoredEvent:
    """A custody event as stored: the event, its log index and its hashes."""

    event: CustodyEvent
    log_index: int
    event_hash: str
    leaf_hash: bytes

    def to_json(self) -> dict[str, Any]:
        """The API form: the event object plus where it sits in the chain and the log."""
        return {
            "event": self.event.to_json(),
            "event_hash": self.event_hash,
            "leaf_hash": self.leaf_hash.hex(),
            "log_index": self.log_index,
        }


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint of the log: size, root, the signed note text, when."""

    size: int
    root: bytes
    note: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The API form (``root_hash`` base64, as in the note)."""
        return {
            "size": self.size,
            "root_hash": base64.b64encode(self.root).decode("ascii"),
            "note": self.note,
            "created_at": self.created_at.isoformat(),
        }


def _actor(actor: Principal | Actor) -> Actor:
    if isinstance(actor, Actor):
        return actor
    return Actor(actor.actor_id, actor.actor_role)


def event_time(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds and ``Z``, as custody events carry it."""
    moment = (moment or utcnow()).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# built once (building it cost as much as running it)
_CASE_HEAD = (
    select(CustodyEventRow.case_seq, CustodyEventRow.event_hash)
    .where(CustodyEventRow.case_id == bindparam("case_id"))
    .order_by(CustodyEventRow.case_seq.desc())
    .limit(1)
)


def record_custody(
    uow: UnitOfWork,
    case: Case | str,
    type: EventType | str,
    actor: Principal | Actor,
    details: Mapping[str, Any] | None = None,
    *,
    object: ObjectRef | None = None,
) -> StoredEvent:
    """Append one custody event for ``case`` inside ``uow``'s transaction and return it.

    ``details`` must be JSON without floats (amounts and coordinates as strings).
    Commits nothing: the event becomes durable with the change it records, or not at all.
    ``case`` may be given by its id alone (a hot path that need not load the row).
    """
    session = uow.session
    case_id = case if isinstance(case, str) else case.id
    log = appender(session)
    last = log.case_heads.get(case_id)
    if last is None:
        found = session.connection().execute(_CASE_HEAD, {"case_id": case_id}).first()
        last = (0, "") if found is None else (found.case_seq, found.event_hash)
    event = CustodyEvent(
        event_id=new_id(),
        case_id=case_id,
        case_seq=last[0] + 1,
        case_prev=last[1] or None,
        type=EventType(type),
        time=event_time(),
        actor=_actor(actor),
        object=object,
        details=dict(details or {}),
    )
    canonical = event.canonical_bytes()
    leaf = leaf_hash(canonical)
    index = log.size
    reader = log.reader
    for level, node_index, node in nodes_completed_by_append(reader, index, leaf):
        reader.pending[(level, node_index)] = node
        log.new_nodes.append({"level": level, "index": node_index, "hash": node})
    now = utcnow()
    log.size = index + 1
    log.root = root_hash(reader, index + 1)
    digest = sha256_digest(canonical)
    log.new_events.append(
        {
            "id": event.event_id,
            "log_index": index,
            "case_id": case_id,
            "case_seq": event.case_seq,
            "event_type": event.type.value,
            "event_hash": digest,
            "leaf_hash": leaf,
            "canonical_json": canonical.decode("utf-8"),
            "created_at": now,
        }
    )
    log.case_heads[case_id] = (event.case_seq, digest)
    log.appended += 1
    return StoredEvent(event, index, digest, leaf)


def stored_event(row: CustodyEventRow) -> StoredEvent:
    """The :class:`StoredEvent` of a ``custody_events`` row."""
    return StoredEvent(
        CustodyEvent.from_json(parse_json(row.canonical_json)),
        row.log_index,
        row.event_hash,
        bytes(row.leaf_hash),
    )


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class EventPage:
    """One page of a case's custody events (oldest first) and the total count."""

    items: list[StoredEvent]
    total: int
    limit: int
    offset: int


def case_events(
    uow: UnitOfWork, principal: Principal, case_id: str, *, limit: int = 100, offset: int = 0
) -> EventPage:
    """A case's custody events in chain order, for anyone who may see the case."""
    case = get_visible_case(uow.session, principal, case_id)
    session = uow.session
    total = session.scalar(
        select(func.count()).select_from(CustodyEventRow).where(CustodyEventRow.case_id == case.id)
    )
    limit = max(1, min(limit, MAX_PAGE))
    rows = session.scalars(
        select(CustodyEventRow)
        .where(CustodyEventRow.case_id == case.id)
        .order_by(CustodyEventRow.case_seq)
        .limit(limit)
        .offset(max(0, offset))
    )
    return EventPage([stored_event(r) for r in rows], total or 0, limit, max(0, offset))


def log_size(session: Session) -> int:
    """Number of leaves in the log right now (not locked)."""
    return int(session.scalar(select(LogHead.size).where(LogHead.id == 1)) or 0)


# --------------------------------------------------------------------------- checkpoints


def note_signer(key: Ed25519PrivateKey, origin: str) -> NoteSigner:
    """The signed-note signer of this log: the key named after the log's origin."""
    return NoteSigner(origin, key)


def _stored_checkpoint(row: Checkpoint) -> StoredCheckpoint:
    return StoredCheckpoint(row.size, bytes(row.root), row.note, row.created_at)


def latest_checkpoint(session: Session) -> StoredCheckpoint | None:
    """The most recent signed checkpoint, or None before the first."""
    row = session.scalar(select(Checkpoint).order_by(Checkpoint.id.desc()).limit(1))
    return None if row is None else _stored_checkpoint(row)


def checkpoint_at(session: Session, size: int) -> StoredCheckpoint | None:
    """The latest signed checkpoint of exactly ``size`` leaves, if one was signed."""
    row = session.scalar(
        select(Checkpoint).where(Checkpoint.size == size).order_by(Checkpoint.id.desc()).limit(1)
    )
    return None if row is None else _stored_checkpoint(row)


def sign_checkpoint(uow: UnitOfWork, signer: NoteSigner) -> StoredCheckpoint:
    """Sign and store a checkpoint of the log as it is now (reusing one of the same size)."""
    session = uow.session
    log = appender(session)
    size, root = log.size, log.root
    # after an append under this lock no checkpoint of the new size can exist yet
    latest = None if log.appended else latest_checkpoint(session)
    if latest is not None and latest.size == size:
        return latest
    if latest is not None and latest.size > size:
        raise Conflict(
            f"日志比最近的检查点还短 (log size {size} < checkpoint size {latest.size}): "
            "the log was truncated — run `casetrail custody verify`"
        )
    note = sign_checkpoint_note(CheckpointBody(signer.name, size, root), signer)
    signed = StoredCheckpoint(size, root, note, utcnow())
    # written with the rest of the unit (write_appended: at its commit, or its next read)
    log.new_checkpoints.append(
        {"size": size, "root": root, "note": note, "created_at": signed.created_at}
    )
    return signed


def current_checkpoint(uow: UnitOfWork, signer: NoteSigner) -> StoredCheckpoint:
    """A checkpoint covering the whole log: the latest, or a fresh one if the log grew."""
    latest = latest_checkpoint(uow.session)
    if latest is not None and latest.size == log_size(uow.session):
        return latest
    return sign_checkpoint(uow, signer)


def checkpoint_if_due(
    uow: UnitOfWork, signer: NoteSigner, *, max_age: timedelta, now: datetime | None = None
) -> StoredCheckpoint | None:
    """Sign a checkpoint when the log grew and the latest is older than ``max_age``."""
    now = now or utcnow()
    latest = latest_checkpoint(uow.session)
    size = log_size(uow.session)
    if size == 0 or (latest is not None and latest.size == size):
        return None
    if latest is not None and now - latest.created_at < max_age:
        return None
    return sign_checkpoint(uow, signer)
