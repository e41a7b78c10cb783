# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Capture manifests (采集清单) and evidence metadata: register, list a case's, read one item."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from marshmallow import fields

from server.api.common import BaseSchema, Blueprint, call
from server.services import manifests

blp = Blueprint("manifests", __name__, url_prefix="", description="采集清单 Capture manifests")


class SignedManifestSchema(BaseSchema):
    manifest = fields.Dict(
        required=True, metadata={"description": "the capture manifest object (core.manifest)"}
    )
    signature = fields.Dict(
        required=True, metadata={"description": '{"alg", "key_id", "value" (base64)}'}
    )


class EvidenceSchema(BaseSchema):
    evidence_id = fields.String()
    case_id = fields.String()
    file_index = fields.Integer()
    name = fields.String(metadata={"description": "client file name (metadata only)"})
    size = fields.Integer(metadata={"description": "expected size, bytes"})
    sha256 = fields.String(metadata={"description": "expected sha256:<hex>"})
    media_type = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "expected | uploading | stored | mismatch"})
    sha512 = fields.String(allow_none=True)
    received_at = fields.DateTime(allow_none=True)


class RegistrationSchema(BaseSchema):
    id = fields.String()
    manifest_id = fields.String()
    case_id = fields.String()
    case_no = fields.String(metadata={"description": "案号"})
    device_id = fields.String()
    device_seq = fields.Integer()
    manifest_hash = fields.String()
    received_at = fields.DateTime()
    verification = fields.Dict(
        metadata={"description": "signature result and device chain: linked | gap | filled_gap"}
    )
    upload_url = fields.String(metadata={"description": "tus endpoint for the expected files"})
    files = fields.List(fields.Nested(EvidenceSchema))


@blp.route("/manifests", methods=["POST"])
@blp.arguments(SignedManifestSchema)
@blp.response(201, RegistrationSchema)
@blp.alt_response(200, schema=RegistrationSchema, description="the same manifest again")
def register_manifest(body: dict[str, Any]) -> Any:
    """Register a signed capture manifest; answers the files the server now expects."""
    reg = call(manifests.register_manifest, body)
    payload = RegistrationSchema().dump(manifests.registration_json(reg))
    response: Response = jsonify(payload)
    response.status_code = 201 if reg.created else 200
    return response


@blp.route("/cases/<case_id>/manifests")
@blp.response(200, RegistrationSchema(many=True))
def case_manifests(case_id: str) -> Any:
    """The capture manifests registered for a case, with their files."""
    return [manifests.registration_json(r) for r in call(manifests.case_manifests, case_id)]


@blp.route("/evidence/<evidence_id>")
@blp.response(200, EvidenceSchema)
def get_evidence(evidence_id: str) -> Any:
    """Metadata of one evidence item (no bytes)."""
    return manifests.evidence_json(call(manifests.get_evidence, evidence_id))
