"""The durable upload queue (上传队列): SQLite in WAL mode, one row per captured file.

Every change is one short transaction, so a crash or power cut at any point leaves the
queue in a state the next ``sync`` continues from. Each file (item) moves through::

    captured ──▶ registered ──▶ uploading (offset) ──▶ uploaded ──▶ done
        │            │               │                    │
        └────────────┴───────────────┴────────────────────┴──▶ failed (reason)

* ``captured``   已采集: in the vault, manifest signed, not yet known to the server;
* ``registered`` 清单已登记: the server accepted the manifest and expects the file;
* ``uploading``  上传中: a tus upload exists; ``offset`` bytes are on the server;
* ``uploaded``   已上传: the server acknowledged the last byte; receipt not yet verified;
* ``done``       已完成: the receipt verified (checkpoint signature, inclusion proof, SHA-256);
* ``failed``     失败: the server refused, or a vault file is missing/changed — needs a person.

Transient trouble (no network, server busy) does not fail an item: it stays where it is
with ``attempts`` + 1 and ``next_attempt_at`` pushed back by :func:`backoff_delay`
(exponential, with jitter, capped). The queue also holds the device chain head
(``device_seq`` / hash of the last manifest) so the chain survives restarts, and the
list of imported docking-station files.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.manifest import SignedManifest
from field_client.vault import VaultFile

__all__ = [
    "ItemState",
    "Queue",
    "QueueItem",
    "backoff_delay",
]

BACKOFF_BASE = 2.0
BACKOFF_CAP = 600.0


class ItemState(StrEnum):
    """Where a captured file stands (see the module docstring)."""

    CAPTURED = "captured"
    REGISTERED = "registered"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    DONE = "done"
    FAILED = "failed"

    @property
    def label(self) -> str:
        """Chinese label with the English state, for people."""
        return _LABELS[self]


_LABELS = {
    ItemState.CAPTURED: "已采集 captured",
    ItemState.REGISTERED: "清单已登记 registered",
    ItemState.UPLOADING: "上传中 uploading",
    ItemState.UPLOADED: "已上传待验回执 uploaded",
    ItemState.DONE: "已完成 done",
    ItemState.FAILED: "失败 failed",
}


def backoff_delay(
    attempt: int,
    *,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, …).

    Exponential (``base * 2**(attempt-1)``, capped at ``cap``) with "equal jitter": a
    random value between half and all of it, so many devices coming back online at once
    do not hammer the server together, yet no retry comes immediately.
    """
    ceiling = min(cap, base * 2 ** max(0, min(attempt - 1, 30)))
    return float(ceiling / 2 + rand() * ceiling / 2)


