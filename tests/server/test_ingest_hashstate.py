"""The saved SHA-256 state is exact across processes, and a damaged one is refused."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import subprocess
import sys
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, update

from server import hashstate
from server.models import Upload
from tests.server.conftest import World
from tests.server.ingest_support import Tus, announce, metadata, receipt_of, sync_runtime


@pytest.fixture
def tus_world(world: World) -> World:
    sync_runtime(world.app)
    return world


def test_state_saved_in_another_process_resumes_to_the_exact_digest() -> None:
    first, second = os.urandom(3_000_001), os.urandom(1_234_567)
    code = (
        "import sys; from server import hashstate\n"
        "h = hashstate.RunningSha256(); h.update(sys.stdin.buffer.read())\n"
        "sys.stdout.buffer.write(h.save())"
    )
    saved = subprocess.run(
        [sys.executable, "-c", code], input=first, capture_output=True, check=True
    ).stdout
    resumed = hashstate.restore(saved, len(first))
    assert resumed is not None
    resumed.update(second)
    assert resumed.digest == "sha256:" + hashlib.sha256(first + second).hexdigest()
    assert resumed.size == len(first) + len(second)


def test_missing_corrupt_or_stale_state_is_refused() -> None:
    h = hashstate.RunningSha256()
    h.update(b"abc")
    saved = h.save()
    assert hashstate.restore(saved, 3) is not None
    assert hashstate.restore(None, 3) is None
    assert hashstate.restore(saved, 4) is None  # covers another byte count
    flipped = bytearray(saved)
    flipped[20] ^= 1
    assert hashstate.restore(bytes(flipped), 3) is None
    assert hashstate.restore(saved[:-1], 3) is None


ENGINES = [hashstate._RehashesSha256] + (
    [hashstate._CtypesSha256] if hashstate._LIB is not None else []
)


def test_libcrypto_is_used_where_present() -> None:
    """The resumable SHA-256 releases the GIL here (libcrypto is what hashlib loads)."""
    assert hashstate.ENGINE is hashstate._CtypesSha256


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=700),
    cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=6),
    engines=st.lists(st.sampled_from(ENGINES), min_size=7, max_size=7),
    views=st.lists(st.booleans(), min_size=7, max_size=7),
)
def test_any_split_saved_and_restored_anywhere_by_either_side_gives_hashlibs_digest(
    data: bytes, cuts: list[int], engines: list[type[Any]], views: list[bool]
) -> None:
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    h = hashstate.RunningSha256(engines[0]())
    for i, (start, end) in enumerate(itertools.pairwise(bounds)):
        piece = memoryview(bytearray(data))[start:end] if views[i] else data[start:end]
        h.update(piece)
        saved = h.save()
        # both sides save a state as the same bytes, whoever computed it
        assert {
            hashstate.RunningSha256(e.from_state(saved[12:-8]), end).save() for e in ENGINES
        } == {saved}
        with mock.patch.object(hashstate, "ENGINE", engines[i + 1]):
            resumed = hashstate.restore(saved, end)
        assert resumed is not None
        h = resumed
    assert h.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert h.size == len(data)


@pytest.mark.parametrize("engine", ENGINES)
def test_either_side_refuses_a_corrupt_stale_or_inconsistent_state(engine: type[Any]) -> None:
    h = hashstate.RunningSha256(engine())
    h.update(b"x" * 100)
    saved = h.save()
    with mock.patch.object(hashstate, "ENGINE", engine):
        assert hashstate.restore(saved, 100) is not None
        assert hashstate.restore(saved, 99) is None
        flipped = bytearray(saved)
        flipped[50] ^= 1
        assert hashstate.restore(bytes(flipped), 100) is None
        # a well-checksummed state whose byte counts disagree with its size
        body = saved[:12] + saved[12:44] + (2).to_bytes(8, "little") + saved[52:-8]
        assert hashstate.restore(body + hashlib.sha256(body).digest()[:8], 100) is None


def test_without_libcrypto_one_warning_and_rehashes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(hashstate, "_LIB", None)
    with caplog.at_level(logging.WARNING, logger=hashstate.__name__):
        assert hashstate._choose() is hashstate._RehashesSha256
    assert len(caplog.records) == 1 and "rehashes" in caplog.records[0].getMessage()


def test_an_unreadable_saved_state_is_re_derived_from_the_stored_bytes(
    tus_world: World, engine: Engine
) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    announced = announce(tus_world, [("大文件.bin", data, "application/octet-stream")])
    tus = Tus(tus_world.app.test_client(), announced.device.token)
    meta = metadata(evidence_id=announced.evidence[0]["evidence_id"])
    location = tus.create(len(data), meta).headers["Location"]
    assert tus.patch(location, 0, data[:1_500_000]).status_code == 204
    with engine.begin() as connection:
        connection.execute(update(Upload).values(hash_state=b"CTH1" + bytes(120)))
    response = tus.patch(location, 1_500_000, data[1_500_000:])
    assert response.status_code == 204, response.get_json()
    assert receipt_of(response)["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
