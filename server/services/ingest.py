"""Ingest (入库): tus uploads streamed into storage, verified against the signed manifest.

Use cases (no Flask): :meth:`Ingest.create`, :meth:`Ingest.status` (tus HEAD),
:meth:`Ingest.append` (PATCH), :meth:`Ingest.terminate` (DELETE) and
:meth:`Ingest.expire`. An upload is bound to one announced ``evidence`` row; the server
knows the expected size and SHA-256 from the device's signed capture manifest.

Streaming and durability
    A PATCH body is read in 1 MiB blocks and hashed (SHA-256, state saved with
    :mod:`server.hashstate`) in the same pass, in a worker thread beside the reads and
    writes; the state is saved only after the hash has caught up with a durable step. Bytes become storage *parts*; on a store
    with a minimum part size (S3: 5 MiB) bytes are gathered in one part buffer, and a
    remainder below the minimum at the end of a PATCH is written as a scratch object
    (``uploads/<id>/tail``) before it counts. After every durable step the database
    row records ``parts_count``, ``parts_size``, ``tail_size``, ``offset`` and the hash
    state, in one short transaction: ``Upload-Offset`` never claims bytes that are not
    durably stored, and a resumed upload may land on any server process. A step that
    was stored but not recorded (a crash in between) is simply redone: the next part
    with the same number replaces it; a longer tail is read only up to ``tail_size``.

One PATCH at a time
    ``uploads.lock_owner`` / ``lock_expires_at`` form a lease taken by one atomic
    ``UPDATE … WHERE lock is free or expired``, renewed after every read of the body
    (before a block goes on to the store) and checked at every durable step. Right
    before each part or tail is written, one ``UPDATE`` that must touch exactly one row
    checks the lease *and* that the database recorded no more parts than this request
    knows: a request that lost its lease never replaces a recorded part. A second PATCH
    gets 423; a dead request's lease expires.

Completion
    On the last byte, size and SHA-256 are compared with the manifest. A match is
    completed with the parts recorded in ``upload_parts`` (size and ETag as the store
    answered each put); the running SHA-256 is trusted only when the store's parts are
    exactly those and add up to the length, else the store re-hashes. It is completed
    write-once at ``storage.keys.original_key(sha256)`` (an existing object
    there holds the same verified bytes and is reused), the evidence row is ``stored``,
    custody events ``ingest_verified`` and ``stored`` and a signed checkpoint are
    committed together with the signed receipt; the evidence row is read ``FOR UPDATE``
    there, so two uploads of one evidence finishing at once store it once (the second
    finds it ``stored`` and returns the same receipt). A mismatch is quarantined and logged
    as ``ingest_mismatch``. Completion is idempotent: after a crash between storage
    completion and the commit, a HEAD or a re-sent PATCH finds the object at the
    content key, re-reads it to confirm the digest, and finishes.

If the saved hash state is missing or corrupt, the digest is re-derived from the
stored bytes by the store at completion (it re-reads them) instead of trusting it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import os
import queue
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from core.canonical import canonical_json
from core.checkpoint import NoteSigner
from core.custody import Actor, EventType, ObjectRef
from server import hashstate, tus
from server.auth import Principal, authenticate, require_device_case_access
from server.errors import (
    BadRequest,
    Conflict,
    Invalid,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from server.faults import fault_point
from server.models import (
    CaptureManifest,
    Case,
    Evidence,
    EvidenceStatus,
    Upload,
    UploadPart,
    utcnow,
)
from server.services.custody import SYSTEM_ACTOR, record_custody
from server.services.receipts import build_receipt
from server.services.sequencer import CheckpointOf, Sequencer
from server.services.unit_of_work import UnitOfWork
from storage import errors as storage_errors
from storage.hashing import Digester
from storage.keys import original_key, upload_key
from storage.port import BLOCK_SIZE, BlobStore, ByteStream, PartInfo

log = logging.getLogger(__name__)

ACTIVE, COMPLETED, FAILED, TERMINATED = "active", "completed", "failed", "terminated"
ENDED_TERMINATED, ENDED_EXPIRED, ENDED_ABANDONED = "terminated", "expired", "abandoned"
"""Reasons an ``upload_ended`` custody event gives."""
EMPTY_SHA256 = "sha256:" + hashlib.sha256(b"").hexdigest()
MISMATCH_MESSAGE = (
    "设备上的文件与其签名清单所述不符，已隔离；请重新采集或检查设备后再上传 "
    "(the file on the device differs from what was signed; it was quarantined — "
    "recapture or check the device, then upload again)"
)


@dataclass(frozen=True)
class IngestConfig:
    """Limits and timings of the ingest path."""

    max_size: int = 64 << 30
    upload_ttl: timedelta = timedelta(days=7)
    lock_ttl: timedelta = timedelta(seconds=60)
    local_part_size: int = 64 << 20  # stores without a minimum part size stream straight in
    s3_part_size: int = 16 << 20  # one in-memory part buffer per upload in flight
    checksum_spool_memory: int = 8 << 20  # checksummed chunks above this spool to disk
    checksum_chunk_max: int = 64 << 20  # a checksummed chunk is spooled whole: at most this
    whole_body_max: int = 16 << 20  # a whole file up to this in one POST: one write, one commit
    spool_dir: str | None = None


@dataclass(frozen=True)
class UploadView:
    """What a tus response reports about an upload."""

    id: str
    evidence_id: str
    offset: int
    length: int
    status: str
    expires_at: datetime | None
    receipt: dict[str, Any] | None = None
    filename: str | None = None


@dataclass(frozen=True)
class Credentials:
    """A request's ``Authorization`` header, authenticated inside the use case's first
    unit of work (not in a transaction of its own)."""

    authorization: str | None


Caller = Principal | Credentials


def _principal(uow: UnitOfWork, who: Caller) -> Principal:
    if isinstance(who, Principal):
        return who
    return authenticate(uow.session, who.authorization)


def _keep_token_use(uow: UnitOfWork) -> None:
    """Commit a unit that only authenticated (the token's last use may have moved)."""
    if uow.session.dirty:
        uow.commit()


class ClientGone(BadRequest):
    """The request body ended early (client disconnected); stored bytes were kept."""


@dataclass
class _Progress:
    """The durable state of an upload while one PATCH holds its lease."""

    upload_id: str
    storage_key: str
    storage_upload_id: str | None
    length: int
    parts_count: int
    parts_size: int
    tail_size: int
    hasher: hashstate.RunningSha256 | None
    lock: str
    renewed_at: datetime | None = None
    pipe: _HashThread | None = None  # feeds ``hasher`` while a PATCH streams
    hash_state: bytes | None = None  # as last recorded
    expected_sha256: str = ""
    recorded: list[PartInfo] | None = None  # read with the last step's record
    released: bool = False  # the lease ended with the completion's commit

    @property
    def offset(self) -> int:
        return self.parts_size + self.tail_size


@dataclass
class Ingest:
    """The ingest use cases over a unit-of-work factory and a blob store."""

    uow_factory: Callable[[], AbstractContextManager[UnitOfWork]]
    store: BlobStore
    signer: Callable[[], NoteSigner]
    config: IngestConfig = field(default_factory=IngestConfig)
    on_stored: Callable[[str], None] | None = None
    lock_prefix: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    sequencer: Sequencer = field(init=False)

    def __post_init__(self) -> None:
        self.sequencer = Sequencer(self.uow_factory, self.signer)

    # ------------------------------------------------------------------ create / status

    def create(
        self,
        who: Caller,
        length: int,
        metadata: dict[str, str],
        *,
        body: ByteStream | None = None,
        body_length: int | None = None,
        checksum: tus.Checksum | None = None,
    ) -> UploadView:
        """tus creation (and creation-with-upload when ``body`` is given)."""
        if length > self.config.max_size:
            raise PayloadTooLarge(
                f"文件超过服务器上限 {self.config.max_size} 字节 "
                f"(Upload-Length exceeds Tus-Max-Size {self.config.max_size})"
            )
        if checksum is not None:
            self._check_checksum_chunk(body_length)
        with self.uow_factory() as uow:
            principal = _principal(uow, who)
            evidence = self._bound_evidence(uow, principal, metadata)
            if length != evidence.expected_size:
                raise Invalid(
                    f"Upload-Length {length} 与采集清单所述大小 {evidence.expected_size} 不符；"
                    "请上传清单中登记的原始文件 (Upload-Length differs from the size in the "
                    "signed manifest; upload the original file the manifest lists)",
                    {"Upload-Length": [f"expected {evidence.expected_size}, got {length}"]},
                )
            upload = self._new_upload(evidence, principal, length, metadata)
            key = upload.storage_key or ""
            evidence_id, expected = evidence.id, evidence.expected_sha256
            stored = evidence.status == EvidenceStatus.STORED
            stored_key = (evidence.storage_key or key) if stored else None
            if stored_key is not None and body is None:
                # Already safe: the same evidence and receipt, nothing to send again.
                return self._completed_again(uow, upload, evidence)
            whole = (
                body is not None
                and checksum is None
                and body_length == length
                and 0 < length <= self.config.whole_body_max
            )
            if stored_key is not None or whole:
                _keep_token_use(uow)
            if stored_key is None and not whole:
                if length > 0:
                    sid = self.store.start_upload(key)
                    upload.storage_upload_id = sid
                    uow.on_rollback(lambda: self._quietly(self.store.abort_upload, key, sid))
                self._start(uow, upload, evidence, principal)
                uow.commit()
            upload_id = upload.id
        if stored_key is not None:
            # a body sent to stored evidence (the transaction above changed nothing): the
            # same bytes → the same result, different ones → 409, compared outside any
            # transaction
            assert body is not None
            self._check_same_as_stored(body, body_length, length, stored_key, expected)
            with self.uow_factory() as uow:
                again = uow.session.get(Evidence, evidence_id)
                assert again is not None
                return self._completed_again(uow, upload, again)
        if whole:
            assert body is not None
            return self._create_whole(principal, evidence_id, expected, length, metadata, body)
        if length == 0:
            return self._finish_locked(upload_id, principal)
        if body is not None:
            return self.append(principal, upload_id, 0, body, body_length, checksum)
        return self.status(principal, upload_id)

    def _completed_again(self, uow: UnitOfWork, upload: Upload, evidence: Evidence) -> UploadView:
        """Commit ``upload`` as completed at once: its evidence is already stored."""
        upload.status, upload.offset, upload.expires_at = COMPLETED, upload.length, None
        uow.session.add(upload)
        uow.commit()
        return self._view(upload, evidence)

    def _check_same_as_stored(
        self, body: ByteStream, body_length: int | None, length: int, key: str, expected: str
    ) -> None:
        """``Conflict`` unless ``body`` is the stored original (or, cut short by the
        client's chunk size, its first bytes); nothing is written either way."""
        limit = length if body_length is None else body_length
        sent = hashlib.sha256()
        size = 0
        for block in _body_blocks(body, limit, body_length is not None):
            sent.update(block)
            size += len(block)
        if size == length:
            same = "sha256:" + sent.hexdigest() == expected
        else:
            kept = hashlib.sha256()
            for block in self.store.open(key, 0, size):
                kept.update(block)
            same = kept.digest() == sent.digest()
        if not same:
            raise Conflict(
                "该证据已入库，本次发送的内容与之不同，未作任何更改；请核对设备上的文件 (this "
                "evidence is already stored and the bytes sent differ from it; nothing was "
                "changed — check the file on the device)",
                {"body": ["differs from the stored original"]},
            )

    def _new_upload(
        self, evidence: Evidence, principal: Principal, length: int, metadata: dict[str, str]
    ) -> Upload:
        return Upload(
            id=str(uuid.uuid4()),
            evidence_id=evidence.id,
            offset=0,
            length=length,
            expires_at=utcnow() + self.config.upload_ttl,
            storage_key=original_key(evidence.expected_sha256),
            filename=metadata.get("filename"),
            created_by=principal.actor_id,
            status=ACTIVE,
            hash_state=hashstate.RunningSha256().save(),
        )

    @staticmethod
    def _start(uow: UnitOfWork, upload: Upload, evidence: Evidence, principal: Principal) -> None:
        """Add ``upload`` and its ``upload_started`` event (the caller commits)."""
        if evidence.status != EvidenceStatus.STORED:
            evidence.status = EvidenceStatus.UPLOADING.value
        uow.session.add(upload)
        case = uow.session.get(Case, evidence.case_id)
        assert case is not None
        record_custody(
            uow,
            case,
            EventType.UPLOAD_STARTED,
            principal,
            {"evidence_id": evidence.id, "upload_id": upload.id, "length": upload.length},
        )

    def _create_whole(
        self,
        principal: Principal,
        evidence_id: str,
        expected: str,
        length: int,
        metadata: dict[str, str],
        body: ByteStream,
    ) -> UploadView:
        """creation-with-upload carrying the whole (small) file: one write, one commit.

        The body is held in memory (at most ``whole_body_max``), written write-once at the
        content key with the manifest's SHA-256 as the condition (one PutObject on S3),
        and only then are the upload, its custody events, checkpoint and receipt
        committed in one transaction. A body cut short creates nothing (the client never
        got a Location to resume from); a mismatch keeps the bytes in quarantine.
        """
        blocks = list(_body_blocks(body, length, True))
        key = original_key(expected)
        sha512: str | None = None
        adopted = False
        try:
            info = self.store.write(
                key, _Blocks(list(blocks)), max_size=length, expected_sha256=expected
            )
            sha512 = info.sha512
        except storage_errors.DigestMismatch as exc:
            return self._whole_mismatch(
                principal, evidence_id, length, metadata, blocks, exc.actual
            )
        except storage_errors.AlreadyExists:
            actual = "sha256:" + _sha256_of(blocks)
            if actual != expected:
                return self._whole_mismatch(
                    principal, evidence_id, length, metadata, blocks, actual
                )
            self._reread(key, expected)  # the same verified content is already stored
            adopted = True
        fault_point("ingest.after_store")

        def work(uow: UnitOfWork) -> Callable[[CheckpointOf], tuple[UploadView, bool]]:
            evidence = uow.session.get(Evidence, evidence_id, with_for_update=True)
            assert evidence is not None
            upload = self._new_upload(evidence, principal, length, metadata)
            newly = evidence.status != EvidenceStatus.STORED
            add_receipt = None
            if newly:  # else a concurrent upload won with the same bytes
                self._start(uow, upload, evidence, principal)
                add_receipt = self._record_stored(uow, upload, evidence, principal, key, sha512)
            else:
                uow.session.add(upload)
            upload.status, upload.offset, upload.expires_at = COMPLETED, length, None
            upload.hash_state = None

            def finish(checkpoint: CheckpointOf) -> tuple[UploadView, bool]:
                if add_receipt is not None:
                    add_receipt(checkpoint)
                return self._view(upload, evidence), newly

            return finish

        view, newly_stored = self.sequencer.run(work)
        if adopted and not self.store.exists(key):  # moved away before our commit
            with contextlib.suppress(storage_errors.AlreadyExists):
                self.store.write(
                    key, _Blocks(list(blocks)), max_size=length, expected_sha256=expected
                )
        fault_point("ingest.after_commit")
        if newly_stored:
            self._schedule_inspection(view.evidence_id)
        return view

    def _whole_mismatch(
        self,
        principal: Principal,
        evidence_id: str,
        length: int,
        metadata: dict[str, str],
        blocks: list[bytes],
        actual: str | None,
    ) -> UploadView:
        """Keep a whole body that differs from the manifest in quarantine, log it, refuse."""
        with self.uow_factory() as uow:
            evidence = uow.session.get(Evidence, evidence_id, with_for_update=True)
            assert evidence is not None
            upload = self._new_upload(evidence, principal, length, metadata)
            upload_id = upload.id
            self._start(uow, upload, evidence, principal)
            uow.commit()
        scratch = upload_key(_token(upload_id))
        self.store.write(scratch, _Blocks(blocks), write_once=False)
        moved = self.store.quarantine(scratch, f"摘要与采集清单不符 / digest mismatch: {actual}")
        return self._mismatch(upload_id, principal, "", None, 0, actual, moved=moved)

    def status(self, who: Caller, upload_id: str) -> UploadView:
        """tus HEAD: the durable offset; converges an upload whose last step crashed."""
        with self.uow_factory() as uow:
            principal = _principal(uow, who)
            upload, evidence = self._visible_upload(uow, principal, upload_id)
            view = self._view(upload, evidence)
            _keep_token_use(uow)
        if view.status == ACTIVE and view.offset == view.length:
            with contextlib.suppress(tus.UploadLocked):
                return self._finish_locked(upload_id, principal)
        return view

    # ------------------------------------------------------------------ append (PATCH)

    def append(
        self,
        who: Caller,
        upload_id: str,
        offset: int,
        body: ByteStream,
        body_length: int | None,
        checksum: tus.Checksum | None = None,
    ) -> UploadView:
        """tus PATCH: stream ``body`` at ``offset`` into storage; finish on the last byte."""
        if checksum is not None:
            self._check_checksum_chunk(body_length)
        with self.uow_factory() as uow:
            principal = _principal(uow, who)
            upload, evidence = self._visible_upload(uow, principal, upload_id)
            if upload.status == COMPLETED and offset == upload.length and not body_length:
                _keep_token_use(uow)
                return self._view(upload, evidence)  # a re-sent final PATCH
            self._check_patch(upload, offset, body_length)
            # the lease in the same unit, then the row again: another PATCH may have
            # moved it between our read and the lease
            lock, taken_at = self._take_lease(uow, upload_id)
            uow.session.refresh(upload)
            self._check_patch(upload, offset, body_length)
            progress = self._progress(upload, lock, taken_at)
            progress.expected_sha256 = evidence.expected_sha256
            view = self._view(upload, evidence)
            uow.commit()
        try:
            fault_point("ingest.before_first_byte")
            limit = progress.length - progress.offset if body_length is None else body_length
            # the lease is renewed (when due) after every read of the body, however slow,
            # and while a checksummed chunk is spooled too
            received = _body_blocks(
                body, limit, body_length is not None, lambda: self._renew_if_due(progress)
            )
            if checksum is not None:
                cap = self.config.checksum_chunk_max
                if body_length is None and limit > cap:  # chunked: stop reading at the cap
                    received = _capped(received, cap, self._chunk_too_large)
                with self._verified_spool(received, checksum) as spool:
                    spool.seek(0)
                    self._pump(progress, _body_blocks(spool, limit, False))
            else:
                self._pump(progress, received)
            if progress.offset == progress.length:
                fault_point("ingest.after_last_part")
                return self._finish_recorded(progress, principal)
        finally:
            if not progress.released:
                self._release(upload_id, lock)
        return dataclasses.replace(view, offset=progress.offset)

    def _check_patch(self, upload: Upload, offset: int, body_length: int | None) -> None:
        if upload.status in (TERMINATED, FAILED) or self._expired(upload):
            raise tus.UploadGone(
                "此上传已终止或过期，请重新创建上传 (this upload was terminated or has expired; "
                "create a new upload with POST /api/v1/uploads)"
            )
        if offset != upload.offset:
            raise Conflict(
                f"Upload-Offset {offset} 与服务器已保存的字节数 {upload.offset} 不符；请先 HEAD "
                f"查询后从该位置续传 (Upload-Offset {offset} does not match the server's "
                f"offset {upload.offset}; send HEAD and resume from there)",
                {"Upload-Offset": [f"expected {upload.offset}, got {offset}"]},
            )
        if body_length is not None and offset + body_length > upload.length:
            raise PayloadTooLarge(_past_length(upload.length))

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

    def _verified_spool(self, blocks: Iterator[bytes], checksum: tus.Checksum) -> Any:
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
            raise tus.ChecksumMismatch(
                f"数据块与 Upload-Checksum ({checksum.algorithm}) 不符，已丢弃；请重发该数据块 "
                f"(the chunk does not match Upload-Checksum ({checksum.algorithm}); it was "
                "discarded — send it again)",
                {"Upload-Checksum": ["mismatch"]},
            )
        return spool

    def _pump(self, p: _Progress, blocks: Iterator[bytes]) -> None:
        """Move ``blocks`` into durable parts/tail, recording each durable step."""
        caps = self.store.capabilities
        assert p.storage_upload_id is not None
        gone: ClientGone | None = None
        pipe = p.pipe = None if p.hasher is None else _HashThread(p.hasher)

        def hashed(source: Iterator[bytes]) -> Iterator[bytes]:
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

    def _pump_streaming(self, p: _Progress, blocks: Iterator[bytes]) -> None:
        """Stores without a part minimum (local): each part streams straight to disk."""
        assert p.storage_upload_id is not None
        source = _Peekable(blocks)
        while source.peek():  # never put an empty part: it would not be recorded
            part = _PartStream(source, self.config.local_part_size)
            self._claim(p)
            info = self.store.put_part(p.storage_key, p.storage_upload_id, p.parts_count + 1, part)
            self._record_part(p, info, self._hash_state(p))

    def _pump_buffered(self, p: _Progress, blocks: Iterator[bytes], min_part: int) -> None:
        """Stores with a part minimum (S3): part buffers, a durable tail below the minimum.

        A full part buffer goes to a :class:`_PartSender` thread, and the next part is
        received while it is put: at most two part buffers per upload are held.
        """
        assert p.storage_upload_id is not None
        part_size = max(min_part, min(self.config.s3_part_size, self._max_part()))
        buffer: list[bytes] = list(self._tail_blocks(p)) if p.tail_size else []
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
            self._put_buffer(p, buffer, buffered, self._hash_state(p))
        else:
            self._claim(p)
            self.store.write(upload_key(_token(p.upload_id)), _Blocks(buffer), write_once=False)
            p.tail_size = buffered
            self._record(p, self._hash_state(p))

    def _put_buffer(
        self, p: _Progress, buffer: list[bytes], size: int, hash_state: bytes | None
    ) -> None:
        """Put ``buffer`` as the next part and record it with ``hash_state`` (its end)."""
        assert p.storage_upload_id is not None
        self._claim(p)
        info = self.store.put_part(
            p.storage_key, p.storage_upload_id, p.parts_count + 1, _Blocks(buffer)
        )
        if info.size != size:
            raise Unavailable(
                "存储写入的分片大小不符，此段未记录：请稍后从服务器报告的偏移量续传 (the store kept "
                "a part of the wrong size; it was not recorded — resume later from the offset "
                "the server reports)"
            )
        self._record_part(p, info, hash_state)

    def _max_part(self) -> int:
        return self.store.capabilities.max_part_size or self.config.s3_part_size

    def _tail_blocks(self, p: _Progress) -> Iterator[bytes]:
        if p.tail_size == 0:
            return iter(())
        return self.store.open(upload_key(_token(p.upload_id)), 0, p.tail_size)

    def _record_part(self, p: _Progress, info: PartInfo, hash_state: bytes | None) -> None:
        p.parts_count += 1
        p.parts_size += info.size
        p.tail_size = 0
        self._record(p, hash_state, info)

    @staticmethod
    def _hash_state(p: _Progress) -> bytes | None:
        """The running hash saved now, once it has caught up with every byte received."""
        if p.hasher is None:
            return None
        if p.pipe is not None:
            p.pipe.settle()
        return p.hasher.save()

    def _record(self, p: _Progress, hash_state: bytes | None, part: PartInfo | None = None) -> None:
        """Commit one durable step; refuse if our lease was lost meanwhile.

        ``hash_state`` must cover exactly ``p.offset`` bytes (see :meth:`_hash_state`);
        ``part``: the part just put, recorded with the size and ETag the store answered.
        """
        now = utcnow()
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
                    lock_expires_at=now + self.config.lock_ttl,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise tus.UploadLocked(_LOST_LEASE)
            if part is not None:
                uow.session.merge(
                    UploadPart(
                        upload_id=p.upload_id, number=part.number, size=part.size, etag=part.etag
                    )
                )
            if p.offset == p.length:  # the last step: what completion needs, read now
                p.recorded = self._recorded_parts(uow, p.upload_id, p.parts_count)
            uow.commit()
        p.renewed_at = now
        p.hash_state = hash_state

    def _renewing(self, p: _Progress, blocks: Iterator[bytes]) -> Iterator[bytes]:
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
            result = uow.session.execute(
                update(Upload)
                .where(Upload.id == p.upload_id, *conditions)
                .values(lock_expires_at=now + self.config.lock_ttl, updated_at=Upload.updated_at)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise tus.UploadLocked(_LOST_LEASE)
            uow.commit()
        p.renewed_at = now

    # ------------------------------------------------------------------ lease

    def _acquire(self, upload_id: str) -> str:
        """Take the upload's lease in a unit of its own; its lock id."""
        with self.uow_factory() as uow:
            lock, _ = self._take_lease(uow, upload_id)
            uow.commit()
        return lock

    def _take_lease(self, uow: UnitOfWork, upload_id: str) -> tuple[str, datetime]:
        """Take the upload's lease inside ``uow`` by one atomic UPDATE: its lock id and
        when it was taken; ``UploadLocked`` while another request holds it."""
        lock = f"{self.lock_prefix}:{uuid.uuid4().hex[:12]}"
        now = utcnow()
        result = uow.session.execute(
            update(Upload)
            .where(
                Upload.id == upload_id,
                or_(Upload.lock_owner.is_(None), Upload.lock_expires_at < now),
            )
            .values(
                lock_owner=lock,
                lock_expires_at=now + self.config.lock_ttl,
                updated_at=Upload.updated_at,  # a lease is not a change of the upload
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise tus.UploadLocked(
                "此上传正在由另一个请求写入，请稍后 HEAD 查询偏移量再续传 (another request is "
                "writing this upload right now; wait, send HEAD, then resume)"
            )
        return lock, now

    def _release(self, upload_id: str, lock: str) -> None:
        try:
            with self.uow_factory() as uow:
                uow.session.execute(
                    update(Upload)
                    .where(Upload.id == upload_id, Upload.lock_owner == lock)
                    .values(lock_owner=None, lock_expires_at=None, updated_at=Upload.updated_at)
                )
                uow.commit()
        except Exception:  # the lease expires by itself; never mask the real outcome
            log.exception("could not release upload lease %s", upload_id)

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

    # ------------------------------------------------------------------ completion

    def _finish_locked(self, upload_id: str, principal: Principal | Actor) -> UploadView:
        lock = self._acquire(upload_id)
        try:
            return self._finish(upload_id, principal, lock)
        finally:
            self._release(upload_id, lock)

    def _finish(self, upload_id: str, principal: Principal | Actor, lock: str) -> UploadView:
        """Verify and complete an upload whose bytes are all durable (idempotent)."""
        with self.uow_factory() as uow:
            upload = uow.session.get(Upload, upload_id)
            assert upload is not None
            evidence = uow.session.get(Evidence, upload.evidence_id)
            assert evidence is not None
            if upload.status != ACTIVE:
                return self._view(upload, evidence)
            expected = evidence.expected_sha256
            key = upload.storage_key or original_key(expected)
            sid = upload.storage_upload_id
            running = hashstate.restore(upload.hash_state, upload.length)
            parts_count, length = upload.parts_count, upload.length
            recorded = self._recorded_parts(uow, upload_id, parts_count)
        return self._complete(
            upload_id,
            principal,
            key,
            sid,
            expected,
            running,
            _Recorded(parts_count, length, recorded),
        )

    def _finish_recorded(self, p: _Progress, principal: Principal | Actor) -> UploadView:
        """:meth:`_finish` for the PATCH that recorded the last byte: everything it needs
        was read with that record, and the completion's commit also ends the lease."""
        if p.recorded is None:  # nothing new was recorded by this PATCH
            return self._finish(p.upload_id, principal, p.lock)
        return self._complete(
            p.upload_id,
            principal,
            p.storage_key or original_key(p.expected_sha256),
            p.storage_upload_id,
            p.expected_sha256,
            hashstate.restore(p.hash_state, p.length),
            _Recorded(p.parts_count, p.length, p.recorded),
            progress=p,
        )

    def _complete(
        self,
        upload_id: str,
        principal: Principal | Actor,
        key: str,
        sid: str | None,
        expected: str,
        running: hashstate.RunningSha256 | None,
        recorded: _Recorded,
        progress: _Progress | None = None,
    ) -> UploadView:
        """Verify, complete in the store (or quarantine) and commit; see :meth:`_finish`."""
        parts_count = recorded.count
        actual = running.digest if running is not None else None
        if actual is not None and actual != expected:
            return self._mismatch(upload_id, principal, key, sid, parts_count, actual)
        try:
            sha512, adopted = self._complete_in_store(key, sid, recorded, expected, actual)
        except storage_errors.DigestMismatch as exc:
            return self._mismatch(upload_id, principal, key, sid, parts_count, exc.actual)
        fault_point("ingest.after_store")
        view = self._commit_stored(upload_id, principal, key, sha512, progress)
        if adopted is not None:
            assert sid is not None
            self._settle_adopted(key, sid, adopted, expected)
        fault_point("ingest.after_commit")
        return view

    def _complete_in_store(
        self, key: str, sid: str | None, recorded: _Recorded, expected: str, verified: str | None
    ) -> tuple[str | None, list[PartInfo] | None]:
        """Make the original appear at ``key``; return its SHA-512 if the store computed one,
        and the parts still open when an object already there was adopted instead.

        An object already at ``key`` (an earlier attempt, another upload, an old orphan)
        is re-read and adopted; our own parts are kept open until the commit succeeded
        (:meth:`_settle_adopted`): the reconciler may be moving an old orphan away
        right now.

        The store completes exactly the parts the database recorded (number, size, ETag).
        ``verified``: our running SHA-256 (already equal to ``expected``); the store trusts
        it instead of re-reading the bytes — only when the store's parts are the recorded
        ones and they add up to the length. Otherwise ``verified`` is dropped and the store
        re-hashes what it completed (a mismatch is then quarantined as usual). SHA-512 is
        left to the inspection job.
        """
        if sid is None:  # a zero-byte file
            with contextlib.suppress(storage_errors.AlreadyExists):
                return self.store.write(key, _Blocks([]), expected_sha256=expected).sha512, None
            self._reread(key, expected)
            return None, None
        try:
            listed = [p for p in self.store.list_parts(key, sid) if p.number <= recorded.count]
        except storage_errors.UploadNotFound:
            # Completed in storage by an earlier attempt that crashed before its commit.
            self._reread(key, expected)
            return None, None
        parts = recorded.parts if recorded.complete else listed
        if not (recorded.complete and listed == recorded.parts):
            log.warning("upload at %s: stored parts differ from the recorded ones; re-hashing", key)
            verified = None
        try:
            try:
                info = self.store.complete_upload(
                    key, sid, parts, expected_sha256=expected, verified_sha256=verified
                )
            except storage_errors.InvalidParts:
                if parts is listed:
                    raise
                # the recorded parts are not all in the store: complete what it holds and
                # let the store re-hash it (a mismatch is quarantined and refused)
                parts = listed
                info = self.store.complete_upload(key, sid, listed, expected_sha256=expected)
            return info.sha512, None
        except storage_errors.AlreadyExists:
            # Same verified content already stored (another file or an earlier attempt).
            self._reread(key, expected)
            return None, parts

    def _settle_adopted(self, key: str, sid: str, parts: list[PartInfo], expected: str) -> None:
        """After the commit: drop our parts if the adopted object is still there, else
        complete them into ``key`` (it was moved away between the re-read and the commit)."""
        if self.store.exists(key):
            self._quietly(self.store.abort_upload, key, sid)
            return
        log.warning("adopted object %s vanished before the commit; storing ours there", key)
        try:
            self.store.complete_upload(key, sid, parts, expected_sha256=expected)
        except storage_errors.AlreadyExists:
            self._quietly(self.store.abort_upload, key, sid)

    def _reread(self, key: str, expected: str) -> None:
        """Check that the object at ``key`` hashes to ``expected`` (SHA-256 only)."""
        digester = Digester(sha512=False)
        try:
            with digester:
                for block in self.store.open(key):
                    digester.update(block)
        except storage_errors.NotFound:
            raise Unavailable(
                "上传的数据在存储中缺失，请重新上传该文件 (the uploaded bytes are missing from "
                "storage; create a new upload for this file)"
            ) from None
        if digester.sha256 != expected:
            raise storage_errors.DigestMismatch(
                f"对象 {key} 的摘要不符 (object at {key} does not hash to its key)",
                key=key,
                expected=expected,
                actual=digester.sha256,
            )

    def _commit_stored(
        self,
        upload_id: str,
        principal: Principal | Actor,
        key: str,
        sha512: str | None,
        progress: _Progress | None = None,
    ) -> UploadView:
        """Commit the stored original (in the sequencer's next batch); with ``progress``
        the same commit ends that PATCH's lease."""

        def work(uow: UnitOfWork) -> Callable[[CheckpointOf], tuple[UploadView, bool]]:
            upload = uow.session.get(Upload, upload_id)
            assert upload is not None
            evidence = uow.session.get(Evidence, upload.evidence_id, with_for_update=True)
            assert evidence is not None
            newly = evidence.status != EvidenceStatus.STORED  # else a concurrent upload won
            add_receipt = (
                self._record_stored(uow, upload, evidence, principal, key, sha512)
                if newly
                else None
            )
            upload.status, upload.offset, upload.expires_at = COMPLETED, upload.length, None
            if progress is not None and upload.lock_owner == progress.lock:
                upload.lock_owner, upload.lock_expires_at = None, None

            def finish(checkpoint: CheckpointOf) -> tuple[UploadView, bool]:
                if add_receipt is not None:
                    add_receipt(checkpoint)
                return self._view(upload, evidence), newly

            return finish

        view, newly = self.sequencer.run(work)
        if progress is not None:
            progress.released = True
        if not newly:
            return view
        self._drop_tail(upload_id)
        self._schedule_inspection(view.evidence_id)
        return view

    def _schedule_inspection(self, evidence_id: str) -> None:
        if self.on_stored is not None:
            try:
                self.on_stored(evidence_id)
            except Exception:  # the job row is durable; a worker picks it up later
                log.exception("could not schedule inspection of %s", evidence_id)

    def _record_stored(
        self,
        uow: UnitOfWork,
        upload: Upload,
        evidence: Evidence,
        principal: Principal | Actor,
        key: str,
        sha512: str | None,
    ) -> Callable[[CheckpointOf], None]:
        """Evidence ``stored`` and its two custody events; the returned step adds the
        signed receipt once the (batch's) checkpoint is there."""
        case = uow.session.get(Case, evidence.case_id)
        manifest = uow.session.get(CaptureManifest, evidence.manifest_id)
        assert case is not None and manifest is not None
        now = utcnow()
        evidence.status = EvidenceStatus.STORED.value
        evidence.storage_key = key
        evidence.sha512 = sha512
        evidence.received_at = now
        evidence.inspection_status = "pending"
        obj = ObjectRef(evidence.expected_sha256, evidence.expected_size)
        details = {
            "evidence_id": evidence.id,
            "manifest_id": manifest.manifest_id,
            "file_index": evidence.file_index,
            "upload_id": upload.id,
        }
        record_custody(uow, case, EventType.INGEST_VERIFIED, principal, details, object=obj)
        stored = record_custody(
            uow, case, EventType.STORED, principal, {**details, "storage_key": key}, object=obj
        )
        manifest_id = manifest.manifest_id

        def add_receipt(checkpoint: CheckpointOf) -> None:
            signer = self.signer()
            receipt = build_receipt(uow, signer, evidence, manifest_id, stored, checkpoint())
            evidence.receipt = canonical_json(receipt).decode("utf-8")

        return add_receipt

    def _mismatch(
        self,
        upload_id: str,
        principal: Principal | Actor,
        key: str,
        sid: str | None,
        parts_count: int,
        actual: str | None,
        *,
        moved: str | None = None,
    ) -> UploadView:
        reason = f"摘要与采集清单不符 / digest differs from the manifest: {actual}"
        if sid is not None:
            try:
                parts = [p for p in self.store.list_parts(key, sid) if p.number <= parts_count]
                moved = self.store.quarantine_upload(key, sid, parts, reason)
            except storage_errors.UploadNotFound:
                moved = None  # the store already quarantined it while verifying
        with self.uow_factory() as uow:
            upload = uow.session.get(Upload, upload_id)
            assert upload is not None
            evidence = uow.session.get(Evidence, upload.evidence_id, with_for_update=True)
            assert evidence is not None
            case = uow.session.get(Case, evidence.case_id)
            assert case is not None
            upload.status = FAILED
            if evidence.status != EvidenceStatus.STORED:
                evidence.status = EvidenceStatus.MISMATCH.value
            record_custody(
                uow,
                case,
                EventType.INGEST_MISMATCH,
                principal,
                {
                    "evidence_id": evidence.id,
                    "upload_id": upload.id,
                    "expected_sha256": evidence.expected_sha256,
                    "actual_sha256": actual,
                    "quarantine_key": moved,
                },
                object=ObjectRef(evidence.expected_sha256, evidence.expected_size),
            )
            uow.commit()
            stored_already = evidence.status == EvidenceStatus.STORED
        self._drop_tail(upload_id)
        if stored_already:
            raise Conflict(
                "该证据已以其他内容入库，本次数据已隔离，原证据未改变 (this evidence is already "
                "stored with other content; your bytes were quarantined and nothing changed)"
            )
        raise Invalid(MISMATCH_MESSAGE, {"sha256": [f"expected manifest digest, got {actual}"]})

    # ------------------------------------------------------------------ terminate / expire

    def terminate(self, who: Caller, upload_id: str) -> None:
        """tus DELETE: discard the bytes received so far (a stored original is never touched)."""
        with self.uow_factory() as uow:
            principal = _principal(uow, who)
            upload, _evidence = self._visible_upload(uow, principal, upload_id)
            _keep_token_use(uow)
            if upload.status != ACTIVE:
                raise tus.UploadGone("此上传已结束 (this upload has already ended)")
        lock = self._acquire(upload_id)
        try:
            self._end(upload_id, principal, ENDED_TERMINATED)
        finally:
            self._release(upload_id, lock)

    def expire(self, now: datetime | None = None) -> int:
        """End every active upload past its ``Upload-Expires``; return how many."""
        now = now or utcnow()
        with self.uow_factory() as uow:
            ids = list(
                uow.session.scalars(
                    select(Upload.id).where(Upload.status == ACTIVE, Upload.expires_at < now)
                )
            )
        ended = 0
        for upload_id in ids:
            try:
                lock = self._acquire(upload_id)
            except tus.UploadLocked:
                continue
            try:
                self._end(upload_id, SYSTEM_ACTOR, ENDED_EXPIRED)
                ended += 1
            finally:
                self._release(upload_id, lock)
        return ended

    def finish_interrupted(self, upload_id: str, actor: Actor) -> UploadView:
        """Finish an upload whose bytes are all durable but whose completion was cut off.

        The reconciler's entry (``server.services.reconcile``); ``tus.UploadLocked`` while a
        live request still holds the upload.
        """
        return self._finish_locked(upload_id, actor)

    def abandon(self, upload_id: str, reason: str = ENDED_ABANDONED) -> None:
        """End an active upload that can no longer complete and discard its stored parts.

        The reconciler's entry (``reason``: ``abandoned`` or ``expired``, for the
        ``upload_ended`` event); ``tus.UploadLocked`` while a live request holds the upload.
        """
        lock = self._acquire(upload_id)
        try:
            self._end(upload_id, SYSTEM_ACTOR, reason)
        finally:
            self._release(upload_id, lock)

    def _end(self, upload_id: str, actor: Principal | Actor, reason: str) -> None:
        """End an active upload with an ``upload_ended`` custody event, then drop its bytes.

        ``reason``: ``terminated`` (tus DELETE), ``expired`` or ``abandoned`` (reconciler).
        The event records the bytes received, in the same transaction as the end.
        """
        with self.uow_factory() as uow:
            upload = uow.session.get(Upload, upload_id)
            assert upload is not None
            if upload.status != ACTIVE:
                return
            key, sid = upload.storage_key or "", upload.storage_upload_id
            upload.status = TERMINATED
            evidence = uow.session.get(Evidence, upload.evidence_id, with_for_update=True)
            assert evidence is not None
            case = uow.session.get(Case, evidence.case_id)
            assert case is not None
            record_custody(
                uow,
                case,
                EventType.UPLOAD_ENDED,
                actor,
                {
                    "evidence_id": evidence.id,
                    "upload_id": upload.id,
                    "reason": reason,
                    "bytes_received": upload.offset,
                    "length": upload.length,
                },
            )
            if evidence.status == EvidenceStatus.UPLOADING:
                others = uow.session.scalar(
                    select(Upload.id).where(
                        Upload.evidence_id == evidence.id,
                        Upload.status == ACTIVE,
                        Upload.id != upload_id,
                    )
                )
                if others is None:
                    evidence.status = EvidenceStatus.EXPECTED.value
            uow.commit()
        if sid is not None:
            self._quietly(self.store.abort_upload, key, sid)
        self._drop_tail(upload_id)

    # ------------------------------------------------------------------ helpers

    def _bound_evidence(
        self, uow: UnitOfWork, principal: Principal, metadata: dict[str, str]
    ) -> Evidence:
        session = uow.session
        evidence: Evidence | None = None
        if metadata.get("evidence_id"):
            evidence = session.get(Evidence, metadata["evidence_id"])
        elif metadata.get("manifest_id") and metadata.get("file_index", "").isdigit():
            evidence = session.scalar(
                select(Evidence)
                .join(CaptureManifest, CaptureManifest.id == Evidence.manifest_id)
                .where(
                    CaptureManifest.manifest_id == metadata["manifest_id"],
                    Evidence.file_index == int(metadata["file_index"]),
                )
            )
        else:
            raise Invalid(
                "Upload-Metadata 须包含 evidence_id，或 manifest_id 与 file_index，用以指明"
                "采集清单中的文件；请先登记采集清单 (Upload-Metadata must name the announced "
                "file: evidence_id, or manifest_id + file_index; register the manifest first)",
                {"Upload-Metadata": ["evidence_id or manifest_id + file_index required"]},
            )
        if evidence is None:
            raise NotFound("所指证据不存在或您无权查看 (evidence not found or not visible to you)")
        case = session.get(Case, evidence.case_id)
        assert case is not None
        if case.agency_id != principal.agency_id:
            raise NotFound("所指证据不存在或您无权查看 (evidence not found or not visible to you)")
        require_device_case_access(session, principal, case)
        return evidence

    def _visible_upload(
        self, uow: UnitOfWork, principal: Principal, upload_id: str
    ) -> tuple[Upload, Evidence]:
        missing = NotFound("上传不存在或您无权查看 (upload not found or not visible to you)")
        try:
            uuid.UUID(upload_id)
        except ValueError:
            raise missing from None
        upload = uow.session.get(Upload, upload_id)
        if upload is None:
            raise missing
        evidence = uow.session.get(Evidence, upload.evidence_id)
        case = None if evidence is None else uow.session.get(Case, evidence.case_id)
        if evidence is None or case is None or case.agency_id != principal.agency_id:
            raise missing
        try:
            require_device_case_access(uow.session, principal, case)
        except NotFound:
            raise missing from None
        return upload, evidence

    def _expired(self, upload: Upload) -> bool:
        return (
            upload.status == ACTIVE
            and upload.expires_at is not None
            and upload.expires_at < utcnow()
        )

    def _view(self, upload: Upload, evidence: Evidence) -> UploadView:
        receipt = None
        if upload.status == COMPLETED and evidence.receipt:
            receipt = json.loads(evidence.receipt)
        status = TERMINATED if self._expired(upload) else upload.status
        return UploadView(
            id=upload.id,
            evidence_id=evidence.id,
            offset=upload.offset,
            length=upload.length,
            status=status,
            expires_at=upload.expires_at,
            receipt=receipt,
            filename=upload.filename,
        )

    def _drop_tail(self, upload_id: str) -> None:
        with contextlib.suppress(storage_errors.StorageError):
            self.store.delete(upload_key(_token(upload_id)))

    @staticmethod
    def _quietly(action: Callable[..., Any], *args: Any) -> None:
        try:
            action(*args)
        except storage_errors.StorageError:
            log.warning("cleanup %s%r failed", getattr(action, "__name__", action), args)


_LOST_LEASE = (
    "写入租约已被另一请求接管，本请求已停止；请 HEAD 查询后续传 (this request lost its "
    "write lease to another one and stopped; send HEAD and resume)"
)


def _past_length(length: int | None) -> str:
    if length is None:
        return (
            "数据超出 Upload-Length，本块末段及超出部分均未保存；请 HEAD 查询偏移量后只发送剩余字节 "
            "(the body goes past Upload-Length; its last part and the bytes beyond were not "
            "stored — send HEAD and send only the remaining bytes)"
        )
    return (
        f"数据超出 Upload-Length ({length} 字节)，超出部分未保存 (the body goes past "
        f"Upload-Length {length}; bytes beyond it were not stored)"
    )


BODY_READ_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, ValueError)
"""What reading a request body raises when the client goes away or breaks the framing
(socket errors, a read on a closed input); the WSGI layer turns its server's own parse
errors into ``OSError`` (``server.api.uploads``). Anything else is a bug, not a client."""


def _token(upload_id: str) -> str:
    return upload_id.replace("-", "")


def _body_blocks(
    body: ByteStream, limit: int, exact: bool, after_read: Callable[[], None] | None = None
) -> Iterator[bytes]:
    """Blocks of at most 1 MiB from ``body``, at most ``limit`` bytes.

    ``exact``: ``limit`` is the declared Content-Length, so an early end means the client
    went away (:class:`ClientGone` after the blocks already read). Otherwise (a chunked
    body, ``limit`` = what is left of ``Upload-Length``) a body that goes on past
    ``limit`` is :class:`PayloadTooLarge` *before* its last block is handed on: the last
    part is never recorded, so the upload does not complete from a body that was too long.
    ``after_read`` runs after every read, however few bytes it brought (lease renewal).
    """
    readinto = getattr(body, "readinto", None)
    if readinto is not None:
        yield from _filled_blocks(readinto, limit, exact, after_read)
        return
    remaining = limit
    while remaining > 0:
        try:
            block = body.read(min(BLOCK_SIZE, remaining))
        except BODY_READ_ERRORS as exc:
            raise ClientGone(_CLIENT_GONE) from exc
        if after_read is not None:
            after_read()
        if not block:
            if exact:
                raise ClientGone(_CLIENT_GONE)
            return
        remaining -= len(block)
        if remaining == 0 and not exact and _has_more(body):
            raise PayloadTooLarge(_past_length(None))
        yield block


def _filled_blocks(
    readinto: Callable[[Any], int],
    limit: int,
    exact: bool,
    after_read: Callable[[], None] | None = None,
) -> Iterator[bytes]:
    """Like :func:`_body_blocks`, for inputs with ``readinto`` (the server's socket body).

    Each block is received into one reused 1 MiB buffer until full and copied out once,
    instead of being assembled from smaller reads.
    """
    scratch = bytearray(BLOCK_SIZE)
    view = memoryview(scratch)
    remaining = limit
    while remaining > 0:
        want = min(BLOCK_SIZE, remaining)
        filled = 0
        while filled < want:
            try:
                n = readinto(view[filled:want])
            except BODY_READ_ERRORS as exc:
                raise ClientGone(_CLIENT_GONE) from exc
            if after_read is not None:
                after_read()
            if not n:
                break
            filled += n
        if filled:
            remaining -= filled
            if remaining == 0 and not exact and _has_more(_ReadintoBody(readinto)):
                raise PayloadTooLarge(_past_length(None))
            yield bytes(view[:filled])
        if filled < want:
            if exact:
                raise ClientGone(_CLIENT_GONE)
            return


def _capped(
    blocks: Iterator[bytes], cap: int, too_large: Callable[[], Exception]
) -> Iterator[bytes]:
    """``blocks`` while they add up to at most ``cap`` bytes; ``too_large()`` past it."""
    total = 0
    for block in blocks:
        total += len(block)
        if total > cap:
            raise too_large()
        yield block


def _sha256_of(blocks: list[bytes]) -> str:
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(block)
    return digest.hexdigest()


def _has_more(body: ByteStream) -> bool:
    """Whether a chunked body goes on (a connection lost right at its end does not)."""
    try:
        return bool(body.read(1))
    except BODY_READ_ERRORS:
        return False


class _ReadintoBody:
    """``read(n)`` over a ``readinto`` (for the one-byte look past a chunked body's end)."""

    def __init__(self, readinto: Callable[[Any], int]) -> None:
        self._readinto = readinto

    def read(self, size: int = -1, /) -> bytes:
        scratch = bytearray(max(size, 0))
        return bytes(scratch[: self._readinto(memoryview(scratch))])


_CLIENT_GONE = (
    "请求体提前结束（连接中断），已收到的字节已保存；请 HEAD 查询后续传 (the body ended early — "
    "connection lost; bytes received were kept: send HEAD and resume)"
)


@dataclass(frozen=True)
class _Recorded:
    """The parts an upload recorded in the database, and whether they make the whole file."""

    count: int
    length: int
    parts: list[PartInfo]

    @property
    def complete(self) -> bool:
        """Parts 1..count, each recorded, adding up to the upload's length."""
        numbers = [p.number for p in self.parts]
        return numbers == list(range(1, self.count + 1)) and (
            sum(p.size for p in self.parts) == self.length
        )


class _HashThread:
    """Feeds a running SHA-256 from a worker thread, beside the socket reads and writes.

    ``rehashes`` holds the GIL while it hashes a block, but the reads and writes it runs
    beside spend their time in system calls that release it, so the two overlap on two
    cores. :meth:`settle` waits until every block queued so far is hashed.
    """

    def __init__(self, hasher: hashstate.RunningSha256) -> None:
        self._hasher = hasher
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._run, name="ingest-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            block = self._queue.get()
            try:
                if block is None:
                    return
                self._hasher.update(block)
            finally:
                self._queue.task_done()

    def update(self, block: bytes) -> None:
        """Queue ``block`` (at most 4 blocks ahead of the hash)."""
        self._queue.put(block)

    def settle(self) -> None:
        """Wait until every queued block is hashed."""
        self._queue.join()

    def close(self) -> None:
        """Hash what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()


class _PartSender:
    """Puts full part buffers in a worker thread while the next part is being received.

    :meth:`send` hands over one buffer with the hash state at its end (taken in the
    receiving thread, so it covers exactly the bytes up to the part's end) after the
    previous part is stored and recorded, raising that part's error if it failed:
    ``Upload-Offset`` and the saved hash state only ever advance after a part upload
    succeeded, and at most two part buffers (one being put, one filling) are held.
    Leaving the ``with`` block waits for the last part, raising its error unless
    another one is already on its way out.
    """

    def __init__(self, ingest: Ingest, p: _Progress) -> None:
        self._ingest = ingest
        self._p = p
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def __enter__(self) -> _PartSender:
        return self

    def send(self, buffer: list[bytes], size: int) -> None:
        """Put ``buffer`` (``size`` bytes) as the next part, in the background."""
        state = self._ingest._hash_state(self._p)
        self._wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-part")
        self._pending = self._pool.submit(self._ingest._put_buffer, self._p, buffer, size, state)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            if exc_type is None:
                self._wait()
            else:
                with contextlib.suppress(Exception):
                    self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


class _Blocks:
    """A ``ByteStream`` over the blocks of one part buffer, handed on without copying."""

    def __init__(self, blocks: list[bytes]) -> None:
        self._blocks = blocks
        self._index = 0
        self._rest = b""

    def read(self, size: int = -1, /) -> bytes:
        block = self._rest
        if not block:
            if self._index >= len(self._blocks):
                return b""
            block = self._blocks[self._index]
            self._blocks[self._index] = b""  # let the part buffer shrink as it is sent
            self._index += 1
        if 0 <= size < len(block):
            self._rest = block[size:]
            return block[:size]
        self._rest = b""
        return block


class _Peekable:
    """Blocks from an iterator with one-block look-ahead and push-back."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._head: list[bytes] = []

    def peek(self) -> bool:
        """Whether another non-empty block is available."""
        if not self._head:
            block = next(self._blocks, b"")
            if not block:
                return False
            self._head.append(block)
        return True

    def take(self) -> bytes:
        """The next block (``b""`` at the end)."""
        return self._head.pop() if self.peek() else b""

    def push_back(self, block: bytes) -> None:
        self._head.append(block)


class _PartStream:
    """A ``ByteStream`` taking whole blocks from ``source`` until about ``limit`` bytes.

    Used with stores that have no maximum part size, so a part may end up to one block
    past ``limit``; blocks are split only to honour ``read(size)``.
    """

    def __init__(self, source: _Peekable, limit: int) -> None:
        self._source = source
        self._left = limit

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0 or not self._source.peek():
            return b""
        block = self._source.take()
        if 0 <= size < len(block):
            self._source.push_back(block[size:])
            block = block[:size]
        self._left -= len(block)
        return block
