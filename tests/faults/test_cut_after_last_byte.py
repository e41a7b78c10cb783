"""A server process dies between an upload's last stored byte and its completion
(``ingest.after_last_part``) while another process of the same deployment keeps serving.

Found by the scale-out test (issue 18): HEAD on the other process answered 200 with
``Upload-Offset`` = ``Upload-Length`` and no receipt — its completion was skipped because
the dead process's lease was still held — so a tus client took the file for done and the
field client gave it up on ``GET …/receipt`` 404. Now: while a lease nobody can prove dead
is held (a process of another host) HEAD answers 423 with ``Retry-After``; a lease of a
gone process of this host is taken over, and the next request completes the upload.
"""

from __future__ import annotations

import os
import signal
import socket
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from tusclient.client import TusClient

from server.db import make_engine
from server.models import Upload, utcnow
from server.services.receipts import decode_header
from tests.faults.conftest import server_env
from tests.faults.nothing_lost import TUS, Scenario, check_nothing_lost
from tests.support.server_process import ServerProcess


def _set_lease(var: Path, upload_id: str, owner: str) -> str | None:
    """Give ``upload_id``'s lease (one hour more) to ``owner``; the owner it had."""
    engine = make_engine(f"sqlite:///{var / 'casetrail.db'}")
    try:
        with engine.begin() as conn:
            held = conn.scalar(select(Upload.lock_owner).where(Upload.id == upload_id))
            conn.execute(
                update(Upload)
                .where(Upload.id == upload_id)
                .values(lock_owner=owner, lock_expires_at=utcnow() + timedelta(hours=1))
            )
        return held
    finally:
        engine.dispose()


def test_an_upload_cut_after_its_last_byte_completes_on_another_process(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    var = tmp_path / "var"
    env = server_env("local", request)
    scenario = Scenario.start(ServerProcess(var, env=env))  # the process that stays up
    dying = ServerProcess(var, env={**env, "CASETRAIL_FAULT_POINT": "ingest.after_last_part"})
    dying.start()
    try:
        (upload,) = scenario.announce(300_000)
        location = scenario.create(upload)
        upload_id = location.rsplit("/", 1)[1]
        # its gunicorn master stopped: the killed worker is neither reaped nor replaced by
        # one whose start-up would release the dead lease (the window the cluster hit)
        assert dying.proc is not None
        os.kill(dying.proc.pid, signal.SIGSTOP)
        with pytest.raises(httpx.HTTPError):  # the worker dies with every byte durable
            httpx.patch(
                dying.url + location.removeprefix(scenario.server.url),
                content=upload.data,
                headers={
                    "Authorization": f"Bearer {scenario.device.token}",
                    **TUS,
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                },
                timeout=60,
            )

        # a process of another host may still be completing it: "retry", not "all there"
        dead = _set_lease(var, upload_id, "elsewhere.example:4242:0123456789ab")
        assert dead is not None and dead.startswith(f"{socket.gethostname()}:")
        held = scenario.head(upload)
        assert held.status_code == 423, held.headers
        assert int(held.headers["Retry-After"]) > 0
        assert upload.receipt is None

        # the lease is the dead worker's: tuspy resumes on the other process and the
        # upload completes there, receipt and all
        _set_lease(var, upload_id, dead)
        auth = {"Authorization": f"Bearer {scenario.device.token}"}
        original = tmp_path / "现场.bin"
        original.write_bytes(upload.data)
        with original.open("rb") as stream:
            tus = TusClient(scenario.server.url + "/api/v1/uploads", headers=auth)
            uploader = tus.uploader(file_stream=stream, url=location)
            assert uploader.offset == len(upload.data)  # HEAD: every byte, and stored now
            uploader.upload()
        with scenario.client() as http:
            fetched = http.get(f"/api/v1/evidence/{upload.evidence_id}/receipt")
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["sha256"] == upload.sha256
        head = scenario.head(upload)
        assert head.status_code == 200
        assert decode_header(head.headers["CaseTrail-Receipt"])["sha256"] == upload.sha256
        assert upload.receipt is not None

        dying.kill()
        assert check_nothing_lost(scenario) == []
        assert scenario.reports[0]["counts"] == {}  # nothing was left for the reconciler
    finally:
        dying.kill()
        scenario.server.stop()
