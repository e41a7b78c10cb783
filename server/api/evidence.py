# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Evidence reads (证据调阅): receipt, inspection, content (ranges), thumbnail, poster.

Metadata (``GET /evidence/{id}``) lives with the manifests API. Bytes are streamed
from storage in blocks after the custody event (``downloaded`` / ``viewed``) is
committed.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, url_for
from marshmallow import INCLUDE, Schema, fields

from server.api.common import Blueprint, call
from server.evidence_http import (
    CONTENT_TYPES,
    derivative_response,
    original_response,
    requested_range,
    sniffed_type,
)
from server.services import evidence_reads

blp = Blueprint("evidence", __name__, url_prefix="/evidence", description="证据调阅 Evidence reads")


class _Open(Schema):
    """A signed or stored document: the named fields are documented, nothing is dropped."""

    class Meta:
        unknown = INCLUDE
        ordered = True


class ReceiptEventSchema(_Open):
    event_id = fields.String(required=True)
    type = fields.String(required=True)
    event_hash = fields.String(required=True)
    log_index = fields.Integer(required=True)
    event = fields.Dict(required=True)


class ReceiptSignatureSchema(_Open):
    alg = fields.String(required=True)
    key = fields.String(required=True)
    value = fields.String(required=True)


class ReceiptSchema(_Open):
    """入库回执: served byte for byte as signed (check it with ``receipt_problems``)."""

    type = fields.String(required=True)
    evidence_id = fields.String(required=True)
    case_id = fields.String(required=True)
    manifest_id = fields.String(required=True)
    file_index = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    size = fields.Integer(required=True)
    received_at = fields.String(required=True)
    custody_event = fields.Nested(ReceiptEventSchema, required=True)
    checkpoint = fields.String(required=True)
    tree_size = fields.Integer(required=True)
    inclusion_proof = fields.List(fields.String(), required=True)
    signature = fields.Nested(ReceiptSignatureSchema, required=True)


class DerivativeLinkSchema(_Open):
    href = fields.String(required=True, metadata={"description": "where to fetch it"})
    media_type = fields.String(required=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    derived_from = fields.String(metadata={"description": "sha256 of the original"})


class InspectionReportSchema(_Open):
    """What inspection found (server/media/report.py ``MediaReport``), without storage keys."""

    media_type = fields.String(metadata={"description": "sniffed from the bytes"})
    kind = fields.String()
    size = fields.Integer()
    flags = fields.List(fields.Dict())
    derivatives = fields.Dict(keys=fields.String(), values=fields.Nested(DerivativeLinkSchema))


class InspectionSchema(Schema):
    status = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "pending | running | done | failed; null before any"},
    )
    report = fields.Nested(InspectionReportSchema, allow_none=True, required=True)


@blp.route("/<evidence_id>/receipt")
@blp.response(200, ReceiptSchema)
def get_receipt(evidence_id: str) -> Any:
    """The signed ingest receipt (入库回执) of a stored evidence item."""
    # returned as stored: a schema dump could reorder or drop what the signature covers
    return jsonify(call(evidence_reads.receipt, evidence_id))


@blp.route("/<evidence_id>/inspection")
@blp.response(200, InspectionSchema)
def get_inspection(evidence_id: str) -> Any:
    """Inspection status, facts and flags (media type, EXIF, duration, warnings)."""
    found = call(evidence_reads.inspection, evidence_id)
    report = found.get("report")
    if isinstance(report, dict):
        report = dict(report)
        report["derivatives"] = {
            role: {
                **{k: v for k, v in link.items() if k != "key"},  # storage keys stay inside
                "href": url_for(f"evidence.get_{role}", evidence_id=evidence_id),
            }
            for role, link in (report.get("derivatives") or {}).items()
            if role in ("thumbnail", "poster") and isinstance(link, dict)
        }
    return jsonify({"status": found.get("status"), "report": report})


@blp.route("/<evidence_id>/content")
@blp.doc(
    responses={
        "200": {
            "description": "the original, byte for byte, as an attachment; its type is "
            "sniffed from its first bytes (a declared type is never echoed)",
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in CONTENT_TYPES
            },
        },
        "206": {
            "description": "one byte range of the original",
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in CONTENT_TYPES
            },
        },
    }
)
def get_content(evidence_id: str) -> Response:
    """Download the original; supports one byte range (206, Accept-Ranges, 416)."""
    readable = call(evidence_reads.open_content, evidence_id, requested_range)
    return original_response(
        readable, media_type=sniffed_type(readable), headers={"Content-Disposition": "attachment"}
    )


def _derivative(evidence_id: str, role: str) -> Response:
    readable = call(evidence_reads.open_derivative, evidence_id, role)
    return derivative_response(readable, media_type=readable.media_type)


@blp.route("/<evidence_id>/thumbnail")
def get_thumbnail(evidence_id: str) -> Response:
    """The orientation-corrected thumbnail of a photo (records a ``viewed`` event)."""
    return _derivative(evidence_id, "thumbnail")


@blp.route("/<evidence_id>/poster")
def get_poster(evidence_id: str) -> Response:
    """The poster frame of a video (records a ``viewed`` event)."""
    return _derivative(evidence_id, "poster")
