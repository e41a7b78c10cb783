"""The part pump and recorder: a PATCH body into durable storage parts, each step recorded
under the upload's lease (:mod:`.lease`) in one short transaction."""

from __future__ import annotations

import contextlib
import errno
import logging
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from server import hashstate, tus
from server.errors import (
    ChecksumMismatch,
    Locked,
    PayloadTooLarge,
    Unavailable,
)
from server.faults import fault_point
from server.models import (
    Upload,
    UploadPart,
    utcnow,
)
from server.services.ingest import lease
from server.services.ingest.bodies import _part_blocks, _Peekable
from server.services.ingest.common import ClientGone, IngestBase, _Progress, _token
from server.services.unit_of_work import UnitOfWork
from storage import errors as storage_errors
from storage.hashing import HashWorker
from storage.keys import upload_key
from storage.port import Block, PartInfo, PartsInFlight

log = logging.getLogger(__name__)

PARTS_IN_FLIGHT = 2
"""Part puts an upload keeps going at once on a store that can hold a part's end until
the one before it is recorded (:class:`storage.port.PartsInFlight`: S3), so the store
works on two parts while the next one is received: at most three part buffers per
upload. One on any other store."""


class PartPump(IngestBase):
    """Streams bodies into parts/tails and records every durable step (tusd's data store side)."""

    def _check_checksum_chunk(self, body_length: int | None) -> None:
        if body_length is not None and body_length > self.config.checksum_chunk_max:
            raise self._chunk_too_large()

    def _chunk_too_large(self) -> PayloadTooLarge:
        cap = self.config.checksum_chunk_max
        return PayloadTooLarge(
            f"带 Upload-Checksum 的数据块不得超过 {cap} 字节，未保存任何字节；请以较小分块发送"
            f"（tus 客户端的 chunk_size ≤ {cap}，见 OPTIONS 的 CaseTrail-Checksum-Chunk-Max）"
            f" (a chunk sent with Upload-Checksum may be at most {cap} bytes; nothing was "
            f"stored — send smaller chunks: set the tus client's chunk_size ≤ {cap}, see "
            "CaseTrail-Checksum-Chunk-Max in OPTIONS)",
            {"Content-Length": [f"at most {cap} with Upload-Checksum"]},
        )

    def _verified_spool(self, blocks: Iterator[Block], checksum: tus.Checksum) -> Any:
        """The whole chunk in a spool (memory, then disk), verified against its checksum."""
        spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - returned to the caller
            max_size=self.config.checksum_spool_memory, dir=self.config.spool_dir
        )
        hasher = checksum.hasher()
        try:
            for block in blocks:
                hasher.update(block)
                spool.write(block)
        except OSError as exc:  # the spool's disk is full: a clear 507, the chunk discarded
            spool.close()
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise storage_errors.StorageFull(f"spool full: {exc}") from exc
        except BaseException:
            spool.close()
            raise
        if not checksum.matches(hasher):
            spool.close()
            raise ChecksumMismatch(
                f"数据块与 Upload-Checksum ({checksum.algorithm}) 不符，已丢弃；请重发该数据块 "
                f"(the chunk does not match Upload-Checksum ({checksum.algorithm}); it was "
                "discarded — send it again)",
                {"Upload-Checksum": ["mismatch"]},
            )
        return spool

    def _pump(self, p: _Progress, blocks: Iterator[Block]) -> None:
        """Move ``blocks`` into durable parts/tail, recording each durable step."""
        caps = self.store.capabilities
        assert p.storage_upload_id is not None
        gone: ClientGone | None = None
        pipe = p.pipe = None if p.hasher is None else HashWorker(p.hasher)

        def hashed(source: Iterator[Block]) -> Iterator[Block]:
            nonlocal gone
            try:
                for block in self._renewing(p, source):
                    if pipe is not None:
                        pipe.update(block)
                    fault_point("ingest.mid_part")
                    yield block
            except ClientGone as exc:
                gone = exc

        try:
            if caps.min_part_size == 0:
                self._pump_streaming(p, hashed(blocks))
            else:
                self._pump_buffered(p, hashed(blocks), caps.min_part_size)
        finally:
            p.pipe = None
            if pipe is not None:
                pipe.close()
        if gone is not None:
            raise gone

    def _pump_streaming(self, p: _Progress, blocks: Iterator[Block]) -> None:
        """Stores without a part minimum (local): each part streams straight to disk."""
        assert p.storage_upload_id is not None
        source = _Peekable(blocks)
        while source.peek():  # never put an empty part: it would not be recorded
            part = _part_blocks(source, self.config.local_part_size)
            self._claim(p)
            info = self.store.put_part(p.storage_key, p.storage_upload_id, p.parts_count + 1, part)
            self._record_part(p, info, self._hash_state(p), last=source.ended)

    def _pump_buffered(self, p: _Progress, blocks: Iterator[Block], min_part: int) -> None:
        """Stores with a part minimum (S3): part buffers, a durable tail below the minimum.

        Full part buffers go to a :class:`_PartSender`, and the next part is received
        while up to :data:`PARTS_IN_FLIGHT` are put: at most that many + 1 part buffers
        per upload are held.
        """
        assert p.storage_upload_id is not None
        part_size = max(min_part, min(self.config.s3_part_size, self._max_part()))
        buffer: list[Block] = list(self._tail_blocks(p)) if p.tail_size else []
        buffered = sum(map(len, buffer))
        new_bytes = False
        with _PartSender(self, p) as sender:
            for block in blocks:
                new_bytes = True
                buffer.append(block)
                buffered += len(block)
                if buffered >= part_size:
                    sender.send(buffer, buffered)
                    buffer, buffered = [], 0
        if not buffer or not new_bytes:
            return
        if buffered >= min_part or p.offset - p.tail_size + buffered == p.length:
            self._put_buffer(p, buffer, buffered, self._hash_state(p), last=True)
        else:
            self._claim(p)
            self.store.write(upload_key(_token(p.upload_id)), buffer, write_once=False)
            p.tail_size = buffered
            self._record(p, self._hash_state(p), last=True)

    def _put_buffer(
        self,
        p: _Progress,
        buffer: list[Block],
        size: int,
        hash_state: bytes | None,
        *,
        last: bool = False,
    ) -> None:
        """Put ``buffer`` as the next part and record it with ``hash_state`` (its end)."""
        assert p.storage_upload_id is not None
        self._claim(p)
        info = self.store.put_part(p.storage_key, p.storage_upload_id, p.parts_count + 1, buffer)
        self._record_part(p, _stored_whole(info, size), hash_state, last=last)

    def _max_part(self) -> int:
        return self.store.capabilities.max_part_size or self.config.s3_part_size

    def _tail_blocks(self, p: _Progress) -> Iterator[bytes]:
        if p.tail_size == 0:
            return iter(())
        return self.store.open(upload_key(_token(p.upload_id)), 0, p.tail_size)

    def _record_part(
        self, p: _Progress, info: PartInfo, hash_state: bytes | None, *, last: bool = False
    ) -> None:
        p.parts_count += 1
        p.parts_size += info.size
        p.tail_size = 0
        self._record(p, hash_state, info, last=last)

    @staticmethod
    def _hash_state(p: _Progress) -> bytes | None:
        """The running hash saved now, once it has caught up with every byte received."""
        if p.hasher is None:
            return None
        if p.pipe is not None:
            p.pipe.settle()
        return p.hasher.save()

    def _record(
        self,
        p: _Progress,
        hash_state: bytes | None,
        part: PartInfo | None = None,
        *,
        last: bool = False,
    ) -> None:
        """Commit one durable step; refuse if our lease was lost meanwhile.

        ``hash_state`` must cover exactly ``p.offset`` bytes (see :meth:`_hash_state`);
        ``part``: the part just put, recorded with the size and ETag the store answered.
        ``last``: the PATCH's body has ended, so this is its last step. Unless the upload
        is now complete (the completion still needs the lease), the lease ends in this
        same commit (``p.released``) instead of in a transaction of its own.
        """
        now = utcnow()
        release = last and p.offset != p.length
        lease_values: dict[str, Any] = (
            {"lock_owner": None, "lock_expires_at": None}
            if release
            else {"lock_expires_at": now + self.config.lock_ttl}
        )
        with self.uow_factory() as uow:
            result = uow.session.execute(
                update(Upload)
                .where(Upload.id == p.upload_id, Upload.lock_owner == p.lock)
                .values(
                    parts_count=p.parts_count,
                    parts_size=p.parts_size,
                    tail_size=p.tail_size,
                    offset=p.offset,
                    hash_state=hash_state,
                    updated_at=now,
                    **lease_values,
                )
                .execution_options(**lease.UNSYNCHRONIZED)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise Locked(lease.LOST)
            if part is not None:  # replaces a row left by an unrecorded put of this number
                uow.session.execute(
                    delete(UploadPart).where(
                        UploadPart.upload_id == p.upload_id, UploadPart.number == part.number
                    )
                )
                uow.session.execute(
                    insert(UploadPart).values(
                        upload_id=p.upload_id, number=part.number, size=part.size, etag=part.etag
                    )
                )
            if p.offset == p.length:  # the last step: what completion needs, read now
                p.recorded = self._recorded_parts(uow, p.upload_id, p.parts_count)
            uow.commit()
        p.renewed_at = now
        p.hash_state = hash_state
        if release:
            p.released = True

    def _renewing(self, p: _Progress, blocks: Iterator[Block]) -> Iterator[Block]:
        """``blocks``, renewing the lease (when due) *before* each is handed on.

        A block reaches the store only within ``lock_ttl / 3`` of a successful renewal,
        so no other request can have taken the upload over meanwhile; a request that
        stalled past its lease and lost it stops here, before writing anything.
        """
        for block in blocks:
            self._renew_if_due(p)
            yield block

    def _renew_if_due(self, p: _Progress) -> None:
        now = utcnow()
        if p.renewed_at is not None and now - p.renewed_at < self.config.lock_ttl / 3:
            return
        self._renew(p, now, Upload.lock_owner == p.lock)

    def _claim(self, p: _Progress) -> None:
        """Right before a part or tail goes to the store: the lease is still ours and the
        database has recorded exactly what we know, so the part number we are about to
        put is one it has NOT recorded (a stale request never replaces a recorded part).

        Within ``lock_ttl / 3`` of a confirmation of the lease (taken, renewed or
        recorded) nobody else can hold it, so nobody recorded anything: no statement."""
        now = utcnow()
        if p.renewed_at is not None and now - p.renewed_at < self.config.lock_ttl / 3:
            return
        self._renew(
            p,
            now,
            Upload.lock_owner == p.lock,
            Upload.parts_count == p.parts_count,
            Upload.offset == p.offset,
        )

    def _renew(self, p: _Progress, now: datetime, *conditions: Any) -> None:
        """Extend the lease by one UPDATE that must touch exactly one row."""
        with self.uow_factory() as uow:
            lease.renew(
                uow.session,
                p.upload_id,
                p.lock,
                ttl=self.config.lock_ttl,
                now=now,
                conditions=conditions,
            )
            uow.commit()
        p.renewed_at = now

    def _acquire(self, upload_id: str) -> str:
        """Take the upload's lease in a unit of its own; its lock id."""
        with self.uow_factory() as uow:
            lock, _ = self._take_lease(uow, upload_id)
            uow.commit()
        return lock

    def _take_lease(self, uow: UnitOfWork, upload_id: str) -> tuple[str, datetime]:
        """Take the upload's lease inside ``uow``: its owner id and when it was taken."""
        return lease.take(
            uow.session,
            upload_id,
            ttl=self.config.lock_ttl,
            prefix=self.lock_prefix,
        )

    def _release(self, upload_id: str, lock: str) -> None:
        try:
            with self.uow_factory() as uow:
                lease.release(uow.session, upload_id, lock)
                uow.commit()
        except Exception:  # the lease expires by itself; never mask the real outcome
            log.exception("could not release upload lease %s", upload_id)

    def release_dead_leases(self) -> list[str]:
        """At start-up: release the leases of this host's gone processes (a crash, kill -9)
        so their clients resume at once; the uploads released."""
        with self.uow_factory() as uow:
            released = lease.release_dead(uow.session)
            uow.commit()
        if released:
            log.warning("released %d upload leases of gone processes", len(released))
        return released

    def _load(self, upload_id: str, lock: str) -> _Progress:
        with self.uow_factory() as uow:
            upload = uow.session.get(Upload, upload_id)
            assert upload is not None
            return self._progress(upload, lock)

    @staticmethod
    def _progress(upload: Upload, lock: str, renewed_at: datetime | None = None) -> _Progress:
        return _Progress(
            upload_id=upload.id,
            storage_key=upload.storage_key or "",
            storage_upload_id=upload.storage_upload_id,
            length=upload.length,
            parts_count=upload.parts_count,
            parts_size=upload.parts_size,
            tail_size=upload.tail_size,
            hasher=hashstate.restore(upload.hash_state, upload.offset),
            lock=lock,
            renewed_at=renewed_at,
            hash_state=upload.hash_state,
        )

    @staticmethod
    def _recorded_parts(uow: UnitOfWork, upload_id: str, parts_count: int) -> list[PartInfo]:
        return [
            PartInfo(row.number, row.size, row.etag)
            for row in uow.session.scalars(
                select(UploadPart)
                .where(UploadPart.upload_id == upload_id, UploadPart.number <= parts_count)
                .order_by(UploadPart.number)
            )
        ]


def _stored_whole(info: PartInfo, size: int) -> PartInfo:
    """``info``, if the store kept all ``size`` bytes of the part (else nothing is recorded)."""
    if info.size != size:
        raise Unavailable(
            "存储写入的分片大小不符，此段未记录：请稍后从服务器报告的偏移量续传 (the store kept "
            "a part of the wrong size; it was not recorded — resume later from the offset "
            "the server reports)"
        )
    return info


def _taken(buffer: list[Block]) -> Iterator[Block]:
    """The blocks of ``buffer``, each let go as the store takes it (one copy of a part
    in memory, not two)."""
    buffer.reverse()
    while buffer:
        yield buffer.pop()


class _PartSender:
    """Puts full part buffers in worker threads while the next part is being received.

    :meth:`send` hands over one buffer with the hash state at its end (taken in the
    receiving thread, so it covers exactly the bytes up to the part's end). Up to
    :data:`PARTS_IN_FLIGHT` parts are put at once, numbered in the order they were
    received, and recorded strictly in that order: a part's last bytes reach the store
    only once the part before it is recorded (``put_part_after``), so ``Upload-Offset``
    and the saved hash state only ever cover parts stored and recorded, and a crash at
    any moment leaves at most one stored part unrecorded — the next one, which a resumed
    upload puts again. When the oldest part failed, :meth:`send` raises its error (the
    parts after it fail with it, kept by nobody). Leaving the ``with`` block waits for
    every part, raising the first error unless another one is already on its way out.
    """

    def __init__(self, ingest: PartPump, p: _Progress) -> None:
        self._ingest = ingest
        self._p = p
        self._in_flight = PARTS_IN_FLIGHT if isinstance(ingest.store, PartsInFlight) else 1
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        self._next = p.parts_count + 1
        # claims and records read and move ``p`` and the upload row together, one at a time
        self._recording = threading.Lock()

    def __enter__(self) -> _PartSender:
        return self

    def send(self, buffer: list[Block], size: int) -> None:
        """Put ``buffer`` (``size`` bytes) as the next part, in the background."""
        state = self._ingest._hash_state(self._p)
        while len(self._pending) >= self._in_flight:
            self._pending.popleft().result()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._in_flight, thread_name_prefix="ingest-part")
        previous = self._pending[-1] if self._pending else None
        number, self._next = self._next, self._next + 1
        self._pending.append(self._pool.submit(self._put, number, buffer, size, state, previous))

    def _put(
        self,
        number: int,
        buffer: list[Block],
        size: int,
        hash_state: bytes | None,
        previous: Future[None] | None,
    ) -> None:
        """Put part ``number``; record it once ``previous`` (the part before) is recorded."""
        p, store = self._p, self._ingest.store
        assert p.storage_upload_id is not None
        with self._recording:
            self._ingest._claim(p)
        blocks = _taken(buffer)
        if previous is None:
            info = store.put_part(p.storage_key, p.storage_upload_id, number, blocks)
        else:
            assert isinstance(store, PartsInFlight)
            info = store.put_part_after(
                p.storage_key, p.storage_upload_id, number, blocks, previous.result
            )
            previous.result()  # recorded before our last bytes left: raises if it failed
        with self._recording:
            assert p.parts_count + 1 == number, (p.parts_count, number)
            self._ingest._record_part(p, _stored_whole(info, size), hash_state)

    def _wait_all(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            if exc_type is None:
                self._wait_all()
            else:
                with contextlib.suppress(Exception):
                    self._wait_all()
        finally:
            for pending in self._pending:  # after an error: let the later parts end too
                with contextlib.suppress(Exception):
                    pending.result()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
