"""Health reports each part; a unit of work rolls back unless committed and cleans up."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from server.app import create_app
from server.models import Agency
from server.services.unit_of_work import SqlUnitOfWork
from server.settings import Settings
from storage.errors import Unavailable
from tests.server.conftest import parts
from tests.support.fake_uow import FakeUnits


class StoppedStore:
    """A blob store whose backend is down."""

    def ping(self) -> None:
        raise Unavailable("connection refused")


def test_health_is_ok_on_a_working_setup_without_a_token(app: Flask) -> None:
    body = app.test_client().get("/api/v1/health").get_json()
    assert body["status"] == "ok" and body["database"]["ok"] and body["storage"]["ok"]
    assert "version" not in body  # shown only with a token (tests/server/test_api_hardening.py)


def test_health_is_503_naming_the_part_that_is_down(settings: Settings) -> None:
    app = create_app(settings, store=StoppedStore())
    try:
        response = app.test_client().get("/api/v1/health")
        body = response.get_json()
        assert response.status_code == 503
        assert body["status"] == "degraded" and body["database"]["ok"]
        assert not body["storage"]["ok"] and "存储不可达" in body["storage"]["detail"]
    finally:
        parts(app).engine.dispose()


def test_a_database_that_is_down_is_503(tmp_path) -> None:
    settings = Settings.for_data_dir(tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none")
    app = create_app(settings)
    response = app.test_client().get("/api/v1/health")
    assert response.status_code == 503 and not response.get_json()["database"]["ok"]


def agencies(units: FakeUnits) -> int:
    with units.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Agency)) or 0


def test_a_unit_of_work_rolls_back_unless_committed_and_runs_cleanups(
    fake_units: FakeUnits,
) -> None:
    cleaned: list[str] = []
    factory = fake_units.session_factory
    with SqlUnitOfWork(factory) as uow:
        uow.session.add(Agency(code="forgotten", name="x"))
        uow.on_rollback(lambda: cleaned.append("blob removed"))
    assert agencies(fake_units) == 0 and cleaned == ["blob removed"]

    try:
        with SqlUnitOfWork(factory) as uow:
            uow.session.add(Agency(code="failed", name="x"))
            uow.on_rollback(lambda: cleaned.append("again"))
            raise RuntimeError("use case failed")
    except RuntimeError:
        pass
    assert agencies(fake_units) == 0 and cleaned == ["blob removed", "again"]

    with SqlUnitOfWork(factory) as uow:
        uow.session.add(Agency(code="kept", name="x"))
        uow.on_rollback(lambda: cleaned.append("must not run"))
        uow.commit()
    assert agencies(fake_units) == 1 and "must not run" not in cleaned


def test_a_failing_cleanup_is_logged_and_never_hides_the_use_case_error(
    fake_units: FakeUnits, caplog: pytest.LogCaptureFixture
) -> None:
    cleaned: list[str] = []

    def broken_cleanup() -> None:
        raise OSError("object store unreachable")

    with (
        pytest.raises(RuntimeError, match="use case failed"),
        SqlUnitOfWork(fake_units.session_factory) as uow,
    ):
        uow.session.add(Agency(code="failed", name="x"))
        uow.on_rollback(lambda: cleaned.append("first blob removed"))
        uow.on_rollback(broken_cleanup)
        uow.on_rollback(lambda: cleaned.append("last blob removed"))
        raise RuntimeError("use case failed")
    assert agencies(fake_units) == 0
    assert cleaned == ["last blob removed", "first blob removed"]  # the others still ran
    assert "object store unreachable" in caplog.text
