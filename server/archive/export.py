"""Case-file export (案卷导出) use case: seal a case as a BagIt bag, stream it, stream it again.

Before the seal, with no transaction open, stock is taken of the case's stored originals
(:mod:`server.archive.originals`): every object is stat'ed, and originals whose SHA-512
or BLAKE3 is not known yet (stored but not yet read back by the inspection job) are read
once — SHA-256 and size re-checked, SHA-512 and BLAKE3 recorded on the evidence. A
missing object, a wrong size or a wrong digest logs ``fixity_failed`` and refuses the
export, before any byte.

Order of a seal — three short units; the custody log's lock (on SQLite: the database's
only write lock) is held only while appending, never while storage is asked or proofs
are computed:

1. *bind* (one write unit): the archivist (or admin) and the case are checked; the
   stored originals are listed again (only one stored since the stocktake is stat'ed
   here); the completeness report is computed (which logs ``completeness_checked``); the
   tag files that do not depend on the log are made (:mod:`server.archive.tag_files`:
   payload manifests from the recorded digests, ``case.json``, ``files.tsv``, capture
   manifests, keys, completeness report, ``verify.py``); ``exported`` is appended,
   carrying the export id, ``Payload-Oxum`` and the SHA-256 of each of those tag files —
   this binds the payload to the signed log — and a checkpoint is signed right after it;
   commit;
2. *prove* (a read-only unit, no lock): the case's events through ``exported`` and one
   inclusion proof per event against that checkpoint's tree size — complete subtrees
   never change, so uploads append meanwhile and the proofs stay the same; then, from
   values only, ``bag-info.txt`` (``CaseTrail-Checkpoint: <size> <root>``), the guide,
   the custody files, the tag manifests and the seal (``casetrail/seal.txt``, signed by
   the log key over the tag manifests' digests and the bag's identity);
3. *seal* (one write unit): with the recipe (:class:`~server.archive.bag.BagRecipe`)
   stored in the blob store at ``exports/<export id>/recipe.json``, ``bag_sealed`` is
   appended with the tag manifests' and the seal's digests and a checkpoint is signed
   after it; commit (on failure the recipe is deleted).

Only then does the first byte go out. An ``exported`` event with no ``bag_sealed`` is an
export that failed after binding: nothing is ever served from it (reopening a sealed
export needs its ``bag_sealed``).
An offline verifier checks everything through ``exported``; ``bag_sealed`` is checked
against the server's log (inclusion proof of that event, whose details name the
tag-manifest digests).

Streaming re-hashes each original (size + the BLAKE3 recorded from bytes whose SHA-256
matched, or SHA-256 where none is recorded); a mismatch stops the stream before any later
byte and appends ``fixity_failed``. A sealed export can be streamed again byte for byte
(resumable download with ``Range``) from its stored recipe; each such read appends
``downloaded`` before the first byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

import core.verify
from core.calendar import WorkingCalendar
from core.case_file import SEAL_PATH, seal_body
from core.checkpoint import NoteSigner, sign_note
from core.custody import EventType
from core.merkle import inclusion_proof
from core.verify import parse_json, sha256_digest
from server.archive.bag import (
    ALGORITHMS,
    BagFormat,
    BagRecipe,
    FixityMismatch,
    PayloadEntry,
    TagEntry,
    payload_manifest,
    payload_oxum,
    stream_bag,
    tag_manifest,
)
from server.archive.originals import (
    ObjectProblem,
    Original,
    object_problems,
    recorded_copies,
    stored_originals,
    take_stock,
)
from server.archive.tag_files import (
    BagIdentity,
    bound_tag_digests,
    case_json,
    custody_tags,
    devices_json,
    files_tsv,
    front_tags,
    json_bytes,
    manifest_tags,
    payload_entries,
)
from server.auth import Principal, get_visible_case, require_role
from server.errors import Conflict, NotFound
from server.models import (
    Agency,
    Case,
    CustodyEventRow,
    Evidence,
    Role,
    new_id,
)
from server.services import custody, custody_log
from server.services.cases import pinned_standard
from server.services.completeness import completeness_report
from server.services.fixity import record_fixity_failure
from server.services.unit_of_work import SqlUnitOfWork, UnitOfWork
from storage.errors import NotFound as BlobNotFound
from storage.errors import StorageError
from storage.keys import export_recipe_key

log = logging.getLogger(__name__)

EXPORT_ROLES = (Role.ARCHIVIST, Role.ADMIN)

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


@dataclass(frozen=True)
class _Bound:
    """A seal's first unit, committed: the bag's identity, payload and early tag files,
    the ``exported`` event that binds them and the checkpoint the proofs are made against."""

    bag: BagIdentity
    payload: tuple[PayloadEntry, ...]
    early: list[TagEntry]
    exported: custody.StoredEvent
    checkpoint: custody.StoredCheckpoint


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
        """Seal a new export of ``case_id`` (archivist or admin; another agency's case → 404).

        Storage is checked first, with no transaction open; then three short units, so
        the log's lock (on SQLite: the database's write lock) is held only to append:
        ``exported`` and its checkpoint; then, read-only, the proofs against that
        checkpoint; then, with the recipe stored, ``bag_sealed``.
        """
        require_role(principal, *EXPORT_ROLES)
        found = self._take_stock(principal, case_id)
        bound = self._bind(principal, case_id, fmt, found)
        with self._uow().reading() as uow:  # a fixed tree size: no lock, no writer waits
            events_jsonl, proofs = self._proofs(uow.session, bound)
        tags = [
            *front_tags(
                bound.bag,
                payload_oxum(bound.payload),
                bound.checkpoint,
                bound.exported.event.event_id,
                bound.exported.event.time,
            ),
            *bound.early,
            *custody_tags(events_jsonl, proofs, bound.checkpoint),
        ]
        recipe = self._sealed_recipe(bound.bag, tags, bound.payload)
        return self._finish(principal, bound, recipe)

    def _take_stock(self, principal: Principal, case_id: str) -> set[str]:
        """Check every stored original's object outside any transaction (and read those
        with no SHA-512 or BLAKE3 yet); refuse on any problem, else record the digests
        found.
        The evidence ids found as recorded."""
        with self._uow().reading() as uow:
            case = get_visible_case(uow.session, principal, case_id)
            copies = recorded_copies(uow.session, case.id)
        stock = take_stock(self._store, copies)
        if stock.problems:
            self._refuse(case_id, principal, stock.problems)
        if stock.digests:
            with self._uow() as uow:
                for evidence_id, found in stock.digests.items():
                    evidence = uow.session.get(Evidence, evidence_id)
                    if evidence is not None:
                        evidence.sha512 = evidence.sha512 or found.sha512
                        evidence.blake3 = evidence.blake3 or found.blake3
                uow.commit()
        return stock.found

    def _bind(self, principal: Principal, case_id: str, fmt: BagFormat, found: set[str]) -> _Bound:
        """One write unit: stat originals stored since the stocktake, make the early tag
        files, append ``exported`` and sign the checkpoint the bag binds to; commit."""
        with self._uow() as uow:
            case = get_visible_case(uow.session, principal, case_id, for_update=True)
            originals = stored_originals(uow.session, case.id)
            problems = object_problems(self._store, originals, found)
            if not problems:
                bag, standard, agency = self._identity(uow, case, fmt)
                paths, payload = payload_entries(originals, standard)
                early = self._early_tags(
                    uow, principal, case, agency, standard, originals, paths, payload
                )
                exported = self._record_exported(uow, principal, case, bag, payload, early)
                checkpoint = custody.sign_checkpoint(uow, self._signer)
                uow.commit()
                return _Bound(bag, payload, early, exported, checkpoint)
        self._refuse(case_id, principal, problems)

    def _refuse(
        self, case_id: str, principal: Principal, problems: list[ObjectProblem]
    ) -> NoReturn:
        """Log ``fixity_failed`` for each problem and refuse the export."""
        with self._uow() as uow:
            for problem in problems:
                evidence = uow.session.get(Evidence, problem.evidence_id)
                assert evidence is not None
                record_fixity_failure(
                    uow,
                    evidence,
                    source="export",
                    problems=[problem.why],
                    missing=problem.missing,
                    actor=principal,
                    context={"export_id": None},
                )
            uow.commit()
        raise Conflict(
            "证据对象缺失或与记录不符，已记录固定性校验失败，导出中止；请联系管理员从备份恢复 "
            "(evidence objects missing or not matching their record: fixity_failed was logged "
            "and the export refused; restore them from backup)",
            errors={"evidence": [f"{p.evidence_id}: {p.why}" for p in problems]},
        )

    def _identity(
        self, uow: UnitOfWork, case: Case, fmt: BagFormat
    ) -> tuple[BagIdentity, Any, Agency]:
        """A new export's identity, and the case's pinned standard and agency."""
        standard = pinned_standard(case)
        agency = uow.session.get(Agency, case.agency_id)
        assert agency is not None
        bag = BagIdentity(
            export_id=new_id(),
            format=fmt,
            sealed_at=datetime.now(UTC),
            case_id=case.id,
            case_no=case.case_no,
            title=case.title,
            agency_name=agency.name,
            agency_code=agency.code,
            standard_ref=f"{standard.id}@{standard.version}",
            category=f"{standard.name_zh} {standard.name_en}",
            log_origin=self._signer.name,
            log_key=self._signer.verifier().key_string(),
        )
        return bag, standard, agency

    def _early_tags(
        self,
        uow: UnitOfWork,
        principal: Principal,
        case: Case,
        agency: Agency,
        standard: Any,
        originals: list[Original],
        paths: dict[str, str],
        payload: tuple[PayloadEntry, ...],
    ) -> list[TagEntry]:
        """The tag files that do not depend on the log (the completeness report logs
        ``completeness_checked``)."""
        report = completeness_report(
            uow,
            principal,
            case.id,
            calendar=self._calendar,
            today=self._today() if self._today else None,
        )
        pem = self._signer.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        log_key = self._signer.verifier().key_string()
        case_file = case_json(uow, case, agency, standard, originals, paths, self._calendar)
        return [
            TagEntry("manifest-sha256.txt", payload_manifest(payload, "sha256")),
            TagEntry("manifest-sha512.txt", payload_manifest(payload, "sha512")),
            TagEntry("casetrail/verify.py", Path(core.verify.__file__).read_bytes()),
            TagEntry("casetrail/case.json", json_bytes(case_file)),
            TagEntry("casetrail/files.tsv", files_tsv(originals, paths)),
            TagEntry("casetrail/completeness.json", json_bytes(report)),
            TagEntry(
                "casetrail/keys/devices.json", json_bytes(devices_json(uow.session, originals))
            ),
            TagEntry("casetrail/keys/log-key.txt", (log_key + "\n").encode("ascii")),
            TagEntry("casetrail/keys/log-key.pem", pem),
            *manifest_tags(uow.session, case, originals),
        ]

    @staticmethod
    def _record_exported(
        uow: UnitOfWork,
        principal: Principal,
        case: Case,
        bag: BagIdentity,
        payload: tuple[PayloadEntry, ...],
        early: list[TagEntry],
    ) -> custody.StoredEvent:
        """Append ``exported``: it binds the payload and the early tag files to the log."""
        return custody.record_custody(
            uow,
            case,
            EventType.EXPORTED,
            principal,
            {
                "export_id": bag.export_id,
                "format": bag.format.value,
                "payload_oxum": payload_oxum(payload),
                "files": len(payload),
                "tag_digests": {t.path: sha256_digest(t.content) for t in bound_tag_digests(early)},
            },
        )

    @staticmethod
    def _proofs(session: Session, bound: _Bound) -> tuple[bytes, dict[str, dict[str, Any]]]:
        """The case's events through ``exported`` (JSON lines) and one inclusion proof each
        against the bound checkpoint — complete subtrees never change, so the nodes of a
        fixed tree size are read in a read-only unit while the log grows."""
        events = list(
            session.scalars(
                select(CustodyEventRow)
                .where(
                    CustodyEventRow.case_id == bound.bag.case_id,
                    CustodyEventRow.case_seq <= bound.exported.event.case_seq,
                )
                .order_by(CustodyEventRow.case_seq)
            )
        )
        reader = custody_log.DbTreeReader(session)  # each shared node read once
        size = bound.checkpoint.size
        proofs = {
            row.id: {
                "leaf_index": row.log_index,
                "tree_size": size,
                "hashes": [
                    base64.b64encode(h).decode("ascii")
                    for h in inclusion_proof(reader, row.log_index, size)
                ],
            }
            for row in events
        }
        jsonl = b"".join(row.canonical_json.encode("utf-8") + b"\n" for row in events)
        return jsonl, proofs

    def _sealed_recipe(
        self, bag: BagIdentity, tags: list[TagEntry], payload: tuple[PayloadEntry, ...]
    ) -> BagRecipe:
        """The tag manifests over ``tags``, the seal over them, and the bag's recipe."""
        tag_manifests = [
            TagEntry(f"tagmanifest-{alg}.txt", tag_manifest(tags, alg)) for alg in ALGORITHMS
        ]
        seal = TagEntry(
            SEAL_PATH,
            sign_note(
                seal_body(
                    origin=self._signer.name,
                    export_id=bag.export_id,
                    case_id=bag.case_id,
                    case_no=bag.case_no,
                    tag_manifests={t.path: t.content for t in tag_manifests},
                ),
                self._signer,
            ).encode("utf-8"),
        )
        return BagRecipe(
            bag.format,
            bag.base,
            int(bag.sealed_at.timestamp()),
            (*tags, *tag_manifests, seal),
            payload,
        )

    def _finish(self, principal: Principal, bound: _Bound, recipe: BagRecipe) -> SealedExport:
        """Store the recipe, then one write unit: append ``bag_sealed`` and sign a
        checkpoint after it; commit (the recipe is deleted again if that fails)."""
        key = recipe_key(bound.bag.export_id)
        document = {
            "case_id": bound.bag.case_id,
            "checkpoint_size": bound.checkpoint.size,
            "recipe": recipe.to_json(),
        }
        self._store.write(key, [json_bytes(document)])
        try:
            with self._uow() as uow:
                case = get_visible_case(uow.session, principal, bound.bag.case_id, for_update=True)
                sealed_event = self._record_sealed(uow, principal, case, bound, recipe)
                custody.sign_checkpoint(uow, self._signer)
                uow.commit()
        except BaseException:
            try:  # no bag_sealed: nothing may be served from this recipe
                self._store.delete(key)
            except Exception:  # the reconciler finds it later; the seal's error is the one
                log.exception("could not delete the recipe of unsealed export %s", key)
            raise
        return SealedExport(
            bound.bag.export_id,
            bound.bag.case_id,
            recipe,
            bound.exported.event.event_id,
            sealed_event.event.event_id,
            bound.checkpoint.size,
        )

    @staticmethod
    def _record_sealed(
        uow: UnitOfWork, principal: Principal, case: Case, bound: _Bound, recipe: BagRecipe
    ) -> custody.StoredEvent:
        """Append ``bag_sealed``: the tag manifests' and the seal's digests, in the log."""
        *_, sha256_manifest, sha512_manifest, seal = recipe.tags
        tag_manifests = (sha256_manifest, sha512_manifest)
        return custody.record_custody(
            uow,
            case,
            EventType.BAG_SEALED,
            principal,
            {
                "export_id": bound.bag.export_id,
                "format": bound.bag.format.value,
                "length": recipe.length(),
                "checkpoint_size": bound.checkpoint.size,
                "exported_event_id": bound.exported.event.event_id,
                "tag_manifests": {t.path: sha256_digest(t.content) for t in tag_manifests},
                "tag_manifest_sha512": {
                    t.path: "sha512:" + hashlib.sha512(t.content).hexdigest() for t in tag_manifests
                },
                "seal": sha256_digest(seal.content),
            },
        )

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