@dataclass(frozen=True)
class QueueItem:
    """One captured file in the queue."""

    manifest_id: str
    file_index: int
    name: str
    size: int
    sha256: str
    media_type: str
    vault_path: Path
    case_ref: str
    device_seq: int
    state: ItemState
    offset: int
    evidence_id: str | None
    upload_url: str | None
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: str
    done_at: str | None
    pruned_at: str | None
    source_path: str | None

    @property
    def key(self) -> tuple[str, int]:
        """``(manifest_id, file_index)``."""
        return (self.manifest_id, self.file_index)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``status --json``)."""
        return {
            "manifest_id": self.manifest_id,
            "file_index": self.file_index,
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "case_ref": self.case_ref,
            "device_seq": self.device_seq,
            "state": self.state.value,
            "offset": self.offset,
            "evidence_id": self.evidence_id,
            "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at) if self.next_attempt_at else None,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "done_at": self.done_at,
            "pruned_at": self.pruned_at,
            "source_path": self.source_path,
        }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_chain (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    last_hash TEXT
);
CREATE TABLE IF NOT EXISTS captures (
    manifest_id TEXT PRIMARY KEY,
    device_seq INTEGER NOT NULL UNIQUE,
    manifest_hash TEXT NOT NULL,
    signed_json TEXT NOT NULL,
    case_ref TEXT NOT NULL,
    created_at TEXT NOT NULL,
    registered_at TEXT
);
CREATE TABLE IF NOT EXISTS items (
    manifest_id TEXT NOT NULL REFERENCES captures (manifest_id),
    file_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    vault_path TEXT NOT NULL,
    source_path TEXT,
    state TEXT NOT NULL,
    evidence_id TEXT,
    upload_url TEXT,
    "offset" INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    receipt TEXT,
    updated_at TEXT NOT NULL,
    done_at TEXT,
    pruned_at TEXT,
    PRIMARY KEY (manifest_id, file_index)
);
CREATE INDEX IF NOT EXISTS items_state ON items (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS imported (
    source TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    manifest_id TEXT NOT NULL
);
"""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Queue:
    """The queue database of one home. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.clock = clock
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(_SCHEMA)  # idempotent; executescript commits on its own

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); rolls back on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _now(self) -> str:
        return _iso(self.clock())

    # ----------------------------------------------------------------- device chain

    def chain_head(self, device_id: str) -> tuple[int, str | None]:
        """``(device_seq, manifest hash)`` of this device's last manifest; ``(0, None)`` at start."""
        row = self.db.execute("SELECT device_id, seq, last_hash FROM device_chain").fetchone()
        if row is None or row["device_id"] != device_id:
            return (0, None)
        return (int(row["seq"]), row["last_hash"])

    # ----------------------------------------------------------------- adding

    def add_capture(
        self,
        signed: SignedManifest,
        files: Sequence[VaultFile],
        *,
        sources: Sequence[str | None] | None = None,
        imported: Iterable[tuple[str, int, int]] = (),
    ) -> None:
        """Queue a signed capture and advance the device chain, in one transaction.

        ``imported`` records docking-station sources ``(path, size, mtime_ns)`` so they
        are not imported twice. Raises ``ValueError`` if the manifest does not extend
        the chain head (another process captured in between — take the capture lock).
        """
        m = signed.manifest
        now = self._now()
        srcs = list(sources) if sources is not None else [None] * len(files)
        with self.transaction() as db:
            head = self.chain_head(m.device_id)
            if (m.device_seq, m.device_prev) != (head[0] + 1, head[1]):
                raise ValueError(
                    f"device chain moved: head {head}, manifest {m.device_seq}/{m.device_prev}"
                )
            db.execute(
                "INSERT INTO captures (manifest_id, device_seq, manifest_hash, signed_json,"
                " case_ref, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    m.manifest_id,
                    m.device_seq,
                    m.manifest_hash(),
                    json.dumps(signed.to_json(), ensure_ascii=False),
                    m.case_ref,
                    now,
                ),
            )
            for i, (f, vf) in enumerate(zip(m.files, files, strict=True)):
                db.execute(
                    "INSERT INTO items (manifest_id, file_index, name, size, sha256, media_type,"
                    " vault_path, source_path, state, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        m.manifest_id,
                        i,
                        f.name,
                        f.size,
                        f.sha256,
                        f.media_type,
                        str(vf.path),
                        srcs[i],
                        ItemState.CAPTURED.value,
                        now,
                    ),
                )
            db.execute(
                "INSERT INTO device_chain (id, device_id, seq, last_hash) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id,"
                " seq = excluded.seq, last_hash = excluded.last_hash",
                (m.device_id, m.device_seq, m.manifest_hash()),
            )
            for path, size, mtime_ns in imported:
                db.execute(
                    "INSERT OR REPLACE INTO imported (source, size, mtime_ns, manifest_id)"
                    " VALUES (?, ?, ?, ?)",
                    (path, size, mtime_ns, m.manifest_id),
                )

    def was_imported(self, source: str, size: int, mtime_ns: int) -> bool:
        """True when this docking-station file (same path, size and mtime) was imported."""
        row = self.db.execute(
            "SELECT 1 FROM imported WHERE source = ? AND size = ? AND mtime_ns = ?",
            (source, size, mtime_ns),
        ).fetchone()
        return row is not None

    # ----------------------------------------------------------------- reading

    def manifest_ids(self) -> set[str]:
        """Every queued capture's manifest id."""
        return {r[0] for r in self.db.execute("SELECT manifest_id FROM captures")}

    def items(
        self, states: Iterable[ItemState] | None = None, manifest_id: str | None = None
    ) -> list[QueueItem]:
        """Items, oldest capture first; optionally only some states / one capture."""
        sql = (
            "SELECT i.*, c.case_ref, c.device_seq, c.created_at FROM items i"
            " JOIN captures c USING (manifest_id)"
        )
        where: list[str] = []
        args: list[Any] = []
        if states is not None:
            wanted = [s.value for s in states]
            where.append(f"i.state IN ({','.join('?' * len(wanted))})")
            args += wanted
        if manifest_id is not None:
            where.append("i.manifest_id = ?")
            args.append(manifest_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY c.device_seq, i.file_index"
        return [_item(r) for r in self.db.execute(sql, args)]

    def item(self, key: tuple[str, int]) -> QueueItem:
        """One item by ``(manifest_id, file_index)``."""
        found = [i for i in self.items(manifest_id=key[0]) if i.file_index == key[1]]
        if not found:
            raise KeyError(key)
        return found[0]

    def signed_manifest(self, manifest_id: str) -> dict[str, Any]:
        """The signed wire JSON of a queued capture."""
        row = self.db.execute(
            "SELECT signed_json FROM captures WHERE manifest_id = ?", (manifest_id,)
        ).fetchone()
        if row is None:
            raise KeyError(manifest_id)
        data: dict[str, Any] = json.loads(row[0])
        return data

    def receipt(self, key: tuple[str, int]) -> dict[str, Any] | None:
        """The stored receipt JSON of an item, if any."""
        row = self.db.execute(
            "SELECT receipt FROM items WHERE manifest_id = ? AND file_index = ?", key
        ).fetchone()
        return None if row is None or row[0] is None else dict(json.loads(row[0]))

    def counts(self) -> dict[ItemState, int]:
        """Number of items in each state (every state present, zero when none)."""
        found = dict(self.db.execute("SELECT state, count(*) FROM items GROUP BY state").fetchall())
        return {s: int(found.get(s.value, 0)) for s in ItemState}

    def due(self, now: float | None = None) -> list[QueueItem]:
        """Items sync should work on now (not done/failed, backoff elapsed), in order."""
        now = self.clock() if now is None else now
        return [
            i
            for i in self.items(
                [
                    ItemState.CAPTURED,
                    ItemState.REGISTERED,
                    ItemState.UPLOADING,
                    ItemState.UPLOADED,
                ]
            )
            if i.next_attempt_at <= now
        ]

    # ----------------------------------------------------------------- transitions

    def _update(self, key: tuple[str, int], **values: Any) -> None:
        values["updated_at"] = self._now()
        cols = ", ".join(f'"{k}" = ?' for k in values)
        with self.transaction() as db:
            cur = db.execute(
                f"UPDATE items SET {cols} WHERE manifest_id = ? AND file_index = ?",
                (*values.values(), *key),
            )
            if cur.rowcount != 1:
                raise KeyError(key)

    def mark_registered(self, manifest_id: str, evidence_ids: Mapping[int, str | None]) -> None:
        """The server accepted the manifest; remember each file's evidence id (by file index)."""
        now = self._now()
        with self.transaction() as db:
            db.execute(
                "UPDATE captures SET registered_at = coalesce(registered_at, ?)"
                " WHERE manifest_id = ?",
                (now, manifest_id),
            )
            for index, evidence_id in evidence_ids.items():
                db.execute(
                    "UPDATE items SET state = ?, evidence_id = ?, attempts = 0,"
                    " next_attempt_at = 0, last_error = NULL, updated_at = ?"
                    " WHERE manifest_id = ? AND file_index = ? AND state = ?",
                    (
                        ItemState.REGISTERED.value,
                        evidence_id,
                        now,
                        manifest_id,
                        index,
                        ItemState.CAPTURED.value,
                    ),
                )

    def mark_uploading(self, key: tuple[str, int], upload_url: str, offset: int) -> None:
        """A tus upload exists at ``upload_url`` and the server holds ``offset`` bytes."""
        self._update(key, state=ItemState.UPLOADING.value, upload_url=upload_url, offset=offset)

    def set_offset(self, key: tuple[str, int], offset: int) -> None:
        """The server confirmed ``offset`` bytes (after each chunk); clears the backoff."""
        self._update(key, offset=offset, attempts=0, next_attempt_at=0, last_error=None)

    def mark_uploaded(self, key: tuple[str, int], receipt: dict[str, Any] | None) -> None:
        """The server has the whole file; keep its receipt (if it came) for verification."""
        item = self.item(key)
        self._update(
            key,
            state=ItemState.UPLOADED.value,
            offset=item.size,
            receipt=None if receipt is None else json.dumps(receipt, ensure_ascii=False),
        )

    def mark_done(self, key: tuple[str, int], receipt: dict[str, Any]) -> None:
        """The receipt verified: the item is done."""
        self._update(
            key,
            state=ItemState.DONE.value,
            receipt=json.dumps(receipt, ensure_ascii=False),
            done_at=self._now(),
            last_error=None,
            attempts=0,
            next_attempt_at=0,
        )

    def mark_failed(self, key: tuple[str, int], reason: str) -> None:
        """Needs a person: the server refused, or the vault copy is missing/changed."""
        self._update(key, state=ItemState.FAILED.value, last_error=reason)

    def defer(
        self,
        keys: Iterable[tuple[str, int]],
        reason: str,
        *,
        rand: Callable[[], float] = random.random,
        cap: float = BACKOFF_CAP,
    ) -> float:
        """A transient failure: count the attempt and push the next one back; return the delay.

        ``cap`` bounds the delay (e.g. a locked upload clears within a minute, so it is
        retried every few seconds rather than after ever longer waits).
        """
        delay = 0.0
        now = self.clock()
        for key in keys:
            attempts = self.item(key).attempts + 1
            delay = backoff_delay(attempts, rand=rand, cap=cap)
            self._update(key, attempts=attempts, next_attempt_at=now + delay, last_error=reason)
        return delay

    def retry_failed(self, manifest_id: str | None = None) -> int:
        """Put failed items back in line (after a person fixed the cause); returns how many."""
        sql = (
            "UPDATE items SET state = CASE WHEN evidence_id IS NULL THEN ? ELSE ? END,"
            " attempts = 0, next_attempt_at = 0, updated_at = ? WHERE state = ?"
        )
        args: list[Any] = [
            ItemState.CAPTURED.value,
            ItemState.REGISTERED.value,
            self._now(),
            ItemState.FAILED.value,
        ]
        if manifest_id is not None:
            sql += " AND manifest_id = ?"
            args.append(manifest_id)
        with self.transaction() as db:
            return int(db.execute(sql, args).rowcount)

    def prunable(self, older_than: float) -> list[str]:
        """Captures whose every item is done before ``older_than`` and still in the vault."""
        rows = self.db.execute(
            "SELECT manifest_id FROM items GROUP BY manifest_id"
            " HAVING sum(state != ?) = 0 AND max(done_at) <= ? AND sum(pruned_at IS NULL) > 0"
            " ORDER BY manifest_id",
            (ItemState.DONE.value, _iso(older_than)),
        )
        return [r[0] for r in rows]

    def mark_pruned(self, manifest_id: str) -> None:
        """The vault copies of this capture were deleted after retention."""
        with self.transaction() as db:
            db.execute(
                "UPDATE items SET pruned_at = ? WHERE manifest_id = ?", (self._now(), manifest_id)
            )


def _item(r: sqlite3.Row) -> QueueItem:
    return QueueItem(
        manifest_id=r["manifest_id"],
        file_index=r["file_index"],
        name=r["name"],
        size=r["size"],
        sha256=r["sha256"],
        media_type=r["media_type"],
        vault_path=Path(r["vault_path"]),
        case_ref=r["case_ref"],
        device_seq=r["device_seq"],
        state=ItemState(r["state"]),
        offset=r["offset"],
        evidence_id=r["evidence_id"],
        upload_url=r["upload_url"],
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        last_error=r["last_error"],
        created_at=r["created_at"],
        done_at=r["done_at"],
        pruned_at=r["pruned_at"],
        source_path=r["source_path"],
    )
