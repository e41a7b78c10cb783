"""Auditing the custody log from the database (``casetrail custody verify``): every case
chain, every leaf and stored Merkle node recomputed, and the latest signed checkpoint.

:func:`verify_log` runs the steps in order — chains, leaves, nodes, roots, checkpoint —
and returns every problem each finds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from core.checkpoint import open_checkpoint
from core.custody import CustodyEvent, verify_case_chain
from core.errors import CheckpointInvalid, CoreError
from core.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    node_hash,
)
from core.verify import parse_json
from server.models import CustodyEventRow, LogHead, MerkleNode
from server.services.custody import (
    StoredCheckpoint,
    latest_checkpoint,
)


@dataclass(frozen=True)
class LogProblem:
    """One problem found by :func:`verify_log`: a stable code, where, and a message."""

    code: str
    where: str
    message: str


def verify_log(
    session: Session,
    verifier_key: str,
    *,
    case_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 1000,
) -> list[LogProblem]:
    """Re-check case chains and the Merkle log from the database; EVERY problem found.

    Checks, in this order: each case chain (``core.custody.verify_case_chain``) and each
    event's stored hash; the log's leaves — every leaf hash recomputed from the stored
    canonical JSON, no index skipped; its nodes — every stored node recomputed from its
    children; its roots — the root over all leaves against ``log_head``; the latest
    checkpoint's signature (``verifier_key``) and that its root equals the recomputed
    root at its size. ``case_id`` limits the chain check to one case (the log is always
    checked). ``progress(done, total)`` is called per batch.
    """
    problems: list[LogProblem] = []
    for cid in _case_ids(session, case_id):
        problems += _chain_problems(session, cid)
    head = session.get(LogHead, 1)
    size = head.size if head else 0
    cp = latest_checkpoint(session)
    tree = _TreeRebuild(session, wanted_sizes={size} | ({cp.size} if cp is not None else set()))
    done = 0
    for rows in _leaf_batches(session, batch):
        for index, canonical, stored_leaf in rows:
            problems += tree.leaf_problems(index, canonical, bytes(stored_leaf))
            problems += tree.node_problems()
        done += len(rows)
        if progress is not None:
            progress(done, size)
    problems += _size_problems(size, tree.size)
    if head is not None:
        problems += _root_problems(head, tree.root_at(size))
    if cp is not None:
        problems += _checkpoint_problems(cp, verifier_key, tree.root_at(cp.size))
    return problems


# --------------------------------------------------------------------------- chains


def _case_ids(session: Session, case_id: str | None) -> list[str]:
    """The cases whose chains to check: one, or every case with an event."""
    if case_id is not None:
        return [case_id]
    return list(
        session.scalars(
            select(CustodyEventRow.case_id).distinct().order_by(CustodyEventRow.case_id)
        )
    )


def _chain_problems(session: Session, case_id: str) -> list[LogProblem]:
    """Each stored event of one case against its row, then the chain they form."""
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
        problems += _event_row_problems(row, event, case_id, where)
        events.append(event)
    for brk in verify_case_chain(events, case_id):
        where = f"case {case_id}" + (f" seq {brk.seq}" if brk.seq is not None else "")
        problems.append(LogProblem(f"chain_{brk.kind}", where, brk.message))
    return problems


def _event_row_problems(
    row: CustodyEventRow, event: CustodyEvent, case_id: str, where: str
) -> list[LogProblem]:
    """The row's columns and stored hash against the event JSON it stores."""
    problems = []
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
    return problems


# --------------------------------------------------------------------------- leaves and nodes


def _leaf_batches(session: Session, batch: int) -> Iterator[list[Row[int, str, bytes]]]:
    """Every event's ``(log_index, canonical_json, leaf_hash)`` in log order, in batches."""
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
            return
        offset += len(rows)
        yield rows


