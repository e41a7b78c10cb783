"""The tag files of a case-file bag (案卷标签文件), each made from values the seal gathered.

In the order a seal makes them:

* :func:`payload_entries` — every stored original's bag path (``data/<NN>_<stage>/…``) and
  its payload entry (size, recorded SHA-256 / SHA-512, storage key);
* the tag files that do not depend on the log — payload manifests, ``verify.py``,
  ``case.json``, ``files.tsv``, the completeness report, the keys, the capture manifests
  (:func:`case_json`, :func:`files_tsv`, :func:`devices_json`, :func:`manifest_tags`);
* the custody tag files bound to one checkpoint — the case's events, one inclusion proof
  per event, the checkpoint note (:func:`custody_tags`);
* the bag's front — ``bagit.txt``, ``bag-info.txt`` and the guide (:func:`front_tags`).

Nothing here writes: the custody events and the database reads belong to
:mod:`server.archive.export`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import WorkingCalendar
from core.verify import FILES_TSV_COLUMNS, canonical_json, parse_json
from server.archive.bag import BAGIT_TXT, BagFormat, PayloadEntry, TagEntry, bag_info
from server.archive.guide import GuideFacts, render_guide
from server.archive.layout import FileToPlace, StageName, payload_paths, safe_name
from server.archive.originals import Original
from server.archive.recompute import calendar_json, facts_json
from server.models import Agency, CaptureManifest, Case, Device, StageChange, User
from server.services.clocks import china_date
from server.services.completeness import case_facts
from server.services.custody import StoredCheckpoint
from server.services.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class BagIdentity:
    """Who and what one export is, as plain values (usable after its unit of work ends)."""

    export_id: str
    format: BagFormat
    sealed_at: datetime
    case_id: str
    case_no: str
    title: str
    agency_name: str
    agency_code: str
    standard_ref: str
    """``<standard id>@<version>``."""
    category: str
    """The standard's names, ``<中文名> <English name>``."""
    log_origin: str
    log_key: str

    @property
    def base(self) -> str:
        """The bag's base directory (``<案号>_<Beijing date>_<export id prefix>``)."""
        return safe_name(
            f"{self.case_no}_{china_date(self.sealed_at):%Y%m%d}_{self.export_id[:8]}",
            fallback=self.export_id,
        )


def json_bytes(value: Any) -> bytes:
    """Indented, key-sorted UTF-8 JSON with a final newline (every JSON tag file)."""
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _tsv(value: object) -> str:
    return (
        str(value)
        .replace("%", "%25")
        .replace("\t", "%09")
        .replace("\r", "%0D")
        .replace("\n", "%0A")
    )


def _software_agent() -> str:
    try:
        version = metadata.version("casetrail")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        version = "dev"
    return f"CaseTrail {version}"


# --------------------------------------------------------------------------- payload


def payload_entries(
    originals: Sequence[Original], standard: Any
) -> tuple[dict[str, str], tuple[PayloadEntry, ...]]:
    """Bag paths by evidence id, and the payload entries in capture order."""
    stages = {s.id: StageName(s.id, s.name_zh, i) for i, s in enumerate(standard.stages, start=1)}
    record_types = {
        s.id: {
            **{r.id: (r.id, r.name_zh) for r in s.records},
            **{r.name_zh: (r.id, r.name_zh) for r in s.records},
        }
        for s in standard.stages
    }
    paths = payload_paths(
        [
            FileToPlace(
                o.evidence.id,
                str(o.wire["manifest"]["stage"]),
                str(o.wire["manifest"]["record_type"]),
                o.evidence.name,
            )
            for o in originals
        ],
        stages,
        record_types,
    )
    payload = tuple(
        PayloadEntry(
            paths[o.evidence.id],
            o.evidence.expected_size,
            o.evidence.expected_sha256,
            o.evidence.sha512 or "",
            o.evidence.storage_key or "",
            o.evidence.blake3,
        )
        for o in originals
    )
    return paths, payload


# --------------------------------------------------------------------------- case tag files


def case_json(
    uow: UnitOfWork,
    case: Case,
    agency: Agency,
    standard: Any,
    originals: Sequence[Original],
    paths: dict[str, str],
    calendar: WorkingCalendar,
) -> dict[str, Any]:
    """``casetrail/case.json``: the case, its stage history, its files and the facts and
    calendar its completeness was assessed with."""
    session = uow.session
    history = session.scalars(
        select(StageChange).where(StageChange.case_id == case.id).order_by(StageChange.id)
    )
    return {
        "schema": "casetrail.case-file/1",
        "completeness_facts": facts_json(case_facts(uow, case).facts),
        "agency_calendar": calendar_json(calendar),
        "case_id": case.id,
        "case_no": case.case_no,
        "title": case.title,
        "category": case.category,
        "standard": {
            "id": standard.id,
            "version": standard.version,
            "name_zh": standard.name_zh,
        },
        "agency": {"code": agency.code, "name": agency.name},
        "status": case.status,
        "current_stage": case.current_stage,
        "parties": case.parties,
        "created_at": case.created_at.isoformat(),
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "officers": [
            {"name": o.user.display_name, "cert_no": o.user.cert_no} for o in case.officers
        ],
        "stage_history": [
            {
                "from": h.from_stage,
                "to": h.to_stage,
                "out_of_order": h.out_of_order,
                "reason": h.reason,
                "changed_by": _user_name(session, h.changed_by),
                "changed_at": h.changed_at.isoformat(),
            }
            for h in history
        ],
        "files": [
            {
                "path": paths[o.evidence.id],
                "original_name": o.evidence.name,
                "evidence_id": o.evidence.id,
                "manifest_id": o.manifest.manifest_id,
                "received_at": o.evidence.received_at.isoformat()
                if o.evidence.received_at
                else None,
            }
            for o in originals
        ],
    }


