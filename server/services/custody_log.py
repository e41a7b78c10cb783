"""The custody log's write side: the locked head, the tree's right edge, rows written once.

A transaction that appends to the log (:func:`server.services.custody.record_custody`,
a signed checkpoint) takes the head once (:func:`appender`: ``SELECT … FOR UPDATE`` of
``log_head``; on SQLite the unit already holds the write lock) and keeps everything it
appends in memory — events, Merkle nodes, the new size and root, checkpoints — until
the session next reads or commits, when :meth:`LogAppender.write_appended` writes them
as one multi-row ``INSERT`` per table and one ``UPDATE`` of the head. Proofs read nodes
through :func:`tree_reader`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy import event as orm_events
from sqlalchemy.orm import ORMExecuteState, Session

from core.merkle import EMPTY_ROOT, root_hash
from server.errors import Unavailable
from server.models import Checkpoint, CustodyEventRow, LogHead, MerkleNode


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


# statements of every append, built once (building one cost as much as running it)
_LOCKED_HEAD = (
    select(LogHead.size, LogHead.root, LogHead.peaks).where(LogHead.id == 1).with_for_update()
)
_HEAD_UPDATE = (
    update(LogHead)
    .where(LogHead.id == 1)
    .values({c: bindparam(c) for c in ("size", "root", "peaks", "updated_at")})
)


class LogAppender:
    """One transaction's hold on the log: the locked head and the tree's right edge.

    Taken once per transaction (its first event or checkpoint); later appends in the
    same transaction reuse it, so a batch of events costs one lock read, one head update
    and no Merkle node reads: ``reader.pending`` starts with the peaks
    of the tree (the complete subtrees left of the next leaf, kept in ``log_head.peaks``
    and checked against its root; read from ``merkle_nodes`` if they do not match) and
    gains every node appended — exactly what new roots and the inclusion proofs of new
    leaves need.
    """

    def __init__(self, session: Session) -> None:
        head = session.connection().execute(_LOCKED_HEAD).first()
        if head is None:
            raise Unavailable(
                "数据库尚未升级，无法记录保管链：请管理员运行 `casetrail db upgrade` "
                "(the database is not migrated: the log head is missing; the admin runs "
                "`casetrail db upgrade`)"
            )
        self.size: int = head.size
        self.root: bytes = bytes(head.root) if head.size else EMPTY_ROOT
        self.transaction = session.get_transaction()
        self.reader = DbTreeReader(session)
        self.case_heads: dict[str, tuple[int, str]] = {}
        self.appended = 0
        # rows appended but not yet written: one multi-row INSERT per table (and one
        # UPDATE of the head) when the session next reads (outside a sequencer batch) or
        # commits (write_appended)
        self.new_nodes: list[dict[str, Any]] = []
        self.new_events: list[dict[str, Any]] = []
        self.new_checkpoints: list[dict[str, Any]] = []
        positions = _peak_positions(head.size)
        peaks = _stored_peaks(head.peaks, self.root, positions)
        if peaks is None:  # a head from before revision 0009, or one edited by hand
            peaks = _read_nodes(session, positions)
        self.reader.pending.update(peaks)

    def write_appended(self, session: Session) -> None:
        """Write what was appended since the last call — events, nodes, the head (with
        the tree's right edge for the next transaction) and checkpoints — as plain Core
        statements: building and flushing an ORM object per row cost more than the rest
        of a photo's batch."""
        events, nodes, checkpoints = self.new_events, self.new_nodes, self.new_checkpoints
        if not events and not checkpoints:
            return
        self.new_events, self.new_nodes, self.new_checkpoints = [], [], []
        connection = session.connection()
        if events:
            connection.execute(insert(CustodyEventRow), events)
            if nodes:
                connection.execute(insert(MerkleNode), nodes)
            pending = self.reader.pending
            peaks = b"".join(pending[pos] for pos in _peak_positions(self.size))
            connection.execute(
                _HEAD_UPDATE,
                {"size": self.size, "root": self.root, "peaks": peaks,
                 "updated_at": events[-1]["created_at"]},
            )  # fmt: skip
        if checkpoints:
            connection.execute(insert(Checkpoint), checkpoints)


def _stored_peaks(
    kept: bytes | None, root: bytes, positions: list[tuple[int, int]]
) -> dict[tuple[int, int], bytes] | None:
    """The peaks kept in the head (``kept``), if they are the tree's: they hash to its
    ``root``."""
    if kept is None or len(kept) != 32 * len(positions):
        return None
    peaks = {pos: bytes(kept[32 * i : 32 * i + 32]) for i, pos in enumerate(positions)}
    size = sum(1 << level for level, _ in positions)
    return peaks if root_hash(_KnownNodes(peaks), size) == root else None


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


def appender(session: Session) -> LogAppender:
    """This transaction's hold on the log, taken (the head locked and read) on first use."""
    found = _current_appender(session)
    if found is None:
        found = session.info["casetrail_log"] = LogAppender(session)
    return found


def _current_appender(session: Session) -> LogAppender | None:
    found = session.info.get("casetrail_log")
    if isinstance(found, LogAppender) and found.transaction is session.get_transaction():
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
