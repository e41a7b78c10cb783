"""The fixity sweep (完整性核验): re-read every stored original and compare its digests.

:class:`FixitySweeper` streams each original of the scope (all cases, or one) from the
blob store in fixed blocks, hashing SHA-256 (and SHA-512 too, when recorded and
``full=True`` / ``casetrail fixity --full``: it runs at a quarter of SHA-256's speed)
in one pass (:func:`storage.fixity.check_fixity`), and compares them — and the size —
with what was recorded. Each result is committed on its own, in one transaction: a
``fixity_ok`` or ``fixity_failed`` custody event in the case chain, the latest result in
``fixity_checks``, and the sweep's cursor in ``fixity_sweeps``. A sweep that is killed
therefore continues after the last evidence it finished (by id order) when run again
with the same scope; ``restart=True`` starts over.

A failed check never moves or rewrites the original: it is evidence of what happened,
and the report says what to do (restore from backup, preserve the store, call the
admin). ``rate`` throttles reading (bytes per second) so a sweep can run beside uploads.

Every part of the server that finds an original missing or altered — this sweep, the
reconciler, the inspection's first re-read, an export, a download — records it through
:func:`record_fixity_failure`, so a ``fixity_failed`` custody event always has the same
details (documented in ``docs/reliability.md``)::

    evidence_id   the evidence whose original failed
    storage_key   where its original is (or should be)
    source        who found it: sweep | reconcile | inspection | export | download
    reason        object_missing | mismatch
    problems      every problem found, each a readable sentence (Chinese / English)
    sweep_id      (sweep) the sweep that found it
    export_id     (export) the export being sealed or streamed; null before sealing
    path          (export, while streaming) the file's path in the bag
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from sqlalchemy import func, select, update

from core.custody import Actor, EventType, ObjectRef
from server.auth import Principal
from server.models import Case, Evidence, EvidenceStatus, FixityCheck, FixitySweep, utcnow
from server.services.custody import SYSTEM_ACTOR, record_custody
from server.services.unit_of_work import UnitOfWork
from storage import errors as storage_errors
from storage.fixity import check_fixity
from storage.port import BlobStore

OK, FAILED, MISSING = "ok", "failed", "missing"

EXIT_OK, EXIT_ERROR, EXIT_AT_RISK = 0, 1, 2
"""``casetrail reconcile`` / ``casetrail fixity`` exit codes (for schedulers)."""

FixitySource = Literal["sweep", "reconcile", "inspection", "export", "download"]


def record_fixity_failure(
    uow: UnitOfWork,
    evidence: Evidence,
    *,
    source: FixitySource,
    problems: Sequence[str],
    missing: bool = False,
    actor: Principal | Actor = SYSTEM_ACTOR,
    context: Mapping[str, str | None] | None = None,
) -> None:
    """Append ``fixity_failed`` to the case chain and keep it as the latest fixity result.

    ``missing`` says the object is gone (``reason: object_missing``) rather than altered;
    ``context`` adds the finder's own ids (``sweep_id``, ``export_id``, ``path``). The
    caller commits. The original itself is never touched.
    """
    case = uow.session.get(Case, evidence.case_id)
    assert case is not None
    details: dict[str, Any] = {
        "evidence_id": evidence.id,
        "storage_key": evidence.storage_key,
        "source": source,
        "reason": "object_missing" if missing else "mismatch",
        "problems": list(problems),
        **(context or {}),
    }
    record_custody(
        uow,
        case,
        EventType.FIXITY_FAILED,
        actor,
        details,
        object=ObjectRef(evidence.expected_sha256, evidence.expected_size),
    )
    _set_latest(uow, evidence.id, MISSING if missing else FAILED, problems)


def _set_latest(uow: UnitOfWork, evidence_id: str, status: str, problems: Sequence[str]) -> None:
    """The evidence's row in ``fixity_checks``: its latest result."""
    check = uow.session.get(FixityCheck, evidence_id)
    if check is None:
        check = FixityCheck(evidence_id=evidence_id)
        uow.session.add(check)
    check.status = status
    check.detail = "; ".join(problems)
    check.checked_at = utcnow()


