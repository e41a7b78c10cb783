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
(:class:`server.jobs.Checkpointer`, every ``CASETRAIL_CHECKPOINT_SECONDS``) signs a new
one if the log grew (:func:`checkpoint_if_due`), never inside an API request. Proofs read O(log n) ``merkle_nodes`` rows by primary key.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.checkpoint import Checkpoint as CheckpointBody
from core.checkpoint import NoteSigner, open_checkpoint
from core.checkpoint import sign_checkpoint as sign_checkpoint_note
from core.custody import Actor, CustodyEvent, EventType, ObjectRef, verify_case_chain
from core.errors import CheckpointInvalid, CoreError
from core.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    nodes_completed_by_append,
    root_hash,
)
from core.verify import parse_json
from server.auth import Principal, get_visible_case
from server.errors import Conflict, Invalid, NotFound, Unavailable
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

    ``pending`` holds nodes added in this transaction but maybe not flushed yet.
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
            raise LookupError(
                f"Merkle 日志缺少节点 (log node missing) level={level} index={index}: "
                "run `casetrail custody verify`"
            )
        return bytes(row.hash)


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


class _Appender:
    """One transaction's hold on the log: the locked head and the tree's right edge.

    Taken once per transaction (the first :func:`record_custody` or checkpoint); later
    appends in the same transaction reuse it, so a batch of events costs one lock read,
    one head update and no Merkle node reads: ``reader.pending`` starts with the peaks
    of the tree (the complete subtrees left of the next leaf, from :data:`_PEAKS` or
    read once) and gains every node appended — exactly what new roots and the inclusion
    proofs of new leaves need.
    """

    def __init__(self, session: Session) -> None:
        head = session.scalar(select(LogHead).where(LogHead.id == 1).with_for_update())
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
        root = bytes(head.root) if head.size else EMPTY_ROOT
        peaks = _PEAKS.get((head.size, root))
        if peaks is None:
            peaks = {pos: self.reader.node(*pos) for pos in _peak_positions(head.size)}
        self.reader.pending.update(peaks)

    def remember(self) -> None:
        """Keep the current right edge for the next transaction (keyed by size and root:
        a rolled-back append leaves an entry no other tree can match)."""
        size = self.head.size
        peaks = {pos: self.reader.pending[pos] for pos in _peak_positions(size)}
        with _PEAKS_LOCK:
            if len(_PEAKS) > 64:
                _PEAKS.clear()
            _PEAKS[(size, bytes(self.head.root))] = peaks


_PEAKS: dict[tuple[int, bytes], dict[tuple[int, int], bytes]] = {}
_PEAKS_LOCK = threading.Lock()


def _peak_positions(size: int) -> list[tuple[int, int]]:
    """``(level, index)`` of the complete aligned subtrees that make up a tree of ``size``."""
    out, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def _appender(session: Session) -> _Appender:
    found = session.info.get("casetrail_log")
    if isinstance(found, _Appender) and found.transaction is session.get_transaction():
        return found
    appender = _Appender(session)
    session.info["casetrail_log"] = appender
    return appender


def tree_reader(session: Session) -> DbTreeReader:
    """A reader of the log's nodes: this transaction's appender when it holds the log
    (new nodes need no read), else one primary-key read per node."""
    found = session.info.get("casetrail_log")
    if isinstance(found, _Appender) and found.transaction is session.get_transaction():
        return found.reader
    return DbTreeReader(session)


