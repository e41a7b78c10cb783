"""The log's sequencer: completions waiting at once share one batch (one transaction, one
checkpoint), each caller gets its own answer, and one bad completion fails only itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.services.custody import note_signer
from server.services.sequencer import CheckpointOf, Sequencer
from server.services.unit_of_work import UnitOfWork
from tests.support.fake_uow import FakeUnits

WAITING = 30


def _sequencer(units: FakeUnits) -> Sequencer:
    signer = note_signer(Ed25519PrivateKey.generate(), "casetrail.test/log")
    return Sequencer(units, lambda: signer)


def _held_first(
    sequencer: Sequencer, job: Callable[[int], Any]
) -> tuple[dict[int, Any], threading.Event]:
    """Run job 0, held inside its batch until the other ``WAITING`` jobs have queued,
    then let everything finish; each job's answer (or error) by number."""
    answers: dict[int, Any] = {}
    inside, go_on = threading.Event(), threading.Event()

    def call(i: int) -> None:
        try:
            answers[i] = sequencer.run(job(i) if i else _holding(job(0), inside, go_on))
        except Exception as exc:
            answers[i] = exc

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert inside.wait(10)
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, WAITING + 1)]
    for t in others:
        t.start()
    deadline = time.monotonic() + 10
    while len(sequencer._queue) < WAITING and time.monotonic() < deadline:
        time.sleep(0.01)
    go_on.set()
    for t in (first, *others):
        t.join(30)
        assert not t.is_alive()
    return answers, go_on


def _holding(work: Any, inside: threading.Event, go_on: threading.Event) -> Any:
    def held(uow: UnitOfWork) -> Any:
        inside.set()
        go_on.wait(10)
        return work(uow)

    return held


def _answer(i: int) -> Any:
    def work(uow: UnitOfWork) -> Callable[[CheckpointOf], tuple[int, int]]:
        return lambda checkpoint: (i, checkpoint().size)

    return work


def test_completions_waiting_at_once_are_one_batch_and_each_gets_its_own_answer(
    fake_units: FakeUnits,
) -> None:
    sequencer = _sequencer(fake_units)
    answers, _ = _held_first(sequencer, _answer)
    assert answers == {i: (i, 0) for i in range(WAITING + 1)}
    # the first alone, then everyone who queued meanwhile together: two commits
    assert sequencer.batches == 2
    assert fake_units.commits == 2


def test_a_failing_completion_fails_alone_and_the_rest_of_its_batch_commits(
    fake_units: FakeUnits,
) -> None:
    sequencer = _sequencer(fake_units)
    bad = 7

    def job(i: int) -> Any:
        if i != bad:
            return _answer(i)

        def work(uow: UnitOfWork) -> Any:
            raise ValueError("this completion cannot be recorded")

        return work

    answers, _ = _held_first(sequencer, job)
    assert isinstance(answers.pop(bad), ValueError)
    assert answers == {i: (i, 0) for i in range(WAITING + 1) if i != bad}
    # the first alone; the batch of 30 rolled back once; then each of the 30 alone
    assert sequencer.batches == 1 + WAITING - 1
    assert fake_units.rollbacks >= 2


def test_a_later_caller_leads_when_nobody_is_waiting(fake_units: FakeUnits) -> None:
    sequencer = _sequencer(fake_units)
    assert [sequencer.run(_answer(i)) for i in range(3)] == [(0, 0), (1, 0), (2, 0)]
    assert sequencer.batches == 3
    with pytest.raises(ValueError):
        sequencer.run(lambda uow: (_ for _ in ()).throw(ValueError("refused")))
    assert sequencer.run(_answer(9)) == (9, 0)
