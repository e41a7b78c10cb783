"""A large upload to SeaweedFS killed while part puts are in flight, then resumed.

The server keeps two 16 MiB part puts going while it receives the next part. Killed
(``kill -9``) in the middle of that, it must come back offering an offset that is
whole parts it stored *and* recorded — never more — and the client resuming from there
must end with the original's SHA-256 in its receipt and in the store.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.services.receipts import decode_header
from storage.s3 import make_s3_client
from tests.server.e2e_support import field_device, s3_env
from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.seaweedfs

MIB = 1 << 20
PART = 16 * MIB  # the server's part size on S3


def _s3(seaweedfs: SeaweedFS) -> Any:
    return make_s3_client(seaweedfs.endpoint_url, ACCESS_KEY, SECRET_KEY, REGION)


def _stored_parts(seaweedfs: SeaweedFS, bucket: str) -> list[tuple[int, int]]:
    """(number, size) of every part of the one open upload in ``bucket``."""
    s3 = _s3(seaweedfs)
    [upload] = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    listed = s3.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return sorted({(p["PartNumber"], p["Size"]) for p in listed.get("Parts", [])})


@pytest.mark.slow
def test_kill_with_parts_in_flight_resumes_from_parts_stored_and_recorded(
    seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    env = s3_env(seaweedfs)
    bucket = env["CASETRAIL_STORAGE_URL"].split("//", 1)[1].split("/", 1)[0]
    # dies on the 71st MiB received: part 4 was handed over once part 2 was recorded, so
    # parts 1 and 2 are recorded, 3 and 4 are being put (or just done), part 5 is filling
    env.update(
        {
            "CASETRAIL_INSPECTION": "worker",
            "CASETRAIL_FAULT_POINT": "ingest.mid_part",
            "CASETRAIL_FAULT_SKIP": "70",
        }
    )
    server = ServerProcess(tmp_path / "var", workers=1, env=env).start(init=True)
    try:
        data = os.urandom(5 * PART + 12345)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        device = field_device(server)
        [evidence] = device.announce([("执法记录仪_0002.mp4", len(data), digest, "video/mp4")])
        meta = base64.b64encode(evidence["evidence_id"].encode()).decode()
        tus = {"Tus-Resumable": "1.0.0"}
        with device.client() as client:
            created = client.post(
                "/uploads",
                headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": f"evidence_id {meta}"},
            )  # fmt: skip
            assert created.status_code == 201, created.text
            location = created.headers["Location"]
            with pytest.raises(httpx.TransportError):  # the server dies mid-body
                client.patch(
                    location,
                    content=data,
                    headers={
                        **tus,
                        "Upload-Offset": "0",
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
        server.kill()
        del server.extra_env["CASETRAIL_FAULT_POINT"]
        server.start()

        with device.client() as client:
            head = client.head(location, headers=tus)
            assert head.status_code == 200, head.status_code
            offset = int(head.headers["Upload-Offset"])
            stored = _stored_parts(seaweedfs, bucket)
            # whole parts, in order, each stored — never bytes the store does not hold
            assert offset % PART == 0 and 2 * PART <= offset <= 4 * PART
            assert [n for n, _ in stored][: offset // PART] == list(range(1, offset // PART + 1))
            assert sum(size for _, size in stored) >= offset
            resumed = client.patch(
                location,
                content=data[offset:],
                headers={
                    **tus,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            assert resumed.status_code == 204, resumed.text
        receipt = decode_header(resumed.headers["CaseTrail-Receipt"])
        assert receipt["sha256"] == digest and receipt["size"] == len(data)
        s3 = _s3(seaweedfs)
        originals = s3.list_objects_v2(Bucket=bucket, Prefix="casetrail/originals/")["Contents"]
        [original] = [o["Key"] for o in originals]
        body = s3.get_object(Bucket=bucket, Key=original)["Body"].read()
        assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
    finally:
        server.stop()