class _TreeRebuild:
    """The tree rebuilt from the leaves as "peaks" of complete subtrees — memory O(log n).

    Each leaf is checked (:meth:`leaf_problems`), then every node it completes is compared
    with the stored one (:meth:`node_problems`); the root is kept at each wanted size.
    """

    def __init__(self, session: Session, wanted_sizes: set[int]) -> None:
        self._session = session
        self._wanted = wanted_sizes
        self._peaks: list[tuple[int, bytes]] = []  # (level, hash), strictly decreasing levels
        self._roots: dict[int, bytes] = {}
        self._leaf = b""
        self._index = 0
        self.size = 0  # leaves taken so far (the next expected log index)

    def leaf_problems(self, index: int, canonical: str, stored_leaf: bytes) -> list[LogProblem]:
        """A gap before log index ``index``, or a stored leaf hash that is not the event's."""
        problems = []
        if index != self.size:
            problems.append(
                LogProblem(
                    "log_index_gap",
                    f"log index {self.size}",
                    f"日志索引不连续：期望 {self.size}，实际 {index} "
                    f"(log indices skip from {self.size} to {index})",
                )
            )
            self.size = index
        self._index, self._leaf = index, leaf_hash(canonical.encode("utf-8"))
        if self._leaf != stored_leaf:
            problems.append(
                LogProblem(
                    "leaf_hash_mismatch",
                    f"log index {index}",
                    "叶哈希与事件内容不符 (stored leaf hash does not match the event JSON)",
                )
            )
        return problems

    def node_problems(self) -> list[LogProblem]:
        """Add the last leaf checked; compare it and each subtree it completes with the store."""
        problems = _stored_node_problems(self._session, 0, self._index, self._leaf)
        level, h, node_index = 0, self._leaf, self._index
        while self._peaks and self._peaks[-1][0] == level:
            _, left = self._peaks.pop()
            h = node_hash(left, h)
            level += 1
            node_index >>= 1
            problems += _stored_node_problems(self._session, level, node_index, h)
        self._peaks.append((level, h))
        self.size += 1
        if self.size in self._wanted:
            self._roots[self.size] = _fold(self._peaks)
        return problems

    def root_at(self, size: int) -> bytes | None:
        """The recomputed root of the first ``size`` leaves, if ``size`` was wanted and reached."""
        return self._roots.get(size, EMPTY_ROOT if size == 0 else None)


def _fold(peaks: list[tuple[int, bytes]]) -> bytes:
    h = peaks[-1][1]
    for _, left in reversed(peaks[:-1]):
        h = node_hash(left, h)
    return h


def _stored_node_problems(
    session: Session, level: int, index: int, expected: bytes
) -> list[LogProblem]:
    """The stored node ``(level, index)`` missing or not ``expected``."""
    row = session.get(MerkleNode, (level, index))
    where = f"merkle node level={level} index={index}"
    problems = []
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
    return problems


# --------------------------------------------------------------------------- roots and checkpoint


def _size_problems(size: int, leaves: int) -> list[LogProblem]:
    """``log_head``'s size against the number of events stored."""
    if leaves == size:
        return []
    return [
        LogProblem(
            "log_size_mismatch",
            "log_head",
            f"log_head 记录 {size} 项，实际有 {leaves} 个事件 "
            f"(log_head says size {size}, {leaves} events are stored)",
        )
    ]


def _root_problems(head: LogHead, recomputed: bytes | None) -> list[LogProblem]:
    """``log_head``'s root against the root recomputed from the events at its size."""
    if not head.size or recomputed is None or bytes(head.root) == recomputed:
        return []
    return [
        LogProblem(
            "root_mismatch",
            "log_head",
            "log_head 的根哈希与由事件重算的不符 (stored root differs from the root recomputed "
            "from the events)",
        )
    ]


def _checkpoint_problems(
    cp: StoredCheckpoint, verifier_key: str, recomputed: bytes | None
) -> list[LogProblem]:
    """The latest checkpoint's signature, its row, and its root against the recomputed one."""
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
