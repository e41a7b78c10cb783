"""The server's Ed25519 log-signing key (signs custody-log checkpoints), kept as PEM 0600."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class SigningKeyInvalid(Exception):
    """The key file exists but is not an unencrypted Ed25519 private key in PEM."""


def load_signing_key(path: Path) -> Ed25519PrivateKey | None:
    """The key at ``path``, or ``None`` when the file does not exist yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyInvalid(
            f"签名密钥文件无法读取 (log-signing key unreadable): {path}: {exc}"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyInvalid(f"签名密钥必须是 Ed25519 (log-signing key must be Ed25519): {path}")
    return key


def create_signing_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """Load the key at ``path`` or create it (mode 0600, never overwriting); ``(key, created)``."""
    existing = load_signing_key(path)
    if existing is not None:
        return existing, False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: two processes initialising at once cannot overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        loaded = load_signing_key(path)
        assert loaded is not None
        return loaded, False
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return key, True
