"""The durable queue: states survive reopening, backoff with jitter, retries, retention."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from field_client.capture import Capturer, CaptureRequest
from field_client.queue import BACKOFF_CAP, ItemState, Queue, backoff_delay
from tests.field_client.conftest import make_file


def test_states_survive_a_restart(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    r = capturer.capture(
        [make_file(tmp_path / "a.jpg", 100), make_file(tmp_path / "b.mp4", 200)], request_facts
    )
    queue.mark_registered(r.manifest_id, {0: "ev-a", 1: "ev-b"})
    queue.mark_uploading((r.manifest_id, 1), "http://s/api/v1/uploads/u1", 0)
    queue.set_offset((r.manifest_id, 1), 150)
    queue.close()

    with Queue(capturer.home.queue_db) as again:
        a, b = again.items()
        assert (a.state, a.evidence_id) == (ItemState.REGISTERED, "ev-a")
        assert (b.state, b.offset, b.upload_url) == (
            ItemState.UPLOADING,
            150,
            "http://s/api/v1/uploads/u1",
        )
        again.mark_uploaded(b.key, {"r": 1})
        again.mark_done(b.key, {"r": 1})
        again.mark_failed(a.key, "服务器拒绝 / refused")
        counts = again.counts()
        assert counts[ItemState.DONE] == 1 and counts[ItemState.FAILED] == 1
        assert counts[ItemState.CAPTURED] == 0
        assert again.receipt(b.key) == {"r": 1}
        assert again.due() == []


def test_transient_failures_back_off_and_retry_resets(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    now = [1000.0]
    queue.clock = lambda: now[0]
    r = capturer.capture([make_file(tmp_path / "a.jpg", 100)], request_facts)
    key = (r.manifest_id, 0)
    delays = [queue.defer([key], "网络不通 / offline", rand=lambda: 1.0) for _ in range(4)]
    assert delays == [2.0, 4.0, 8.0, 16.0]
    item = queue.item(key)
    assert item.attempts == 4 and item.last_error == "网络不通 / offline"
    assert queue.due() == []  # waiting out the backoff
    now[0] += 16.0
    assert [i.key for i in queue.due()] == [key]

    queue.mark_failed(key, "422 mismatch")
    assert queue.due() == []
    assert queue.retry_failed() == 1
    back = queue.item(key)
    assert (back.state, back.attempts) == (ItemState.CAPTURED, 0)


@settings(max_examples=200, deadline=None)
@given(attempt=st.integers(1, 200), r=st.floats(0, 1))
def test_backoff_is_bounded_jittered_and_never_immediate(attempt: int, r: float) -> None:
    d = backoff_delay(attempt, rand=lambda: r)
    ceiling = min(BACKOFF_CAP, 2.0 * 2 ** (attempt - 1))
    assert ceiling / 2 <= d <= ceiling
    assert d >= 1.0


def test_prunable_only_after_every_item_is_done_and_retention_passed(
    tmp_path: Path, capturer: Capturer, request_facts: CaptureRequest, queue: Queue
) -> None:
    now = [1_000_000.0]
    queue.clock = lambda: now[0]
    r = capturer.capture(
        [make_file(tmp_path / "a.jpg", 1), make_file(tmp_path / "b.jpg", 2)], request_facts
    )
    queue.mark_done((r.manifest_id, 0), {})
    assert queue.prunable(now[0] + 10) == []  # b not done yet
    queue.mark_done((r.manifest_id, 1), {})
    assert queue.prunable(now[0] - 1) == []  # retention not over
    assert queue.prunable(now[0] + 1) == [r.manifest_id]
    queue.mark_pruned(r.manifest_id)
    assert queue.prunable(now[0] + 1) == []
