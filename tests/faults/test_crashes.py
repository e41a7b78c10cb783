"""The server dies at each stage of an upload (kill -9 at a named fault point; SIGTERM).

Each case: one file is sent and acknowledged first, a second one meets the fault, the
server is restarted, the reconciler runs, and the four properties are checked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import PROFILE, server_env
from tests.faults.nothing_lost import Scenario, check_nothing_lost
from tests.support.server_process import ServerProcess

MIB = 1 << 20

# (fault point, CASETRAIL_FAULT_SKIP): the acknowledged file passes each point once (one
# block, one PATCH); the faulty file's 1 MiB PATCHes are one block each, so a skip of 2
# kills the server in its second PATCH, with its first MiB already durable.
# The killed process's upload lease is released by the restarted server itself at
# start-up (it can prove the owner gone: same host, no such process), before the
# reconciler runs — so the reconciler finds no stale lease left to release.
POINTS = [
    ("ingest.before_first_byte", 2, set()),
    ("ingest.mid_part", 2, set()),
    ("ingest.after_last_part", 1, {"interrupted_completion"}),
    ("ingest.after_store", 1, {"interrupted_completion"}),
    ("ingest.after_commit", 1, set()),  # committed: nothing left to repair
]


@pytest.mark.parametrize("backend", PROFILE.backends)
@pytest.mark.parametrize(("point", "skip", "repairs"), POINTS, ids=[p[0] for p in POINTS])
def test_kill_9_at_each_stage_of_an_upload(
    point: str,
    skip: int,
    repairs: set[str],
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    env = server_env(backend, request)
    env.update({"CASETRAIL_FAULT_POINT": point, "CASETRAIL_FAULT_SKIP": str(skip)})
    scenario = Scenario.start(ServerProcess(tmp_path / "var", workers=1, env=env))
    try:
        safe, hit = scenario.announce(PROFILE.small, 3 * MIB + 12345)
        scenario.send(safe, chunk=PROFILE.small)  # small: one block, no fault point passed twice
        scenario.try_send(hit)
        assert scenario.server.proc is not None
        time.sleep(0.2)
        assert hit.receipt is None, "the fault point was never reached"
        scenario.restart()
        assert check_nothing_lost(scenario) == []
        assert set(scenario.reports[0]["counts"]) == repairs  # what the reconciler repaired
        assert hit.receipt is not None and hit.receipt["sha256"] == hit.sha256
    finally:
        scenario.server.stop()


def _slow(data: bytes, pieces: int, pause: float) -> Iterator[bytes]:
    step = len(data) // pieces + 1
    for start in range(0, len(data), step):
        yield data[start : start + step]
        time.sleep(pause)


def test_sigterm_mid_upload(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    scenario = Scenario.start(ServerProcess(tmp_path / "var", env=server_env("local", request)))
    try:
        safe, hit = scenario.announce(200_000, 4 * MIB)
        scenario.send(safe)
        scenario.create(hit)
        outcome: list[int] = []

        def upload() -> None:
            try:
                outcome.append(scenario.patch(hit, 0, _slow(hit.data, 8, 0.25)).status_code)
            except Exception:
                outcome.append(0)

        sender = threading.Thread(target=upload)
        sender.start()
        time.sleep(0.6)
        scenario.server.stop()  # SIGTERM: gunicorn drains in-flight requests, then exits
        sender.join(60)
        scenario.server.start()
        assert outcome and (outcome[0] == 204) == (hit.receipt is not None)
        assert check_nothing_lost(scenario) == []
        assert hit.receipt is not None
    finally:
        scenario.server.stop()
