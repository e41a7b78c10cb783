"""Helpers for the archive tests and the B7 benchmark: real cases with stored evidence.

* :func:`ingest_case` goes the whole way a device goes: signed manifests registered over
  the API, every file uploaded through the tus endpoint (creation-with-upload).
* :func:`seed_large_case` builds a case through the services and streams large
  generated originals straight into the blob store (what ingest stores, without pushing
  gigabytes through a test client) — for memory tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.custody import EventType, ObjectRef
from core.keys import export_public_key, generate_private_key, key_id
from core.manifest import CaptureManifest as Manifest
from core.manifest import ManifestFile, sign_manifest
from server.auth import Principal
from server.components import Components
from server.models import Case, Evidence, EvidenceStatus, Role, User, utcnow
from server.services import cases, devices, manifests, users
from server.services.custody import record_custody
from storage.hashing import Digester, digest_blocks, read_blocks
from storage.keys import original_key

MiB = 1 << 20

FileSpec = tuple[str, bytes, str]
"""(client file name, content, media type)."""


@dataclass
class Capture:
    """One capture: stage, record type and its files."""

    stage: str
    record_type: str
    files: list[FileSpec]


@dataclass
class IngestedCase:
    """A case with every file ingested, as the archivist sees it."""

    case: dict[str, Any]
    device: Any
    manifests: list[dict[str, Any]]


def ingest_case(
    world: Any,
    captures: list[Capture],
    *,
    case_no: str = "黔市监罚〔2026〕8号",
    device_time: str | None = None,
) -> IngestedCase:
    """Open a case, enrol a device, register each capture's signed manifest and upload its files."""
    from tests.server.ingest_support import Tus, metadata, sync_runtime
    from tests.server.manifest_support import enrol, file_entry, open_case

    sync_runtime(world.app)
    case = open_case(world, case_no)
    device = enrol(world, "a_insp1")
    tus = Tus(world.app.test_client(), device.token)
    wires = []
    for capture in captures:
        wire = device.manifest(
            case_no,
            stage=capture.stage,
            record_type=capture.record_type,
            files=tuple(file_entry(n, d, t) for n, d, t in capture.files),
            **({"device_time": device_time} if device_time else {}),
        )
        registered = device.api.post("/manifests", wire)
        assert registered.status_code == 201, registered.get_json()
        for announced, (_, data, _) in zip(
            registered.get_json()["files"], capture.files, strict=True
        ):
            created = tus.create(
                len(data), metadata(evidence_id=announced["evidence_id"]), body=data
            )
            assert created.status_code == 201, created.get_json()
            assert int(created.headers["Upload-Offset"]) == len(data)
        wires.append(wire)
    return IngestedCase(case, device, wires)


def extract_tar(data: bytes, into: Path) -> Path:
    """Unpack a bag tar (safely) and return the bag directory."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tops = {m.name.split("/")[0] for m in tar.getmembers()}
        assert len(tops) == 1, tops
        tar.extractall(into, filter="data")
    return into / tops.pop()


# --------------------------------------------------------------------------- large cases


def pattern(size: int, seed: int) -> Iterator[bytes]:
    """``size`` deterministic pseudo-random bytes in 1 MiB blocks (cheap to make)."""
    block = hashlib.sha512(str(seed).encode()).digest() * (MiB // 64)
    for n, at in enumerate(range(0, size, MiB)):
        head = n.to_bytes(8, "big")
        yield (head + block[8:])[: min(MiB, size - at)]


class _Reader:
    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._rest = b""

    def read(self, size: int = -1, /) -> bytes:
        if not self._rest:
            self._rest = next(self._blocks, b"")
        out, self._rest = self._rest[:size], self._rest[size:]
        return out


def _digests(size: int, seed: int) -> Digester:
    return digest_blocks(pattern(size, seed), sha512=False, blake3=True)


@dataclass
class SeededCase:
    """A case made by :func:`seed_large_case`: its id and the archivist's username."""

    case_id: str
    archivist: str
    total_bytes: int
    storage_keys: list[str]


