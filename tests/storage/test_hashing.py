"""The hasher worker: a running hash fed from another thread gives the hash of the bytes,
in order, however they are cut; a failing update is reported, and the thread it ran on
serves the next hash."""

from __future__ import annotations

import hashlib
import os
import sys
import threading

import pytest

from storage.hashing import Digester, HashWorker, digest_blocks


def test_a_hash_fed_in_blocks_through_the_worker_is_the_hash_of_the_bytes() -> None:
    data = os.urandom(5 << 20)
    view = memoryview(data)
    for step in (4096, 300_000, 1 << 20, 5 << 20):
        running = hashlib.sha256()
        worker = HashWorker(running)
        for start in range(0, len(data), step):
            worker.update(view[start : start + step])
        worker.close()
        assert running.hexdigest() == hashlib.sha256(data).hexdigest()
    both = digest_blocks([view[i : i + 700_000] for i in range(0, len(data), 700_000)])
    assert both.sha256 == "sha256:" + hashlib.sha256(data).hexdigest()
    assert both.sha512 == "sha512:" + hashlib.sha512(data).hexdigest()


def test_hashes_fed_at_once_from_many_threads_stay_apart() -> None:
    pieces = [os.urandom(3 << 20) for _ in range(8)]
    got: dict[int, str] = {}

    def feed(i: int) -> None:
        running = hashlib.sha256()
        worker = HashWorker(running)
        view = memoryview(pieces[i])
        for start in range(0, len(view), 1 << 20):
            worker.update(view[start : start + (1 << 20)])
        worker.close()
        got[i] = running.hexdigest()

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(len(pieces))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert got == {i: hashlib.sha256(p).hexdigest() for i, p in enumerate(pieces)}


class _Refuses:
    def update(self, block: object) -> None:
        raise ValueError("refused")


def test_an_update_that_fails_is_raised_to_the_feeder_and_the_thread_serves_the_next() -> None:
    worker = HashWorker(_Refuses())
    worker.update(b"x" * 10)
    with pytest.raises(ValueError, match="refused"):
        worker.close()
    running = hashlib.sha256()
    after = HashWorker(running)  # takes the lane the failed one gave back
    after.update(b"abc")
    after.close()
    assert running.hexdigest() == hashlib.sha256(b"abc").hexdigest()


def test_a_worker_done_with_a_block_keeps_no_reference_to_it() -> None:
    """Ingest receives the next block into a buffer once nothing refers to it any more;
    a hash thread waiting for work must not pin the last block it hashed."""
    buffer = bytearray(os.urandom(1 << 20))
    idle = sys.getrefcount(buffer)
    running = hashlib.sha256()
    worker = HashWorker(running)
    block = memoryview(buffer)
    worker.update(block)
    worker.close()
    del block
    assert sys.getrefcount(buffer) == idle
    assert running.hexdigest() == hashlib.sha256(buffer).hexdigest()


def test_blake3_beside_sha256_and_sha512_in_one_pass_in_blocks_or_whole() -> None:
    # the BLAKE3 team's published vector for the empty input
    assert digest_blocks([], blake3=True).blake3 == (
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    )
    data = os.urandom(5 << 20) + b"tail"
    whole = Digester(blake3=True)
    whole.update(data)  # outside a session: inline
    in_blocks = digest_blocks(
        [data[i : i + 300_001] for i in range(0, len(data), 300_001)], blake3=True
    )
    for d in (whole, in_blocks):
        assert d.size == len(data)
        assert d.sha256 == "sha256:" + hashlib.sha256(data).hexdigest()
        assert d.sha512 == "sha512:" + hashlib.sha512(data).hexdigest()
    assert whole.blake3 == in_blocks.blake3 is not None
    assert digest_blocks([data]).blake3 is None  # only when asked for


def test_a_digester_without_sha256_has_no_sha256_to_give() -> None:
    digester = digest_blocks([b"x" * 100], blake3=True)
    alone = Digester(sha256=False, sha512=False, blake3=True)
    alone.update(b"x" * 100)
    assert alone.blake3 == digester.blake3 and alone.sha512 is None
    with pytest.raises(ValueError, match="sha256=False"):
        _ = alone.sha256
