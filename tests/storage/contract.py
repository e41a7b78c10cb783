"""The BlobStore contract: every adapter passes these tests unchanged.

An adapter's test module subclasses ``BlobStoreContract`` and supplies an ``env``
fixture returning a ``StoreEnv`` (the store, a way to reopen it as a new instance, an
I/O counter, and a way to corrupt an object behind the store's back).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from storage import (
    BLOCK_SIZE,
    AlreadyExists,
    BlobStore,
    DeleteRefused,
    DigestMismatch,
    InvalidKey,
    InvalidParts,
    NotFound,
    TooLarge,
    UploadNotFound,
    check_fixity,
    original_key,
)
from storage.hashing import read_blocks
from storage.port import PartInfo


@dataclass
class StoreEnv:
    """What an adapter's test module provides to the contract suite."""

    store: BlobStore
    reopen: Callable[[], BlobStore]
    io_count: Callable[[], int]
    corrupt: Callable[[str, bytes], None]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking bytes of ``size``."""
    block = hashlib.sha512(str(seed).encode()).digest() * 2048  # 128 KiB
    return (block * (size // len(block) + 1))[:size]


def read_all(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.open(key, start, end))


def part_size(store: BlobStore) -> int:
    """A part size every backend accepts for all but the last part."""
    return max(store.capabilities.min_part_size, 256 * 1024)


def big_size(store: BlobStore) -> int:
    """Bigger than one S3 write buffer, so the multipart path is exercised too."""
    limit = store.capabilities.max_part_size
    return (limit or 4 * BLOCK_SIZE) + 12345


HOSTILE_KEYS = [
    "",
    "/etc/passwd",
    "../escape",
    "a/../../escape",
    "a/./b",
    ".",
    "a//b",
    "a/b/",
    "a\\b",
    "a/\x00b",
    "a/\nb",
    ".staging/x",
    "a/" + "x" * 300,
    "k" * 1100,
    "证据/照片.jpg",
    "a/b\u202ec",
]


class SlowStream:
    """A stream that waits on ``gate`` after its first block (to overlap two writers)."""

    def __init__(self, data: bytes, gate: threading.Barrier) -> None:
        self._io = io.BytesIO(data)
        self._gate = gate
        self._first = True

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._io.read(min(size, 64 * 1024) if size > 0 else -1)
        if self._first:
            self._first = False
            self._gate.wait(timeout=30)
        return chunk


class BlobStoreContract:
    """Behaviour every ``BlobStore`` adapter must show."""

    @pytest.fixture
    def store(self, env: StoreEnv) -> BlobStore:
        return env.store

    # -- whole objects ----------------------------------------------------------------

    def test_write_streams_hashes_and_reads_back(self, store: BlobStore) -> None:
        data = payload(3 * BLOCK_SIZE + 7)
        info = store.write("cases/c1/doc.bin", [data])
        assert (info.key, info.size) == ("cases/c1/doc.bin", len(data))
        assert (info.sha256, info.sha512) == (sha256(data), sha512(data))
        assert read_all(store, "cases/c1/doc.bin") == data
        assert all(len(b) <= BLOCK_SIZE for b in store.open("cases/c1/doc.bin"))
        assert store.stat("cases/c1/doc.bin").size == len(data)
        assert store.exists("cases/c1/doc.bin")
        assert not store.exists("cases/c1/other.bin")

    def test_large_write_with_expected_digest(self, store: BlobStore) -> None:
        data = payload(big_size(store), seed=1)
        info = store.write("big/one", [data], expected_sha256=sha256(data))
        assert info.sha256 == sha256(data) and info.size == len(data)
        assert read_all(store, "big/one") == data

    def test_zero_byte_object(self, store: BlobStore) -> None:
        info = store.write("empty/zero", [b""])
        assert info.size == 0 and info.sha256 == sha256(b"")
        assert read_all(store, "empty/zero") == b""
        assert read_all(store, "empty/zero", 0, 10) == b""
        assert store.stat("empty/zero").size == 0

    def test_write_once_refuses_overwrite_and_keeps_content(self, store: BlobStore) -> None:
        key = original_key(sha256(b"first"))
        store.write(key, [b"first"])
        with pytest.raises(AlreadyExists):
            store.write(key, [b"second"])
        assert read_all(store, key) == b"first"

    def test_overwrite_allowed_only_when_not_write_once(self, store: BlobStore) -> None:
        store.write("derivatives/x/thumb", [b"v1"], write_once=False)
        store.write("derivatives/x/thumb", [b"v2"], write_once=False)
        assert read_all(store, "derivatives/x/thumb") == b"v2"

    @pytest.mark.parametrize("big", [False, True])
    def test_digest_mismatch_leaves_nothing(self, store: BlobStore, big: bool) -> None:
        data = payload(big_size(store) if big else 1000, seed=2)
        with pytest.raises(DigestMismatch) as caught:
            store.write("m/key", [data], expected_sha256=sha256(b"other"))
        assert caught.value.actual == sha256(data)
        assert not store.exists("m/key")
        assert list(store.list("m/")) == []
        assert store.list_incomplete_uploads("m/") == []

    @pytest.mark.parametrize("big", [False, True])
    def test_size_limit_leaves_nothing(self, store: BlobStore, big: bool) -> None:
        size = big_size(store) if big else 1000
        with pytest.raises(TooLarge):
            store.write("l/key", [payload(size + 1)], max_size=size)
        assert not store.exists("l/key")
        assert store.list_incomplete_uploads("l/") == []
        store.write("l/exact", [payload(size)], max_size=size)
        assert store.stat("l/exact").size == size

    def test_range_reads(self, store: BlobStore) -> None:
        data = payload(2 * BLOCK_SIZE + 3, seed=3)
        store.write("r/obj", [data])
        n = len(data)
        cases = [
            (0, None),
            (0, 1),
            (n - 1, None),
            (n - 1, n),
            (BLOCK_SIZE - 1, BLOCK_SIZE + 1),
            (5, 5),
            (10, n + 1000),
            (n, None),
            (n + 10, n + 20),
        ]
        for start, end in cases:
            assert read_all(store, "r/obj", start, end) == data[start:end], (start, end)
        with pytest.raises(ValueError):
            store.open("r/obj", 5, 4)

    def test_missing_objects_are_not_found(self, store: BlobStore) -> None:
        with pytest.raises(NotFound):
            store.open("no/such")
        with pytest.raises(NotFound):
            store.stat("no/such")
        with pytest.raises(NotFound):
            store.delete("no/such")
        with pytest.raises(NotFound):
            store.quarantine("no/such", "test")

    @pytest.mark.parametrize("key", HOSTILE_KEYS)
    def test_hostile_keys_refused_before_any_io(self, env: StoreEnv, key: str) -> None:
        store = env.store
        before = env.io_count()
        operations: list[Callable[[], object]] = [
            lambda: store.write(key, [b"x"]),
            lambda: store.open(key),
            lambda: store.stat(key),
            lambda: store.exists(key),
            lambda: store.delete(key, retention_expired=True),
            lambda: store.quarantine(key, "x"),
            lambda: store.start_upload(key),
            lambda: store.list_parts(key, "0" * 32),
        ]
        for operation in operations:
            with pytest.raises(InvalidKey):
                operation()
        assert env.io_count() == before

    def test_list_by_prefix_sorted(self, store: BlobStore) -> None:
        for key in ["p/b/2", "p/a/1", "p/a-z", "q/1"]:
            store.write(key, [key.encode()])
        assert list(store.list("p/")) == ["p/a-z", "p/a/1", "p/b/2"]
        assert list(store.list("p/a/")) == ["p/a/1"]
        assert list(store.list("p/a")) == ["p/a-z", "p/a/1"]
        assert list(store.list("nothing/")) == []

    def test_delete_refused_for_originals_unless_retention_expired(self, store: BlobStore) -> None:
        key = original_key(sha256(b"orig"))
        store.write(key, [b"orig"])
        with pytest.raises(DeleteRefused):
            store.delete(key)
        assert store.exists(key)
        store.delete(key, retention_expired=True)
        assert not store.exists(key)
        store.write("derivatives/d/t", [b"t"])
        store.delete("derivatives/d/t")
        assert not store.exists("derivatives/d/t")

    def test_quarantine_moves_with_reason(self, store: BlobStore) -> None:
        key = original_key(sha256(b"bad"))
        store.write(key, [b"bad"])
        new_key = store.quarantine(key, "摘要不符 digest mismatch")
        assert new_key.startswith("quarantine/") and new_key.endswith(key)
        assert not store.exists(key)
        assert read_all(store, new_key) == b"bad"
        token = new_key.split("/")[1]
        note = json.loads(read_all(store, f"quarantine/{token}.json"))
        assert note["reason"] == "摘要不符 digest mismatch" and note["key"] == key

    def test_fixity_catches_corruption_behind_the_stores_back(self, env: StoreEnv) -> None:
        data = payload(BLOCK_SIZE + 100, seed=4)
        key = original_key(sha256(data))
        env.store.write(key, [data])
        good = check_fixity(env.store, key, sha256(data), sha512(data), len(data))
        assert good.ok and good.problems == ()
        env.corrupt(key, data[:-1] + bytes([data[-1] ^ 1]))
        flipped = check_fixity(env.store, key, sha256(data), sha512(data), len(data))
        assert not flipped.ok and len(flipped.problems) == 2  # both digests, size still ok
        env.corrupt(key, data[:-10])
        cut = check_fixity(env.store, key, sha256(data), sha512(data), len(data))
        assert len(cut.problems) == 3  # size and both digests: every finding reported

    def test_concurrent_writers_one_wins(self, store: BlobStore) -> None:
        key = original_key(sha256(b"race"))
        gate = threading.Barrier(2)
        contents = [payload(300_000, seed=10), payload(300_000, seed=11)]
        outcomes: list[object] = [None, None]

        def writer(i: int) -> None:
            try:
                outcomes[i] = store.write(key, read_blocks(SlowStream(contents[i], gate)))
            except AlreadyExists as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        refused = [o for o in outcomes if isinstance(o, AlreadyExists)]
        assert len(refused) == 1, outcomes
        winner = 0 if not isinstance(outcomes[0], AlreadyExists) else 1
        assert read_all(store, key) == contents[winner]

    def test_ping(self, store: BlobStore) -> None:
        store.ping()

    # -- resumable uploads ------------------------------------------------------------

    def _put(self, store: BlobStore, key: str, uid: str, number: int, data: bytes) -> PartInfo:
        part = store.put_part(key, uid, number, [data])
        assert (part.number, part.size) == (number, len(data))
        return part

    def test_parts_resume_after_reopening_the_store(self, env: StoreEnv) -> None:
        size = part_size(env.store)
        chunks = [payload(size, 20), payload(size, 21), payload(1000, 22)]
        data = b"".join(chunks)
        key = original_key(sha256(data))
        uid = env.store.start_upload(key)
        self._put(env.store, key, uid, 1, chunks[0])
        again = env.reopen()  # a restart, or another server process
        assert [(p.number, p.size) for p in again.list_parts(key, uid)] == [(1, size)]
        assert [(u.key, u.upload_id) for u in again.list_incomplete_uploads()] == [(key, uid)]
        self._put(again, key, uid, 2, chunks[1])
        self._put(again, key, uid, 3, chunks[2])
        info = again.complete_upload(
            key, uid, again.list_parts(key, uid), expected_sha256=sha256(data)
        )
        assert (info.size, info.sha256, info.sha512) == (len(data), sha256(data), sha512(data))
        assert read_all(env.store, key) == data
        assert env.store.list_incomplete_uploads() == []

    def test_parts_complete_with_the_callers_verified_digest(self, store: BlobStore) -> None:
        size = part_size(store)
        chunks = [payload(size, 30), payload(size, 31), payload(5, 32)]
        data = b"".join(chunks)
        uid = store.start_upload("u/one")
        parts = [self._put(store, "u/one", uid, i + 1, c) for i, c in enumerate(chunks)]
        info = store.complete_upload(
            "u/one", uid, parts, expected_sha256=sha256(data), verified_sha256=sha256(data)
        )
        # trusted, not re-read: no SHA-512 is promised until someone reads the bytes
        assert (info.size, info.sha256, info.sha512) == (len(data), sha256(data), None)
        assert read_all(store, "u/one") == data
        with pytest.raises(UploadNotFound):
            store.list_parts("u/one", uid)

    def test_parts_without_a_verified_digest_are_rehashed(self, store: BlobStore) -> None:
        data = payload(part_size(store), 33) + b"end"
        uid = store.start_upload("u/rehash")
        parts = [
            self._put(store, "u/rehash", uid, 1, data[:-3]),
            self._put(store, "u/rehash", uid, 2, data[-3:]),
        ]
        info = store.complete_upload("u/rehash", uid, parts)
        assert (info.size, info.sha256, info.sha512) == (len(data), sha256(data), sha512(data))

    def test_last_part_may_be_replaced_others_must_be_in_order(self, store: BlobStore) -> None:
        size = part_size(store)
        uid = store.start_upload("u/order")
        first = self._put(store, "u/order", uid, 1, payload(size, 40))
        with pytest.raises(InvalidParts):
            store.put_part("u/order", uid, 3, [b"gap"])
        self._put(store, "u/order", uid, 2, b"wrong tail")
        last = self._put(store, "u/order", uid, 2, b"right tail")  # a retried chunk
        with pytest.raises(InvalidParts):
            store.put_part("u/order", uid, 1, [b"rewrite"])
        assert store.list_parts("u/order", uid) == [first, last]
        store.complete_upload("u/order", uid, [first, last])
        assert read_all(store, "u/order") == payload(size, 40) + b"right tail"

    def test_complete_refuses_a_wrong_part_list(self, store: BlobStore) -> None:
        size = part_size(store)
        uid = store.start_upload("u/wrong")
        p1 = self._put(store, "u/wrong", uid, 1, payload(size, 50))
        p2 = self._put(store, "u/wrong", uid, 2, b"tail")
        with pytest.raises(InvalidParts) as caught:
            store.complete_upload("u/wrong", uid, [p2])
        assert len(caught.value.problems) >= 2  # numbering and the unlisted part 1
        with pytest.raises(InvalidParts):
            store.complete_upload("u/wrong", uid, [p1, PartInfo(2, 3, p2.etag)])
        assert not store.exists("u/wrong")
        store.complete_upload("u/wrong", uid, [p1, p2])

    def test_incomplete_uploads_listed_and_aborted(self, store: BlobStore) -> None:
        a = store.start_upload("inc/a")
        b = store.start_upload("inc/b")
        self._put(store, "inc/a", a, 1, b"some bytes")
        listed = {(u.key, u.upload_id) for u in store.list_incomplete_uploads("inc/")}
        assert listed == {("inc/a", a), ("inc/b", b)}
        assert store.list_incomplete_uploads("other/") == []
        store.abort_upload("inc/a", a)
        assert [u.upload_id for u in store.list_incomplete_uploads("inc/")] == [b]
        with pytest.raises(UploadNotFound):
            store.list_parts("inc/a", a)
        with pytest.raises(UploadNotFound):
            store.put_part("inc/a", a, 1, [b"late"])
        with pytest.raises(UploadNotFound):
            store.abort_upload("inc/a", a)
        assert not store.exists("inc/a")
        store.abort_upload("inc/b", b)

    def test_upload_mismatch_leaves_nothing_then_quarantined(self, store: BlobStore) -> None:
        data = payload(1000, 60)
        expected = sha256(b"what the manifest promised")
        key = original_key(expected)
        uid = store.start_upload(key)
        part = self._put(store, key, uid, 1, data)
        with pytest.raises(DigestMismatch):
            store.complete_upload(
                key, uid, [part], expected_sha256=expected, verified_sha256=sha256(data)
            )
        assert not store.exists(key)
        assert [u.upload_id for u in store.list_incomplete_uploads()] == [uid]
        moved = store.quarantine_upload(key, uid, [part], "摘要不符 digest mismatch")
        assert moved.startswith("quarantine/")
        assert not store.exists(key)
        assert store.list_incomplete_uploads() == []
        token = moved.split("/")[1].removesuffix(".json")
        note = json.loads(read_all(store, f"quarantine/{token}.json"))
        assert note["key"] == key and note["reason"] == "摘要不符 digest mismatch"
        if note["bytes_kept"]:
            assert read_all(store, moved) == data

    def test_complete_is_write_once(self, store: BlobStore) -> None:
        key = original_key(sha256(b"kept"))
        store.write(key, [b"kept"])
        uid = store.start_upload(key)
        part = self._put(store, key, uid, 1, b"intruder")
        with pytest.raises(AlreadyExists):
            store.complete_upload(key, uid, [part])
        assert read_all(store, key) == b"kept"
        store.abort_upload(key, uid)
