"""The contract suite on ``S3BlobStore`` against a real SeaweedFS, plus S3-only checks."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from storage import AlreadyExists, Unavailable
from storage.hashing import read_blocks
from storage.keys import original_key, upload_key
from storage.s3 import S3BlobStore, WriteChecksum, make_s3_client, write_checksum_for
from tests.storage.contract import BlobStoreContract, StoreEnv, payload, read_all, sha256
from tests.support.seaweedfs import SeaweedFS

pytestmark = pytest.mark.seaweedfs

PART = 5 << 20


def client_for(server: SeaweedFS, **kwargs: Any) -> Any:
    return make_s3_client(
        server.endpoint_url, server.access_key, server.secret_key, server.region, **kwargs
    )


@pytest.fixture(scope="module")
def bucket(seaweedfs: SeaweedFS) -> str:
    name = "contract-" + uuid.uuid4().hex[:8]
    client_for(seaweedfs).create_bucket(Bucket=name)
    return name


@pytest.fixture
def env(seaweedfs: SeaweedFS, bucket: str) -> StoreEnv:
    prefix = f"t-{uuid.uuid4().hex[:12]}/"  # one bucket, a fresh prefix per test
    sent = itertools.count()
    counter = {"n": 0}

    def on_send(**_: object) -> None:
        counter["n"] = next(sent)

    def make() -> S3BlobStore:
        client = client_for(seaweedfs)
        client.meta.events.register("before-send.s3", on_send)
        return S3BlobStore(client, bucket, prefix=prefix, part_size=PART)

    raw = client_for(seaweedfs)

    def corrupt(key: str, data: bytes) -> None:
        raw.put_object(Bucket=bucket, Key=prefix + key, Body=data)

    return StoreEnv(store=make(), reopen=make, io_count=lambda: counter["n"], corrupt=corrupt)


class TestS3BlobStore(BlobStoreContract):
    """Everything the port promises, on SeaweedFS through the S3 API."""


def test_seaweedfs_capabilities_detected(env: StoreEnv) -> None:
    caps = env.store.capabilities
    assert caps.write_once_native  # SeaweedFS 4.48 honours If-None-Match: *
    assert not caps.object_lock  # no Object Lock on this bucket
    assert (caps.min_part_size, caps.max_part_size) == (5 << 20, PART)
    # SeaweedFS 4.48 lists no part checksums: uploads begin without ChecksumAlgorithm
    assert not env.store.declares_checksums  # type: ignore[attr-defined]


def test_object_lock_on_originals_where_enabled(seaweedfs: SeaweedFS) -> None:
    client = client_for(seaweedfs)
    name = "locked-" + uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    store = S3BlobStore(client, name, retention_days=1)
    assert store.capabilities.object_lock
    key = "originals/sha256/ab/cd/" + "ab" * 32
    store.write(key, [b"locked evidence"])
    retention = client.get_object_retention(Bucket=name, Key=key)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    store.write("derivatives/x/t", [b"not locked"])
    with pytest.raises(Exception, match="ObjectLockConfigurationNotFound|NoSuchObjectLock"):
        client.get_object_retention(Bucket=name, Key="derivatives/x/t")


def _versions(client: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """Every version and delete marker SeaweedFS keeps of ``key``."""
    answer = client.list_object_versions(Bucket=bucket, Prefix=key)
    found = [*answer.get("Versions", []), *answer.get("DeleteMarkers", [])]
    return [v for v in found if v["Key"] == key]


def test_deletes_on_a_versioned_bucket_remove_the_bytes(seaweedfs: SeaweedFS) -> None:
    """On an Object Lock (so versioned) bucket a plain DeleteObject only adds a delete
    marker: a deleted scratch tail and a quarantined temporary object must leave no
    version behind; a quarantined locked original keeps its bytes under lock, hidden."""
    client = client_for(seaweedfs)
    name = "versioned-" + uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    store = S3BlobStore(client, name, retention_days=1)
    assert store.versioned

    tail = upload_key(uuid.uuid4().hex)
    store.write(tail, [b"first bytes"], write_once=False)
    store.write(tail, [b"first bytes, then more"], write_once=False)  # 2 versions
    store.delete(tail)
    assert not store.exists(tail)
    assert _versions(client, name, tail) == []

    scratch = upload_key(uuid.uuid4().hex)
    store.write(scratch, [b"differs from the manifest"], write_once=False)
    moved = store.quarantine(scratch, "digest mismatch")
    assert read_all(store, moved) == b"differs from the manifest"
    assert _versions(client, name, scratch) == []

    original = original_key("sha256:" + "ab" * 32)
    store.write(original, [b"locked evidence"])
    kept = store.quarantine(original, "orphan")
    assert read_all(store, kept) == b"locked evidence"
    assert not store.exists(original) and list(store.list("originals/")) == []
    locked = [v for v in _versions(client, name, original) if "Size" in v]
    assert len(locked) == 1  # never deleted: retained until its lock ends


class _KillMidway:
    """A stream that kills the object store after ``after`` bytes have been read."""

    def __init__(self, server: SeaweedFS, total: int, after: int) -> None:
        self._server, self._left, self._after, self._read = server, total, after, 0

    def read(self, size: int = -1, /) -> bytes:
        if self._read >= self._after and self._server.proc is not None:
            self._server.kill()
        n = min(size, self._left)
        self._left -= n
        self._read += n
        return payload(n, seed=self._read)


@pytest.fixture
def own_seaweedfs() -> Iterator[SeaweedFS]:
    server = SeaweedFS()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_outage_mid_write_is_unavailable_and_leaves_nothing(own_seaweedfs: SeaweedFS) -> None:
    client = client_for(own_seaweedfs, connect_timeout=1, read_timeout=5, max_attempts=2)
    client.create_bucket(Bucket="outage")
    store = S3BlobStore(client, "outage", part_size=PART)
    key = "originals/sha256/00/11/" + "0011" * 16
    with pytest.raises(Unavailable) as caught:
        store.write(key, read_blocks(_KillMidway(own_seaweedfs, 4 * PART, after=2 * PART)))
    assert "无法连接对象存储" in str(caught.value) or "对象存储请求失败" in str(caught.value)
    with pytest.raises(Unavailable):
        store.ping()
    own_seaweedfs.start()
    store.ping()
    assert not store.exists(key)
    assert list(store.list("originals/")) == []


def _damage_parts_on_the_way(request: Any, **_: object) -> None:
    """Flip one bit of a request body after it was signed (damage in transit)."""
    body = request.body.read() if hasattr(request.body, "read") else request.body
    damaged = bytearray(body)
    damaged[10] ^= 1
    request.body = bytes(damaged)


@pytest.mark.parametrize("checksum", ["crc32", "sha256"])
def test_a_part_damaged_on_the_way_is_refused_by_the_store(
    seaweedfs: SeaweedFS, bucket: str, checksum: WriteChecksum
) -> None:
    # SeaweedFS 4.48 does not check the signed payload hash, but it does check the
    # x-amz-checksum-* header: without it the damaged part would be stored and completed
    client = client_for(seaweedfs)
    store = S3BlobStore(
        client, bucket, prefix=f"t-{uuid.uuid4().hex[:12]}/", part_size=PART, checksum=checksum
    )
    assert not store.declares_checksums  # probed (with a part) before the damage
    client.meta.events.register("before-send.s3.UploadPart", _damage_parts_on_the_way)
    uid = store.start_upload("originals/x")
    with pytest.raises(Unavailable):
        store.put_part("originals/x", uid, 1, [payload(PART)])
    assert store.list_parts("originals/x", uid) == []
    with pytest.raises(Unavailable):  # write() puts parts the same way
        store.write("originals/y", [payload(2 * PART + 1)])
    assert not store.exists("originals/y")


def _same_crc32(body: bytes) -> bytes:
    """``body`` with some bits flipped so that its CRC-32 is unchanged: CRC-32 is linear,
    so any 33 single-bit flips have a subset whose effects on it cancel out."""
    zero = zlib.crc32(bytes(len(body)))
    pivots: dict[int, tuple[int, int]] = {}  # top bit of an effect -> (effect, flips)
    for k in range(64):
        flip = bytearray(len(body))
        flip[1000 + k] = 1
        effect, flips = zlib.crc32(flip) ^ zero, 1 << k
        while effect:
            top = effect.bit_length() - 1
            if top not in pivots:
                pivots[top] = (effect, flips)
                break
            effect, flips = effect ^ pivots[top][0], flips ^ pivots[top][1]
        else:
            forged = bytearray(body)
            for j in range(64):
                forged[1000 + j] ^= flips >> j & 1
            return bytes(forged)
    raise AssertionError("33 flips in 32 bits always have a dependent subset")


def test_only_sha256_refuses_a_body_forged_on_the_way(seaweedfs: SeaweedFS, bucket: str) -> None:
    # why plain HTTP to another host gets SHA-256: whoever can alter the request can make
    # a replaced part or photo match its CRC-32, never its SHA-256
    data, photo = payload(PART, seed=9), payload(PART - 1, seed=10)
    forged = {len(d): _same_crc32(d) for d in (data, photo)}
    assert all(forged[len(d)] != d for d in (data, photo))
    assert all(zlib.crc32(forged[len(d)]) == zlib.crc32(d) for d in (data, photo))

    def forge(request: Any, **_: object) -> None:
        body = request.body.read() if hasattr(request.body, "read") else request.body
        request.body = forged[len(body)]

    refused = {}
    checksums: tuple[WriteChecksum, ...] = ("sha256", "crc32")
    for checksum in checksums:
        client = client_for(seaweedfs)
        prefix = f"t-{uuid.uuid4().hex[:12]}/"
        store = S3BlobStore(client, bucket, prefix, part_size=PART, checksum=checksum)
        assert store.capabilities.write_once_native  # probed before the forgery
        assert not store.declares_checksums
        client.meta.events.register("before-send.s3.UploadPart", forge)
        client.meta.events.register("before-send.s3.PutObject", forge)
        uid = store.start_upload("originals/x")
        part_refused = photo_refused = True
        with contextlib.suppress(Unavailable):
            store.put_part("originals/x", uid, 1, [data])
            part_refused = False
        assert (store.list_parts("originals/x", uid) == []) is part_refused
        with contextlib.suppress(Unavailable):
            store.write("uploads/photo", [photo], write_once=False)
            photo_refused = False
        assert store.exists("uploads/photo") is not photo_refused
        refused[checksum] = (part_refused, photo_refused)
    assert refused == {"sha256": (True, True), "crc32": (False, False)}


@pytest.mark.parametrize(
    ("endpoint", "checksum"),
    [
        (None, "crc32"),  # AWS: https
        ("https://s3.example.gov.cn", "crc32"),
        ("http://127.0.0.1:8333", "crc32"),
        ("http://127.8.0.1:8333", "crc32"),
        ("http://[::1]:8333", "crc32"),
        ("http://localhost:8333", "crc32"),
        ("http://10.0.0.5:8333", "sha256"),
        ("http://[fd00::5]:8333", "sha256"),
        ("http://seaweedfs.internal:8333", "sha256"),  # a name may resolve anywhere
        ("http://localhost.example.com:8333", "sha256"),
    ],
)
def test_a_body_carries_crc32_only_where_no_one_can_alter_the_request(
    endpoint: str | None, checksum: str
) -> None:
    assert write_checksum_for(endpoint) == checksum


@pytest.mark.parametrize("checksum", ["crc32", "sha256"])
def test_a_photo_damaged_on_the_way_is_refused_by_the_store(
    seaweedfs: SeaweedFS, bucket: str, checksum: WriteChecksum
) -> None:
    # a single-request write goes as one unsigned-payload PutObject: only its signed
    # x-amz-checksum-* header lets the store notice that the bytes it got are not ours
    client = client_for(seaweedfs)
    prefix = f"t-{uuid.uuid4().hex[:12]}/"
    store = S3BlobStore(client, bucket, prefix, part_size=PART, checksum=checksum)
    assert store.capabilities.write_once_native  # probed (with PutObjects) before the damage
    client.meta.events.register("before-send.s3.PutObject", _damage_parts_on_the_way)
    data = payload(3 << 20, seed=5)
    key = original_key(sha256(data))
    with pytest.raises(Unavailable):
        store.write(key, [data[: 1 << 20], data[1 << 20 :]], expected_sha256=sha256(data))
    assert not store.exists(key)


def test_a_photo_already_stored_is_refused_as_it_is_today(env: StoreEnv) -> None:
    # the body goes without "Expect: 100-continue": the store refuses the existing key
    # after reading it, and that is still AlreadyExists, not a broken connection
    data = payload(PART - 1, seed=6)
    key = original_key(sha256(data))
    env.store.write(key, [data])
    for _ in range(3):
        with pytest.raises(AlreadyExists):
            env.store.write(key, [payload(PART - 1, seed=7)])
    assert read_all(env.store, key) == data


def test_completion_takes_the_recorded_version_of_a_part_put_twice(env: StoreEnv) -> None:
    # SeaweedFS lists every put of a part number; a completion on another process must
    # complete the version its caller recorded, not the one that looks newest
    store = env.store
    uid = store.start_upload("originals/x")
    first = store.put_part("originals/x", uid, 1, [payload(1000, seed=1)])
    time.sleep(1.1)  # LastModified has whole seconds: the second put is newer
    store.put_part("originals/x", uid, 1, [payload(1000, seed=2)])
    other = env.reopen()
    other.complete_upload("originals/x", uid, [first])
    assert read_all(other, "originals/x") == payload(1000, seed=1)


class _Wire:
    """What a store's client sent: each request's operation, headers and body."""

    def __init__(self, client: Any) -> None:
        self.sent: list[tuple[str, dict[str, str], bytes]] = []
        client.meta.events.register("before-send.s3", self._seen)

    def _seen(self, request: Any, event_name: str, **_: object) -> None:
        operation = event_name.rpartition(".")[2]  # before-send.s3.<operation>
        body = request.body if isinstance(request.body, bytes) else b""
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        self.sent.append((operation, headers, body))

    def of(self, operation: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for op, h, b in self.sent if op == operation]


def _checksum_of(data: bytes, checksum: WriteChecksum) -> str:
    raw = (
        zlib.crc32(data).to_bytes(4, "big")
        if checksum == "crc32"
        else hashlib.sha256(data).digest()
    )
    return base64.b64encode(raw).decode("ascii")


@pytest.mark.parametrize("checksum", ["crc32", "sha256"])
def test_a_multipart_upload_names_its_checksum_first_and_every_parts_checksum_at_completion(
    seaweedfs: SeaweedFS, bucket: str, checksum: WriteChecksum
) -> None:
    """What AWS S3 (and Ceph) insist on for checksummed parts: ``ChecksumAlgorithm`` when
    the upload begins, each part's checksum again when it completes — from the parts as
    recorded, so any process can complete it (SeaweedFS 4.48 lists no part checksums)."""
    client = client_for(seaweedfs)
    wire = _Wire(client)
    prefix = f"t-{uuid.uuid4().hex[:12]}/"

    def declaring(client: Any) -> S3BlobStore:  # as a store found listing part checksums
        return S3BlobStore(
            client, bucket, prefix, part_size=PART, checksum=checksum, declare_checksums=True
        )

    store = declaring(client)
    name = {"crc32": "CRC32", "sha256": "SHA256"}[checksum]
    data = [payload(PART, seed=21), payload(1000, seed=22)]
    uid = store.start_upload("originals/x")
    parts = [store.put_part("originals/x", uid, n, [d]) for n, d in enumerate(data, 1)]
    assert [p.checksum for p in parts] == [f"{checksum}:{_checksum_of(d, checksum)}" for d in data]
    # another process completes: a fresh store with the parts as the database recorded them
    other = declaring(client_for(seaweedfs))
    other_wire = _Wire(other._client)
    other.complete_upload("originals/x", uid, parts, write_once=False)
    assert read_all(store, "originals/x") == b"".join(data)
    # the store keeps the object's checksum of its parts' checksums, as S3 does
    stored = client.head_object(Bucket=bucket, Key=prefix + "originals/x", ChecksumMode="ENABLED")
    raw = b"".join(base64.b64decode(_checksum_of(d, checksum)) for d in data)
    assert stored[f"Checksum{name}"] == f"{_checksum_of(raw, checksum)}-{len(data)}"
    [(begun, _)] = wire.of("CreateMultipartUpload")
    assert begun["x-amz-checksum-algorithm"] == name
    [(_, completed)] = other_wire.of("CompleteMultipartUpload")
    for d in data:
        assert f"<Checksum{name}>{_checksum_of(d, checksum)}</Checksum{name}>".encode() in completed
    # write() of a large object goes the same way in one call
    whole = payload(2 * PART + 1, seed=23)
    store.write(
        "originals/y",
        [whole[i : i + (1 << 20)] for i in range(0, len(whole), 1 << 20)],
        write_once=False,
    )
    assert read_all(store, "originals/y") == whole
    [_, (begun, _)] = wire.of("CreateMultipartUpload")
    assert begun["x-amz-checksum-algorithm"] == name
    [(_, completed)] = wire.of("CompleteMultipartUpload")
    assert completed.count(f"<Checksum{name}>".encode()) == 3


def test_where_parts_are_listed_without_checksums_uploads_begin_and_complete_without(
    seaweedfs: SeaweedFS, bucket: str
) -> None:
    """SeaweedFS 4.48: an upload begun with ``ChecksumAlgorithm`` could only complete with
    checksums it does not list, so none is declared; a completion from the listing (a
    restart, another process) works as before."""
    client = client_for(seaweedfs)
    prefix = f"t-{uuid.uuid4().hex[:12]}/"
    store = S3BlobStore(client, bucket, prefix, part_size=PART, checksum="crc32")
    assert not store.declares_checksums  # probed: one upload begun, listed, aborted
    wire = _Wire(client)
    data = [payload(PART, seed=24), payload(10, seed=25)]
    uid = store.start_upload("originals/z")
    for n, d in enumerate(data, 1):
        store.put_part("originals/z", uid, n, [d])
    again = S3BlobStore(client_for(seaweedfs), bucket, prefix, part_size=PART, checksum="crc32")
    again.complete_upload(
        "originals/z", uid, again.list_parts("originals/z", uid), write_once=False
    )
    assert read_all(store, "originals/z") == b"".join(data)
    [(begun, _)] = wire.of("CreateMultipartUpload")
    assert "x-amz-checksum-algorithm" not in begun
    assert all("x-amz-checksum-crc32" in headers for headers, _ in wire.of("UploadPart"))


def test_a_store_that_lists_part_checksums_is_probed_to_declare_them() -> None:
    """The probe's logic against the answers AWS S3 gives (botocore's stubber)."""
    client = make_s3_client("https://s3.example.gov.cn", "k", "s", "cn-north-1")
    listed = {"PartNumber": 1, "ETag": '"e"', "Size": 9, "ChecksumCRC32": "AAAAAA=="}
    for parts, declared in (([listed], True), ([{**listed, "ChecksumCRC32": None}], False)):
        parts = [{k: v for k, v in p.items() if v is not None} for p in parts]
        with Stubber(client) as stub:
            stub.add_response("create_multipart_upload", {"UploadId": "u"})
            stub.add_response("upload_part", {"ETag": '"e"'})
            stub.add_response("list_parts", {"Parts": parts})
            stub.add_response("abort_multipart_upload", {})
            store = S3BlobStore(client, "evidence", checksum="crc32")
            assert store.declares_checksums is declared
            stub.assert_no_pending_responses()
