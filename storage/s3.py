"""``S3BlobStore``: the BlobStore port on any S3-compatible store (SeaweedFS, MinIO, AWS).

The only module that imports boto3/botocore. Vendor errors stop here: every
``ClientError`` / ``BotoCoreError`` becomes a ``storage.errors`` error.

- Memory: ``write`` holds one part buffer (``part_size``, default 16 MiB) at a time;
  memory does not grow with the object size.
- Write-once: ``If-None-Match: *`` on PutObject and CompleteMultipartUpload where the
  backend honours it (detected once: SeaweedFS 4.48, MinIO and AWS do). Otherwise the
  adapter checks with HEAD right before creating; two writers racing inside that window
  can both succeed, which is harmless for content-addressed originals (both verified
  the same SHA-256 before completing, so they write identical bytes) and is reported
  via ``capabilities.write_once_native = False``.
- Object Lock: when the bucket has Object Lock enabled and ``retention_days`` is set,
  originals are created with a retention lock (``retention_mode``, default COMPLIANCE).
- Versioned buckets (every Object Lock bucket is one): a plain DeleteObject only adds a
  delete marker and keeps the bytes, so ``delete`` removes every version of the key
  (scratch tails are rewritten, one version per write) and ``quarantine`` removes the
  version it copied. A version under a retention lock cannot be removed: ``delete``
  raises ``DeleteRefused``; ``quarantine`` then hides it behind a delete marker (it
  leaves ``originals/`` listings) and the locked bytes stay, as a noncurrent version,
  until the retention ends — a locked original is never deleted.
- Checksums: the client is made with ``request_checksum_calculation="when_required"``
  (boto3 ≥ 1.36 otherwise sends CRC trailers some S3 servers reject). Every write — a
  single PutObject and every UploadPart — carries a checksum of the buffer we hold, so a
  body damaged on the way is refused by the store instead of becoming an original:
  CRC-32 where no one on the network can alter the request (``https``, or a loopback
  address), SHA-256 on plain HTTP to another host, where only a cryptographic digest in
  the signed headers stops a body being replaced in transit (:func:`write_checksum_for`;
  a PutObject's SHA-256 is the object's digest, known already). The SHA-256 was a second
  pass per part beside the upload's running SHA-256 (≈ 0.7 ms of our CPU per MiB) and
  cost the store a verification (≈ 0.5 ms per MiB, ≈ 2 ms per photo); ``zlib.crc32``
  (the GIL released) costs a third of one pass and the store next to nothing. A body
  whose checksum is in those signed headers is not hashed a second time for the SigV4
  payload signature (``UNSIGNED-PAYLOAD``, as the AWS SDKs do over TLS): the store
  checks the body against the signed checksum, and the process hashes each byte it
  sends once instead of twice.
- Multipart checksums: where the store lists the checksum each part was put with (AWS
  S3; probed once, :attr:`S3BlobStore.declares_checksums`) an upload begins with
  ``ChecksumAlgorithm`` and completes naming every part's checksum, as AWS requires of
  checksummed parts; the store then keeps the object's composite checksum. SeaweedFS
  4.48 lists none (and refuses such a completion without them), so there uploads begin
  and complete as before, their parts still checked one by one.
- A single-request body goes as the one buffer we hold, in one ``sendall``: botocore
  would wrap a PutObject body in a ``BytesIO`` and send it in copied 128 KiB slices
  (≈ 0.35 ms of the adapter's ≈ 3.9 ms CPU for a 3.5 MiB photo, SHA-256 included). A
  body that is not a file gets no ``Expect: 100-continue`` either: one round trip, not
  two; the store still refuses an existing write-once key (SeaweedFS decides that only
  after reading the body anyway) and it is still ``AlreadyExists``.
- Parts in flight (:meth:`S3BlobStore.put_part_after`): part ``n + 1`` may be sent while
  part ``n`` is still being put, but its last bytes wait until the caller has recorded
  part ``n``; so at most one stored part is ever unrecorded (the last, which may be
  re-put) and the order check below still holds after a crash.
- Duplicate part versions (SeaweedFS lists every put of a part number):
  ``complete_upload`` accepts any listed version of a number, so a caller that recorded
  the ETag each put answered completes exactly those bytes, on any process.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import dataclasses
import hashlib
import ipaddress
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.handlers import convert_body_to_file_like_object

from storage.errors import (
    AlreadyExists,
    DeleteRefused,
    DigestMismatch,
    InvalidParts,
    NotFound,
    StorageError,
    StorageFull,
    TooLarge,
    Unavailable,
    UploadNotFound,
)
from storage.hashing import Digester, digest_object, limited
from storage.keys import (
    check_key,
    check_prefix,
    is_original_key,
    new_quarantine_token,
    quarantine_key,
    quarantine_note,
    quarantine_note_key,
)
from storage.port import (
    BLOCK_SIZE,
    BlobInfo,
    Block,
    Capabilities,
    ObjectStat,
    PartInfo,
    UploadInfo,
    completion_problems,
)

MIN_PART_SIZE = 5 << 20
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 16 << 20
_REMEMBERED_UPLOADS = 10_000

_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_BAD_PARTS = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall"}
_FULL = {"QuotaExceeded", "InsufficientStorage", "XMinioStorageFull", "507"}


def make_s3_client(
    endpoint_url: str | None,
    access_key: str,
    secret_key: str,
    region: str = "us-east-1",
    *,
    connect_timeout: float = 5.0,
    read_timeout: float = 60.0,
    max_attempts: int = 3,
    max_pool_connections: int = 16,
) -> Any:
    """A boto3 S3 client that works with SeaweedFS, MinIO and AWS alike.

    Checksums only when an operation requires them (SeaweedFS rejects some of boto3's
    default CRC trailers), path-style addressing for custom endpoints, bounded retries
    ("standard" mode) and timeouts so an outage surfaces as ``Unavailable`` quickly.
    """
    config = Config(
        region_name=region,
        signature_version="s3v4",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=max_pool_connections,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(error.get("Code") or status or "")


@contextlib.contextmanager
def _s3_errors(key: str | None) -> Iterator[None]:
    """Translate botocore errors into storage errors (the only place that sees them)."""
    try:
        yield
    except StorageError:
        raise
    except ClientError as exc:
        code = _code(exc)
        if code in _NOT_FOUND:
            raise NotFound(f"对象不存在 / no object at key {key!r}", key=key) from exc
        if code == "NoSuchUpload":
            raise UploadNotFound(
                f"上传不存在或已结束 / no open upload for key {key!r}", key=key
            ) from exc
        if code in _PRECONDITION:
            raise AlreadyExists(
                f"对象已存在，不可覆盖 / write-once key already exists: {key!r}", key=key
            ) from exc
        if code in _BAD_PARTS:
            raise InvalidParts(
                f"分片无效（除最后一片外每片须 ≥ 5 MiB）/ invalid parts: {exc}", key=key
            ) from exc
        if code in _FULL:
            raise StorageFull(
                f"对象存储空间已满，请扩容后重试 / object store full: {exc}", key=key
            ) from exc
        raise Unavailable(
            f"对象存储请求失败，请稍后重试或检查存储配置 / object store request failed: {exc}",
            key=key,
        ) from exc
    except BotoCoreError as exc:
        raise Unavailable(
            f"无法连接对象存储，请检查其是否运行后重试 / object store unreachable: {exc}",
            key=key,
        ) from exc


@contextlib.contextmanager
def _refused_while_locked(key: str) -> Iterator[None]:
    """``AccessDenied`` on a delete means a retention lock: ``DeleteRefused``."""
    try:
        yield
    except Unavailable as exc:
        if isinstance(exc.__cause__, ClientError) and _code(exc.__cause__) == "AccessDenied":
            raise DeleteRefused(
                f"对象仍在保留期内，存储拒绝删除 / the object store refused: retention "
                f"lock still active on {key!r}",
                key=key,
            ) from exc
        raise


WriteChecksum = Literal["crc32", "sha256"]


def write_checksum_for(endpoint_url: str | None) -> WriteChecksum:
    """The checksum a write's body carries on the link to ``endpoint_url``.

    ``crc32`` (against accident) where TLS or the loopback interface already keeps anyone
    from altering the request — AWS itself (no endpoint) is ``https``; ``sha256`` on
    plain HTTP to any other host, named or not: a CRC is easily forged to match a
    replaced body, a SHA-256 is not.
    """
    if endpoint_url is None:
        return "crc32"
    url = urlsplit(endpoint_url)
    host = url.hostname or ""
    if url.scheme == "https" or host == "localhost":
        return "crc32"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return "crc32" if loopback else "sha256"


def _crc32_argument(data: Block) -> dict[str, str]:
    crc = zlib.crc32(data).to_bytes(4, "big")  # zlib releases the GIL on large buffers
    return {"ChecksumCRC32": base64.b64encode(crc).decode("ascii")}


_ALGORITHMS: dict[str, str] = {"crc32": "CRC32", "sha256": "SHA256"}
"""S3's name of each :data:`WriteChecksum` (``ChecksumAlgorithm``, ``Checksum<NAME>``)."""


