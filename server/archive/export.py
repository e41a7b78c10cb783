"""Case-file export (案卷导出) use case: seal a case as a BagIt bag, stream it, stream it again.

Before the seal, originals whose SHA-512 is not known yet (stored but not yet read
back by the inspection job) are read once, outside any transaction: SHA-256 and size
are re-checked and SHA-512 is recorded on the evidence (a mismatch logs
``fixity_failed`` and refuses the export, like a missing object).

Order of a seal (one transaction, holding the custody log's lock throughout):

1. the archivist (or admin) and the case are checked; every stored original is listed
   and its object checked in storage (missing or wrong size → ``fixity_failed`` is
   logged and the export refused, before any byte);
2. the completeness report is computed (which logs ``completeness_checked``);
3. the tag files that do not depend on the log are made: payload manifests (from the
   recorded digests), ``case.json``, ``files.tsv``, capture manifests, keys,
   completeness report, guide, ``verify.py``;
4. ``exported`` is appended, carrying the export id, ``Payload-Oxum`` and the SHA-256
   of each of those tag files — this binds the payload to the signed log;
5. a checkpoint is signed; the case's events (through ``exported``), one inclusion
   proof per event against that checkpoint, the checkpoint and ``bag-info.txt``
   (``CaseTrail-Checkpoint: <size> <root>``) are written, then the tag manifests;
6. the seal (``casetrail/seal.txt``) is signed by the log key over the tag
   manifests' digests and the bag's identity (export id, case id, 案号);
7. the recipe (:class:`~server.archive.bag.BagRecipe`) is stored in the blob store at
   ``exports/<export id>/recipe.json``;
8. ``bag_sealed`` is appended with the tag manifests' and the seal's digests and a
   checkpoint is signed after it; commit.

Only then does the first byte go out. An offline verifier checks everything through
``exported``; ``bag_sealed`` is checked against the server's log (inclusion proof of
that event, whose details name the tag-manifest digests).

Streaming re-hashes each original (size + SHA-256); a mismatch stops the stream before any later byte
and appends ``fixity_failed``. A sealed export can be streamed again byte for byte
(resumable download with ``Range``) from its stored recipe; each such read appends
``downloaded`` before the first byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

import core.verify
from core.calendar import WorkingCalendar
from core.case_file import SEAL_PATH, seal_body
from core.checkpoint import NoteSigner, sign_note
from core.custody import EventType
from core.merkle import inclusion_proof
from core.verify import FILES_TSV_COLUMNS, canonical_json, parse_json, sha256_digest
from server.archive.bag import (
    BAGIT_TXT,
    BagFormat,
    BagRecipe,
    FixityMismatch,
    PayloadEntry,
    TagEntry,
    bag_info,
    payload_manifest,
    payload_oxum,
    stream_bag,
    tag_manifest,
)
from server.archive.guide import GuideFacts, render_guide
from server.archive.layout import FileToPlace, StageName, payload_paths, safe_name
from server.archive.recompute import calendar_json, facts_json
from server.auth import Principal, get_visible_case, require_role
from server.errors import Conflict, NotFound
from server.models import (
    Agency,
    CaptureManifest,
    Case,
    CustodyEventRow,
    Device,
    Evidence,
    EvidenceStatus,
    Role,
    StageChange,
    User,
    new_id,
)
from server.services import custody, custody_proofs
from server.services.cases import pinned_standard
from server.services.clocks import china_date
from server.services.completeness import case_facts, completeness_report
from server.services.fixity import record_fixity_failure
from server.services.unit_of_work import SqlUnitOfWork, UnitOfWork
from storage.errors import NotFound as BlobNotFound
from storage.errors import StorageError
from storage.hashing import digest_object
from storage.keys import export_recipe_key

EXPORT_ROLES = (Role.ARCHIVIST, Role.ADMIN)

_Failure = tuple[str, str, bool]
"""An original that failed before sealing: evidence id, what is wrong, whether it is gone."""
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def recipe_key(export_id: str) -> str:
    """Blob-store key of a sealed export's recipe."""
    return export_recipe_key(export_id)


@dataclass(frozen=True)
class SealedExport:
    """A sealed bag ready to stream: ids, file name, recipe and total length."""

    export_id: str
    case_id: str
    recipe: BagRecipe
    exported_event_id: str
    sealed_event_id: str
    checkpoint_size: int

    @property
    def filename(self) -> str:
        """Suggested archive file name (``<bag base>.tar`` / ``.zip``)."""
        return f"{self.recipe.base}.{self.recipe.format.value}"

    @property
    def length(self) -> int:
        """Archive length in bytes."""
        return self.recipe.length()


