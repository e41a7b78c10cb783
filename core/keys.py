"""Device and log keys: Ed25519 and ECDSA P-256 (ES256).

Formats (all text, so they fit JSON and databases):

* private keys: PKCS#8 PEM (optionally password-encrypted) — :func:`private_key_to_pem`;
* public keys: PEM (:func:`public_key_to_pem`) or the compact form used in manifests,
  enrolment and case files — :func:`export_public_key`: Ed25519 → base64 of the 32 raw
  bytes (``"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="``); P-256 → base64 of the
  SubjectPublicKeyInfo DER (``"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE…"``);
* ``key_id``: ``sha256:<hex>`` of exactly those exported public-key bytes (raw 32 bytes
  for Ed25519, SPKI DER for P-256) — stable, and computable by anyone from the key;
* signatures: Ed25519 (RFC 8032, 64 bytes) or ES256 = ECDSA P-256 over SHA-256 encoded
  as raw ``r || s`` (32 + 32 bytes, big-endian — the JOSE/WebCrypto form), so Android/iOS
  keystores (after DER→raw conversion) and JavaScript clients interoperate.

Verification helpers live in :mod:`core.verify` and are re-exported here.
"""

from __future__ import annotations

from typing import Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from core.verify import (
    ALGORITHMS,
    PublicKey,
    SignatureInvalid,
    algorithm_of,
    export_public_key,
    key_id,
    load_public_key,
    verify_signature,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "PrivateKey",
    "PublicKey",
    "algorithm_of",
    "export_public_key",
    "generate_private_key",
    "key_id",
    "load_private_key_pem",
    "load_public_key",
    "load_public_key_pem",
    "private_key_to_pem",
    "public_key_to_pem",
    "sign",
    "verify_signature",
]

Algorithm = Literal["Ed25519", "ES256"]
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def generate_private_key(alg: Algorithm = "Ed25519") -> PrivateKey:
    """A fresh private key for ``alg`` (``"Ed25519"`` or ``"ES256"``)."""
    if alg == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    raise SignatureInvalid(
        f"不支持的算法 {alg!r} / unsupported algorithm {alg!r}; use Ed25519 or ES256"
    )


def _checked(key: object) -> PrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise SignatureInvalid(
        "只支持 Ed25519 与 P-256 私钥 / only Ed25519 and P-256 private keys are supported"
    )


def private_key_to_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM of ``key``, encrypted with ``password`` when given."""
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return _checked(key).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
    )


def load_private_key_pem(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Load a PKCS#8 (or traditional) PEM private key; Ed25519 or P-256 only."""
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as e:
        raise SignatureInvalid(f"无法读取私钥 / cannot read the private key: {e}") from None
    return _checked(key)


def public_key_to_pem(key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of a public key."""
    algorithm_of(key)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key_pem(data: bytes) -> PublicKey:
    """Load a SubjectPublicKeyInfo PEM public key; Ed25519 or P-256 only."""
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise SignatureInvalid(f"无法读取公钥 / cannot read the public key: {e}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise SignatureInvalid(
            "只支持 Ed25519 与 P-256 公钥 / only Ed25519 and P-256 keys are supported"
        )
    algorithm_of(key)
    return key


def sign(key: PrivateKey, message: bytes) -> bytes:
    """Sign ``message``: Ed25519 (64 bytes) or ES256 as raw ``r || s`` (64 bytes)."""
    key = _checked(key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