def _part_checksum(argument: dict[str, str]) -> str:
    """A part's checksum as :class:`PartInfo` keeps it, from the argument it was put with."""
    ((name, value),) = argument.items()
    return f"{name.removeprefix('Checksum').lower()}:{value}"


def _listed_checksum(item: dict[str, Any]) -> str | None:
    """The checksum a ListParts entry shows (AWS does for uploads begun with an algorithm;
    SeaweedFS 4.48 shows none)."""
    for algorithm, name in _ALGORITHMS.items():
        if value := item.get(f"Checksum{name}"):
            return f"{algorithm}:{value}"
    return None


def _completed_parts(
    parts: builtins.list[PartInfo], declared: bool
) -> builtins.list[dict[str, Any]]:
    """CompleteMultipartUpload's list: each part's number and ETag, and — for an upload
    begun with ``ChecksumAlgorithm`` (``declared``) — its checksum, when every part has one
    of the same algorithm (S3 then wants them all; an upload begun without names none)."""
    listed: builtins.list[dict[str, Any]] = [
        {"PartNumber": p.number, "ETag": p.etag} for p in parts
    ]
    if not declared:
        return listed
    checksums = [p.checksum or "" for p in parts]
    algorithms = {c.partition(":")[0] for c in checksums}
    if len(algorithms) != 1 or not algorithms <= _ALGORITHMS.keys():
        return listed
    name = _ALGORITHMS[algorithms.pop()]
    for entry, checksum in zip(listed, checksums, strict=True):
        entry[f"Checksum{name}"] = checksum.partition(":")[2]
    return listed


