"""The one checker of the four "nothing lost" properties, and a small tus client.

After a fault, a restart and a reconciler run, :func:`check_nothing_lost` returns every
violated property (an empty list when nothing was lost):

1. every acknowledged upload has its row, its object, matching SHA-256 and length on a
   fresh read, its ``ingest_verified`` + ``stored`` events, and an intact custody chain;
2. one evidence record per idempotency key (one ``stored`` event per evidence, the
   manifest re-sent unchanged gives the same evidence), same key + different content → 409;
3. every unacknowledged upload is resumable from an offset ≤ the bytes truly stored (it
   is resumed here and must verify against the signed digest), or absent;
4. no original without a row outside quarantine, every quarantined object has its note,
   and running the reconciler a second time changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from sqlalchemy import select

from core.manifest import sign_manifest
from server.db import make_engine, make_session_factory
from server.models import CustodyEventRow, Evidence
from server.services.custody import note_signer
from server.services.custody_audit import verify_log
from server.services.receipts import decode_header
from server.settings import Settings
from server.signing_key import load_signing_key
from storage import open_store
from storage.port import BlobStore
from tests.server.e2e_support import FieldDevice, field_device
from tests.support.server_process import BIN, ServerProcess

TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Upload:
    """One file a device announced and tried to send; ``receipt`` set once acknowledged."""

    evidence_id: str
    data: bytes
    location: str | None = None
    receipt: dict[str, Any] | None = None

    @property
    def sha256(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()


@dataclass
class Scenario:
    """A server, a device of an inspector, and every upload it attempted."""

    server: ServerProcess
    device: FieldDevice
    uploads: list[Upload] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)  # reconciler runs, in order

    @classmethod
    def start(cls, server: ServerProcess) -> Scenario:
        server.start(init=True)
        return cls(server, field_device(server, f"罚-{uuid.uuid4().hex[:8]}"))

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url,
            headers={"Authorization": f"Bearer {self.device.token}", **TUS},
            timeout=timeout,
        )

    def announce(self, *sizes: int) -> list[Upload]:
        """Register one signed manifest announcing random files of ``sizes``."""
        datas = [os.urandom(n) for n in sizes]
        files = [
            (f"现场{i}.bin", len(d), "sha256:" + hashlib.sha256(d).hexdigest(), "video/mp4")
            for i, d in enumerate(datas)
        ]
        entries = self.device.announce(files)
        made = [Upload(e["evidence_id"], d) for e, d in zip(entries, datas, strict=True)]
        self.uploads += made
        return made

    def create(self, upload: Upload) -> str:
        with self.client() as http:
            r = http.post(
                "/api/v1/uploads",
                headers={
                    "Upload-Length": str(len(upload.data)),
                    "Upload-Metadata": "evidence_id "
                    + _b64(upload.evidence_id)
                    + ",filename "
                    + _b64("现场.bin"),
                },
            )
        assert r.status_code == 201, r.text
        upload.location = r.headers["Location"]
        return upload.location

    def patch(
        self, upload: Upload, offset: int, body: bytes | Iterator[bytes], **headers: str
    ) -> httpx.Response:
        assert upload.location
        with self.client() as http:
            r = http.patch(
                upload.location,
                content=body,
                headers={
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    **headers,
                },
            )
        self._note_receipt(upload, r)
        return r

    def head(self, upload: Upload) -> httpx.Response:
        assert upload.location
        with self.client() as http:
            r = http.head(upload.location)
        self._note_receipt(upload, r)
        return r

    def send(self, upload: Upload, chunk: int = 1 << 20) -> httpx.Response:
        """Create and send the whole file in ``chunk``-sized PATCHes; the last response."""
        self.create(upload)
        offset, r = 0, None
        while offset < len(upload.data):
            r = self.patch(upload, offset, upload.data[offset : offset + chunk])
            assert r.status_code == 204, r.text
            offset = int(r.headers["Upload-Offset"])
        assert r is not None and upload.receipt is not None
        return r

    def try_send(self, upload: Upload, chunk: int = 1 << 20) -> None:
        """Send the file, stopping quietly at the first failure (the fault)."""
        try:
            if upload.location is None:
                self.create(upload)
            offset = 0
            while offset < len(upload.data):
                r = self.patch(upload, offset, upload.data[offset : offset + chunk])
                if r.status_code != 204:
                    return
                offset = int(r.headers["Upload-Offset"])
        except (httpx.HTTPError, AssertionError):
            return

    @staticmethod
    def _note_receipt(upload: Upload, response: httpx.Response) -> None:
        value = response.headers.get("CaseTrail-Receipt")
        if response.status_code in (200, 201, 204) and value:
            upload.receipt = decode_header(value)

    # ------------------------------------------------------------------ after the fault

    def restart(self) -> None:
        """Kill whatever is left of the server and start it again without faults."""
        self.server.kill()
        for name in [k for k in self.server.extra_env if k.startswith("CASETRAIL_FAULT_")]:
            del self.server.extra_env[name]
        self.server.start()

    def reconcile(self, *extra: str) -> dict[str, Any]:
        """``casetrail reconcile --json`` as a scheduler would run it; the parsed report."""
        done = subprocess.run(
            [str(BIN / "casetrail"), "reconcile", "--json", "--grace-minutes", "0", *extra],
            env=self.server._env(),
            capture_output=True,
            timeout=120,
        )
        assert done.returncode in (0, 2), done.stderr.decode()
        report: dict[str, Any] = json.loads(done.stdout)
        assert report["exit_code"] == done.returncode
        self.reports.append(report)
        return report

    def settings(self) -> Settings:
        return Settings.from_env(self.server._env())


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def check_nothing_lost(scenario: Scenario) -> list[str]:
    """Reconcile, then return every violation of the four properties (empty = nothing lost)."""
    problems: list[str] = []
    first = scenario.reconcile()
    problems += _resume_unacknowledged(scenario)  # (3) — they become acknowledged
    settings = scenario.settings()
    store = open_store(settings.storage_options())
    engine = make_engine(settings.database_url)
    try:
        session = make_session_factory(engine)()
        with session:
            problems += _acknowledged_intact(scenario, session, store, settings)  # (1)
            problems += _one_record_per_key(scenario, session)  # (2)
            problems += _no_unreferenced_originals(session, store)  # (4)
    finally:
        engine.dispose()  # before any request: a SQLite session holds the write lock
    problems += _same_key_different_content(scenario)  # (2)
    if first["at_risk"]:
        problems.append(f"reconciler found evidence at risk: {first['findings']}")
    second = scenario.reconcile()
    if second["changes"] != 0:
        problems.append(f"(4) a second reconciler run changed things: {second['findings']}")
    return problems


def _resume_unacknowledged(scenario: Scenario) -> list[str]:
    problems: list[str] = []
    for upload in scenario.uploads:
        if upload.receipt is not None or upload.location is None:
            continue
        head = scenario.head(upload)
        if head.status_code in (404, 410):
            scenario.create(upload)  # absent: the client starts again
            head = scenario.head(upload)
        if head.status_code != 200:
            problems.append(f"(3) {upload.evidence_id}: HEAD {head.status_code} {head.text}")
            continue
        if upload.receipt is not None:
            continue  # it converged on HEAD (completed after a cut-off commit)
        offset = int(head.headers["Upload-Offset"])
        done = scenario.patch(upload, offset, upload.data[offset:])
        if done.status_code != 204 or upload.receipt is None:
            problems.append(
                f"(3) {upload.evidence_id}: resuming at {offset} of {len(upload.data)} gave "
                f"{done.status_code} {done.text} — the offset claimed bytes that were not stored"
            )
    return problems


def _acknowledged_intact(
    scenario: Scenario, session: Any, store: BlobStore, settings: Settings
) -> list[str]:
    problems: list[str] = []
    key = load_signing_key(settings.signing_key_file)
    assert key is not None
    verifier = note_signer(key, settings.log_origin).verifier().key_string()
    cases: set[str] = set()
    for upload in scenario.uploads:
        if upload.receipt is None:
            continue
        where = f"(1) acknowledged {upload.evidence_id}"
        row = session.get(Evidence, upload.evidence_id)
        if row is None or row.status != "stored" or not row.storage_key:
            problems.append(f"{where}: row missing or not stored ({row and row.status})")
            continue
        if upload.receipt.get("sha256") != upload.sha256:
            problems.append(f"{where}: receipt digest {upload.receipt.get('sha256')}")
        digest, size = hashlib.sha256(), 0
        try:
            for block in store.open(row.storage_key):
                digest.update(block)
                size += len(block)
        except Exception as exc:
            problems.append(f"{where}: object unreadable: {exc}")
            continue
        if "sha256:" + digest.hexdigest() != upload.sha256 or size != len(upload.data):
            problems.append(f"{where}: fresh read differs (size {size}, {digest.hexdigest()})")
        types = _event_types(session, row.case_id, upload.evidence_id)
        if types.count("ingest_verified") != 1 or types.count("stored") != 1:
            problems.append(f"{where}: custody events {types}")
        cases.add(row.case_id)
    for case_id in sorted(cases):
        for p in verify_log(session, verifier, case_id=case_id):
            problems.append(f"(1) custody chain of case {case_id}: [{p.code}] {p.message}")
    return problems


def _event_types(session: Any, case_id: str, evidence_id: str) -> list[str]:
    rows = session.scalars(
        select(CustodyEventRow.canonical_json)
        .where(CustodyEventRow.case_id == case_id)
        .order_by(CustodyEventRow.case_seq)
    )
    out = []
    for text in rows:
        event = json.loads(text)
        if (event.get("details") or {}).get("evidence_id") == evidence_id:
            out.append(event["type"])
    return out


def _one_record_per_key(scenario: Scenario, session: Any) -> list[str]:
    problems: list[str] = []
    for upload in scenario.uploads:
        row = session.get(Evidence, upload.evidence_id)
        if row is None:
            continue
        types = _event_types(session, row.case_id, upload.evidence_id)
        if types.count("stored") > 1:
            problems.append(f"(2) {upload.evidence_id} stored {types.count('stored')} times")
    return problems


def _same_key_different_content(scenario: Scenario) -> list[str]:
    problems: list[str] = []
    manifest = scenario.device.last_manifest
    if manifest is not None:
        key = scenario.device.key
        with scenario.device.client() as api:
            again = api.post("/manifests", json=sign_manifest(manifest, key).to_json())
            if again.status_code not in (200, 201):
                problems.append(f"(2) the same manifest re-sent: {again.status_code} {again.text}")
            other = replace(manifest, note="另一内容 other content")
            changed = api.post("/manifests", json=sign_manifest(other, key).to_json())
            if changed.status_code != 409:
                problems.append(
                    f"(2) same manifest id, different content: {changed.status_code} (want 409)"
                )
    return problems


def _no_unreferenced_originals(session: Any, store: BlobStore) -> list[str]:
    problems: list[str] = []
    stored = set(session.scalars(select(Evidence.storage_key).where(Evidence.status == "stored")))
    for key in store.list("originals/"):
        if key not in stored:
            problems.append(f"(4) original without a row left outside quarantine: {key}")
    keys = set(store.list("quarantine/"))
    for key in keys:
        if key.endswith(".json"):
            continue
        token = key.split("/")[1]
        if f"quarantine/{token}.json" not in keys:
            problems.append(f"(4) quarantined object without its note: {key}")
    return problems
