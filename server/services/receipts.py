"""Signed ingest receipts (入库回执): what the server gives a device for a stored original.

A receipt is a JSON object, signed by the server's log-signing key (Ed25519) over the
RFC 8785 canonical bytes of everything but ``signature``::

    {"type": "casetrail.ingest-receipt/v1",
     "evidence_id": "…", "case_id": "…", "manifest_id": "…", "file_index": 0,
     "sha256": "sha256:…", "size": 52428800,
     "received_at": "2026-…Z",
     "custody_event": {"event_id": "…", "type": "stored", "event_hash": "sha256:…",
                       "log_index": 41, "event": {…the event JSON…}},
     "checkpoint": "<signed note text>", "tree_size": 42,
     "inclusion_proof": ["<base64>", …],
     "signature": {"alg": "Ed25519", "key": "<origin>+<hex>+<base64>", "value": "<base64>"}}

The receipt vouches for the SHA-256 verified at ingest only: SHA-512 is computed later,
by the inspection job's first re-read (``GET /api/v1/evidence/{id}`` shows it once
known), so a receipt never promises a digest that does not exist yet.

A device (or anyone) checks it offline with :func:`receipt_problems` and the server's
verifier key string: the signature, the checkpoint's signature, and the event's
inclusion in that checkpoint (RFC 9162). It travels as ``CaseTrail-Receipt:
<base64url(canonical JSON)>`` on the final tus response and at
``GET /api/v1/evidence/{id}/receipt``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from core.canonical import canonical_json
from core.checkpoint import NoteSigner, NoteVerifier, open_checkpoint
from core.custody import CustodyEvent
from core.errors import CoreError
from core.merkle import inclusion_proof
from core.verify import inclusion_ok
from server.models import Evidence
from server.services.custody import StoredCheckpoint, StoredEvent
from server.services.custody_log import tree_reader
from server.services.unit_of_work import UnitOfWork

RECEIPT_TYPE = "casetrail.ingest-receipt/v1"
HEADER = "CaseTrail-Receipt"


def build_receipt(
    uow: UnitOfWork,
    signer: NoteSigner,
    evidence: Evidence,
    manifest_id: str,
    stored: StoredEvent,
    checkpoint: StoredCheckpoint,
) -> dict[str, Any]:
    """The signed receipt of ``evidence`` whose ``stored`` event is in ``checkpoint``."""
    proof = inclusion_proof(tree_reader(uow.session), stored.log_index, checkpoint.size)
    body: dict[str, Any] = {
        "type": RECEIPT_TYPE,
        "evidence_id": evidence.id,
        "case_id": evidence.case_id,
        "manifest_id": manifest_id,
        "file_index": evidence.file_index,
        "sha256": evidence.expected_sha256,
        "size": evidence.expected_size,
        "received_at": stored.event.time,
        "custody_event": {
            "event_id": stored.event.event_id,
            "type": str(stored.event.type),
            "event_hash": stored.event_hash,
            "log_index": stored.log_index,
            "event": stored.event.to_json(),
        },
        "checkpoint": checkpoint.note,
        "tree_size": checkpoint.size,
        "inclusion_proof": [base64.b64encode(h).decode("ascii") for h in proof],
    }
    signature = signer.private_key.sign(canonical_json(body))
    body["signature"] = {
        "alg": "Ed25519",
        "key": signer.verifier().key_string(),
        "value": base64.b64encode(signature).decode("ascii"),
    }
    return body


def encode_header(receipt: Mapping[str, Any]) -> str:
    """The ``CaseTrail-Receipt`` header value: base64url of the canonical JSON, no padding."""
    return base64.urlsafe_b64encode(canonical_json(dict(receipt))).decode("ascii").rstrip("=")


def decode_header(value: str) -> dict[str, Any]:
    """Inverse of :func:`encode_header`."""
    padded = value + "=" * (-len(value) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def receipt_problems(receipt: Mapping[str, Any], verifier_key: str) -> list[str]:
    """Every reason ``receipt`` does not verify against the server key (empty = valid)."""
    problems: list[str] = []
    try:
        verifier = NoteVerifier.from_key_string(verifier_key)
    except CoreError as exc:
        return [f"服务器验证密钥无效 / server verifier key invalid: {exc}"]
    body = {k: v for k, v in receipt.items() if k != "signature"}
    sig = receipt.get("signature") or {}
    if sig.get("key") != verifier_key:
        problems.append("回执签名密钥与服务器密钥不符 / receipt signed by another key")
    try:
        raw = base64.b64decode(str(sig.get("value", "")), validate=True)
        signed = verifier.verify(canonical_json(body), raw)
    except (ValueError, CoreError):
        signed = False
    if not signed:
        problems.append("回执签名无效 / receipt signature does not verify")
    try:
        checkpoint = open_checkpoint(str(receipt.get("checkpoint", "")), verifier)
    except CoreError as exc:
        return [*problems, f"检查点无效 / checkpoint invalid: {exc}"]
    event_info = receipt.get("custody_event") or {}
    try:
        event = CustodyEvent.from_json(event_info.get("event") or {})
    except CoreError as exc:
        return [*problems, f"监管链事件无效 / custody event invalid: {exc}"]
    if event.event_hash() != event_info.get("event_hash"):
        problems.append("事件哈希不符 / event hash does not match the event")
    if event.object is None or event.object.sha256 != receipt.get("sha256"):
        problems.append("事件所述对象与回执摘要不符 / event object differs from receipt sha256")
    if checkpoint.size != receipt.get("tree_size"):
        problems.append("检查点大小与回执不符 / checkpoint size differs from tree_size")
    try:
        proof = [base64.b64decode(h, validate=True) for h in receipt.get("inclusion_proof", [])]
    except ValueError:
        return [*problems, "包含证明格式错误 / inclusion proof is not base64"]
    index = event_info.get("log_index")
    if not isinstance(index, int) or not inclusion_ok(
        event.leaf_hash(), index, checkpoint.size, proof, checkpoint.root_hash
    ):
        problems.append("包含证明不成立 / inclusion proof does not verify against the checkpoint")
    return problems
