"""Helpers for the reconciler and fixity tests: stored and half-sent uploads over the test app."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from server.cli import main
from server.models import Evidence, Upload
from server.services.reconcile import Reconciler, ReconcileReport
from storage.local import LocalBlobStore
from tests.server.conftest import World, parts
from tests.server.ingest_support import Tus, announce, metadata, sync_runtime
from tests.server.manifest_support import cli_env


@dataclass
class Sent:
    """One announced file and what happened to its upload."""

    evidence_id: str
    case_id: str
    sha256: str
    data: bytes
    location: str | None
    tus: Tus
    status: int


def send(world: World, size: int = 300_000, *, part: int | None = None, expect: int = 201) -> Sent:
    """Announce a random file and upload it (only ``part`` bytes of it when given)."""
    sync_runtime(world.app)
    data = os.urandom(size)
    announced = announce(
        world, [("现场.bin", data, "application/octet-stream")], case_no=f"罚-{os.urandom(4).hex()}"
    )
    entry = announced.evidence[0]
    tus = Tus(world.app.test_client(), announced.device.token)
    body = data if part is None else data[:part]
    response = tus.create(len(data), metadata(evidence_id=entry["evidence_id"]), body=body)
    assert response.status_code == expect, (response.status_code, response.get_data()[:300])
    return Sent(
        entry["evidence_id"],
        announced.case["id"],
        entry["sha256"],
        data,
        response.headers.get("Location"),
        tus,
        response.status_code,
    )


def reconciler(world: World, **kw: object) -> Reconciler:
    """A reconciler over the test app's database and store (no grace period by default)."""
    components = parts(world.app)
    options: dict[str, object] = {"grace": timedelta(0), **kw}
    return Reconciler(components.unit_of_work, components.store, components.ingest, **options)  # type: ignore[arg-type]


def reconcile(world: World, **kw: object) -> ReconcileReport:
    return reconciler(world, **kw).run()


def object_path(world: World, key: str) -> Path:
    store = parts(world.app).store
    assert isinstance(store, LocalBlobStore)
    return store.root.joinpath(*key.split("/"))


def storage_key(world: World, evidence_id: str) -> str:
    with parts(world.app).unit_of_work() as uow:
        key = uow.session.scalar(select(Evidence.storage_key).where(Evidence.id == evidence_id))
    assert key
    return key


def upload_row(world: World, evidence_id: str) -> Upload:
    with parts(world.app).unit_of_work() as uow:
        row = uow.session.scalars(
            select(Upload).where(Upload.evidence_id == evidence_id).order_by(Upload.created_at)
        ).all()[-1]
        uow.session.expunge(row)
    return row


def store_listing(world: World) -> list[str]:
    return sorted(parts(world.app).store.list(""))


def run_cli(world: World, *args: str) -> Result:
    env = cli_env(world)
    env["CASETRAIL_STORAGE_URL"] = parts(world.app).settings.storage_url
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
