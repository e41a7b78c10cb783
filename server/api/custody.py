# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Custody log (监管链): a case's events, checkpoints, the log key, inclusion and consistency proofs.

``GET /log/checkpoint`` signs a checkpoint on demand when the log grew; periodic
checkpoints are signed by each server process's background thread
(:meth:`server.components.Components.start_background`), never inside a request.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from flask import Response
from marshmallow import fields, validate

from server.api.common import BaseSchema, Blueprint, PageQuerySchema, QuerySchema, call
from server.components import components
from server.services import custody, custody_proofs
from server.services.unit_of_work import UnitOfWork

blp = Blueprint("custody", __name__, url_prefix="", description="监管链 Custody log")


def _signer() -> Any:
    return components().signer()


class EventPageQuerySchema(PageQuerySchema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=custody.MAX_PAGE))


class ProofQuerySchema(QuerySchema):
    size = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0),
        metadata={"description": "tree size to prove against (default: a current checkpoint)"},
    )


class ConsistencyQuerySchema(QuerySchema):
    old = fields.Integer(required=True, validate=validate.Range(min=0))
    new = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0),
        metadata={"description": "default: the size of a current checkpoint"},
    )


class ActorSchema(BaseSchema):
    id = fields.String()
    role = fields.String()


class EventSchema(BaseSchema):
    event_id = fields.String()
    case_id = fields.String()
    case_seq = fields.Integer()
    case_prev = fields.String(allow_none=True)
    type = fields.String()
    time = fields.String()
    actor = fields.Nested(ActorSchema)
    object = fields.Dict(allow_none=True)
    details = fields.Dict()


class StoredEventSchema(BaseSchema):
    event = fields.Nested(EventSchema, metadata={"description": "the event as hashed (JCS)"})
    event_hash = fields.String(metadata={"description": "sha256:<hex> of the canonical event"})
    leaf_hash = fields.String(metadata={"description": "RFC 6962 leaf hash, hex"})
    log_index = fields.Integer(metadata={"description": "leaf index in the global log"})


class EventPageSchema(BaseSchema):
    items = fields.List(fields.Nested(StoredEventSchema))
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()


class CheckpointSchema(BaseSchema):
    size = fields.Integer()
    root_hash = fields.String(metadata={"description": "base64"})
    note = fields.String(metadata={"description": "C2SP signed note text"})
    created_at = fields.String()


class PublicKeySchema(BaseSchema):
    origin = fields.String()
    verifier_key = fields.String(metadata={"description": "C2SP signed-note verifier key"})
    public_key_pem = fields.String()


class InclusionProofSchema(BaseSchema):
    event_id = fields.String()
    leaf_index = fields.Integer()
    tree_size = fields.Integer()
    hashes = fields.List(fields.String(), metadata={"description": "base64, leaf upward"})
    event = fields.Nested(EventSchema)
    checkpoint = fields.Nested(CheckpointSchema, allow_none=True)


class ConsistencyProofSchema(BaseSchema):
    old_size = fields.Integer()
    new_size = fields.Integer()
    old_root = fields.String()
    new_root = fields.String()
    hashes = fields.List(fields.String())


@blp.route("/cases/<case_id>/custody")
@blp.arguments(EventPageQuerySchema, location="query")
@blp.response(200, EventPageSchema)
def case_custody(query: dict[str, Any], case_id: str) -> Any:
    """A case's custody events in chain order, with hashes and log indices."""
    page = call(custody.case_events, case_id, limit=query["limit"], offset=query["offset"])
    return {
        "items": [e.to_json() for e in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


def _current(uow: UnitOfWork, principal: Any, signer: Any) -> custody.StoredCheckpoint:
    return custody.current_checkpoint(uow, signer)


@blp.route("/log/checkpoint")
@blp.response(200, CheckpointSchema)
def checkpoint() -> Any:
    """The latest signed checkpoint (signed now if the log grew since)."""
    return call(_current, _signer()).to_json()


@blp.route("/log/checkpoint.txt")
@blp.doc(
    responses={
        "200": {
            "description": "C2SP signed-note checkpoint text",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
)
def checkpoint_text() -> Any:
    """The latest signed checkpoint as plain signed-note text."""
    note = call(_current, _signer()).note
    return Response(note, mimetype="text/plain")


@blp.route("/log/public-key")
@blp.doc(security=[])
@blp.response(200, PublicKeySchema)
def public_key() -> Any:
    """The log's verifier key (signed-note key string) and its Ed25519 public key in PEM."""
    signer = _signer()
    pem = signer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "origin": signer.name,
        "verifier_key": signer.verifier().key_string(),
        "public_key_pem": pem.decode("ascii"),
    }


@blp.route("/log/events/<event_id>/proof")
@blp.arguments(ProofQuerySchema, location="query")
@blp.response(200, InclusionProofSchema)
def inclusion_proof(query: dict[str, Any], event_id: str) -> Any:
    """Inclusion proof of an event against a checkpoint size (default: the latest)."""
    return call(custody_proofs.event_inclusion_proof, event_id, _signer(), query["size"]).to_json()


@blp.route("/log/consistency")
@blp.arguments(ConsistencyQuerySchema, location="query")
@blp.response(200, ConsistencyProofSchema)
def consistency(query: dict[str, Any]) -> Any:
    """Consistency proof that the log of size ``old`` is a prefix of the log of size ``new``."""
    return call(
        custody_proofs.log_consistency_proof, query["old"], query["new"], _signer()
    ).to_json()
