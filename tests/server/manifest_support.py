"""Test helpers for D2's tests: enrolled devices that sign capture manifests, cases."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from core.keys import PrivateKey, export_public_key, generate_private_key, key_id
from core.manifest import CaptureManifest, ManifestFile, sign_manifest
from tests.server.conftest import Api, World, parts


@dataclass
class Device:
    """An enrolled device: its id, token, key, and the manifests it signed so far."""

    id: str
    token: str
    key: PrivateKey
    api: Api
    last_seq: int = 0
    last_hash: str | None = None
    signed: list[dict[str, Any]] = field(default_factory=list)

    def manifest(
        self, case_no: str, *, seq: int | None = None, link: bool = True, **over: Any
    ) -> dict[str, Any]:
        """A signed manifest (wire JSON) for ``case_no``; advances the local chain head."""
        seq = self.last_seq + 1 if seq is None else seq
        fields: dict[str, Any] = {
            "manifest_id": f"m-{self.id[:8]}-{seq}",
            "device_id": self.id,
            "key_id": key_id(self.key.public_key()),
            "alg": "Ed25519",
            "case_ref": case_no,
            "category": "penalty",
            "stage": "site-inspection",
            "record_type": "site-inspection-record",
            "officers": ("A00001", "A00002"),
            "device_time": "2025-03-03T09:30:00+08:00",
            "gnss_time": None,
            "timezone": "Asia/Shanghai",
            "location": None,
            "files": (file_entry("现场检查笔录.pdf", b"pdf bytes", "application/pdf"),),
            "interruptions": (),
            "av_reason": None,
            "device_seq": seq,
            "device_prev": self.last_hash if link else "sha256:" + "0" * 64,
            "note": None,
        }
        fields.update(over)
        m = CaptureManifest(**fields)
        self.last_seq, self.last_hash = seq, m.manifest_hash()
        wire = sign_manifest(m, self.key).to_json()
        self.signed.append(wire)
        return wire


def file_entry(name: str, data: bytes, media_type: str) -> ManifestFile:
    return ManifestFile(name, len(data), "sha256:" + hashlib.sha256(data).hexdigest(), media_type)


def enrol(world: World, owner: str, admin: str = "a_admin") -> Device:
    """Register (as ``admin``) and enrol a device owned by person ``owner``."""
    registered = world.as_(admin).post(
        "/devices", {"owner_user_id": world.people[owner].id, "name": f"{owner} 执法记录仪"}
    )
    assert registered.status_code == 201, registered.get_json()
    key = generate_private_key("Ed25519")
    enrolled = world.as_(None).post(
        "/devices/enrol",
        {
            "enrolment_code": registered.get_json()["enrolment_code"],
            "alg": "Ed25519",
            "public_key": export_public_key(key.public_key()),
        },
    )
    assert enrolled.status_code == 201, enrolled.get_json()
    body = enrolled.get_json()
    return Device(body["device"]["id"], body["token"], key, world.token_api(body["token"]))


def open_case(
    world: World,
    case_no: str,
    officers: tuple[str, ...] = ("a_insp1", "a_insp2"),
    category: str = "penalty",
) -> dict[str, Any]:
    """A case of agency A opened by its admin with ``officers`` assigned."""
    response = world.as_("a_admin").post(
        "/cases",
        {
            "category": category,
            "case_no": case_no,
            "title": f"案件 {case_no}",
            "officer_ids": [world.people[o].id for o in officers],
        },
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def event_types(api: Api, case_id: str) -> list[str]:
    """The custody event types of a case, in chain order."""
    page = api.get(f"/cases/{case_id}/custody?limit=500").get_json()
    return [item["event"]["type"] for item in page["items"]]


def cli_env(world: World) -> dict[str, str]:
    """Environment that points `casetrail` at the test app's database and log key."""
    settings = parts(world.app).settings
    return {
        "CASETRAIL_DATA_DIR": str(settings.data_dir),
        "CASETRAIL_DATABASE_URL": settings.database_url,
        "CASETRAIL_SIGNING_KEY_FILE": str(settings.signing_key_file),
    }