_CHECKSUM_HEADERS = ("x-amz-checksum-sha256", "x-amz-checksum-crc32")


def _sign_checksum_not_payload(client: Any) -> None:
    """Register on ``client``: a request whose body's checksum is in a signed
    ``x-amz-checksum-*`` header (:data:`_CHECKSUM_HEADERS`) goes with ``UNSIGNED-PAYLOAD``
    (the store verifies the body against that header) instead of botocore hashing the
    body once more — and a held part body (:class:`_HeldPart`) is not read ahead for a
    signature."""
    config = client.meta.config
    s3: Any = {**(config.s3 or {}), "payload_signing_enabled": False}
    unsigned = config.merge(Config(s3=s3))

    def before_sign(request: Any, **_: Any) -> None:
        if any(header in request.headers for header in _CHECKSUM_HEADERS):
            request.context["client_config"] = unsigned

    client.meta.events.register(
        "before-sign.s3", before_sign, unique_id="casetrail-checksum-signed"
    )


def _send_put_bodies_whole(client: Any) -> None:
    """On ``client``: a PutObject body of bytes is sent as it is (one ``sendall``), not
    wrapped in a ``BytesIO`` and copied out again in slices."""
    client.meta.events.unregister(
        "before-parameter-build.s3.PutObject", convert_body_to_file_like_object
    )


HELD_BYTES = 64 << 10
"""The end of a part that :meth:`S3BlobStore.put_part_after` sends only once the part
before it is recorded: the store cannot complete a part whose last bytes it lacks."""


class _HeldPart:
    """One part buffer as an UploadPart body (views of it, no copies) whose last
    ``HELD_BYTES`` are sent only after ``release()`` returns; if ``release`` raises, the
    request is cut short there and the store discards the part, and a retry (botocore
    rewinds the body) is cut short again with the same ``error``. Seekable; ``release``
    returns once at most."""

    def __init__(self, data: bytes, release: Callable[[], object]) -> None:
        self._view = memoryview(data)
        self._held_from = max(0, len(data) - HELD_BYTES)
        self._release: Callable[[], object] | None = release
        self._at = 0
        self.error: BaseException | None = None

    def read(self, size: int | None = -1) -> memoryview:
        end = len(self._view) if size is None or size < 0 else self._at + size
        end = min(end, len(self._view))
        if self._release is not None and end > self._held_from:
            if self._at < self._held_from:
                end = self._held_from  # everything before the held end goes now
            else:
                if self.error is not None:
                    raise self.error
                try:
                    self._release()
                except BaseException as exc:
                    self.error = exc
                    raise
                self._release = None
        chunk = self._view[self._at : end]
        self._at = end
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._at, 2: len(self._view)}[whence]
        self._at = min(max(0, base + offset), len(self._view))
        return self._at

    def tell(self) -> int:
        return self._at


