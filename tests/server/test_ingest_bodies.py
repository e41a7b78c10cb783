"""Streamed request bodies: blocks are views of reused receive buffers, never overwritten
while anything still holds them."""

from __future__ import annotations

import io
import os

import pytest

from server.services.ingest import bodies
from server.services.ingest.bodies import _BlockBuffers, _filled_blocks

MiB = 1 << 20


def test_blocks_are_reused_buffers_and_a_held_block_is_never_overwritten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bodies, "_BLOCK_BUFFERS", _BlockBuffers(keep=16))  # this test's own
    payload = os.urandom(40 * MiB + 123)
    source = io.BytesIO(payload)
    held: list[tuple[int, memoryview]] = []
    buffers: list[int] = []
    offset = 0
    for block in _filled_blocks(source.readinto, len(payload), exact=True):
        assert isinstance(block, memoryview)
        buffers.append(id(block.obj))
        if len(held) < 24 and offset % (3 * MiB) == 0:  # held as a part buffer holds them
            held.append((offset, block))
        offset += len(block)
        del block  # what a consumer done with it does: the buffer may be reused
    assert offset == len(payload)
    for start, block in held:
        assert bytes(block) == payload[start : start + len(block)]
    assert len(set(buffers)) < len(buffers) // 2  # buffers were received into again
