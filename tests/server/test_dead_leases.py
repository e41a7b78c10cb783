"""After a crash, a restarted server releases the upload leases it can prove dead."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import update

from server.db import make_engine
from server.models import Upload, utcnow
from tests.server.e2e_support import field_device
from tests.support.server_process import ServerProcess


def _gone_pid() -> int:
    """The pid of a process of this host that has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_restarted_server_releases_leases_of_gone_processes(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "var").start(init=True)
    try:
        device = field_device(server)
        data = os.urandom(50_000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        [evidence] = device.announce([("a.bin", len(data), digest, "application/octet-stream")])
        tus = {"Authorization": f"Bearer {device.token}", "Tus-Resumable": "1.0.0"}
        meta = "evidence_id " + base64.b64encode(evidence["evidence_id"].encode()).decode()
        created = httpx.post(
            server.url + "/api/v1/uploads",
            headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
        )
        location = created.headers["Location"]
        # a request of a server process on this host held the lease for another hour when
        # that process was killed (kill -9): nothing released it
        engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'casetrail.db'}")
        with engine.begin() as conn:
            conn.execute(
                update(Upload).values(
                    lock_owner=f"{socket.gethostname()}:{_gone_pid()}:0123456789ab",
                    lock_expires_at=utcnow() + timedelta(hours=1),
                )
            )
        engine.dispose()
        patch = {**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
        held = httpx.patch(location, headers=patch, content=data)
        assert held.status_code == 423 and int(held.headers["Retry-After"]) > 0
        server.stop()
        server.start()
        resumed = httpx.patch(location, headers=patch, content=data)
        assert resumed.status_code == 204, resumed.text
        assert int(resumed.headers["Upload-Offset"]) == len(data)
        assert "CaseTrail-Receipt" in resumed.headers
    finally:
        server.stop()
