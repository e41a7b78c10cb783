"""The log's sequencer: completions that wait at once share one transaction and checkpoint.

A completed upload must not be answered before its row, its custody events and a signed
checkpoint holding them are committed (its receipt carries the checkpoint and an
inclusion proof). Done one by one, each completion takes the log lock (on SQLite: the
database's only write lock), appends, signs a checkpoint and commits, and every other
completion waits behind it — latency grows with the number of clients.

Transparency logs batch instead, and so does :class:`Sequencer`: the first completion
to arrive becomes the *leader* and commits alone; completions arriving meanwhile queue,
and the next leader takes them all in **one** unit of work — each one's rows and
events, then **one** checkpoint (signed lazily, only if a job asks for it) that every
receipt of the batch carries with its own inclusion proof — and one commit. Every job
is answered only after that commit, so "success means committed and provable" holds
for each. If anything in a batch of several fails, the batch is rolled back and each
job runs again alone, so one bad completion never fails the others.

A job is ``work(uow) -> finish`` and ``finish(checkpoint) -> result``: ``work`` makes
the changes (it may run twice, so it only touches the session), ``finish`` runs after
every job's ``work`` and may call ``checkpoint()`` for the batch's checkpoint. A job's
``lock(uow)`` takes its row locks (``SELECT … FOR UPDATE``); the batch runs every job's
``lock`` before any ``work``, so the batch never waits for a row while it holds the
log's lock — the lock order stays row → ``log_head`` as everywhere else, and a batch
cannot deadlock with a single completion of another process on PostgreSQL.
"""

from __future__ import annotations

import _thread
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from core.checkpoint import NoteSigner
from server.services.custody import StoredCheckpoint, sign_checkpoint
from server.services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

T = TypeVar("T")
CheckpointOf = Callable[[], StoredCheckpoint]
Finish = Callable[[CheckpointOf], T]
Work = Callable[[UnitOfWork], Finish[T]]


class _Job(Generic[T]):
    def __init__(self, work: Work[T], lock: Callable[[UnitOfWork], object] | None) -> None:
        self.work = work
        self.lock = lock
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.wake = _thread.allocate_lock()  # released once done, or handed the lead
        self.wake.acquire()


class Sequencer:
    """Runs jobs in batches of up to ``max_batch``, one transaction per batch."""

    def __init__(
        self,
        uow_factory: Callable[[], AbstractContextManager[UnitOfWork]],
        signer: Callable[[], NoteSigner],
        max_batch: int = 32,
    ) -> None:
        self._uow_factory = uow_factory
        self._signer = signer
        self._max_batch = max_batch
        self._mutex = threading.Lock()
        self._queue: list[_Job[Any]] = []
        self._busy = False  # a leader is running a batch (or about to)
        self.batches = 0
        """Batches committed so far (for tests and benchmarks)."""

    def run(self, work: Work[T], lock: Callable[[UnitOfWork], object] | None = None) -> T:
        """Run ``work`` (after ``lock``) in the next batch; its result once committed."""
        job: _Job[T] = _Job(work, lock)
        with self._mutex:
            self._queue.append(job)
            leading, self._busy = not self._busy, True
        while not job.done:
            if not leading:
                job.wake.acquire()  # plain locks: a Condition's Python cost was felt per photo
                if job.done:
                    break
            # the leader: the oldest jobs waiting (ours first among them) in one batch
            with self._mutex:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            try:
                self._run_batch(batch)
            finally:
                for other in batch:
                    if not other.done:  # only if the batch itself was interrupted
                        other.error = other.error or RuntimeError("sequencer batch interrupted")
                        other.done = True
                    if other is not job:
                        other.wake.release()
                with self._mutex:  # the lead goes to the oldest job still waiting, if any
                    after = self._queue[0] if self._queue else None
                    self._busy = after is not None
                if after is not None and after is not job:
                    after.wake.release()
            leading = after is job
        if job.error is not None:
            raise job.error
        result: T = job.result
        return result

    def _run_batch(self, batch: list[_Job[Any]]) -> None:
        if len(batch) > 1:
            try:
                results = self._commit(batch)
            except Exception:
                log.warning("a batch of %d completions failed; running each alone", len(batch))
            else:
                for job, result in zip(batch, results, strict=True):
                    job.result, job.done = result, True
                return
        for job in batch:
            try:
                [job.result] = self._commit([job])
            except BaseException as exc:  # handed to the job's own thread
                job.error = exc
            job.done = True

    def _commit(self, batch: list[_Job[Any]]) -> list[Any]:
        with self._uow_factory() as uow:
            for job in batch:
                if job.lock is not None:
                    job.lock(uow)
            signed: list[StoredCheckpoint] = []

            def checkpoint() -> StoredCheckpoint:
                if not signed:
                    signed.append(sign_checkpoint(uow, self._signer()))
                return signed[0]

            # the batch's changes go to the database in one flush (the checkpoint's, or
            # the commit's), not one per query: no job reads back what a job wrote —
            # the log's appender keeps the new nodes and case heads in memory
            with uow.session.no_autoflush:
                finishes = [job.work(uow) for job in batch]
                results = [finish(checkpoint) for finish in finishes]
            uow.commit()
        self.batches += 1
        return results
