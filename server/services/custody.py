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
from sqlalchemy import bindparam, func, insert, select, tuple_
from sqlalchemy import event as orm_events
from sqlalchemy.orm import ORMExecuteState, Session

from core.checkpoint import Checkpoint as CheckpointBody
from core.checkpoint import NoteSigner
from core.checkpoint import sign_checkpoint as sign_checkpoint_note
from core.custody import Actor, CustodyEvent, EventType, ObjectRef
from core.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    nodes_completed_by_append,
    root_hash,
)
from core.verify import parse_json, sha256_digest
from server.auth import Principal, get_visible_case
from server.errors import Conflict, Unavailable
from server.models import (
    Case,
    Checkpoint,
    CustodyEventRow,
    LogHead,
    MerkleNode,
    new_id,
    utcnow,
)
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


class DbTreeReader:
    """A :class:`core.merkle.TreeReader` over ``merkle_nodes``: one primary-key read per node.

    ``pending`` holds nodes added in this transaction but maybe not flushed yet, and every
    node read so far (a complete subtree's hash never changes), so proofs of many leaves
    read each shared node once.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self.pending: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        """Hash of the complete aligned subtree ``(level, index)``; LookupError if missing."""
        found = self.pending.get((level, index))
        if found is not None:
            return found
        row = self._session.get(MerkleNode, (level, index))
        if row is None:
            raise _missing_node(level, index)
        found = self.pending[(level, index)] = bytes(row.hash)  # complete: never changes
        return found


def _missing_node(level: int, index: int) -> LookupError:
    return LookupError(
        f"Merkle 日志缺少节点 (log node missing) level={level} index={index}: "
        "run `casetrail custody verify`"
    )


def _actor(actor: Principal | Actor) -> Actor:
    if isinstance(actor, Actor):
        return actor
    return Actor(actor.actor_id, actor.actor_role)


def event_time(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds and ``Z``, as custody events carry it."""
    moment = (moment or utcnow()).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lock_log_head(session: Session) -> LogHead:
    """The ``log_head`` row, locked until the unit of work ends (PostgreSQL row lock)."""
    return _appender(session).head


# statements of every append, built once (building one cost as much as running it)
_LOCKED_HEAD = select(LogHead).where(LogHead.id == 1).with_for_update()
_CASE_HEAD = (
    select(CustodyEventRow.case_seq, CustodyEventRow.event_hash)
    .where(CustodyEventRow.case_id == bindparam("case_id"))
    .order_by(CustodyEventRow.case_seq.desc())
    .limit(1)
)


class _Appender:
    """One transaction's hold on the log: the locked head and the tree's right edge.

    Taken once per transaction (the first :func:`record_custody` or checkpoint); later
    appends in the same transaction reuse it, so a batch of events costs one lock read,
    one head update and no Merkle node reads: ``reader.pending`` starts with the peaks
    of the tree (the complete subtrees left of the next leaf, kept in ``log_head.peaks``
    and checked against its root; read from ``merkle_nodes`` if they do not match) and
    gains every node appended — exactly what new roots and the inclusion proofs of new
    leaves need.
    """

    def __init__(self, session: Session) -> None:
        head = session.scalar(_LOCKED_HEAD)
        if head is None:
            raise Unavailable(
                "数据库尚未升级，无法记录保管链：请管理员运行 `casetrail db upgrade` "
                "(the database is not migrated: the log head is missing; the admin runs "
                "`casetrail db upgrade`)"
            )
        self.head = head
        self.transaction = session.get_transaction()
        self.reader = DbTreeReader(session)
        self.case_heads: dict[str, tuple[int, str]] = {}
        self.appended = 0
        # rows appended but not yet written: one multi-row INSERT per table when the
        # session next reads (outside a sequencer batch) or commits (write_appended)
        self.new_nodes: list[dict[str, Any]] = []
        self.new_events: list[dict[str, Any]] = []
        positions = _peak_positions(head.size)
        peaks = _stored_peaks(head, positions)
        if peaks is None:  # a head from before revision 0009, or one edited by hand
            peaks = _read_nodes(session, positions)
        self.reader.pending.update(peaks)

    def write_appended(self, session: Session) -> None:
        """INSERT the events and nodes appended since the last call (plain Core
        statements: building and flushing an ORM object per row cost more than the rest
        of a photo's batch), then keep the tree's right edge for the next transaction."""
        if not self.new_events:
            return
        events, nodes = self.new_events, self.new_nodes
        self.new_events, self.new_nodes = [], []
        connection = session.connection()
        connection.execute(insert(CustodyEventRow), events)
        if nodes:
            connection.execute(insert(MerkleNode), nodes)
        pending = self.reader.pending
        self.head.peaks = b"".join(pending[pos] for pos in _peak_positions(self.head.size))


