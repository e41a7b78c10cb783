"""End-to-end helpers: a real server with users, a case, an enrolled device and manifests."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from core.keys import PrivateKey, export_public_key, generate_private_key, key_id
from core.manifest import CaptureManifest, ManifestFile, sign_manifest
from server.media import FFmpegTools
from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS
from tests.support.server_process import ServerProcess


def s3_env(seaweedfs: SeaweedFS) -> dict[str, str]:
    """Server settings for a fresh bucket on ``seaweedfs``."""
    bucket = f"e2e-{uuid.uuid4().hex[:10]}"
    boto3.client(
        "s3",
        endpoint_url=seaweedfs.endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    ).create_bucket(Bucket=bucket)
    return {
        "CASETRAIL_STORAGE_URL": f"s3://{bucket}/casetrail",
        "CASETRAIL_S3_ENDPOINT_URL": seaweedfs.endpoint_url,
        "CASETRAIL_S3_ACCESS_KEY": ACCESS_KEY,
        "CASETRAIL_S3_SECRET_KEY": SECRET_KEY,
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def make_video(path: Path, seconds: int = 9, bitrate: str = "48M") -> Path:
    """A real MPEG-4 video from ffmpeg's test source at a high constant bitrate."""
    ffmpeg = str(FFmpegTools.resolve().ffmpeg)
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
         "-t", str(seconds), "-c:v", "mpeg4", "-b:v", bitrate, "-minrate", bitrate,
         "-maxrate", bitrate, "-bufsize", "8M", "-pix_fmt", "yuv420p", str(path)],
        check=True,
        timeout=300,
    )  # fmt: skip
    return path


@dataclass
class FieldDevice:
    """An enrolled device of an inspector assigned to one case, over real HTTP."""

    server: ServerProcess
    token: str
    device_id: str
    key: PrivateKey
    case_no: str
    case_id: str
    officers: tuple[str, ...] = ("E00001", "E00002")
    seq: int = 0
    prev: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    last_manifest: CaptureManifest | None = None

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url + "/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )

    def announce(
        self,
        files: list[tuple[str, int, str, str]],
        *,
        stage: str = "site-inspection",
        record_type: str = "site-inspection-record",
    ) -> list[dict[str, Any]]:
        """Register a manifest of ``(name, size, sha256, media_type)``; the evidence entries."""
        self.seq += 1
        manifest = CaptureManifest(
            manifest_id=f"m-{uuid.uuid4().hex[:12]}",
            device_id=self.device_id,
            key_id=key_id(self.key.public_key()),
            alg="Ed25519",
            case_ref=self.case_no,
            category="penalty",
            stage=stage,
            record_type=record_type,
            officers=self.officers,
            device_time="2025-03-03T09:30:00+08:00",
            gnss_time=None,
            timezone="Asia/Shanghai",
            location=None,
            files=tuple(ManifestFile(*f) for f in files),
            interruptions=(),
            av_reason=None,
            device_seq=self.seq,
            device_prev=self.prev,
            note=None,
        )
        self.prev = manifest.manifest_hash()
        self.last_manifest = manifest
        with self.client() as client:
            response = client.post("/manifests", json=sign_manifest(manifest, self.key).to_json())
        assert response.status_code == 201, response.text
        files_out: list[dict[str, Any]] = response.json()["files"]
        return files_out

    def upload(self, evidence_id: str, data: bytes) -> None:
        """Upload a small announced file in one tus request (creation-with-upload)."""
        meta = base64.b64encode(evidence_id.encode()).decode()
        with self.client() as client:
            response = client.post(
                "/uploads",
                content=data,
                headers={
                    "Tus-Resumable": "1.0.0",
                    "Upload-Length": str(len(data)),
                    "Upload-Metadata": f"evidence_id {meta}",
                    "Content-Type": "application/offset+octet-stream",
                },
            )
        assert response.status_code == 201, response.text
        assert response.headers["Upload-Offset"] == str(len(data)), response.headers

    def file_records(self, *records: tuple[str, str]) -> None:
        """File one stored PDF per ``(stage, record type)`` on the case: each announced in a
        signed manifest and uploaded, as a device does (a record counts once stored)."""
        for stage, record_type in records:
            body = f"{self.case_no} {stage} {record_type}".encode()
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            entry = (f"{record_type}.pdf", len(body), digest, "application/pdf")
            [evidence] = self.announce([entry], stage=stage, record_type=record_type)
            self.upload(evidence["evidence_id"], body)


def field_device(server: ServerProcess, case_no: str = "黔市监罚〔2025〕99号") -> FieldDevice:
    """Two inspectors, a case with both assigned, a device of the first, enrolled."""
    tag = uuid.uuid4().hex[:6].upper()
    certs = (f"E{tag}1", f"E{tag}2")
    with server.admin() as admin:
        ids = []
        for n in (1, 2):
            r = admin.post(
                "/users",
                json={
                    "username": f"insp{n}-{uuid.uuid4().hex[:6]}",
                    "display_name": f"执法人员{n}",
                    "role": "inspector",
                    "cert_no": certs[n - 1],
                },
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        case = admin.post(
            "/cases",
            json={"category": "penalty", "case_no": case_no, "title": "端到端", "officer_ids": ids},
        )
        assert case.status_code == 201, case.text
    return enrol_field_device(server, ids[0], case_no, case.json()["id"], certs)


def enrol_field_device(
    server: ServerProcess,
    owner_id: str,
    case_no: str,
    case_id: str,
    officers: tuple[str, ...] = ("E00001", "E00002"),
) -> FieldDevice:
    """Register (as the first admin) and enrol a device of ``owner_id`` for one case."""
    with server.admin() as admin:
        registered = admin.post("/devices", json={"owner_user_id": owner_id, "name": "执法记录仪"})
        assert registered.status_code == 201, registered.text
    key = generate_private_key("Ed25519")
    enrolled = httpx.post(
        server.url + "/api/v1/devices/enrol",
        json={
            "enrolment_code": registered.json()["enrolment_code"],
            "alg": "Ed25519",
            "public_key": export_public_key(key.public_key()),
        },
        timeout=30,
    )
    assert enrolled.status_code == 201, enrolled.text
    body = enrolled.json()
    return FieldDevice(server, body["token"], body["device"]["id"], key, case_no, case_id, officers)
