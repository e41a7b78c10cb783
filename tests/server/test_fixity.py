"""The fixity sweep: re-reads originals, records fixity_ok / fixity_failed, resumes, throttles."""

from __future__ import annotations

import json
import time

import pytest

from server.services.fixity import FixitySweeper
from tests.server.conftest import World, parts
from tests.server.maintenance_support import object_path, run_cli, send, storage_key
from tests.server.manifest_support import event_types


def sweeper(world: World, **kw: object) -> FixitySweeper:
    components = parts(world.app)
    return FixitySweeper(components.unit_of_work, components.store, **kw)  # type: ignore[arg-type]


def flip_a_byte(world: World, evidence_id: str, at: int = 1000) -> None:
    path = object_path(world, storage_key(world, evidence_id))
    path.chmod(0o644)
    with path.open("r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x01]))


def test_intact_originals_get_fixity_ok_events(world: World) -> None:
    sent = [send(world, 200_000 + n) for n in range(3)]
    report = sweeper(world).run()
    assert [o.status for o in report.outcomes] == ["ok"] * 3 and report.exit_code == 0
    assert report.bytes_read == sum(len(s.data) for s in sent)
    for s in sent:
        assert event_types(world.as_("a_reviewer"), s.case_id).count("fixity_ok") == 1


def test_an_object_corrupted_behind_our_back_is_caught_and_left_in_place(world: World) -> None:
    good, bad = send(world), send(world)
    flip_a_byte(world, bad.evidence_id)
    report = sweeper(world, full=True).run()  # --full: the recorded SHA-512 too
    by_id = {o.evidence_id: o for o in report.outcomes}
    assert by_id[good.evidence_id].status == "ok"
    failed = by_id[bad.evidence_id]
    assert failed.status == "failed" and report.exit_code == 2
    assert any("SHA-256" in p for p in failed.problems)
    assert any("SHA-512" in p for p in failed.problems)
    assert object_path(world, failed.storage_key).exists()  # never moved or rewritten
    assert event_types(world.as_("a_reviewer"), bad.case_id).count("fixity_failed") == 1
    assert event_types(world.as_("a_reviewer"), good.case_id).count("fixity_failed") == 0


def test_a_missing_object_fails_the_sweep(world: World) -> None:
    gone = send(world)
    object_path(world, storage_key(world, gone.evidence_id)).unlink()
    report = sweeper(world).run()
    assert [o.status for o in report.outcomes] == ["missing"] and report.exit_code == 2


def test_a_killed_sweep_resumes_after_the_last_checked_original(world: World) -> None:
    sent = [send(world) for _ in range(4)]

    def die_after_two(done: int, total: int, read: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweeper(world, progress=die_after_two).run()
    resumed = sweeper(world).run()
    assert resumed.resumed and len(resumed.outcomes) == 2
    for s in sent:  # every original checked exactly once across the two runs
        assert event_types(world.as_("a_reviewer"), s.case_id).count("fixity_ok") == 1
    fresh = sweeper(world).run()  # the finished sweep is not resumed again
    assert not fresh.resumed and len(fresh.outcomes) == 4


def test_case_scope_and_rate_throttle(world: World) -> None:
    one, other = send(world, 400_000), send(world, 400_000)
    begun = time.monotonic()
    report = sweeper(world, rate=250_000).run(one.case_id)
    elapsed = time.monotonic() - begun
    assert [o.evidence_id for o in report.outcomes] == [one.evidence_id]
    assert elapsed >= 1.4  # 400 kB at 250 kB/s
    assert event_types(world.as_("a_reviewer"), other.case_id).count("fixity_ok") == 0


def test_cli_fixity_json_and_exit_code(world: World) -> None:
    bad = send(world)
    flip_a_byte(world, bad.evidence_id)
    result = run_cli(world, "fixity", "--json")
    assert result.exit_code == 2, result.output
    body = json.loads(result.output)
    assert body["failed"] == 1 and body["outcomes"][0]["status"] == "failed"
    text = run_cli(world, "fixity", "--restart")
    assert text.exit_code == 2 and "未通过核验" in text.output and "FAILED" in text.output