@dataclass(frozen=True)
class FixityOutcome:
    """The result for one original: ``ok``, ``failed`` (digest/size) or ``missing``."""

    evidence_id: str
    storage_key: str
    status: str
    size: int
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "evidence_id": self.evidence_id,
            "storage_key": self.storage_key,
            "status": self.status,
            "size": self.size,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class SweepReport:
    """What one run of a sweep checked (a resumed run reports only what it checked)."""

    sweep_id: str
    resumed: bool
    outcomes: tuple[FixityOutcome, ...]
    bytes_read: int
    seconds: float

    @property
    def failed(self) -> tuple[FixityOutcome, ...]:
        """Originals that failed (digest, size or missing)."""
        return tuple(o for o in self.outcomes if o.status != OK)

    @property
    def exit_code(self) -> int:
        """``EXIT_AT_RISK`` when any original failed, else ``EXIT_OK``."""
        return EXIT_AT_RISK if self.failed else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "sweep_id": self.sweep_id,
            "resumed": self.resumed,
            "checked": len(self.outcomes),
            "failed": len(self.failed),
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "outcomes": [o.to_json() for o in self.outcomes],
            "exit_code": self.exit_code,
        }


Progress = Callable[[int, int, int], None]
"""``progress(done, total, bytes_read)`` after each original."""


