"""Auditing the custody log from the database (``casetrail custody verify``): every case
chain, every leaf and stored Merkle node recomputed, and the latest signed checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
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