def _software_agent() -> str:
    try:
        version = metadata.version("casetrail")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        version = "dev"
    return f"CaseTrail {version}"


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _tsv(value: object) -> str:
    return (
        str(value)
        .replace("%", "%25")
        .replace("\t", "%09")
        .replace("\r", "%0D")
        .replace("\n", "%0A")
    )


@dataclass(frozen=True)
class _Original:
    evidence: Evidence
    manifest: CaptureManifest
    wire: dict[str, Any]
    path: str = ""


class CaseExporter:
    """Seals and streams case files; needs units of work, the blob store and the log signer."""

    def __init__(
        self,
        unit_of_work: Callable[[], SqlUnitOfWork],
        store: Any,
        signer: NoteSigner,
        *,
        calendar: WorkingCalendar | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        self._uow = unit_of_work
        self._store = store
        self._signer = signer
        self._calendar = calendar or WorkingCalendar()
        self._today = today

    # ------------------------------------------------------------------ sealing

    def seal(self, principal: Principal, case_id: str, fmt: BagFormat) -> SealedExport:
        """Seal a new export of ``case_id`` (archivist or admin; another agency's case → 404)."""
        require_role(principal, *EXPORT_ROLES)
        self._record_missing_sha512(principal, case_id)
        with self._uow().reading() as uow:  # the proofs' nodes, without the log's lock
            nodes = custody_proofs.proof_nodes(uow.session, case_id)
        with self._uow() as uow:
            case = get_visible_case(uow.session, principal, case_id, for_update=True)
            originals = self._originals(uow, case)
            broken = self._missing_objects(originals)
            if not broken:
                sealed = self._seal(uow, principal, case, originals, fmt, nodes)
                uow.commit()
                return sealed
            failures = [(o.evidence.id, why, missing) for o, why, missing in broken]
        self._refuse(case_id, principal, failures)

    def _refuse(
        self,
        case_id: str,
        principal: Principal,
        failures: list[_Failure],
    ) -> NoReturn:
        self._log_missing(case_id, principal, failures)
        raise Conflict(
            "证据对象缺失或与记录不符，已记录固定性校验失败，导出中止；请联系管理员从备份恢复 "
            "(evidence objects missing or not matching their record: fixity_failed was logged "
            "and the export refused; restore them from backup)",
            errors={"evidence": [f"{evidence_id}: {why}" for evidence_id, why, _ in failures]},
        )

    def _record_missing_sha512(self, principal: Principal, case_id: str) -> None:
        """Read originals with no SHA-512 yet once (outside a transaction) and record it."""
        with self._uow() as uow:
            case = get_visible_case(uow.session, principal, case_id)
            todo = [
                (e.id, e.expected_sha256, e.expected_size, e.storage_key)
                for e in uow.session.scalars(
                    select(Evidence).where(
                        Evidence.case_id == case.id,
                        Evidence.status == EvidenceStatus.STORED.value,
                        Evidence.sha512.is_(None),
                        Evidence.storage_key.is_not(None),
                    )
                )
            ]
        found: dict[str, str | None] = {}
        failures: list[_Failure] = []
        for evidence_id, sha256, size, key in todo:
            assert key is not None
            try:
                digester = digest_object(self._store, key)
            except BlobNotFound:
                continue  # the seal's own check reports it
            if (digester.sha256, digester.size) == (sha256, size):
                found[evidence_id] = digester.sha512
            else:
                why = f"摘要不符 / read {digester.sha256} ({digester.size} B)"
                failures.append((evidence_id, why, False))
        if failures:
            self._refuse(case_id, principal, failures)
        if found:
            with self._uow() as uow:
                for evidence_id, sha512 in found.items():
                    evidence = uow.session.get(Evidence, evidence_id)
                    if evidence is not None and evidence.sha512 is None:
                        evidence.sha512 = sha512
                uow.commit()

    def _originals(self, uow: UnitOfWork, case: Case) -> list[_Original]:
        rows = uow.session.execute(
            select(Evidence, CaptureManifest)
            .join(CaptureManifest, Evidence.manifest_id == CaptureManifest.id)
            .where(Evidence.case_id == case.id, Evidence.status == EvidenceStatus.STORED.value)
            .order_by(CaptureManifest.received_at, CaptureManifest.id, Evidence.file_index)
        ).all()
        return [_Original(e, m, parse_json(m.signed_json)) for e, m in rows]

    def _missing_objects(self, originals: list[_Original]) -> list[tuple[_Original, str, bool]]:
        broken = []
        for o in originals:
            key = o.evidence.storage_key
            try:
                if key is None:
                    raise BlobNotFound("no storage key", key=None)
                size = self._store.stat(key).size
            except BlobNotFound:
                broken.append((o, f"对象缺失 / object missing at {key}", True))
                continue
            if size != o.evidence.expected_size:
                broken.append(
                    (
                        o,
                        f"大小不符 / size: recorded {o.evidence.expected_size}, stored {size}",
                        False,
                    )
                )
        return broken

    def _log_missing(
        self,
        case_id: str,
        principal: Principal,
        failures: list[_Failure],
    ) -> None:
        with self._uow() as uow:
            for evidence_id, why, missing in failures:
                evidence = uow.session.get(Evidence, evidence_id)
                assert evidence is not None
                record_fixity_failure(
                    uow,
                    evidence,
                    source="export",
                    problems=[why],
                    missing=missing,
                    actor=principal,
                    context={"export_id": None},
                )
            uow.commit()

    def _seal(
        self,
        uow: UnitOfWork,
        principal: Principal,
        case: Case,
        originals: list[_Original],
        fmt: BagFormat,
        nodes: dict[tuple[int, int], bytes],
    ) -> SealedExport:
        session = uow.session
        export_id = new_id()
        now = datetime.now(UTC)
        standard = pinned_standard(case)
        agency = session.get(Agency, case.agency_id)
        assert agency is not None

        stages = {
            s.id: StageName(s.id, s.name_zh, i) for i, s in enumerate(standard.stages, start=1)
        }
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
            )
            for o in originals
        )
        oxum = payload_oxum(payload)

        report = completeness_report(
            uow,
            principal,
            case.id,
            calendar=self._calendar,
            today=self._today() if self._today else None,
        )
        verifier = self._signer.verifier()
        log_key = verifier.key_string()
        pem = self._signer.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        early: list[TagEntry] = [
            TagEntry("manifest-sha256.txt", payload_manifest(payload, "sha256")),
            TagEntry("manifest-sha512.txt", payload_manifest(payload, "sha512")),
            TagEntry("casetrail/verify.py", Path(core.verify.__file__).read_bytes()),
            TagEntry(
                "casetrail/case.json",
                _json_bytes(self._case_json(uow, case, agency, standard, originals, paths)),
            ),
            TagEntry("casetrail/files.tsv", self._files_tsv(originals, paths)),
            TagEntry("casetrail/completeness.json", _json_bytes(report)),
            TagEntry("casetrail/keys/devices.json", _json_bytes(self._devices(uow, originals))),
            TagEntry("casetrail/keys/log-key.txt", (log_key + "\n").encode("ascii")),
            TagEntry("casetrail/keys/log-key.pem", pem),
        ]
        seen_manifests: set[str] = set()
        for o in originals:
            if o.manifest.id in seen_manifests:
                continue
            seen_manifests.add(o.manifest.id)
            early.append(
                TagEntry(
                    f"casetrail/manifests/{safe_name(o.manifest.manifest_id)}.json",
                    canonical_json(o.wire),
                )
            )
        for m in self._manifests_without_stored_files(uow, case, seen_manifests):
            early.append(
                TagEntry(
                    f"casetrail/manifests/{safe_name(m.manifest_id)}.json",
                    canonical_json(parse_json(m.signed_json)),
                )
            )

        exported = custody.record_custody(
            uow,
            case,
            EventType.EXPORTED,
            principal,
            {
                "export_id": export_id,
                "format": fmt.value,
                "payload_oxum": oxum,
                "files": len(payload),
                "tag_digests": {
                    t.path: sha256_digest(t.content)
                    for t in early
                    if not t.path.startswith("casetrail/manifests/")
                    and t.path != "casetrail/verify.py"
                },
            },
        )
        checkpoint = custody.sign_checkpoint(uow, self._signer)
        events = list(
            session.scalars(
                select(CustodyEventRow)
                .where(CustodyEventRow.case_id == case.id)
                .order_by(CustodyEventRow.case_seq)
            )
        )
        reader = custody.tree_reader(session)  # this append's nodes, in memory
        reader.pending.update({k: v for k, v in nodes.items() if k not in reader.pending})
        proofs = {
            row.id: {
                "leaf_index": row.log_index,
                "tree_size": checkpoint.size,
                "hashes": [
                    base64.b64encode(h).decode("ascii")
                    for h in inclusion_proof(reader, row.log_index, checkpoint.size)
                ],
            }
            for row in events
        }
        root_b64 = base64.b64encode(checkpoint.root).decode("ascii")
        info = bag_info(
            [
                ("Source-Organization", agency.name),
                ("Organization-Address", agency.code),
                ("External-Identifier", case.case_no),
                ("External-Description", case.title),
                ("Internal-Sender-Identifier", case.id),
                ("Internal-Sender-Description", f"{standard.name_zh} {standard.name_en}"),
                ("Bagging-Date", china_date(now).isoformat()),  # Beijing, as people read it
                ("Payload-Oxum", oxum),
                ("Bag-Software-Agent", _software_agent()),
                ("CaseTrail-Export-Id", export_id),
                ("CaseTrail-Standard", f"{standard.id}@{standard.version}"),
                ("CaseTrail-Log-Origin", self._signer.name),
                ("CaseTrail-Checkpoint", f"{checkpoint.size} {root_b64}"),
                ("CaseTrail-Exported-Event", exported.event.event_id),
            ]
        )
        guide = render_guide(
            GuideFacts(
                case_no=case.case_no,
                title=case.title,
                agency=agency.name,
                category=f"{standard.name_zh} {standard.name_en}",
                export_id=export_id,
                exported_at=exported.event.time,
                checkpoint_size=checkpoint.size,
                checkpoint_root=root_b64,
                log_key=log_key,
            )
        )
        late = [
            TagEntry(
                "casetrail/custody/events.jsonl",
                b"".join(row.canonical_json.encode("utf-8") + b"\n" for row in events),
            ),
            TagEntry(
                "casetrail/custody/proofs.json",
                _json_bytes({"tree_size": checkpoint.size, "proofs": proofs}),
            ),
            TagEntry("casetrail/custody/checkpoint.txt", checkpoint.note.encode("utf-8")),
        ]
        tags = [
            TagEntry("bagit.txt", BAGIT_TXT),
            TagEntry("bag-info.txt", info),
            TagEntry("casetrail/README.zh-en.md", guide),
            *early,
            *late,
        ]
        tag_manifests = [
            TagEntry(f"tagmanifest-{alg}.txt", tag_manifest(tags, alg))
            for alg in ("sha256", "sha512")
        ]
        seal = TagEntry(
            SEAL_PATH,
            sign_note(
                seal_body(
                    origin=self._signer.name,
                    export_id=export_id,
                    case_id=case.id,
                    case_no=case.case_no,
                    tag_manifests={t.path: t.content for t in tag_manifests},
                ),
                self._signer,
            ).encode("utf-8"),
        )
        base = safe_name(
            f"{case.case_no}_{china_date(now):%Y%m%d}_{export_id[:8]}", fallback=export_id
        )
        recipe = BagRecipe(fmt, base, int(now.timestamp()), (*tags, *tag_manifests, seal), payload)
        key = recipe_key(export_id)
        recipe_json = _json_bytes(
            {"case_id": case.id, "checkpoint_size": checkpoint.size, "recipe": recipe.to_json()}
        )
        self._store.write(key, [recipe_json])
        uow.on_rollback(lambda: self._store.delete(key))
        sealed_event = custody.record_custody(
            uow,
            case,
            EventType.BAG_SEALED,
            principal,
            {
                "export_id": export_id,
                "format": fmt.value,
                "length": recipe.length(),
                "checkpoint_size": checkpoint.size,
                "exported_event_id": exported.event.event_id,
                "tag_manifests": {t.path: sha256_digest(t.content) for t in tag_manifests},
                "tag_manifest_sha512": {
                    t.path: "sha512:" + hashlib.sha512(t.content).hexdigest() for t in tag_manifests
                },
                "seal": sha256_digest(seal.content),
            },
        )
        custody.sign_checkpoint(uow, self._signer)
        return SealedExport(
            export_id,
            case.id,
            recipe,
            exported.event.event_id,
            sealed_event.event.event_id,
            checkpoint.size,
        )

    def _case_json(
        self,
        uow: UnitOfWork,
        case: Case,
        agency: Agency,
        standard: Any,
        originals: list[_Original],
        paths: dict[str, str],
    ) -> dict[str, Any]:
        session = uow.session
        history = session.scalars(
            select(StageChange).where(StageChange.case_id == case.id).order_by(StageChange.id)
        )
        return {
            "schema": "casetrail.case-file/1",
            "completeness_facts": facts_json(case_facts(uow, case).facts),
            "agency_calendar": calendar_json(self._calendar),
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
                    "changed_by": self._user_name(session, h.changed_by),
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

    @staticmethod
    def _user_name(session: Any, user_id: str) -> str:
        user = session.get(User, user_id)
        return user.display_name if user is not None else user_id

    @staticmethod
    def _files_tsv(originals: list[_Original], paths: dict[str, str]) -> bytes:
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

    @staticmethod
    def _devices(uow: UnitOfWork, originals: list[_Original]) -> list[dict[str, Any]]:
        ids = sorted({o.manifest.device_id for o in originals})
        return [
            {
                "device_id": d.id,
                "name": d.name,
                "alg": d.key_alg,
                "public_key": d.public_key,
                "key_id": d.key_id,
            }
            for d in uow.session.scalars(
                select(Device).where(Device.id.in_(ids)).order_by(Device.id)
            )
        ]

    @staticmethod
    def _manifests_without_stored_files(
        uow: UnitOfWork, case: Case, seen: set[str]
    ) -> list[CaptureManifest]:
        rows = uow.session.scalars(
            select(CaptureManifest)
            .where(CaptureManifest.case_id == case.id)
            .order_by(CaptureManifest.received_at, CaptureManifest.id)
        )
        return [m for m in rows if m.id not in seen]

    # ------------------------------------------------------------------ streaming

    def stream(
        self,
        principal: Principal,
        sealed: SealedExport,
        *,
        start: int = 0,
        end: int | None = None,
    ) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the sealed archive; a fixity failure logs and re-raises."""

        def open_payload(key: str, a: int, b: int | None) -> Iterator[bytes]:
            return iter(self._store.open(key, a, b))

        try:
            yield from stream_bag(sealed.recipe, open_payload, start=start, end=end)
        except FixityMismatch as exc:
            with self._uow() as uow:
                for evidence in uow.session.scalars(
                    select(Evidence).where(
                        Evidence.case_id == sealed.case_id,
                        Evidence.storage_key == exc.entry.storage_key,
                    )
                ):
                    record_fixity_failure(
                        uow,
                        evidence,
                        source="export",
                        problems=exc.problems,
                        actor=principal,
                        context={"export_id": sealed.export_id, "path": exc.entry.path},
                    )
                uow.commit()
            raise
        except StorageError as exc:
            raise ExportInterrupted(sealed.export_id, str(exc)) from exc

    def open_sealed(
        self, principal: Principal, case_id: str, export_id: str, *, byte_range: str | None
    ) -> SealedExport:
        """A sealed export of ``case_id`` to stream again; appends ``downloaded`` first."""
        require_role(principal, *EXPORT_ROLES)
        with self._uow() as uow:
            case = get_visible_case(uow.session, principal, case_id)
            missing = NotFound(
                f"导出 {export_id} 不存在 (export {export_id} not found for this case)"
            )
            if not _UUID.fullmatch(export_id):
                raise missing
            try:
                raw = b"".join(self._store.open(recipe_key(export_id)))
            except BlobNotFound as exc:
                raise missing from exc
            doc = json.loads(raw)
            if doc.get("case_id") != case.id:
                raise missing
            recipe = BagRecipe.from_json(doc["recipe"])
            sealed_row = self._event_with_export(uow, case.id, EventType.BAG_SEALED, export_id)
            exported_row = self._event_with_export(uow, case.id, EventType.EXPORTED, export_id)
            custody.record_custody(
                uow,
                case,
                EventType.DOWNLOADED,
                principal,
                {"export_id": export_id, "range": byte_range, "what": "case file"},
            )
            uow.commit()
        return SealedExport(
            export_id,
            case_id,
            recipe,
            exported_row,
            sealed_row,
            int(doc["checkpoint_size"]),
        )

    @staticmethod
    def _event_with_export(uow: UnitOfWork, case_id: str, kind: EventType, export_id: str) -> str:
        for row in uow.session.scalars(
            select(CustodyEventRow).where(
                CustodyEventRow.case_id == case_id, CustodyEventRow.event_type == kind.value
            )
        ):
            if parse_json(row.canonical_json)["details"].get("export_id") == export_id:
                return row.id
        raise NotFound(f"导出 {export_id} 没有封存记录 (export {export_id} was never sealed)")


class ExportInterrupted(Exception):
    """Storage failed mid-stream; the archive is incomplete (download again later)."""

    def __init__(self, export_id: str, reason: str) -> None:
        super().__init__(
            f"存储读取失败，导出 {export_id} 未完成，请稍后重新下载 / storage failed mid-stream, "
            f"export {export_id} is incomplete; download it again later: {reason}"
        )
