"""The device key pair (设备密钥): made once at enrolment, kept in the home with mode 0600."""

from __future__ import annotations

import os
import stat

from core.errors import SignatureInvalid
from core.keys import (
    Algorithm,
    PrivateKey,
    algorithm_of,
    export_public_key,
    generate_private_key,
    key_id,
    load_private_key_pem,
    private_key_to_pem,
)
from field_client.config import FieldHome, write_private
from field_client.errors import HomeError, NotEnrolled

__all__ = ["DeviceKey", "create_device_key", "load_device_key"]


class DeviceKey:
    """The device's private key with its algorithm, key id and exported public key."""

    def __init__(self, private_key: PrivateKey) -> None:
        self.private_key = private_key
        public = private_key.public_key()
        self.public_key = export_public_key(public)
        self.key_id = key_id(public)
        self.alg: Algorithm = "Ed25519" if algorithm_of(public) == "Ed25519" else "ES256"


def create_device_key(home: FieldHome, alg: Algorithm = "Ed25519") -> DeviceKey:
    """Make a fresh key pair and store it in ``home`` (mode 0600).

    An existing key is reused rather than replaced, so a failed enrolment can simply be
    retried; an enrolled device's key is never overwritten.
    """
    home.ensure()
    if home.key_file.exists():
        return load_device_key(home)
    key = generate_private_key(alg)
    write_private(home.key_file, private_key_to_pem(key))
    return DeviceKey(key)


def load_device_key(home: FieldHome) -> DeviceKey:
    """Load the device key; refuses a key file others can read."""
    try:
        st = os.stat(home.key_file)
        data = home.key_file.read_bytes()
    except FileNotFoundError:
        raise NotEnrolled(
            "找不到设备密钥 / no device key; run `casetrail-field enroll` first"
        ) from None
    except OSError as e:
        raise HomeError(f"无法读取设备密钥 / cannot read the device key: {e.strerror}") from None
    if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
        raise HomeError(
            f"设备私钥 {home.key_file} 权限过宽 / the device key is readable by others "
            f"(mode {stat.S_IMODE(st.st_mode):o}); fix with: chmod 600 {home.key_file}"
        )
    try:
        return DeviceKey(load_private_key_pem(data))
    except SignatureInvalid as e:
        raise HomeError(f"设备密钥损坏 / the device key is damaged: {e}") from None
