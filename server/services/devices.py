"""Capture devices (采集设备) and their enrolment.

1. An admin registers a device for an owner → a one-time enrolment code (shown once,
   stored hashed, valid :data:`ENROLMENT_TTL`).
2. The device makes its key pair and presents the code with its public key (Ed25519, or
   ES256 for phone keystores without Ed25519) → the device is active and receives its
   device token (shown once). The code cannot be used again.
3. An admin can revoke the device: its tokens stop working at once.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from core.errors import SignatureInvalid
from core.keys import export_public_key, key_id, load_public_key
from server.auth import Principal, hash_secret, new_token, require_admin, require_person
from server.errors import Conflict, Invalid, NotFound, Unauthorized
from server.models import ApiToken, Device, DeviceStatus, Role, User, utcnow
from server.services.unit_of_work import UnitOfWork

log = logging.getLogger("casetrail.security")

ENROLMENT_TTL = timedelta(hours=72)
KEY_ALGORITHMS = ("Ed25519", "ES256")


@dataclass(frozen=True)
class RegisteredDevice:
    """A pending device and its one-time enrolment code (exists only in this value)."""

    device: Device
    enrolment_code: str


@dataclass(frozen=True)
class EnrolledDevice:
    """An enrolled device and its device token (exists only in this value)."""

    device: Device
    token: str


def new_enrolment_code() -> str:
    """20 base32 characters in groups of four (100 random bits), easy to type."""
    raw = base64.b32encode(secrets.token_bytes(15)).decode()[:20]
    return "-".join(raw[i : i + 4] for i in range(0, 20, 4))


def _normalise_code(code: str) -> str:
    return code.strip().upper().replace(" ", "")


def add_device(uow: UnitOfWork, owner: User, name: str) -> RegisteredDevice:
    """Register a device for ``owner`` (no permission check; CLI and API)."""
    if not name.strip():
        raise Invalid(errors={"name": ["设备名称不能为空 (device name must not be empty)"]})
    if not owner.active:
        raise Conflict("设备所有人已停用 (the owner's account is deactivated)")
    code = new_enrolment_code()
    device = Device(
        agency_id=owner.agency_id,
        owner_user_id=owner.id,
        name=name.strip(),
        status=DeviceStatus.PENDING.value,
        enrol_code_hash=hash_secret(code),
        enrol_code_expires_at=utcnow() + ENROLMENT_TTL,
    )
    uow.session.add(device)
    uow.session.flush()
    return RegisteredDevice(device, code)


def register_device(
    uow: UnitOfWork, principal: Principal, owner_user_id: str, name: str
) -> RegisteredDevice:
    """An admin registers a device for a user of their agency."""
    require_admin(principal)
    owner = uow.session.get(User, owner_user_id)
    if owner is None or owner.agency_id != principal.agency_id:
        raise Invalid(errors={"owner_user_id": ["本机关没有此用户 (no such user in your agency)"]})
    return add_device(uow, owner, name)


def enrol_device(uow: UnitOfWork, enrolment_code: str, alg: str, public_key: str) -> EnrolledDevice:
    """The device presents its code and public key; returns its token. Codes work once."""
    errors: dict[str, list[str]] = {}
    key = None
    if alg not in KEY_ALGORITHMS:
        errors["alg"] = [f"须为 {' 或 '.join(KEY_ALGORITHMS)} (must be Ed25519 or ES256)"]
    else:
        try:
            key = load_public_key(alg, public_key)
        except SignatureInvalid as exc:
            errors["public_key"] = [str(exc)]
    if errors:
        raise Invalid(errors=errors)
    session = uow.session
    device = session.scalar(
        select(Device)
        .where(Device.enrol_code_hash == hash_secret(_normalise_code(enrolment_code)))
        .with_for_update(of=Device)
    )
    if (
        device is None
        or device.status != DeviceStatus.PENDING
        or device.enrol_code_expires_at is None
        or device.enrol_code_expires_at <= utcnow()
    ):
        raise Unauthorized(
            "注册码无效、已使用或已过期，请管理员重新登记设备 "
            "(enrolment code invalid, used or expired: ask an admin to register the device again)"
        )
    assert key is not None
    kid = key_id(key)
    if session.scalar(select(Device.id).where(Device.key_id == kid)):
        raise Conflict(
            "此公钥已被另一台设备使用，请生成新密钥 (this public key belongs to another device; "
            "generate a new key pair)",
            errors={"public_key": ["已被使用 (already enrolled)"]},
        )
    now = utcnow()
    device.status = DeviceStatus.ACTIVE.value
    device.public_key = export_public_key(key)
    device.key_alg = alg
    device.key_id = kid
    device.enrol_code_hash = None
    device.enrol_code_expires_at = None
    device.enrolled_at = now
    token, digest, prefix = new_token()
    session.add(
        ApiToken(
            token_hash=digest, prefix=prefix, name=f"device {device.name}", device_id=device.id
        )
    )
    session.flush()
    return EnrolledDevice(device, token)


def list_devices(uow: UnitOfWork, principal: Principal) -> list[Device]:
    """Admins: every device of the agency. Other people: their own devices."""
    require_person(principal)
    query = select(Device).where(Device.agency_id == principal.agency_id)
    if principal.role != Role.ADMIN:
        query = query.where(Device.owner_user_id == principal.user_id)
    return list(uow.session.scalars(query.order_by(Device.created_at)))


def get_device(uow: UnitOfWork, principal: Principal, device_id: str) -> Device:
    """One device: admins of its agency, its owner, or the device itself."""
    device = uow.session.get(Device, device_id)
    visible = device is not None and device.agency_id == principal.agency_id
    if visible and principal.is_device:
        visible = principal.device_id == device_id
    elif visible and principal.role != Role.ADMIN:
        visible = device is not None and device.owner_user_id == principal.user_id
    if not visible or device is None:
        raise NotFound(f"设备不存在 (device {device_id} not found)")
    return device


def revoke_device(uow: UnitOfWork, principal: Principal, device_id: str) -> Device:
    """An admin revokes a device; its tokens stop working. Revoking twice is harmless."""
    require_admin(principal)
    return retire_device(uow, get_device(uow, principal, device_id))


def retire_device(uow: UnitOfWork, device: Device) -> Device:
    """Revoke ``device`` and its tokens (no permission check; CLI and API)."""
    now = utcnow()
    if device.status != DeviceStatus.REVOKED:
        device.status = DeviceStatus.REVOKED.value
        device.revoked_at = now
        device.enrol_code_hash = None
    for token in uow.session.scalars(
        select(ApiToken).where(ApiToken.device_id == device.id, ApiToken.revoked_at.is_(None))
    ):
        token.revoked_at = now
    uow.session.flush()
    return device


class EnrolmentThrottle:
    """Refuses enrolment attempts from an address after too many wrong codes.

    Codes carry 100 bits, so guessing is hopeless; the throttle keeps it from being free
    and makes it visible: every wrong code is logged (``casetrail.security``), and an
    address with :attr:`limit` wrong codes within :attr:`window_s` seconds is refused
    until the oldest of them leaves the window (the caller answers 429 with
    ``Retry-After``). Counted per server process, in memory.
    """

    def __init__(
        self,
        limit: int = 10,
        window_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self.max_addresses = max_addresses
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int:
        """Seconds ``address`` must wait before its next attempt; 0 when it may try now."""
        with self._lock:
            failures = self._recent(address)
            if len(failures) < self.limit:
                return 0
            wait = int(failures[0] + self.window_s - self.clock()) + 1
        log.warning("enrolment throttled for %s (%d wrong codes)", address, len(failures))
        return max(1, wait)

    def failed(self, address: str) -> None:
        """Count one wrong enrolment code from ``address``."""
        with self._lock:
            if address not in self._failures and len(self._failures) >= self.max_addresses:
                self._failures.pop(next(iter(self._failures)))  # forget the oldest address
            failures = self._recent(address)
            failures.append(self.clock())
            self._failures[address] = failures
            count = len(failures)
        log.warning("wrong enrolment code from %s (%d in %gs)", address, count, self.window_s)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.get(address, deque())
        horizon = self.clock() - self.window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures
