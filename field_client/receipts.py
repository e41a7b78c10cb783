"""Ingest receipts (入库回执): the device's proof that the server stored what it captured.

A receipt (made by the server on the last byte of an upload, and served again at
``GET /api/v1/evidence/{id}/receipt``) is JSON signed by the server's log key::

    {"type": "casetrail.ingest-receipt/v1", "evidence_id", "case_id", "manifest_id",
     "file_index", "sha256", "sha512", "size", "received_at",
     "custody_event": {"event_id", "type", "event_hash", "log_index", "event": {…}},
     "checkpoint": "<signed note>", "tree_size", "inclusion_proof": ["<base64>", …],
     "signature": {"alg": "Ed25519", "key": "<verifier key>", "value": "<base64>"}}

:func:`verify_receipt` checks it with only the log key pinned at enrolment and what the
device itself captured, and reports EVERY finding: the receipt's signature, the
checkpoint's signature and origin, the custody event's hash and that it is about the
captured SHA-256 and size, the inclusion of that event in the checkpoint (RFC 9162),
and that the receipt is for this evidence, manifest and file. Only then is an item done.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.canonical import canonical_json
from core.custody import CustodyEvent
from core.errors import CoreError
from core.verify import NoteVerifier, inclusion_ok, open_checkpoint
from field_client.errors import ReceiptInvalid

__all__ = ["RECEIPT_HEADER", "RECEIPT_TYPE", "Expected", "decode_header", "verify_receipt"]

RECEIPT_TYPE = "casetrail.ingest-receipt/v1"
RECEIPT_HEADER = "CaseTrail-Receipt"


@dataclass(frozen=True)
class Expected:
    """What the device knows about a file independently of the server."""

    evidence_id: str
    manifest_id: str
    file_index: int
    sha256: str
    size: int


def decode_header(value: str) -> dict[str, Any]:
    """Decode a ``CaseTrail-Receipt`` header (base64url of the JSON, padding optional)."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as e:
        raise ReceiptInvalid(
            f"回执头无法解码 / the receipt header cannot be decoded: {e}"
        ) from None
    if not isinstance(data, dict):
        raise ReceiptInvalid("回执须为 JSON 对象 / a receipt must be a JSON object")
    return data


def _b64(text: object) -> bytes:
    return base64.b64decode(str(text).encode("ascii"), validate=True)


def receipt_problems(
    receipt: Mapping[str, Any], log_key: str, expected: Expected, origin: str | None = None
) -> list[str]:
    """Every reason ``receipt`` does not prove ``expected`` arrived (empty list = valid)."""
    problems: list[str] = []
    try:
        verifier = NoteVerifier.from_key_string(log_key)
    except CoreError as e:
        return [f"本机保存的日志公钥无效 / the pinned log key is invalid: {e}; re-enrol"]
    if receipt.get("type") != RECEIPT_TYPE:
        problems.append(f"回执类型 {receipt.get('type')!r} 不是 {RECEIPT_TYPE}")
    for field, want in (
        ("evidence_id", expected.evidence_id),
        ("manifest_id", expected.manifest_id),
        ("file_index", expected.file_index),
        ("sha256", expected.sha256),
        ("size", expected.size),
    ):
        if receipt.get(field) != want:
            problems.append(
                f"{field}: 回执为 {receipt.get(field)!r}，本机采集为 {want!r} / the receipt says "
                f"{receipt.get(field)!r}, this device captured {want!r}"
            )
    body = {k: v for k, v in receipt.items() if k != "signature"}
    sig = receipt.get("signature")
    try:
        if not isinstance(sig, Mapping) or sig.get("alg") != "Ed25519":
            raise ValueError("no Ed25519 signature")
        signed = verifier.verify(canonical_json(body), _b64(sig.get("value")))
    except (ValueError, CoreError, UnicodeEncodeError):
        signed = False
    if not signed:
        problems.append(
            "回执签名不是本机登记时记下的服务器密钥所签 / the receipt is not signed by the server "
            "key pinned at enrolment"
        )
    try:
        checkpoint = open_checkpoint(str(receipt.get("checkpoint", "")), verifier, origin=origin)
    except CoreError as e:
        return [*problems, f"检查点无效 / checkpoint invalid: {e}"]
    info = receipt.get("custody_event")
    if not isinstance(info, Mapping):
        return [*problems, "缺少监管链事件 / custody_event missing"]
    try:
        event = CustodyEvent.from_json(info.get("event") or {})
    except CoreError as e:
        return [*problems, f"监管链事件无效 / custody event invalid: {e}"]
    if event.event_hash() != info.get("event_hash"):
        problems.append("事件哈希与事件内容不符 / event_hash does not match the event")
    if event.object is None or (event.object.sha256, event.object.size) != (
        expected.sha256,
        expected.size,
    ):
        problems.append(
            "监管链事件所记对象不是本机采集的文件 / the custody event is not about the captured "
            "file (SHA-256/size differ)"
        )
    if checkpoint.size != receipt.get("tree_size"):
        problems.append("检查点大小与 tree_size 不符 / checkpoint size differs from tree_size")
    try:
        proof = [_b64(h) for h in receipt.get("inclusion_proof") or []]
    except (ValueError, UnicodeEncodeError):
        return [*problems, "包含证明不是 base64 / inclusion proof is not base64"]
    index = info.get("log_index")
    if (
        not isinstance(index, int)
        or isinstance(index, bool)
        or not inclusion_ok(event.leaf_hash(), index, checkpoint.size, proof, checkpoint.root_hash)
    ):
        problems.append(
            "包含证明不成立：事件不在已签名的检查点中 / the inclusion proof does not place the "
            "event in the signed checkpoint"
        )
    return problems


def verify_receipt(
    receipt: Mapping[str, Any], log_key: str, expected: Expected, origin: str | None = None
) -> None:
    """Raise :class:`ReceiptInvalid` listing every problem unless the receipt proves ``expected``."""
    problems = receipt_problems(receipt, log_key, expected, origin)
    if problems:
        raise ReceiptInvalid(
            "回执验证失败，文件不能视为已安全入库 / the receipt does not verify; the file is not "
            "proven stored — keep the original and tell your admin",
            problems,
        )
