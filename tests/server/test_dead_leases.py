"""Upload leases of gone processes: taken over by the next request at once, released by a
restarted server; another host's lease only its expiry ends."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from server.db import make_engine
from server.models import Upload, utcnow
from tests.server.e2e_support import field_device
from tests.support.server_process import ServerProcess

PATCH = {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}


def _gone_pid() -> int:
    """The pid of a process of this host that has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_leases_of_gone_processes_are_taken_over_and_released_at_restart(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "var").start(init=True)
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'casetrail.db'}")
    try:
        device = field_device(server)
        datas = [os.urandom(50_000 + i) for i in range(3)]
        entries = device.announce(
            [
                (f"{i}.bin", len(d), "sha256:" + hashlib.sha256(d).hexdigest(), "video/mp4")
                for i, d in enumerate(datas)
            ]
        )
        tus = {"Authorization": f"Bearer {device.token}", "Tus-Resumable": "1.0.0"}
        locations = []
        for entry, data in zip(entries, datas, strict=True):
            meta = "evidence_id " + base64.b64encode(entry["evidence_id"].encode()).decode()
            created = httpx.post(
                server.url + "/api/v1/uploads",
                headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
            )
            locations.append(created.headers["Location"])
        ids = [loc.rsplit("/", 1)[1] for loc in locations]
        # requests of server processes held each lease for another hour when their process
        # was killed (kill -9): a process of this host, another host's, this host's again
        owners = [
            f"{socket.gethostname()}:{_gone_pid()}:0123456789ab",
            "elsewhere.example:4242:0123456789ab",
            f"{socket.gethostname()}:{_gone_pid()}:ba9876543210",
        ]
        with engine.begin() as conn:
            for upload_id, owner in zip(ids, owners, strict=True):
                conn.execute(
                    update(Upload)
                    .where(Upload.id == upload_id)
                    .values(lock_owner=owner, lock_expires_at=utcnow() + timedelta(hours=1))
                )

        taken = httpx.patch(locations[0], headers={**tus, **PATCH}, content=datas[0])
        assert taken.status_code == 204, taken.text  # at once, not after the hour
        assert int(taken.headers["Upload-Offset"]) == len(datas[0])
        assert "CaseTrail-Receipt" in taken.headers
        held = httpx.patch(locations[1], headers={**tus, **PATCH}, content=datas[1])
        assert held.status_code == 423 and int(held.headers["Retry-After"]) > 0

        server.stop()
        server.start()  # releases the gone process's lease of this host before any request
        with engine.connect() as conn:
            leases = dict(
                conn.execute(select(Upload.id, Upload.lock_owner).where(Upload.id.in_(ids))).all()
            )
        assert leases == {ids[0]: None, ids[1]: owners[1], ids[2]: None}
        resumed = httpx.patch(locations[2], headers={**tus, **PATCH}, content=datas[2])
        assert resumed.status_code == 204, resumed.text
        assert "CaseTrail-Receipt" in resumed.headers
    finally:
        engine.dispose()
        server.stop()