def seed_large_case(
    parts: Components,
    sizes: list[int],
    *,
    agency_code: str = "BENCH",
    case_no: str = "黔市监罚〔2026〕99号",
) -> SeededCase:
    """A penalty case of a new agency whose one capture holds generated videos of ``sizes``."""
    with parts.unit_of_work() as uow:
        agency = users.create_agency(uow, agency_code, "贵阳市市场监督管理局")
        made = {}
        for name, role, cert in (
            ("admin", Role.ADMIN, None),
            ("insp1", Role.INSPECTOR, "52000001"),
            ("insp2", Role.INSPECTOR, "52000002"),
            ("archivist", Role.ARCHIVIST, None),
        ):
            made[name] = users.add_user(
                uow,
                agency.id,
                users.NewUser(f"{agency_code.lower()}-{name}", name.title(), role, cert),
            )
        uow.commit()
    admin = Principal(made["admin"].id, agency.id, Role.ADMIN, "seed")
    key = generate_private_key("Ed25519")
    with parts.unit_of_work() as uow:
        owner = uow.session.get(User, made["insp1"].id)
        assert owner is not None
        registered = devices.add_device(uow, owner, "执法记录仪")
        uow.commit()
    with parts.unit_of_work() as uow:
        enrolled = devices.enrol_device(
            uow, registered.enrolment_code, "Ed25519", export_public_key(key.public_key())
        )
        device_id = enrolled.device.id
        uow.commit()
    with parts.unit_of_work() as uow:
        case = cases.create_case(
            uow,
            admin,
            cases.NewCase(
                "penalty", case_no, "大文件案件", officer_ids=(made["insp1"].id, made["insp2"].id)
            ),
        )
        case_id = case.id
        uow.commit()
    digests = [_digests(size, i) for i, size in enumerate(sizes)]
    files = [
        ManifestFile(f"VID_{i:04d}.mp4", size, digests[i].sha256, "video/mp4")
        for i, size in enumerate(sizes)
    ]
    manifest = Manifest(
        manifest_id=f"m-seed-{case_id[:8]}",
        device_id=device_id,
        key_id=key_id(key.public_key()),
        alg="Ed25519",
        case_ref=case_no,
        category="penalty",
        stage="site-inspection",
        record_type="site-inspection-record",
        officers=("52000001", "52000002"),
        device_time="2026-03-03T09:30:00+08:00",
        gnss_time=None,
        timezone="Asia/Shanghai",
        location=None,
        files=tuple(files),
        interruptions=(),
        av_reason=None,
        device_seq=1,
        device_prev=None,
        note=None,
    )
    device = Principal(made["insp1"].id, agency.id, Role.INSPECTOR, "seed", device_id=device_id)
    with parts.unit_of_work() as uow:
        registration = manifests.register_manifest(
            uow, device, sign_manifest(manifest, key).to_json()
        )
        evidence_ids = [e.id for e in registration.files]
        uow.commit()
    keys = []
    for i, (evidence_id, f) in enumerate(zip(evidence_ids, files, strict=True)):
        stored_key = original_key(f.sha256)
        info = parts.store.write(
            stored_key, read_blocks(_Reader(pattern(f.size, i))), expected_sha256=f.sha256
        )
        keys.append(stored_key)
        with parts.unit_of_work() as uow:
            evidence = uow.session.get(Evidence, evidence_id)
            found = uow.session.get(Case, case_id)
            assert evidence is not None and found is not None
            evidence.status = EvidenceStatus.STORED.value
            evidence.storage_key = stored_key
            evidence.sha512 = info.sha512
            evidence.blake3 = digests[i].blake3  # as the inspection's read finds it
            evidence.received_at = utcnow()
            obj = ObjectRef(f.sha256, f.size)
            details = {"evidence_id": evidence_id, "storage_key": stored_key}
            record_custody(uow, found, EventType.INGEST_VERIFIED, device, details, object=obj)
            record_custody(uow, found, EventType.STORED, device, details, object=obj)
            uow.commit()
    return SeededCase(case_id, f"{agency_code.lower()}-archivist", sum(sizes), keys)