def _stored_peaks(
    head: LogHead, positions: list[tuple[int, int]]
) -> dict[tuple[int, int], bytes] | None:
    """The peaks kept in ``head``, if they are the tree's: they hash to its root."""
    kept = head.peaks
    if kept is None or len(kept) != 32 * len(positions):
        return None
    peaks = {pos: bytes(kept[32 * i : 32 * i + 32]) for i, pos in enumerate(positions)}
    root = bytes(head.root) if head.size else EMPTY_ROOT
    return peaks if root_hash(_KnownNodes(peaks), head.size) == root else None


class _KnownNodes:
    """A :class:`core.merkle.TreeReader` over the given nodes only (the peaks: enough
    for the root)."""

    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self._nodes = nodes

    def node(self, level: int, index: int) -> bytes:
        found = self._nodes.get((level, index))
        if found is None:
            raise _missing_node(level, index)
        return found


def _peak_positions(size: int) -> list[tuple[int, int]]:
    """``(level, index)`` of the complete aligned subtrees that make up a tree of ``size``."""
    out, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def _read_nodes(session: Session, positions: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The hashes of the nodes at ``positions`` (``(level, index)``), all of which exist."""
    if not positions:
        return {}
    found = {
        (level, index): bytes(hash_)
        for level, index, hash_ in session.execute(
            select(MerkleNode.level, MerkleNode.index, MerkleNode.hash).where(
                tuple_(MerkleNode.level, MerkleNode.index).in_(positions)
            )
        )
    }
    missing = [pos for pos in positions if pos not in found]
    if missing:
        raise _missing_node(*missing[0])
    return found


def _appender(session: Session) -> _Appender:
    found = _current_appender(session)
    if found is not None:
        return found
    appender = _Appender(session)
    session.info["casetrail_log"] = appender
    return appender


def _current_appender(session: Session) -> _Appender | None:
    found = session.info.get("casetrail_log")
    if isinstance(found, _Appender) and found.transaction is session.get_transaction():
        return found
    return None


@orm_events.listens_for(Session, "do_orm_execute")
def _before_read(state: ORMExecuteState) -> None:
    """Appended rows reach the database before any query of the same session can look
    for them (as autoflush does for ORM objects)."""
    session = state.session
    appender = _current_appender(session)
    # not under ``no_autoflush`` (a sequencer batch: written once, at its commit), nor
    # inside a savepoint, whose rollback would take rows the appender counts as written
    if appender is not None and session.autoflush and not session.in_nested_transaction():
        appender.write_appended(session)


@orm_events.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    appender = _current_appender(session)
    if appender is not None:
        appender.write_appended(session)


def tree_reader(session: Session) -> DbTreeReader:
    """A reader of the log's nodes: this transaction's appender when it holds the log
    (new nodes need no read), else one primary-key read per node."""
    found = _current_appender(session)
    return found.reader if found is not None else DbTreeReader(session)


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
    log = _appender(session)
    last = log.case_heads.get(case_id)
    if last is None:
        found = session.execute(_CASE_HEAD, {"case_id": case_id}).first()
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
    head = log.head
    index = head.size
    reader = log.reader
    for level, node_index, node in nodes_completed_by_append(reader, index, leaf):
        reader.pending[(level, node_index)] = node
        log.new_nodes.append({"level": level, "index": node_index, "hash": node})
    now = utcnow()
    head.size = index + 1
    head.root = root_hash(reader, index + 1)
    head.updated_at = now
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
    log = _appender(session)
    head = log.head
    # after an append under this lock no checkpoint of the new size can exist yet
    latest = None if log.appended else latest_checkpoint(session)
    if latest is not None and latest.size == head.size:
        return latest
    if latest is not None and latest.size > head.size:
        raise Conflict(
            f"日志比最近的检查点还短 (log size {head.size} < checkpoint size {latest.size}): "
            "the log was truncated — run `casetrail custody verify`"
        )
    root = bytes(head.root) if head.size else EMPTY_ROOT
    note = sign_checkpoint_note(CheckpointBody(signer.name, head.size, root), signer)
    row = Checkpoint(size=head.size, root=root, note=note, created_at=utcnow())
    session.add(row)  # written with the rest of the unit (a batch flushes once, at commit)
    return _stored_checkpoint(row)


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