def _user_name(session: Session, user_id: str) -> str:
    user = session.get(User, user_id)
    return user.display_name if user is not None else user_id


def files_tsv(originals: Sequence[Original], paths: dict[str, str]) -> bytes:
    """``casetrail/files.tsv``: one line per original (path, digests, size, type, capture)."""
    lines = ["\t".join(FILES_TSV_COLUMNS)]
    for o in originals:
        m = o.wire["manifest"]
        e = o.evidence
        row = (
            paths[e.id],
            e.expected_sha256,
            e.sha512 or "",
            e.expected_size,
            e.media_type or "",
            m["stage"],
            m["record_type"],
            "original",
            o.manifest.manifest_id,
            e.id,
        )
        lines.append("\t".join(_tsv(v) for v in row))
    return ("\n".join(lines) + "\n").encode("utf-8")


def devices_json(session: Session, originals: Sequence[Original]) -> list[dict[str, Any]]:
    """``casetrail/keys/devices.json``: the public keys of the devices that signed captures."""
    ids = sorted({o.manifest.device_id for o in originals})
    return [
        {
            "device_id": d.id,
            "name": d.name,
            "alg": d.key_alg,
            "public_key": d.public_key,
            "key_id": d.key_id,
        }
        for d in session.scalars(select(Device).where(Device.id.in_(ids)).order_by(Device.id))
    ]


def manifest_tags(session: Session, case: Case, originals: Sequence[Original]) -> list[TagEntry]:
    """``casetrail/manifests/<id>.json``: every signed capture manifest of the case — those
    of the bagged originals first, in capture order, then those with no stored file."""
    tags: list[TagEntry] = []
    seen: set[str] = set()
    for o in originals:
        if o.manifest.id in seen:
            continue
        seen.add(o.manifest.id)
        tags.append(_manifest_tag(o.manifest, o.wire))
    rows = session.scalars(
        select(CaptureManifest)
        .where(CaptureManifest.case_id == case.id)
        .order_by(CaptureManifest.received_at, CaptureManifest.id)
    )
    tags += [_manifest_tag(m, parse_json(m.signed_json)) for m in rows if m.id not in seen]
    return tags


def _manifest_tag(manifest: CaptureManifest, wire: dict[str, Any]) -> TagEntry:
    return TagEntry(
        f"casetrail/manifests/{safe_name(manifest.manifest_id)}.json", canonical_json(wire)
    )


def bound_tag_digests(early: Iterable[TagEntry]) -> list[TagEntry]:
    """The early tag files whose digests ``exported`` carries (not the capture manifests,
    which are signed by the devices, nor ``verify.py``, which the verifier brings)."""
    return [
        t
        for t in early
        if not t.path.startswith("casetrail/manifests/") and t.path != "casetrail/verify.py"
    ]


# --------------------------------------------------------------------------- custody


def custody_tags(
    events_jsonl: bytes, proofs: dict[str, dict[str, Any]], checkpoint: StoredCheckpoint
) -> list[TagEntry]:
    """``casetrail/custody/``: the case's events, their inclusion proofs, the checkpoint."""
    return [
        TagEntry("casetrail/custody/events.jsonl", events_jsonl),
        TagEntry(
            "casetrail/custody/proofs.json",
            json_bytes({"tree_size": checkpoint.size, "proofs": proofs}),
        ),
        TagEntry("casetrail/custody/checkpoint.txt", checkpoint.note.encode("utf-8")),
    ]


# --------------------------------------------------------------------------- front


def front_tags(
    bag: BagIdentity, oxum: str, checkpoint: StoredCheckpoint, exported_id: str, exported_at: str
) -> list[TagEntry]:
    """``bagit.txt``, ``bag-info.txt`` (bound to the checkpoint and ``exported``), the guide."""
    root_b64 = base64.b64encode(checkpoint.root).decode("ascii")
    info = bag_info(
        [
            ("Source-Organization", bag.agency_name),
            ("Organization-Address", bag.agency_code),
            ("External-Identifier", bag.case_no),
            ("External-Description", bag.title),
            ("Internal-Sender-Identifier", bag.case_id),
            ("Internal-Sender-Description", bag.category),
            ("Bagging-Date", china_date(bag.sealed_at).isoformat()),  # Beijing, as people read it
            ("Payload-Oxum", oxum),
            ("Bag-Software-Agent", _software_agent()),
            ("CaseTrail-Export-Id", bag.export_id),
            ("CaseTrail-Standard", bag.standard_ref),
            ("CaseTrail-Log-Origin", bag.log_origin),
            ("CaseTrail-Checkpoint", f"{checkpoint.size} {root_b64}"),
            ("CaseTrail-Exported-Event", exported_id),
        ]
    )
    guide = render_guide(
        GuideFacts(
            case_no=bag.case_no,
            title=bag.title,
            agency=bag.agency_name,
            category=bag.category,
            export_id=bag.export_id,
            exported_at=exported_at,
            checkpoint_size=checkpoint.size,
            checkpoint_root=root_b64,
            log_key=bag.log_key,
        )
    )
    return [
        TagEntry("bagit.txt", BAGIT_TXT),
        TagEntry("bag-info.txt", info),
        TagEntry("casetrail/README.zh-en.md", guide),
    ]