def record_custody(
    uow: UnitOfWork,
    case: Case,
    type: EventType | str,
    actor: Principal | Actor,
    details: Mapping[str, Any] | None = None,
    *,
    object: ObjectRef | None = None,
) -> StoredEvent:
    """Append one custody event for ``case`` inside ``uow``'s transaction and return it.

    ``details`` must be JSON without floats (amounts and coordinates as strings).
    Commits nothing: the event becomes durable with the change it records, or not at all.
    """
    session = uow.session
    log = _appender(session)
    last = log.case_heads.get(case.id)
    if last is None:
        found = session.execute(
            select(CustodyEventRow.case_seq, CustodyEventRow.event_hash)
            .where(CustodyEventRow.case_id == case.id)
            .order_by(CustodyEventRow.case_seq.desc())
            .limit(1)
        ).first()
        last = (0, "") if found is None else (found.case_seq, found.event_hash)
    event = CustodyEvent(
        event_id=new_id(),
        case_id=case.id,
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
        session.add(MerkleNode(level=level, index=node_index, hash=node))
    head.size = index + 1
    head.root = root_hash(reader, index + 1)
    head.updated_at = utcnow()
    digest = event.event_hash()
    session.add(
        CustodyEventRow(
            id=event.event_id,
            log_index=index,
            case_id=case.id,
            case_seq=event.case_seq,
            event_type=event.type.value,
            event_hash=digest,
            leaf_hash=leaf,
            canonical_json=canonical.decode("utf-8"),
        )
    )
    log.case_heads[case.id] = (event.case_seq, digest)
    log.appended += 1
    log.remember()
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
    session.add(row)
    session.flush()
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


# --------------------------------------------------------------------------- proofs


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


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class LogProblem:
    """One problem found by :func:`verify_log`: a stable code, where, and a message."""

    code: str
    where: str
    message: str


def _chain_problems(session: Session, case_id: str) -> list[LogProblem]:
    events: list[CustodyEvent] = []
    problems: list[LogProblem] = []
    rows = session.scalars(
        select(CustodyEventRow)
        .where(CustodyEventRow.case_id == case_id)
        .order_by(CustodyEventRow.case_seq)
    )
    for row in rows:
        where = f"case {case_id} event {row.id} (seq {row.case_seq})"
        try:
            event = CustodyEvent.from_json(parse_json(row.canonical_json))
        except CoreError as exc:
            problems.append(LogProblem("event_malformed", where, exc.message))
            continue
        if event.case_seq != row.case_seq or event.event_id != row.id or event.case_id != case_id:
            problems.append(
                LogProblem(
                    "row_mismatch",
                    where,
                    "行字段与事件内容不一致 (row columns disagree with the stored event JSON)",
                )
            )
        if event.event_hash() != row.event_hash:
            problems.append(
                LogProblem(
                    "event_hash_mismatch",
                    where,
                    f"事件哈希不符，事件内容被改动 (event hash {row.event_hash} does not match its "
                    f"content {event.event_hash()})",
                )
            )
        events.append(event)
    for brk in verify_case_chain(events, case_id):
        where = f"case {case_id}" + (f" seq {brk.seq}" if brk.seq is not None else "")
        problems.append(LogProblem(f"chain_{brk.kind}", where, brk.message))
    return problems


def verify_log(
    session: Session,
    verifier_key: str,
    *,
    case_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 1000,
) -> list[LogProblem]:
    """Re-check case chains and the Merkle log from the database; EVERY problem found.

    Checks: each case chain (``core.custody.verify_case_chain``) and each event's stored
    hash; the log — every leaf hash recomputed from the stored canonical JSON, every
    stored node recomputed from its children, the root over all leaves against
    ``log_head``; the latest checkpoint's signature (``verifier_key``) and that its root
    equals the recomputed root at its size. ``case_id`` limits the chain check to one
    case (the log is always checked). ``progress(done, total)`` is called per batch.
    """
    problems: list[LogProblem] = []
    case_ids: Iterable[str] = (
        [case_id]
        if case_id is not None
        else session.scalars(
            select(CustodyEventRow.case_id).distinct().order_by(CustodyEventRow.case_id)
        )
    )
    for cid in list(case_ids):
        problems += _chain_problems(session, cid)
    problems += _log_problems(session, verifier_key, progress, batch)
    return problems


def _log_problems(
    session: Session,
    verifier_key: str,
    progress: Callable[[int, int], None] | None,
    batch: int,
) -> list[LogProblem]:
    problems: list[LogProblem] = []
    head = session.get(LogHead, 1)
    size = head.size if head else 0
    # Rebuild the tree from the leaves, level by level, as "peaks" of complete subtrees,
    # comparing every completed node with the stored one — memory O(log n).
    peaks: list[tuple[int, bytes]] = []  # (level, hash), strictly decreasing levels
    roots_at: dict[int, bytes] = {}
    cp = latest_checkpoint(session)
    wanted_sizes = {size} | ({cp.size} if cp is not None else set())
    expected_index = 0
    done = 0
    offset = 0
    while True:
        rows = list(
            session.execute(
                select(
                    CustodyEventRow.log_index,
                    CustodyEventRow.canonical_json,
                    CustodyEventRow.leaf_hash,
                )
                .order_by(CustodyEventRow.log_index)
                .limit(batch)
                .offset(offset)
            )
        )
        if not rows:
            break
        offset += len(rows)
        for index, canonical, stored_leaf in rows:
            if index != expected_index:
                problems.append(
                    LogProblem(
                        "log_index_gap",
                        f"log index {expected_index}",
                        f"日志索引不连续：期望 {expected_index}，实际 {index} "
                        f"(log indices skip from {expected_index} to {index})",
                    )
                )
                expected_index = index
            leaf = leaf_hash(canonical.encode("utf-8"))
            if leaf != bytes(stored_leaf):
                problems.append(
                    LogProblem(
                        "leaf_hash_mismatch",
                        f"log index {index}",
                        "叶哈希与事件内容不符 (stored leaf hash does not match the event JSON)",
                    )
                )
            _check_stored(session, problems, 0, index, leaf)
            level, h, node_index = 0, leaf, index
            while peaks and peaks[-1][0] == level:
                _, left = peaks.pop()
                h = node_hash(left, h)
                level += 1
                node_index >>= 1
                _check_stored(session, problems, level, node_index, h)
            peaks.append((level, h))
            expected_index += 1
            if expected_index in wanted_sizes:
                roots_at[expected_index] = _fold(peaks)
        done += len(rows)
        if progress is not None:
            progress(done, size)
    if expected_index != size:
        problems.append(
            LogProblem(
                "log_size_mismatch",
                "log_head",
                f"log_head 记录 {size} 项，实际有 {expected_index} 个事件 "
                f"(log_head says size {size}, {expected_index} events are stored)",
            )
        )
    actual_root = roots_at.get(size, EMPTY_ROOT if size == 0 else None)
    if head is not None and size and actual_root is not None and bytes(head.root) != actual_root:
        problems.append(
            LogProblem(
                "root_mismatch",
                "log_head",
                "log_head 的根哈希与由事件重算的不符 (stored root differs from the root recomputed "
                "from the events)",
            )
        )
    if cp is not None:
        problems += _checkpoint_problems(
            cp, verifier_key, roots_at.get(cp.size, EMPTY_ROOT if cp.size == 0 else None)
        )
    return problems


def _fold(peaks: list[tuple[int, bytes]]) -> bytes:
    h = peaks[-1][1]
    for _, left in reversed(peaks[:-1]):
        h = node_hash(left, h)
    return h


def _check_stored(
    session: Session, problems: list[LogProblem], level: int, index: int, expected: bytes
) -> None:
    row = session.get(MerkleNode, (level, index))
    where = f"merkle node level={level} index={index}"
    if row is None:
        problems.append(
            LogProblem("node_missing", where, "Merkle 节点缺失 (stored subtree hash is missing)")
        )
    elif bytes(row.hash) != expected:
        problems.append(
            LogProblem(
                "node_mismatch",
                where,
                "Merkle 节点与重算值不符 (stored subtree hash differs from the recomputed one)",
            )
        )
    if row is not None:
        session.expunge(row)  # keep memory flat on long logs


def _checkpoint_problems(
    cp: StoredCheckpoint, verifier_key: str, recomputed: bytes | None
) -> list[LogProblem]:
    where = f"checkpoint size {cp.size}"
    try:
        body = open_checkpoint(cp.note, verifier_key)
    except CheckpointInvalid as exc:
        return [LogProblem("checkpoint_signature", where, exc.message)]
    problems = []
    if body.size != cp.size or body.root_hash != cp.root:
        problems.append(
            LogProblem(
                "checkpoint_row_mismatch",
                where,
                "检查点行与已签名内容不一致 (checkpoint row differs from its signed note)",
            )
        )
    if recomputed is None:
        problems.append(
            LogProblem(
                "checkpoint_beyond_log",
                where,
                "检查点大小超过现有日志 (the checkpoint covers more events than the log holds)",
            )
        )
    elif body.root_hash != recomputed:
        problems.append(
            LogProblem(
                "checkpoint_root_mismatch",
                where,
                "已签名检查点的根哈希与由事件重算的不符，日志历史被改写 (the signed root differs "
                "from the root recomputed from the events: history was rewritten)",
            )
        )
    return problems
