"""The reconciler: repairs what a crash left, quarantines orphans, flags evidence at risk.

Every test also runs the reconciler a second time and asserts it changes nothing.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from server.models import Upload, utcnow
from server.services.ingest import Ingest
from server.services.reconcile import Kind
from storage.hashing import read_blocks
from storage.keys import export_recipe_key, original_key
from tests.server.archive_support import Capture, ingest_case
from tests.server.conftest import World, parts, snapshot
from tests.server.ingest_support import Tus, announce, metadata, receipt_of, sync_runtime
from tests.server.maintenance_support import (
    object_path,
    reconcile,
    reconciler,
    run_cli,
    send,
    storage_key,
    store_listing,
    upload_row,
)
from tests.server.manifest_support import event_types

PDF = ("现场检查笔录.pdf", b"%PDF-1.4\n" + b"x" * 5000, "application/pdf")


def kinds(report: object) -> list[str]:
    return [f.kind.value for f in report.findings]  # type: ignore[attr-defined]


def assert_second_run_changes_nothing(world: World) -> None:
    before = (snapshot(parts(world.app).engine), store_listing(world))
    again = reconcile(world)
    assert again.changes == 0, again.to_json()
    assert (snapshot(parts(world.app).engine), store_listing(world)) == before


def test_a_clean_store_has_no_findings(world: World) -> None:
    stored = send(world)
    assert stored.status == 201
    report = reconcile(world)
    assert report.findings == () and report.exit_code == 0
    assert_second_run_changes_nothing(world)


def test_a_sealed_export_recipe_is_known_not_an_unknown_object(world: World) -> None:
    case_id = ingest_case(world, [Capture("site-inspection", "site-inspection-record", [PDF])])
    exported = world.as_("a_archivist").post(f"/cases/{case_id.case['id']}/export?format=tar")
    assert exported.status_code == 200, exported.get_json()
    recipe = export_recipe_key(exported.headers["CaseTrail-Export-Id"])
    assert recipe in store_listing(world)
    report = reconcile(world)
    assert report.findings == () and report.exit_code == 0, report.to_json()
    assert recipe in store_listing(world)  # untouched


def test_a_completion_cut_off_between_storage_and_commit_is_finished(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kw: object) -> None:
        raise RuntimeError("crash after the store completed, before the commit")

    pending = send(world, part=100_000)
    assert pending.location is not None
    monkeypatch.setattr(Ingest, "_commit_stored", crash)
    cut = pending.tus.patch(pending.location, 100_000, pending.data[100_000:])
    assert cut.status_code == 500
    monkeypatch.undo()
    row = upload_row(world, pending.evidence_id)
    assert row.status == "active" and row.offset == row.length
    assert parts(world.app).store.exists(original_key(pending.sha256))

    report = reconcile(world)
    assert kinds(report) == [Kind.INTERRUPTED_COMPLETION.value]
    assert report.findings[0].changed and report.exit_code == 0
    meta = world.as_("a_reviewer").get(f"/evidence/{pending.evidence_id}").get_json()
    assert meta["status"] == "stored" and meta["sha256"] == pending.sha256
    types = event_types(world.as_("a_reviewer"), pending.case_id)
    assert types.count("stored") == 1 and types.count("ingest_verified") == 1
    # the client that never got its answer now gets the signed receipt from HEAD
    tus_head = pending.tus.head(f"/api/v1/uploads/{row.id}")
    assert tus_head.status_code == 200 and receipt_of(tus_head)["sha256"] == pending.sha256
    assert_second_run_changes_nothing(world)


def test_an_expired_upload_is_ended_and_its_storage_upload_aborted(world: World) -> None:
    half = send(world, 300_000, part=100_000)
    row = upload_row(world, half.evidence_id)
    with parts(world.app).unit_of_work() as uow:
        uow.session.execute(
            update(Upload)
            .where(Upload.id == row.id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        uow.commit()
    store = parts(world.app).store
    assert [u.upload_id for u in store.list_incomplete_uploads("")] == [row.storage_upload_id]

    report = reconcile(world)
    assert kinds(report) == [Kind.EXPIRED_UPLOAD.value] and report.findings[0].changed
    assert store.list_incomplete_uploads("") == []
    assert half.location is not None
    assert half.tus.head(half.location).status_code in (404, 410)
    assert upload_row(world, half.evidence_id).status == "terminated"
    custody = world.as_("a_reviewer").get(f"/cases/{half.case_id}/custody?limit=500").get_json()
    ended = [i["event"] for i in custody["items"] if i["event"]["type"] == "upload_ended"]
    assert [(e["details"]["reason"], e["details"]["bytes_received"]) for e in ended] == [
        ("expired", 100_000)
    ]
    assert_second_run_changes_nothing(world)


def test_a_live_half_sent_upload_is_left_resumable(world: World) -> None:
    half = send(world, 300_000, part=120_000)
    report = reconcile(world)
    assert report.findings == ()
    assert half.location is not None
    head = half.tus.head(half.location)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "120000"
    done = half.tus.patch(half.location, 120_000, half.data[120_000:])
    assert done.status_code == 204 and receipt_of(done)["sha256"] == half.sha256


def test_an_upload_whose_stored_parts_vanished_is_ended_not_left_lying(world: World) -> None:
    half = send(world, 300_000, part=100_000)
    row = upload_row(world, half.evidence_id)
    assert row.storage_key and row.storage_upload_id
    parts(world.app).store.abort_upload(row.storage_key, row.storage_upload_id)  # behind our back
    report = reconcile(world)
    assert kinds(report) == [Kind.LOST_UPLOAD.value]
    assert half.location is not None
    assert half.tus.head(half.location).status_code in (404, 410)
    assert_second_run_changes_nothing(world)


def test_an_object_without_a_row_is_quarantined_never_deleted(world: World) -> None:
    send(world)
    store = parts(world.app).store
    stray = b"bytes nobody announced"
    import hashlib

    key = original_key("sha256:" + hashlib.sha256(stray).hexdigest())
    store.write(key, read_blocks(_Bytes(stray)))

    dry = reconcile(world, dry_run=True)
    assert kinds(dry) == [Kind.ORPHAN_OBJECT.value] and dry.changes == 0
    assert store.exists(key)

    report = reconcile(world)
    assert kinds(report) == [Kind.ORPHAN_OBJECT.value] and report.findings[0].changed
    assert not store.exists(key)
    moved = [k for k in store.list("quarantine/") if k.endswith(key)]
    assert len(moved) == 1 and b"".join(store.open(moved[0])) == stray
    note = moved[0].split("/")[1] + ".json"
    assert json.loads(b"".join(store.open("quarantine/" + note)))["key"] == key
    assert_second_run_changes_nothing(world)


def test_an_orphaned_storage_upload_is_aborted_only_after_the_grace_period(world: World) -> None:
    store = parts(world.app).store
    sid = store.start_upload(original_key("sha256:" + "ab" * 32))
    young = reconcile(world, grace=timedelta(hours=1))
    assert young.findings == () and [u.upload_id for u in store.list_incomplete_uploads("")] == [
        sid
    ]
    report = reconcile(world)
    assert kinds(report) == [Kind.ORPHAN_MULTIPART.value]
    assert store.list_incomplete_uploads("") == []
    assert_second_run_changes_nothing(world)


def test_a_row_without_its_object_is_flagged_loudly_once(world: World) -> None:
    stored = send(world)
    object_path(world, storage_key(world, stored.evidence_id)).unlink()  # lost behind our back

    report = reconcile(world)
    assert kinds(report) == [Kind.MISSING_OBJECT.value] and report.exit_code == 2
    assert "AT RISK" in report.findings[0].message and "证据面临风险" in report.findings[0].message
    types = event_types(world.as_("a_reviewer"), stored.case_id)
    assert types.count("fixity_failed") == 1

    again = reconcile(world)
    assert again.exit_code == 2 and again.changes == 0  # still loud, not a second event
    assert event_types(world.as_("a_reviewer"), stored.case_id).count("fixity_failed") == 1


def test_cli_dry_run_changes_nothing_and_json_exit_codes(world: World) -> None:
    stored = send(world)
    object_path(world, storage_key(world, stored.evidence_id)).unlink()
    before = snapshot(parts(world.app).engine)
    dry = run_cli(world, "reconcile", "--dry-run", "--json")
    assert dry.exit_code == 2, dry.output
    body = json.loads(dry.output)
    assert body["dry_run"] is True and body["at_risk"] == 1 and body["changes"] == 0
    assert snapshot(parts(world.app).engine) == before

    text = run_cli(world, "reconcile")
    assert text.exit_code == 2
    assert "证据面临风险" in text.output and "AT RISK" in text.output


def test_cli_reconcile_clean_exits_zero(world: World) -> None:
    send(world)
    result = run_cli(world, "reconcile")
    assert result.exit_code == 0, result.output
    assert "对账完成" in result.output and "changes" in result.output


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, size: int = -1, /) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk, self._pos = self._data[self._pos : end], min(end, len(self._data))
        return chunk


def test_a_completion_adopting_an_old_orphan_keeps_its_parts_until_it_committed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending = send(world, part=299_999)
    assert pending.location is not None
    store = parts(world.app).store
    key = original_key(pending.sha256)
    store.write(key, [pending.data])  # an old orphan: the same bytes, no row
    commit = Ingest._commit_stored

    def reconciler_acts_first(self: Ingest, *args: object, **kwargs: object) -> object:
        # the reconciler found no row for the orphan (before this upload existed) and
        # moves it away now: after the completion adopted it, before the commit
        store.quarantine(key, "reconciler: 原始对象无证据记录 (original without a row)")
        return commit(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Ingest, "_commit_stored", reconciler_acts_first)
    done = pending.tus.patch(pending.location, 299_999, pending.data[299_999:])
    assert done.status_code == 204 and receipt_of(done)["sha256"] == pending.sha256
    monkeypatch.undo()
    content = world.as_("a_reviewer").get(f"/evidence/{pending.evidence_id}/content")
    assert content.status_code == 200 and content.data == pending.data
    assert store.list_incomplete_uploads("") == []  # our parts went into the key, none left
    report = reconcile(world)
    assert report.exit_code == 0 and Kind.MISSING_OBJECT.value not in kinds(report)


def test_an_orphan_adopted_while_the_reconciler_moves_it_is_put_back(world: World) -> None:
    sync_runtime(world.app)
    data = os.urandom(50_000)
    announced = announce(world, [("现场.bin", data, "application/octet-stream")])
    sha = announced.evidence[0]["sha256"]
    store = parts(world.app).store
    key = original_key(sha)
    store.write(key, [data])  # an old orphan: the same bytes, no row yet
    tus = Tus(world.app.test_client(), announced.device.token)
    meta = metadata(evidence_id=announced.evidence[0]["evidence_id"])
    move = store.quarantine
    answers = []

    def completion_commits_first(key: str, reason: str) -> str:
        # after the reconciler's "no row refers to it" check, a whole-file upload adopts
        # the orphan and commits; then the reconciler's move goes ahead
        answers.append(tus.create(len(data), meta, body=data))
        return move(key, reason)

    checker = reconciler(world)
    checker.store = SimpleNamespace(  # type: ignore[assignment]
        quarantine=completion_commits_first, write=store.write, open=store.open
    )
    assert checker._quarantine(key, "原始对象无证据记录 (original without a row)") is None
    assert [a.status_code for a in answers] == [201]
    content = world.as_("a_reviewer").get(
        f"/evidence/{announced.evidence[0]['evidence_id']}/content"
    )
    assert content.status_code == 200 and content.data == data
    assert len([k for k in store.list("quarantine/") if k.endswith(key)]) == 1  # kept, noted