@dataclass
class FixitySweeper:
    """Re-reads originals and records the results; see the module docstring."""

    uow_factory: Callable[[], AbstractContextManager[UnitOfWork]]
    store: BlobStore
    rate: float | None = None  # bytes per second; None = as fast as the store gives
    progress: Progress | None = None
    batch: int = 200
    full: bool = False  # also re-check the recorded SHA-512
    _throttle: _Throttle = field(init=False)

    def __post_init__(self) -> None:
        self._throttle = _Throttle(self.store, self.rate)

    def run(self, case_id: str | None = None, *, restart: bool = False) -> SweepReport:
        """Sweep the scope, resuming an unfinished sweep of the same scope unless ``restart``."""
        begun = time.monotonic()
        sweep_id, cursor, resumed = self._open_sweep(case_id, restart)
        total = self._count(case_id)
        done = self._done_before(sweep_id)
        outcomes: list[FixityOutcome] = []
        self._throttle.reset()
        for evidence in self._stored(case_id, cursor):
            outcome = self._check(*evidence)
            self._record(sweep_id, outcome)
            outcomes.append(outcome)
            done += 1
            if self.progress is not None:
                self.progress(done, total, self._throttle.bytes)
        with self.uow_factory() as uow:
            uow.session.execute(
                update(FixitySweep)
                .where(FixitySweep.id == sweep_id)
                .values(finished_at=utcnow(), updated_at=utcnow())
            )
            uow.commit()
        return SweepReport(
            sweep_id, resumed, tuple(outcomes), self._throttle.bytes, time.monotonic() - begun
        )

    def _open_sweep(self, case_id: str | None, restart: bool) -> tuple[str, str | None, bool]:
        scope = FixitySweep.case_id.is_(None) if case_id is None else FixitySweep.case_id == case_id
        with self.uow_factory() as uow:
            unfinished = list(
                uow.session.scalars(
                    select(FixitySweep)
                    .where(scope, FixitySweep.finished_at.is_(None))
                    .order_by(FixitySweep.started_at.desc())
                )
            )
            if unfinished and not restart:
                sweep = unfinished[0]
                return sweep.id, sweep.cursor, True
            for old in unfinished:  # abandoned by --restart
                old.finished_at = utcnow()
            sweep = FixitySweep(case_id=case_id, checked=0, failed=0, bytes_read=0)
            uow.session.add(sweep)
            uow.commit()
            return sweep.id, None, False

    def _count(self, case_id: str | None) -> int:
        with self.uow_factory() as uow:
            query = select(func.count(Evidence.id)).where(
                Evidence.status == EvidenceStatus.STORED.value
            )
            if case_id is not None:
                query = query.where(Evidence.case_id == case_id)
            return int(uow.session.scalar(query) or 0)

    def _done_before(self, sweep_id: str) -> int:
        with self.uow_factory() as uow:
            return int(
                uow.session.scalar(select(FixitySweep.checked).where(FixitySweep.id == sweep_id))
                or 0
            )

    def _stored(
        self, case_id: str | None, cursor: str | None
    ) -> Iterator[tuple[str, str, str, str | None, int]]:
        """Stored evidence ``(id, key, sha256, sha512, size)`` in id order, after ``cursor``."""
        while True:
            with self.uow_factory() as uow:
                query = select(
                    Evidence.id,
                    Evidence.storage_key,
                    Evidence.expected_sha256,
                    Evidence.sha512,
                    Evidence.expected_size,
                ).where(Evidence.status == EvidenceStatus.STORED.value)
                if case_id is not None:
                    query = query.where(Evidence.case_id == case_id)
                if cursor is not None:
                    query = query.where(Evidence.id > cursor)
                rows = [
                    (r[0], r[1] or "", r[2], r[3], int(r[4]))
                    for r in uow.session.execute(query.order_by(Evidence.id).limit(self.batch))
                ]
            if not rows:
                return
            yield from rows
            cursor = rows[-1][0]

    def _check(
        self, evidence_id: str, key: str, sha256: str, sha512: str | None, size: int
    ) -> FixityOutcome:
        try:
            result = check_fixity(
                cast(BlobStore, self._throttle), key, sha256, sha512 if self.full else None, size
            )
        except storage_errors.NotFound:
            problem = f"对象缺失 (object missing): {key}"
            return FixityOutcome(evidence_id, key, MISSING, 0, (problem,))
        status = OK if result.ok else FAILED
        return FixityOutcome(evidence_id, key, status, result.size, result.problems)

    def _record(self, sweep_id: str, outcome: FixityOutcome) -> None:
        """The custody event, the latest result and the cursor, in one transaction."""
        with self.uow_factory() as uow:
            evidence = uow.session.get(Evidence, outcome.evidence_id)
            assert evidence is not None
            if outcome.status == OK:
                case = uow.session.get(Case, evidence.case_id)
                assert case is not None
                record_custody(
                    uow,
                    case,
                    EventType.FIXITY_OK,
                    SYSTEM_ACTOR,
                    {
                        "evidence_id": outcome.evidence_id,
                        "storage_key": outcome.storage_key,
                        "sweep_id": sweep_id,
                    },
                    object=ObjectRef(evidence.expected_sha256, evidence.expected_size),
                )
                _set_latest(uow, outcome.evidence_id, OK, ())
            else:
                record_fixity_failure(
                    uow,
                    evidence,
                    source="sweep",
                    problems=outcome.problems,
                    missing=outcome.status == MISSING,
                    context={"sweep_id": sweep_id},
                )
            uow.session.execute(
                update(FixitySweep)
                .where(FixitySweep.id == sweep_id)
                .values(
                    cursor=outcome.evidence_id,
                    checked=FixitySweep.checked + 1,
                    failed=FixitySweep.failed + int(outcome.status != OK),
                    bytes_read=FixitySweep.bytes_read + outcome.size,
                    updated_at=utcnow(),
                )
            )
            uow.commit()


class _Throttle:
    """The store's ``open`` with reading paced to ``rate`` bytes per second, counting bytes."""

    def __init__(self, store: BlobStore, rate: float | None) -> None:
        self._store = store
        self._rate = rate
        self.bytes = 0
        self._begun = time.monotonic()

    def reset(self) -> None:
        self.bytes = 0
        self._begun = time.monotonic()

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        for block in self._store.open(key, start, end):
            self.bytes += len(block)
            if self._rate:
                ahead = self.bytes / self._rate - (time.monotonic() - self._begun)
                if ahead > 0:
                    time.sleep(ahead)
            yield block
