"""Background work of a server process: leftover inspection after a crash, periodic checkpoints.

Both run in threads the app starts in serve mode (``create_app(background=True)``), so
no API request signs a checkpoint or waits for inspection.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from sqlalchemy import func, select, update

from core.checkpoint import NoteSigner
from server.app import create_app
from server.auth import Principal
from server.jobs.checkpointer import Checkpointer
from server.jobs.inspection import InspectionJobs
from server.models import Checkpoint, Evidence, Role, utcnow
from server.services import cases, users
from server.services.custody import log_size, note_signer
from tests.server.conftest import World, parts
from tests.server.maintenance_support import send
from tests.server.manifest_support import open_case
from tests.support.fake_uow import FakeUnits


@pytest.fixture
def fresh_app(world: World) -> Iterator[Callable[..., Flask]]:
    """Start a second app on the world's database and store, as a restarted server would."""
    started: list[Flask] = []

    def start(**overrides: object) -> Flask:
        settings = dataclasses.replace(parts(world.app).settings, **overrides)  # type: ignore[arg-type]
        app = create_app(settings, background=True)
        started.append(app)
        return app

    yield start
    for app in started:
        parts(app).close()


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "background work did not happen in time"
        time.sleep(0.1)


def test_inspection_left_behind_by_a_crash_is_done_by_a_freshly_started_server(
    world: World, fresh_app: Callable[..., Flask]
) -> None:
    never_started, cut_off = send(world), send(world)
    with parts(world.app).unit_of_work() as uow:
        # the crashed process stored both originals; one job was never submitted, the
        # other was running when the process died (its lease ran out since)
        uow.session.execute(
            update(Evidence)
            .where(Evidence.id.in_([never_started.evidence_id, cut_off.evidence_id]))
            .values(sha512=None, inspection=None, inspection_status="pending")
        )
        uow.session.execute(
            update(Evidence)
            .where(Evidence.id == cut_off.evidence_id)
            .values(
                inspection_status="running",
                inspection_attempts=1,
                inspection_lease_until=utcnow() - timedelta(minutes=1),
            )
        )
        uow.commit()

    app = fresh_app(inspection="thread", jobs_poll_seconds=1)

    def inspected() -> bool:
        with parts(app).unit_of_work() as uow:
            rows = uow.session.scalars(
                select(Evidence).where(
                    Evidence.id.in_([never_started.evidence_id, cut_off.evidence_id])
                )
            ).all()
            return all(r.inspection_status in ("done", "failed") for r in rows)

    _wait_for(inspected)
    with parts(app).unit_of_work() as uow:
        for sent in (never_started, cut_off):
            evidence = uow.session.get(Evidence, sent.evidence_id)
            assert evidence is not None
            assert evidence.sha512 is not None and evidence.sha512.startswith("sha512:")
            assert evidence.inspection  # facts or the reason it could not inspect


def test_a_running_inspection_whose_lease_has_not_run_out_is_left_to_its_owner(
    world: World,
) -> None:
    busy = send(world)
    with parts(world.app).unit_of_work() as uow:
        uow.session.execute(
            update(Evidence)
            .where(Evidence.id == busy.evidence_id)
            .values(
                inspection_status="running",
                inspection_lease_until=utcnow() + timedelta(minutes=5),
            )
        )
        uow.commit()
    assert parts(world.app).jobs.run_pending() == 0


def test_a_failing_background_inspection_is_logged(
    fake_units: FakeUnits, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = InspectionJobs(fake_units, store=None, mode="thread")

    def broken(evidence_id: str) -> bool:
        raise RuntimeError(f"database went away while inspecting {evidence_id}")

    jobs.run_one = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="server.jobs.inspection"):
        jobs.submit("ev-1")
        jobs.shutdown()
    assert any(
        "inspection job failed" in r.getMessage() and r.exc_info and "ev-1" in str(r.exc_info[1])
        for r in caplog.records
    )
    assert fake_units.opened == []  # nothing recorded: run_pending retries the row later


def _checkpoints(app: Flask) -> list[int]:
    with parts(app).unit_of_work() as uow:
        return list(uow.session.scalars(select(Checkpoint.size).order_by(Checkpoint.size)))


def _log_size(app: Flask) -> int:
    with parts(app).unit_of_work() as uow:
        return log_size(uow.session)


def test_checkpoints_are_signed_in_the_background_not_inside_requests(
    world: World, fresh_app: Callable[..., Flask]
) -> None:
    open_case(world, "黔市监罚〔2025〕9号")  # the log grows past the latest checkpoint
    before = _checkpoints(world.app)
    size = _log_size(world.app)
    assert size > 0 and (not before or before[-1] < size)
    for _ in range(3):  # requests never sign one (they used to, after the response)
        assert world.as_("a_admin").get("/me").status_code == 200
    assert _checkpoints(world.app) == before

    app = fresh_app(checkpoint_seconds=1)
    _wait_for(lambda: bool(_checkpoints(app)) and _checkpoints(app)[-1] == size)
    with parts(app).unit_of_work() as uow:
        assert uow.session.scalar(select(func.count(Checkpoint.size))) == len(before) + 1


def test_the_checkpointer_commits_one_checkpoint_when_due_and_rolls_back_when_signing_fails(
    fake_units: FakeUnits,
) -> None:
    with fake_units() as uow:  # the log grows: a case is opened
        agency = users.create_agency(uow, "A-AGENCY", "测试机关")
        admin = users.add_user(uow, agency.id, users.NewUser("a-admin", "Admin", Role.ADMIN))
        principal = Principal(admin.id, agency.id, Role.ADMIN, "test")
        cases.create_case(uow, principal, cases.NewCase("penalty", "黔市监罚〔2026〕5号", "案"))
        uow.commit()
        grown = log_size(uow.session)
    assert grown > 0
    signer = note_signer(Ed25519PrivateKey.generate(), "casetrail.test/log")

    def unavailable() -> NoteSigner:
        raise OSError("signing key unreadable")

    with pytest.raises(OSError, match="unreadable"):
        Checkpointer(fake_units, unavailable, max_age=timedelta(0)).run_once()
    failed = fake_units.opened[-1]
    assert (failed.commits, failed.rollbacks) == (0, 1)

    checkpointer = Checkpointer(fake_units, lambda: signer, max_age=timedelta(0))
    assert checkpointer.run_once() is True
    assert (fake_units.opened[-1].commits, fake_units.opened[-1].rollbacks) == (1, 0)
    assert checkpointer.run_once() is False  # the log did not grow since
    with fake_units() as uow:
        assert list(uow.session.scalars(select(Checkpoint.size))) == [grown]
