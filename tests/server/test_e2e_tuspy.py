"""Acceptance: tuspy (a third-party tus client) against a real `casetrail serve`, killed half-way.

A 50 MiB real video (ffmpeg test source, high bitrate) goes up in 5 MiB chunks with
SHA-1 checksums. Past 40 % the server process group is SIGKILLed while a chunk is in
flight, restarted on the same data, and tuspy resumes from the offset the server reports.
The stored evidence has the device's SHA-256, its custody chain verifies, and the receipt's
inclusion proof verifies against the signed checkpoint. Runs on SQLite + local store and
on SQLite + SeaweedFS.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from pathlib import Path

import httpx
import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.storage.filestorage import FileStorage

from core.custody import CustodyEvent, verify_case_chain
from server.services.receipts import decode_header, receipt_problems
from tests.server.e2e_support import field_device, make_video, s3_env, sha256_file
from tests.support.server_process import ServerProcess

CHUNK = 5 * 1024 * 1024


@pytest.fixture(scope="session")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_video(tmp_path_factory.mktemp("media") / "执法记录仪_0001.mp4")
    assert path.stat().st_size >= 48 * 1024 * 1024
    return path


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "seaweedfs"])
def test_tuspy_upload_survives_a_server_kill_and_verifies(
    backend: str, video: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {"CASETRAIL_INSPECTION": "thread"}
    if backend == "seaweedfs":
        env.update(s3_env(request.getfixturevalue("seaweedfs")))
    server = ServerProcess(tmp_path / "var", workers=2, env=env).start(init=True)
    try:
        device = field_device(server)
        size, digest = video.stat().st_size, sha256_file(video)
        [evidence] = device.announce([(video.name, size, digest, "video/mp4")])

        def uploader() -> object:
            client = TusClient(
                server.url + "/api/v1/uploads", headers={"Authorization": f"Bearer {device.token}"}
            )
            return client.uploader(
                str(video),
                chunk_size=CHUNK,
                metadata={"evidence_id": evidence["evidence_id"], "filename": video.name},
                upload_checksum=True,
                store_url=True,
                url_storage=FileStorage(str(tmp_path / "tus-urls.json")),
            )

        first = uploader()
        while first.offset < size * 0.4:  # type: ignore[attr-defined]
            first.upload_chunk()  # type: ignore[attr-defined]
        in_flight = threading.Thread(target=_quietly, args=(first.upload_chunk,))  # type: ignore[attr-defined]
        in_flight.start()
        server.kill()  # SIGKILL the whole gunicorn group while the chunk is streaming
        in_flight.join(30)
        server.start()

        second = uploader()  # finds the stored URL and asks the server (HEAD) for the offset
        resumed_at = second.offset  # type: ignore[attr-defined]
        assert size * 0.4 - CHUNK <= resumed_at <= size
        second.upload()  # type: ignore[attr-defined]
        receipt = decode_header(second.request.response_headers["casetrail-receipt"])  # type: ignore[attr-defined]
        assert receipt["sha256"] == digest and receipt["size"] == size

        with device.client() as api:
            key = api.get("/log/public-key").json()
            verifier = key.get("verifier_key") or key.get("key")
            assert receipt_problems(receipt, verifier) == []
            meta = api.get(f"/evidence/{evidence['evidence_id']}").json()
            assert meta["status"] == "stored" and meta["sha256"] == digest
            events = api.get(f"/cases/{device.case_id}/custody?limit=500").json()["items"]
            chain = [CustodyEvent.from_json(item["event"]) for item in events]
            assert verify_case_chain(chain, device.case_id) == []
            types = [e.type.value for e in chain]
            assert types.count("stored") == 1 and types.count("ingest_verified") == 1
            hasher = hashlib.sha256()
            with api.stream("GET", f"/evidence/{evidence['evidence_id']}/content") as response:
                assert response.status_code == 200
                for block in response.iter_bytes(1 << 20):
                    hasher.update(block)
            assert "sha256:" + hasher.hexdigest() == digest
    finally:
        server.stop()


def _quietly(fn: object) -> None:
    with contextlib.suppress(TusCommunicationError, TusUploadFailed, httpx.HTTPError, OSError):
        fn()  # type: ignore[operator]
