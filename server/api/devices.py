# mypy: disable-error-code="untyped-decorator"
# (flask-smorest ships without type hints; its decorators keep the view signatures.)
"""Capture devices and their enrolment: ``/api/v1/devices``."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_smorest import abort
from marshmallow import fields, validate

from server.api.common import NOT_BLANK, BaseSchema, Blueprint, call, call_anonymous, created
from server.errors import Unauthorized
from server.services import devices

blp = Blueprint("devices", __name__, url_prefix="/devices", description="采集设备 Devices")


class DeviceSchema(BaseSchema):
    id = fields.String(dump_only=True)
    agency_id = fields.String(dump_only=True)
    owner_user_id = fields.String(required=True)
    name = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata=NOT_BLANK
    )
    status = fields.String(dump_only=True, metadata={"description": "pending | active | revoked"})
    key_alg = fields.String(dump_only=True, allow_none=True)
    key_id = fields.String(dump_only=True, allow_none=True)
    public_key = fields.String(dump_only=True, allow_none=True)
    device_seq_head = fields.Integer(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    enrolled_at = fields.DateTime(dump_only=True, allow_none=True)
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)


class RegisteredDeviceSchema(BaseSchema):
    device = fields.Nested(DeviceSchema)
    enrolment_code = fields.String(metadata={"description": "one-time code; shown only here"})
    expires_at = fields.DateTime()


class EnrolSchema(BaseSchema):
    enrolment_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    alg = fields.String(required=True, validate=validate.OneOf(devices.KEY_ALGORITHMS))
    public_key = fields.String(
        required=True,
        validate=validate.Length(min=1, max=512),
        metadata={"description": "Ed25519: base64 of 32 raw bytes; ES256: base64 SPKI DER"},
    )


class EnrolledDeviceSchema(BaseSchema):
    device = fields.Nested(DeviceSchema)
    token = fields.String(metadata={"description": "the device token; shown only here"})


@blp.route("")
@blp.response(200, DeviceSchema(many=True))
def list_devices() -> Any:
    """List devices: an admin sees the agency's, others their own."""
    return call(devices.list_devices)


@blp.route("", methods=["POST"])
@blp.arguments(DeviceSchema)
@blp.response(201, RegisteredDeviceSchema)
def register_device(body: dict[str, Any]) -> Any:
    """Register a device for a user (admin); returns the one-time enrolment code."""
    registered = call(devices.register_device, body["owner_user_id"], body["name"])
    return created(
        {
            "device": registered.device,
            "enrolment_code": registered.enrolment_code,
            "expires_at": registered.device.enrol_code_expires_at,
        }
    )


@blp.route("/enrol", methods=["POST"])
@blp.arguments(EnrolSchema)
@blp.response(201, EnrolledDeviceSchema)
@blp.doc(security=[])
@blp.alt_response(429, description="too many wrong codes from this address; see Retry-After")
def enrol_device(body: dict[str, Any]) -> Any:
    """Enrol a device with its one-time code and public key; returns the device token."""
    throttle: devices.EnrolmentThrottle = current_app.extensions.setdefault(
        "casetrail.enrolment_throttle", devices.EnrolmentThrottle()
    )
    address = request.remote_addr or "unknown"
    wait = throttle.retry_after(address)
    if wait:
        abort(
            429,
            message=f"注册码错误次数过多，请 {wait} 秒后再试 "
            f"(too many wrong enrolment codes from this address; retry in {wait} s)",
            headers={"Retry-After": str(wait)},
        )
    try:
        enrolled = call_anonymous(
            devices.enrol_device, body["enrolment_code"], body["alg"], body["public_key"]
        )
    except Unauthorized:
        throttle.failed(address)
        raise
    return created({"device": enrolled.device, "token": enrolled.token})


@blp.route("/<device_id>")
@blp.response(200, DeviceSchema)
def get_device(device_id: str) -> Any:
    """Read a device (admin, its owner, or the device itself)."""
    return call(devices.get_device, device_id)


@blp.route("/<device_id>/revoke", methods=["POST"])
@blp.response(200, DeviceSchema)
def revoke_device(device_id: str) -> Any:
    """Revoke a device and its tokens (admin)."""
    return call(devices.revoke_device, device_id)