class S3BlobStore:
    """A ``BlobStore`` on one S3 bucket, keys under an optional ``prefix``."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        *,
        part_size: int = DEFAULT_PART_SIZE,
        retention_days: int | None = None,
        retention_mode: str = "COMPLIANCE",
        write_once_native: bool | None = None,
        checksum: WriteChecksum | None = None,
        declare_checksums: bool | None = None,
    ) -> None:
        """``checksum``: what each write's body carries; by default chosen from the
        client's endpoint (:func:`write_checksum_for`). ``declare_checksums``: see
        :attr:`declares_checksums` (by default probed)."""
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        if prefix:
            check_prefix(prefix)
        self._client = client
        self.checksum: WriteChecksum = checksum or write_checksum_for(client.meta.endpoint_url)
        _sign_checksum_not_payload(client)
        _send_put_bodies_whole(client)
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.retention_days = retention_days
        self.retention_mode = retention_mode
        self._write_once_native = write_once_native
        self._object_lock: bool | None = None
        self._versioned: bool | None = None
        self._declares_checksums = declare_checksums
        self._replaced: dict[str, dict[int, str]] = {}  # upload id -> part number -> ETag
        self._put: dict[str, int] = {}  # upload id -> last part number this process put

    def _checksum_argument(self, data: Block, sha256: str | None = None) -> dict[str, str]:
        """The checksum ``data`` carries (:attr:`checksum`): its CRC-32, or its SHA-256
        (``sha256`` when the caller has it, as ``sha256:<hex>``)."""
        if self.checksum == "crc32":
            return _crc32_argument(data)
        raw = bytes.fromhex(sha256.partition(":")[2]) if sha256 else hashlib.sha256(data).digest()
        return {"ChecksumSHA256": base64.b64encode(raw).decode("ascii")}

    @property
    def declares_checksums(self) -> bool:
        """Whether multipart uploads begin with ``ChecksumAlgorithm`` (the algorithm of
        :attr:`checksum`) and complete naming every part's checksum.

        AWS S3 (and Ceph) refuse a checksummed part of an upload begun without it
        ("Checksum Type mismatch … expected checksum Type: null"), and then want each
        part's checksum again at completion — which any process may run, so the adapter
        takes them from ListParts (AWS lists them). SeaweedFS 4.48 takes checksummed parts
        either way, but lists no part checksums and refuses to complete such an upload
        without them: completing from a listing (a restart, another process) would fail.
        So it is probed once: declared where the store lists the checksum a part was put
        with, not elsewhere.
        """
        if self._declares_checksums is None:
            self._declares_checksums = self._probe_listed_checksums()
        return self._declares_checksums

    @property
    def _algorithm(self) -> dict[str, str]:
        """CreateMultipartUpload's checksum argument (see :attr:`declares_checksums`)."""
        if not self.declares_checksums:
            return {}
        return {"ChecksumAlgorithm": _ALGORITHMS[self.checksum]}

    def _probe_listed_checksums(self) -> bool:
        key = f"{self.prefix}casetrail-probe/{uuid.uuid4().hex}"
        body = b"casetrail"
        with _s3_errors(None):
            try:
                upload_id = self._client.create_multipart_upload(
                    Bucket=self.bucket, Key=key, ChecksumAlgorithm=_ALGORITHMS[self.checksum]
                )["UploadId"]
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500
                if status >= 500:
                    raise
                return False  # the store does not take the argument
            try:
                self._client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=1,
                    Body=body,
                    **self._checksum_argument(body),
                )
                listed = self._client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id)
            finally:
                with contextlib.suppress(ClientError, BotoCoreError):
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
        return any(_listed_checksum(item) for item in listed.get("Parts", []))

    # -- capabilities and health ----------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """Detected once per instance: conditional create and Object Lock support."""
        if self._write_once_native is None:
            self._write_once_native = self._probe_conditional_create()
        if self._object_lock is None:
            self._object_lock = self._probe_object_lock()
        return Capabilities(
            backend="s3",
            write_once_native=self._write_once_native,
            object_lock=self._object_lock and self.retention_days is not None,
            fsync=False,
            min_part_size=MIN_PART_SIZE,
            max_part_size=self.part_size,
            max_parts=MAX_PARTS,
        )

    def _probe_conditional_create(self) -> bool:
        key = f"{self.prefix}casetrail-probe/{uuid.uuid4().hex}"
        with _s3_errors(None):
            self._client.put_object(Bucket=self.bucket, Key=key, Body=b"1", IfNoneMatch="*")
            try:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=b"2", IfNoneMatch="*")
                honoured = False
            except ClientError as exc:
                if _code(exc) not in _PRECONDITION:
                    raise
                honoured = True
            self._client.delete_object(Bucket=self.bucket, Key=key)
        return honoured

    def _probe_object_lock(self) -> bool:
        try:
            with _s3_errors(None):
                config = self._client.get_object_lock_configuration(Bucket=self.bucket)
        except Unavailable:
            return False  # "ObjectLockConfigurationNotFoundError" and friends: no lock
        enabled = config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        return bool(enabled == "Enabled")

    @property
    def versioned(self) -> bool:
        """True when the bucket keeps versions (enabled or suspended): detected once."""
        if self._versioned is None:
            with _s3_errors(None):
                answer = self._client.get_bucket_versioning(Bucket=self.bucket)
            self._versioned = answer.get("Status") in ("Enabled", "Suspended")
        return self._versioned

    def ping(self) -> None:
        """HEAD the bucket; ``Unavailable`` if unreachable, missing or forbidden."""
        with _s3_errors(None):
            self._client.head_bucket(Bucket=self.bucket)

    # -- helpers --------------------------------------------------------------------------

    def _k(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _lock_args(self, key: str) -> dict[str, Any]:
        if self.retention_days is None or not is_original_key(key):
            return {}
        if not self.capabilities.object_lock:
            return {}
        until = datetime.now(UTC) + timedelta(days=self.retention_days)
        return {"ObjectLockMode": self.retention_mode, "ObjectLockRetainUntilDate": until}

    def _create_args(self, key: str, write_once: bool) -> dict[str, Any]:
        """Conditional-create argument, or the emulated check where not native."""
        if not write_once:
            return {}
        if self.capabilities.write_once_native:
            return {"IfNoneMatch": "*"}
        if self.exists(key):
            raise AlreadyExists(
                f"对象已存在，不可覆盖 / write-once key already exists: {key!r}", key=key
            )
        return {}

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._k(key), UploadId=upload_id
            )
        self._replaced.pop(upload_id, None)
        self._put.pop(upload_id, None)

    def _read_part(self, blocks: Iterator[Block]) -> bytes:
        """Up to ``part_size`` bytes from ``blocks`` as one buffer (the only one held)."""
        chunks: list[Block] = []
        size = 0
        for block in blocks:
            chunks.append(block)
            size += len(block)
            if size >= self.part_size:
                break
        return b"".join(chunks)

    # -- whole objects --------------------------------------------------------------------

    def write(
        self,
        key: str,
        blocks: Iterable[Block],
        *,
        max_size: int | None = None,
        expected_sha256: str | None = None,
        write_once: bool = True,
        sha512: bool = True,
    ) -> BlobInfo:
        """One PutObject for small streams, else a multipart upload; verify, then create."""
        s3_key = self._k(key)
        with _s3_errors(key):
            condition = self._create_args(key, write_once)
            received = limited(blocks, limit=max_size, key=key)
            digester = Digester(sha512=sha512)
            first = self._read_part(received)
            if len(first) < self.part_size:
                digester.update(first)
                self._check_digest(key, digester.sha256, expected_sha256)
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=s3_key,
                    Body=first,
                    **self._checksum_argument(first, digester.sha256),
                    **condition,
                    **self._lock_args(key),
                )
                return BlobInfo(key, digester.size, digester.sha256, digester.sha512)
            upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=s3_key, **self._algorithm, **self._lock_args(key)
            )["UploadId"]
            try:
                parts: builtins.list[PartInfo] = []
                buffer = first
                while buffer:
                    number = len(parts) + 1
                    with digester:  # hashing overlaps with sending the part
                        digester.update(buffer)
                        checksum = self._checksum_argument(buffer)
                        response = self._client.upload_part(
                            Bucket=self.bucket,
                            Key=s3_key,
                            UploadId=upload_id,
                            PartNumber=number,
                            Body=buffer,
                            **checksum,
                        )
                    etag = str(response["ETag"])
                    parts.append(PartInfo(number, len(buffer), etag, _part_checksum(checksum)))
                    buffer = b""  # drop the sent part before reading the next one
                    buffer = self._read_part(received)
                self._check_digest(key, digester.sha256, expected_sha256)
                if not self.capabilities.write_once_native and write_once:
                    self._create_args(key, write_once)  # re-check just before creating
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=s3_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": _completed_parts(parts, self.declares_checksums)},
                    **condition,
                )
            except BaseException:
                self._abort_quietly(key, upload_id)
                raise
        return BlobInfo(key, digester.size, digester.sha256, digester.sha512)

    @staticmethod
    def _check_digest(key: str, sha256: str, expected: str | None) -> None:
        if expected is not None and sha256 != expected:
            raise DigestMismatch(
                "数据摘要与预期不符，未保存 / SHA-256 mismatch, nothing stored at "
                f"{key!r}: expected {expected}, got {sha256}",
                key=key,
                expected=expected,
                actual=sha256,
            )

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Ranged GET streamed in blocks; ``NotFound`` is raised right away."""
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid range [{start}, {end})")
        s3_key = self._k(key)
        if end == start:
            self.stat(key)
            return iter(())
        byte_range = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        with _s3_errors(key):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=s3_key, Range=byte_range)
            except ClientError as exc:
                if _code(exc) != "InvalidRange":
                    raise
                self.stat(key)  # NotFound if it is gone; else the range starts past the end
                return iter(())
        return self._blocks(key, response["Body"])

    @staticmethod
    def _blocks(key: str, body: Any) -> Iterator[bytes]:
        with contextlib.closing(body), _s3_errors(key):
            yield from body.iter_chunks(BLOCK_SIZE)

    def stat(self, key: str) -> ObjectStat:
        """HEAD the object."""
        with _s3_errors(key):
            head = self._client.head_object(Bucket=self.bucket, Key=self._k(key))
        return ObjectStat(key, int(head["ContentLength"]), head["LastModified"])

    def exists(self, key: str) -> bool:
        """True if HEAD finds the object."""
        try:
            self.stat(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str, *, retention_expired: bool = False) -> None:
        """Delete ``key``; originals only via ``retention_expired=True``."""
        if is_original_key(check_key(key)) and not retention_expired:
            raise DeleteRefused(
                "原始证据不可删除（保管期限未满）/ originals are write-once; delete only "
                f"through the retention-expiry path: {key!r}",
                key=key,
            )
        self.stat(key)
        with _refused_while_locked(key):
            for version in self._versions(key) if self.versioned else [None]:
                self._delete_version(key, version)

    def _versions(self, key: str) -> builtins.list[str]:
        """Every version id of ``key``, delete markers included."""
        full = self._k(key)
        found: list[str] = []
        paginator = self._client.get_paginator("list_object_versions")
        with _s3_errors(key):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if item["Key"] == full:  # "null": written before versioning was on
                        found.append(str(item.get("VersionId") or "null"))
        return found

    def _delete_version(self, key: str, version: str | None) -> None:
        """DeleteObject of one version (for good), or of the key (``None``: unversioned)."""
        args = {} if version is None else {"VersionId": version}
        with _s3_errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=self._k(key), **args)

    def quarantine(self, key: str, reason: str) -> str:
        """Copy ``key`` under ``quarantine/<token>/`` with a note, then remove the original."""
        token = new_quarantine_token()
        new_key = quarantine_key(key, token)
        with _s3_errors(key):
            head = self._client.head_object(Bucket=self.bucket, Key=self._k(key))
        version = head.get("VersionId") if self.versioned else None
        note = quarantine_note(key, reason, bytes_kept=True, object=new_key)
        self.write(quarantine_note_key(token), [note])
        source = {"Bucket": self.bucket, "Key": self._k(key)}
        if version is not None:
            source["VersionId"] = version
        with _s3_errors(key):
            self._client.copy(source, self.bucket, self._k(new_key))
        try:
            with _refused_while_locked(key):
                self._delete_version(key, version)
        except DeleteRefused:
            self._delete_version(key, None)  # locked: a delete marker hides it, bytes stay
        return new_key

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``, sorted (SeaweedFS lists in directory order, not S3's)."""
        check_prefix(prefix)
        return iter(sorted(self._list(prefix)))

    def _list(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        with _s3_errors(None):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    if not key.startswith("casetrail-probe/"):
                        yield key

    # -- resumable uploads ----------------------------------------------------------------

    def start_upload(self, key: str) -> str:
        """CreateMultipartUpload at ``key`` (with a retention lock for originals if set)."""
        with _s3_errors(key):
            response = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=self._k(key), **self._algorithm, **self._lock_args(key)
            )
        upload_id = str(response["UploadId"])
        self._remember_put(upload_id, 0)
        return upload_id

    def _remember_put(self, upload_id: str, number: int) -> None:
        if len(self._put) >= _REMEMBERED_UPLOADS and upload_id not in self._put:
            self._put.clear()  # abandoned uploads: they fall back to ListParts
        self._put[upload_id] = number

    def put_part(self, key: str, upload_id: str, number: int, blocks: Iterable[Block]) -> PartInfo:
        """UploadPart from one buffer of at most ``part_size`` bytes, in order.

        The order is checked with ListParts, except for the part right after the one this
        process began to put last in this upload (the common case: one writer streaming
        parts, as the ingest lease guarantees), which saves a round trip per part.
        """
        return self._put_part(key, upload_id, number, blocks, None)

    def put_part_after(
        self,
        key: str,
        upload_id: str,
        number: int,
        blocks: Iterable[Block],
        previous: Callable[[], object],
    ) -> PartInfo:
        """:meth:`put_part`, sent while the part before it may still be in flight: its
        last ``HELD_BYTES`` go only once ``previous()`` returns (the caller's "part
        ``number - 1`` is stored and recorded"), so this part cannot be complete in the
        store before that; its order is checked then, after the part before it. If
        ``previous()`` or that check raises, the request is cut short, the store keeps
        nothing of this part, and that error is raised here.
        """
        return self._put_part(key, upload_id, number, blocks, previous)

    def _put_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        blocks: Iterable[Block],
        previous: Callable[[], object] | None,
    ) -> PartInfo:
        if previous is None:
            count = self._check_order(key, upload_id, number)
        try:
            data = self._read_part(limited(blocks, limit=self.part_size, key=key))
        except TooLarge as exc:
            raise TooLarge(
                f"分片超过 {self.part_size} 字节上限，请拆分 / part exceeds the "
                f"{self.part_size}-byte part limit; split it",
                key=key,
                limit=self.part_size,
            ) from exc
        checksum = self._checksum_argument(data)
        body: bytes | _HeldPart = data
        if previous is not None:
            counted: list[int] = []

            def release() -> None:
                previous()  # the part before is stored: the order is checked after it
                counted.append(self._check_order(key, upload_id, number))

            body = _HeldPart(data, release)
        try:
            with _s3_errors(key):
                response = self._client.upload_part(
                    Bucket=self.bucket,
                    Key=self._k(key),
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ContentLength=len(data),
                    **checksum,
                )
        except BaseException as exc:
            self._put.pop(upload_id, None)  # unsure what is stored: ask ListParts next time
            if isinstance(body, _HeldPart) and body.error is not None:
                raise body.error from exc
            raise
        if previous is not None:
            count = counted[0]
        etag = str(response["ETag"])
        if number == count:
            self._replaced.setdefault(upload_id, {})[number] = etag
        return PartInfo(number, len(data), etag, _part_checksum(checksum))

    def _check_order(self, key: str, upload_id: str, number: int) -> int:
        """Refuse a part out of order (``InvalidParts``); the number of parts before it.

        No round trip for the part right after the one this process began to put last
        (remembered as begun, so the next may start while it is in flight); otherwise
        ListParts decides: the next part, or the last one again.
        """
        count = self._put.get(upload_id)
        if count is None or number != count + 1:
            count = len(self.list_parts(key, upload_id))
            if not (number == count + 1 or (count and number == count)):
                raise InvalidParts(
                    f"分片须按顺序上传 / parts go in order: expected {count + 1} "
                    f"(or {count} to replace the last), got {number}",
                    key=key,
                )
        self._remember_put(upload_id, number)
        return count

    def list_parts(self, key: str, upload_id: str) -> builtins.list[PartInfo]:
        """ListParts (paginated), one entry per part number.

        SeaweedFS 4.48 lists every upload of a replaced part number; the one this
        process put last wins, else the newest by LastModified (ties within a second are
        a guess: callers that recorded the ETag they were answered complete with that).
        """
        return [versions[0] for versions in self._part_versions(key, upload_id).values()]

    def _part_versions(self, key: str, upload_id: str) -> dict[int, builtins.list[PartInfo]]:
        """Every listed version of every part number, the likeliest current one first."""
        ranked: dict[int, builtins.list[tuple[bool, Any, PartInfo]]] = {}
        replaced = self._replaced.get(upload_id, {})
        paginator = self._client.get_paginator("list_parts")
        with _s3_errors(key):
            pages = paginator.paginate(Bucket=self.bucket, Key=self._k(key), UploadId=upload_id)
            for page in pages:
                for item in page.get("Parts", []):
                    part = PartInfo(
                        int(item["PartNumber"]),
                        int(item["Size"]),
                        item["ETag"],
                        _listed_checksum(item),
                    )
                    rank = (replaced.get(part.number) == part.etag, item["LastModified"], part)
                    ranked.setdefault(part.number, []).append(rank)
        return {
            n: [r[2] for r in sorted(ranked[n], key=lambda r: r[:2], reverse=True)]
            for n in sorted(ranked)
        }

    def _checked_parts(
        self, key: str, upload_id: str, parts: builtins.list[PartInfo]
    ) -> builtins.list[PartInfo]:
        """``parts`` must be 1..n, each one of the listed versions of its number (the
        caller's recorded ETag wins over our guess among duplicates), none left out.
        Returned with the checksum each was put with: as listed, else as the caller has it."""
        versions = self._part_versions(key, upload_id)
        given = {p.number: p for p in parts}
        chosen = [
            given[n] if n in given and given[n] in found else found[0]
            for n, found in versions.items()
        ]
        problems = completion_problems(parts, chosen)
        if problems:
            raise InvalidParts(
                "分片清单与已存储分片不符 / parts do not match the stored upload", problems, key=key
            )
        listed = {version: version for found in versions.values() for version in found}
        return [dataclasses.replace(p, checksum=listed[p].checksum or p.checksum) for p in parts]

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: builtins.list[PartInfo],
        *,
        expected_sha256: str | None = None,
        verified_sha256: str | None = None,
        write_once: bool = True,
    ) -> BlobInfo:
        """Check the caller's ``verified_sha256``, then CompleteMultipartUpload (conditional).

        Without ``verified_sha256`` the object is read back after completion to derive
        its digests; a mismatch then moves it straight to quarantine and raises
        ``DigestMismatch``.
        """
        checked = self._checked_parts(key, upload_id, parts)
        if verified_sha256 is not None:
            self._check_digest(key, verified_sha256, expected_sha256)
        with _s3_errors(key):
            condition = self._create_args(key, write_once)
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self._k(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": _completed_parts(checked, self.declares_checksums)},
                **condition,
            )
        self._replaced.pop(upload_id, None)
        self._put.pop(upload_id, None)
        if verified_sha256 is not None:
            return BlobInfo(key, sum(p.size for p in parts), verified_sha256, None)
        digester = digest_object(self, key)
        if expected_sha256 is not None and digester.sha256 != expected_sha256:
            moved = self.quarantine(key, f"摘要不符 / digest mismatch: {digester.sha256}")
            raise DigestMismatch(
                f"上传数据摘要与预期不符，已隔离至 {moved} / SHA-256 mismatch; the object "
                f"was moved to quarantine at {moved}",
                key=key,
                expected=expected_sha256,
                actual=digester.sha256,
            )
        return BlobInfo(key, digester.size, digester.sha256, digester.sha512)

    def quarantine_upload(
        self, key: str, upload_id: str, parts: builtins.list[PartInfo], reason: str
    ) -> str:
        """Record the upload in quarantine, then abort it.

        S3 cannot complete a multipart upload under another key, and completing it at
        ``key`` would expose unverified bytes at a content-addressed key. So the note
        (reason, key, parts with sizes and ETags) is kept with ``bytes_kept: false`` and
        the parts are discarded. Returns the note's key.
        """
        self._checked_parts(key, upload_id, parts)
        token = new_quarantine_token()
        note = quarantine_note(
            key,
            reason,
            bytes_kept=False,
            upload_id=upload_id,
            size=sum(p.size for p in parts),
            parts=[{"number": p.number, "size": p.size, "etag": p.etag} for p in parts],
        )
        note_key = quarantine_note_key(token)
        self.write(note_key, [note])
        self.abort_upload(key, upload_id)
        return note_key

    def abort_upload(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload; ``UploadNotFound`` if it is not open."""
        self.list_parts(key, upload_id)  # backends differ on aborting an unknown id
        with _s3_errors(key):
            self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._k(key), UploadId=upload_id
            )
        self._replaced.pop(upload_id, None)
        self._put.pop(upload_id, None)

    def list_incomplete_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]:
        """ListMultipartUploads under ``prefix``."""
        check_prefix(prefix)
        uploads: list[UploadInfo] = []
        paginator = self._client.get_paginator("list_multipart_uploads")
        with _s3_errors(None):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Uploads", []):
                    uploads.append(
                        UploadInfo(
                            item["Key"][len(self.prefix) :], item["UploadId"], item.get("Initiated")
                        )
                    )
        return uploads
