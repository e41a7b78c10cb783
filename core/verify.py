"""CaseTrail stand-alone verifier: every check an archivist needs, years later, offline.

This one file needs ONLY the Python standard library and ``cryptography``. It is copied
verbatim into every exported case file and run there, so it imports nothing from
``core``; the rest of ``core`` imports its verification primitives from here and adds
production (signing, proof generation, appending) on top. The error classes of the
custody part of the core error tree are defined here for the same reason and
re-exported by ``core.errors``::

    CoreError
    ├── CanonicalJSONError     a value has no canonical form (a float, a lone surrogate, …)
    ├── ManifestInvalid        a capture manifest is malformed (.problems)
    ├── SignatureInvalid       a signature does not verify / unsupported algorithm or key
    ├── ProofInvalid           an inclusion or consistency proof does not verify
    └── CheckpointInvalid      a checkpoint note is malformed or its signature fails

What is in here, each format with a small example:

* **Canonical JSON** (RFC 8785 / JCS for CaseTrail's float-free subset):
  ``canonical_json({"b": [1, True, None], "a": "é"})`` → ``b'{"a":"\\xc3\\xa9","b":[1,true,null]}'``
  (keys sorted by UTF-16 code units, no whitespace, UTF-8, integers only within ±(2**53-1)).
* **Digests**: ``sha256_digest(b"")`` → ``"sha256:e3b0c442…b855"``.
* **RFC 6962 / RFC 9162 §2 Merkle hashing**: ``leaf_hash(d) = SHA-256(0x00 || d)``,
  ``node_hash(l, r) = SHA-256(0x01 || l || r)``; inclusion and consistency proof
  verification exactly as RFC 9162 §2.1.3.2 and §2.1.4.2.
* **Signed notes and checkpoints** (C2SP signed-note + tlog-checkpoint)::

      casetrail.example.gov.cn/log
      8
      XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=          (base64 of the 32-byte root)

      — casetrail.example.gov.cn/log Az3grkaT…base64(key hash || Ed25519 signature)…

  verifier key string: ``<name>+<8 hex key hash>+<base64(0x01 || 32-byte public key)>``,
  key hash = first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``.
* **Device keys and signatures**: ``Ed25519`` public keys as base64 of the 32 raw bytes,
  ``ES256`` (ECDSA P-256 + SHA-256) public keys as base64 of the SPKI DER; ES256
  signatures are raw ``r || s`` (64 bytes, JOSE style). ``key_id`` is
  ``sha256:<hex>`` of those exported public-key bytes.
* **Capture-manifest signatures**: the wire form
  ``{"manifest": {...}, "signature": {"alg": "Ed25519", "key_id": "sha256:…", "value": "<b64>"}}``;
  the signature is over ``canonical_json(manifest)``.
* **Hash chains**: per case (``case_seq``/``case_prev`` of custody events) and per device
  (``device_seq``/``device_prev`` of capture manifests); ``*_prev`` is the
  ``sha256:<hex>`` of the previous item's canonical bytes, ``null`` for seq 1.
* :func:`verify_case_file`: everything above over one case file; returns EVERY problem.
* :func:`verify_bag`: an exported BagIt 1.0 case file (directory, ``.tar`` or ``.zip``)
  in full — every payload file re-hashed, tag manifests, the case file inside it.

Run stand-alone: ``python verify.py BAG`` (or, inside a bag, ``python
casetrail/verify.py``), or ``python verify.py <dir>`` where ``<dir>`` holds
``case.json`` (see :func:`main`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "ALGORITHMS",
    "BagFiles",
    "BagReport",
    "EMPTY_ROOT",
    "FILES_TSV_COLUMNS",
    "MAX_SAFE_INTEGER",
    "CanonicalJSONError",
    "ChainBreak",
    "Checkpoint",
    "CheckpointInvalid",
    "CoreError",
    "DevicePublicKey",
    "ManifestInvalid",
    "NoteVerifier",
    "Problem",
    "ProofInvalid",
    "PublicKey",
    "SEALED_MANIFESTS",
    "SEAL_PATH",
    "SignatureInvalid",
    "canonical_json",
    "check_case_chain",
    "check_device_chain",
    "consistency_ok",
    "export_public_key",
    "inclusion_ok",
    "key_id",
    "leaf_hash",
    "load_public_key",
    "node_hash",
    "note_key_hash",
    "open_checkpoint",
    "open_note",
    "parse_json",
    "render_case_file_guide",
    "seal_body",
    "sha256_digest",
    "verify_bag",
    "verify_case_file",
    "verify_consistency",
    "verify_inclusion",
    "verify_manifest_signature",
    "verify_signature",
]

# --------------------------------------------------------------------------- errors


class CoreError(Exception):
    """Base of every error raised by ``core`` (re-exported by ``core.errors``)."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[str, ...] = tuple(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class CanonicalJSONError(CoreError):
    """A value has no RFC 8785 canonical form in CaseTrail (floats, non-string keys, …)."""


class ManifestInvalid(CoreError):
    """A capture manifest is malformed; ``problems`` lists every fault."""


class SignatureInvalid(CoreError):
    """A signature does not verify, or its algorithm or key is not supported."""


class ProofInvalid(CoreError):
    """An inclusion or consistency proof does not verify."""


class CheckpointInvalid(CoreError):
    """A checkpoint note is malformed or its signature does not verify."""


# --------------------------------------------------------------------------- canonical JSON

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer magnitude allowed in CaseTrail JSON (I-JSON / RFC 8785 safe range)."""

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    return _ESCAPES.get(c) or f"\\u{ord(c):04x}"


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _encode_string(s: str, where: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJSONError(
            f"{where}: 字符串含孤立代理码元，不是合法 Unicode / string contains a lone surrogate, "
            "not valid Unicode; fix the producer"
        ) from None
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, s) + '"'


def _utf16_key(k: str) -> bytes:
    return k.encode("utf-16-be", "surrogatepass")


def _encode(value: object, where: str, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalJSONError(
                f"{where}: 整数 {value} 超出 ±(2^53-1) / integer outside ±(2^53-1); "
                "send it as a string"
            )
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise CanonicalJSONError(
            f"{where}: 签名 JSON 中不允许浮点数 {value!r} / floats are not allowed in signed JSON; "
            "send the number as a decimal string (e.g. coordinates)"
        )
    elif isinstance(value, str):
        out.append(_encode_string(value, where))
    elif isinstance(value, Mapping):
        for k in value:
            if not isinstance(k, str):
                raise CanonicalJSONError(
                    f"{where}: 对象键必须是字符串 / object key {k!r} is not a string"
                )
        out.append("{")
        for i, k in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(_encode_string(k, where))
            out.append(":")
            _encode(value[k], f"{where}.{k}", out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, f"{where}[{i}]", out)
        out.append("]")
    else:
        raise CanonicalJSONError(
            f"{where}: {type(value).__name__} 不是 JSON 值 / is not a JSON value"
        )


def _reference_canonical_json(value: object) -> bytes:
    # The definition of canonical_json: slow, but every value and every error goes
    # through rules written out above. The fast path must agree with it byte for byte.
    out: list[str] = []
    _encode(value, "$", out)
    return "".join(out).encode("utf-8")


# The stdlib's C encoder with these settings writes exactly JCS for the values
# _stdlib_writes_jcs accepts: its string escaping is JCS's (only " \\ and U+0000-U+001F,
# with \b \t \n \f \r short and the rest as lowercase \u00xx; U+007F, U+2028/2029 and
# non-BMP characters literal), exact ints and bools print as JCS does, and with no key
# above U+FFFF its code-point key sort is the UTF-16 code-unit sort JCS asks for.
# (Measured on a custody event: 15.4 µs by the reference, 4.5 µs this way.)
_STDLIB_JCS = json.JSONEncoder(
    ensure_ascii=False,
    check_circular=False,  # a cycle never gets here: _stdlib_writes_jcs recurses into it
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
)


def _stdlib_writes_jcs(value: object) -> bool:
    # Exact types only: subclasses (StrEnum, IntEnum, OrderedDict, other Mappings) take
    # the reference path, so an overridden __getitem__, items() or __lt__ can never make
    # the two paths disagree; CaseTrail's own payloads hold plain types (custody events
    # carry str(EventType)). Lone surrogates are not looked for here: encoding the output
    # to UTF-8 finds them.
    items: Iterable[object]
    if type(value) is dict:
        for k in value:
            if type(k) is not str or not (k.isascii() or max(k) <= "\uffff"):
                return False
        items = value.values()
    elif type(value) is list or type(value) is tuple:
        items = value
    else:
        items = (value,)
    for v in items:
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                continue
            return False
        if (t is dict or t is list or t is tuple) and _stdlib_writes_jcs(v):
            continue
        return False
    return True


def canonical_json(value: object) -> bytes:
    """Return the RFC 8785 (JCS) canonical UTF-8 bytes of a float-free JSON value.

    Accepts ``None``, ``bool``, ``int`` within ±(2**53-1), ``str``, mappings with string
    keys (sorted by UTF-16 code units) and lists/tuples. Raises
    :class:`CanonicalJSONError` naming the offending place for anything else — floats
    in particular: CaseTrail sends coordinates and other decimals as strings.

    >>> canonical_json({"b": 1, "a": [True, None, "x"]})
    b'{"a":[true,null,"x"],"b":1}'
    """
    # Every photo upload canonicalises ~8 values, so the common case goes through the
    # stdlib's C encoder. Anything it might write differently, and every error, takes the
    # reference path so the bytes and the messages stay exactly those of the reference.
    try:
        if _stdlib_writes_jcs(value):
            return _STDLIB_JCS.encode(value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the reference names where it is
        pass
    except RecursionError:  # a cycle or very deep nesting: the reference raises as before
        pass
    return _reference_canonical_json(value)


def _reject_constant(name: str) -> Any:
    raise CanonicalJSONError(f"JSON 中不允许 {name} / {name} is not allowed in JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise CanonicalJSONError(f"JSON 对象键重复 / duplicate object key {k!r}")
        d[k] = v
    return d


def parse_json(data: bytes | str) -> Any:
    """Parse JSON text strictly: UTF-8, no duplicate keys, no NaN/Infinity.

    Floats are returned as Python ``float`` so that validators can report every place
    they occur; :func:`canonical_json` refuses them. Raises :class:`CanonicalJSONError`.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CanonicalJSONError(
                f"JSON 不是合法 UTF-8 / JSON is not valid UTF-8: {e}"
            ) from None
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise CanonicalJSONError(f"JSON 语法错误 / malformed JSON: {e}") from None


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data`` — CaseTrail's digest notation."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def is_digest(value: object) -> bool:
    """True when ``value`` is a ``sha256:<64 lowercase hex>`` string."""
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


# --------------------------------------------------------------------------- Merkle (RFC 9162 §2)

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""Root hash of the empty tree: SHA-256 of the empty string."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_hashes(proof: Sequence[bytes], *named: tuple[str, bytes]) -> None:
    for name, h in named:
        if len(h) != HASH_SIZE:
            raise ProofInvalid(
                f"{name} 长度为 {len(h)} 字节，应为 32 / {name} is {len(h)} bytes, not 32"
            )
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise ProofInvalid(f"证明第 {i} 项长度错误 / proof[{i}] is {len(p)} bytes, not 32")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` is at ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2, step by step. ``proof`` is the audit path from the leaf upward
    (as made by :func:`core.merkle.inclusion_proof`). Raises :class:`ProofInvalid`.
    """
    _check_hashes(proof, ("leaf hash", leaf), ("root", root))
    if not 0 <= index < size:
        raise ProofInvalid(
            f"叶序号 {index} 不在大小为 {size} 的树中 / leaf index {index} is not in a tree of size {size}"
        )
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofInvalid("包含证明过长 / inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalid("包含证明过短 / inclusion proof is too short")
    if r != root:
        raise ProofInvalid(
            "包含证明算出的根与检查点不符 / inclusion proof leads to a different root: "
            f"computed {r.hex()}, expected {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``new_size``/``new_root`` extends ``old_size``/``old_root``.

    RFC 9162 §2.1.4.2, step by step; an empty old tree must have root
    :data:`EMPTY_ROOT` and an empty proof. Raises :class:`ProofInvalid`.
    """
    _check_hashes(proof, ("old root", old_root), ("new root", new_root))
    if not 0 <= old_size <= new_size:
        raise ProofInvalid(
            f"旧树大小 {old_size} 大于新树 {new_size} / old size {old_size} is not within 0..{new_size}"
        )
    if old_size == new_size or old_size == 0:
        if proof:
            raise ProofInvalid("此情形的一致性证明必须为空 / this consistency proof must be empty")
        expected = new_root if old_size == new_size else EMPTY_ROOT
        if old_root != expected:
            raise ProofInvalid("旧根不符 / old root does not match")
        return
    if not proof:
        raise ProofInvalid("一致性证明为空 / consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # exact power of two: the old root is a node itself
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofInvalid("一致性证明过长 / consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalid("一致性证明过短 / consistency proof is too short")
    if fr != old_root:
        raise ProofInvalid("一致性证明与旧根不符 / consistency proof does not match the old root")
    if sr != new_root:
        raise ProofInvalid("一致性证明与新根不符 / consistency proof does not match the new root")


def inclusion_ok(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """:func:`verify_inclusion` as a bool."""
    try:
        verify_inclusion(leaf, index, size, proof, root)
    except ProofInvalid:
        return False
    return True


def consistency_ok(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """:func:`verify_consistency` as a bool."""
    try:
        verify_consistency(old_size, new_size, old_root, new_root, proof)
    except ProofInvalid:
        return False
    return True


# --------------------------------------------------------------------------- device keys

ALGORITHMS = ("Ed25519", "ES256")
"""Signature algorithms accepted for capture manifests."""

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def _b64decode(text: str, what: str, exc: type[CoreError]) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise exc(f"{what} 不是合法 base64 / {what} is not valid base64") from None


def export_public_key(public_key: PublicKey) -> str:
    """Public key as text: Ed25519 → base64 of 32 raw bytes; P-256 → base64 of SPKI DER."""
    return base64.b64encode(_public_key_bytes(public_key)).decode("ascii")


def _public_key_bytes(public_key: PublicKey) -> bytes:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
        public_key.curve, ec.SECP256R1
    ):
        return public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    raise SignatureInvalid(
        "只支持 Ed25519 与 P-256 公钥 / only Ed25519 and P-256 keys are supported"
    )


def key_id(public_key: PublicKey) -> str:
    """Stable key id: ``sha256:<hex>`` of the exported public-key bytes (see module doc)."""
    return sha256_digest(_public_key_bytes(public_key))


def algorithm_of(public_key: PublicKey) -> str:
    """``"Ed25519"`` or ``"ES256"`` for a supported public key."""
    _public_key_bytes(public_key)  # rejects unsupported curves
    return "Ed25519" if isinstance(public_key, ed25519.Ed25519PublicKey) else "ES256"


def load_public_key(alg: str, text: str) -> PublicKey:
    """Load a device public key exported by :func:`export_public_key`. Raises SignatureInvalid."""
    raw = _b64decode(text, "public key", SignatureInvalid)
    if alg == "Ed25519":
        if len(raw) != 32:
            raise SignatureInvalid(
                f"Ed25519 公钥应为 32 字节 / Ed25519 public key must be 32 bytes, got {len(raw)}"
            )
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    if alg == "ES256":
        try:
            key = serialization.load_der_public_key(raw)
        except ValueError:
            raise SignatureInvalid(
                "ES256 公钥不是合法 SPKI DER / ES256 key is not SPKI DER"
            ) from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise SignatureInvalid("ES256 公钥必须是 P-256 / ES256 key must be on curve P-256")
        return key
    raise SignatureInvalid(
        f"不支持的算法 {alg!r} / unsupported algorithm {alg!r}; use Ed25519 or ES256"
    )


def verify_signature(alg: str, public_key: PublicKey, message: bytes, signature: bytes) -> None:
    """Verify an Ed25519 or ES256 (raw ``r || s``, 64 bytes) signature. Raises SignatureInvalid."""
    if alg not in ALGORITHMS:
        raise SignatureInvalid(
            f"不支持的算法 {alg!r} / unsupported algorithm {alg!r}; use Ed25519 or ES256"
        )
    if algorithm_of(public_key) != alg:
        raise SignatureInvalid(f"密钥类型与算法 {alg} 不符 / the key is not an {alg} key")
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, message)
        else:
            if len(signature) != 64:
                raise SignatureInvalid(
                    "ES256 签名应为 64 字节 r||s / ES256 signature must be 64 bytes raw r||s "
                    f"(got {len(signature)}; DER signatures must be converted)"
                )
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            public_key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureInvalid("签名验证失败 / signature does not verify") from None


@dataclass(frozen=True)
class DevicePublicKey:
    """A device's public key as shipped in a case file: ``{"alg": "Ed25519", "public_key": "<b64>"}``."""

    alg: str
    public_key: str

    @property
    def key(self) -> PublicKey:
        """The loaded key object."""
        return load_public_key(self.alg, self.public_key)

    @property
    def key_id(self) -> str:
        """``sha256:<hex>`` of the exported public-key bytes."""
        return key_id(self.key)


def verify_manifest_signature(signed: Mapping[str, Any], public_key: PublicKey) -> None:
    """Verify a signed capture manifest in wire form against ``public_key``.

    Wire form: ``{"manifest": {...}, "signature": {"alg", "key_id", "value"}}``. The
    signature must be over ``canonical_json(manifest)``; ``alg`` and ``key_id`` of the
    signature block must equal the manifest's own and match ``public_key``.
    Raises :class:`SignatureInvalid` (or :class:`CanonicalJSONError` for a float).
    """
    manifest = signed.get("manifest")
    sig = signed.get("signature")
    if not isinstance(manifest, Mapping) or not isinstance(sig, Mapping):
        raise SignatureInvalid(
            "签名清单须含 manifest 与 signature 对象 / needs 'manifest' and 'signature' objects"
        )
    alg, kid, value = sig.get("alg"), sig.get("key_id"), sig.get("value")
    if not isinstance(alg, str) or not isinstance(kid, str) or not isinstance(value, str):
        raise SignatureInvalid(
            "signature 须含字符串 alg、key_id、value / signature needs string alg, key_id, value"
        )
    if manifest.get("alg") != alg or manifest.get("key_id") != kid:
        raise SignatureInvalid(
            "签名块的 alg/key_id 与清单不一致 / signature alg/key_id differ from the manifest's own"
        )
    actual = key_id(public_key)
    if kid != actual:
        raise SignatureInvalid(
            f"签名声明的密钥 {kid} 不是所给公钥 {actual} / signed with key {kid}, not the given key {actual}"
        )
    verify_signature(
        alg,
        public_key,
        canonical_json(manifest),
        _b64decode(value, "signature value", SignatureInvalid),
    )


# --------------------------------------------------------------------------- signed notes, checkpoints

_NOTE_SIG_PREFIX = "\u2014 "  # em dash + space
_MAX_NOTE_SIGNATURES = 100


def note_key_hash(name: str, public_key: bytes) -> bytes:
    """C2SP signed-note key hash: first 4 bytes of SHA-256(name || 0x0A || 0x01 || key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n\x01" + public_key).digest()[:4]


def _valid_key_name(name: str) -> bool:
    return (
        bool(name) and "+" not in name and not any(c.isspace() for c in name) and name.isprintable()
    )


@dataclass(frozen=True)
class NoteVerifier:
    """An Ed25519 signed-note verifier: a name and a 32-byte public key.

    Its text form (the "verifier key") is ``<name>+<hex key hash>+<base64(0x01 || key)>``,
    e.g. ``PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW``.
    """

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not _valid_key_name(self.name):
            raise CheckpointInvalid(
                f"密钥名不合法 / invalid key name {self.name!r} (no spaces or '+')"
            )
        if len(self.public_key) != 32:
            raise CheckpointInvalid(
                "Ed25519 公钥应为 32 字节 / Ed25519 public key must be 32 bytes"
            )

    @property
    def key_hash(self) -> bytes:
        """The 4-byte key hash identifying this key in signature lines."""
        return note_key_hash(self.name, self.public_key)

    def key_string(self) -> str:
        """The verifier key string ``<name>+<hex key hash>+<base64(0x01 || key)>``."""
        b64 = base64.b64encode(b"\x01" + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_hash.hex()}+{b64}"

    @classmethod
    def from_key_string(cls, text: str) -> NoteVerifier:
        """Parse a verifier key string; raises :class:`CheckpointInvalid` if malformed."""
        parts = text.split("+", 2)
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise CheckpointInvalid(
                "验证密钥格式应为 名称+8位十六进制+base64 / verifier key must be <name>+<8 hex>+<base64>"
            )
        name, hex_hash, b64 = parts
        raw = _b64decode(b64, "verifier key", CheckpointInvalid)
        if len(raw) != 33 or raw[0] != 0x01:
            raise CheckpointInvalid(
                "验证密钥不是 Ed25519 (类型 0x01) / verifier key is not an Ed25519 (0x01) key"
            )
        v = cls(name, raw[1:])
        if v.key_hash.hex() != hex_hash:
            raise CheckpointInvalid(
                "验证密钥的密钥哈希不符 / verifier key hash does not match its key"
            )
        return v

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def open_note(text: str, verifiers: Iterable[NoteVerifier]) -> tuple[str, list[str]]:
    """Verify a C2SP signed note; return ``(note text, names whose signature verified)``.

    Signature lines from unknown keys are ignored, as the spec requires; at least one
    signature must come from a given verifier, and a known key with a bad signature is
    an error. Raises :class:`CheckpointInvalid` with the precise reason.
    """
    malformed = "签名注记格式错误 / malformed signed note: "
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise CheckpointInvalid(malformed + "control character in note")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise CheckpointInvalid(malformed + "no blank line before the signatures")
    body, sig_block = text[: cut + 1], text[cut + 2 :]
    if not sig_block.endswith("\n"):
        raise CheckpointInvalid(malformed + "signature block must end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > _MAX_NOTE_SIGNATURES:
        raise CheckpointInvalid(malformed + "too many signatures")
    by_id = {(v.name, v.key_hash): v for v in verifiers}
    verified: list[str] = []
    message = body.encode("utf-8")
    for line in lines:
        if not line.startswith(_NOTE_SIG_PREFIX):
            raise CheckpointInvalid(malformed + f"not a signature line: {line[:60]!r}")
        name, sep, b64 = line[len(_NOTE_SIG_PREFIX) :].partition(" ")
        if not sep or not _valid_key_name(name) or " " in b64:
            raise CheckpointInvalid(malformed + f"bad signature line: {line[:60]!r}")
        raw = _b64decode(b64, "signature", CheckpointInvalid)
        if len(raw) < 5:
            raise CheckpointInvalid(malformed + "signature too short")
        v = by_id.get((name, raw[:4]))
        if v is None:
            continue
        if not v.verify(message, raw[4:]):
            raise CheckpointInvalid(
                f"密钥 {name}+{raw[:4].hex()} 的签名无效，内容可能被改动 / invalid signature for key "
                f"{name}+{raw[:4].hex()}: the note was altered or signed by another key"
            )
        verified.append(name)
    if not verified:
        known = ", ".join(f"{n}+{h.hex()}" for n, h in by_id) or "none"
        raise CheckpointInvalid(
            "没有受信密钥的签名 / no signature by a trusted key (unknown key); "
            f"trusted: {known}; check you were given the right log key"
        )
    return body, verified


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: origin, tree size, root hash, optional extension lines.

    Text form (each line ends with ``\\n``)::

        casetrail.example/log
        8
        XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not self.origin or "\n" in self.origin or not self.origin.isprintable():
            problems.append("origin must be one non-empty printable line")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            problems.append("size must be an integer ≥ 0")
        if len(self.root_hash) != HASH_SIZE:
            problems.append("root hash must be 32 bytes")
        for e in self.extensions:
            if not e or "\n" in e or not e.isprintable():
                problems.append(f"extension line {e!r} must be one non-empty printable line")
        if problems:
            raise CheckpointInvalid("检查点字段不合法 / invalid checkpoint fields", problems)

    def body(self) -> str:
        """The note text that gets signed."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii")]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse_body(cls, body: str) -> Checkpoint:
        """Parse the (already verified) note text of a checkpoint."""
        lines = body.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise CheckpointInvalid(
                "检查点须有来源、大小、根哈希三行 / checkpoint needs origin, size and root lines"
            )
        origin, size_s, root_s, *ext = lines[:-1]
        if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size_s):
            raise CheckpointInvalid(
                f"树大小不是十进制数 / tree size {size_s!r} is not a decimal number"
            )
        root = _b64decode(root_s, "root hash", CheckpointInvalid)
        return cls(origin, int(size_s), root, tuple(ext))


def open_checkpoint(
    text: str, verifier: NoteVerifier | str, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint with the log's key alone and parse it.

    ``verifier`` is a :class:`NoteVerifier` or its key string. When ``origin`` is given
    the checkpoint's origin line must equal it. Raises :class:`CheckpointInvalid`.
    """
    v = NoteVerifier.from_key_string(verifier) if isinstance(verifier, str) else verifier
    body, _ = open_note(text, [v])
    cp = Checkpoint.parse_body(body)
    if origin is not None and cp.origin != origin:
        raise CheckpointInvalid(
            f"检查点来源 {cp.origin!r} 不是预期的 {origin!r} / checkpoint origin {cp.origin!r} is not {origin!r}"
        )
    return cp


# --------------------------------------------------------------------------- hash chains


@dataclass(frozen=True)
class ChainBreak:
    """One break in a hash chain (a case's custody events or a device's manifests).

    ``kind`` is one of ``gap``, ``duplicate``, ``reorder``, ``altered``, ``wrong_link``,
    ``wrong_case``, ``malformed``. ``seq``/``item_id`` say where; ``expected``/``found``
    give the two values that disagree; ``message`` reads Chinese first, then English.
    """

    kind: str
    seq: int | None
    item_id: str | None
    expected: str | None
    found: str | None
    message: str


@dataclass(frozen=True)
class _Link:
    pos: int
    seq: int
    prev: object
    digest: str
    ident: str


def _missing_ranges(seqs: Iterable[int], top: int, start: int = 1) -> list[tuple[int, int]]:
    present = set(seqs)
    ranges: list[tuple[int, int]] = []
    s = start
    while s <= top:
        if s not in present:
            e = s
            while e + 1 <= top and e + 1 not in present:
                e += 1
            ranges.append((s, e))
            s = e + 1
        else:
            s += 1
    return ranges


def _check_chain(
    links: list[_Link],
    *,
    noun: str,
    seq_field: str,
    prev_field: str,
    report_gaps: bool,
    anchor: tuple[int, str] | None,
) -> list[ChainBreak]:
    out: list[ChainBreak] = []
    # Order in the list: each descent is a reordered item.
    for before, item in zip(links, links[1:], strict=False):
        if item.seq < before.seq:
            out.append(
                ChainBreak(
                    "reorder",
                    item.seq,
                    item.ident,
                    f"after {seq_field} {before.seq}",
                    f"position {item.pos}",
                    f"顺序错乱：{noun} {item.ident}（序号 {item.seq}）排在序号 {before.seq} 之后 / "
                    f"reordered: {noun} {item.ident} ({seq_field} {item.seq}) comes after "
                    f"{seq_field} {before.seq} at position {item.pos}",
                )
            )
    by_seq: dict[int, list[_Link]] = {}
    for item in links:
        by_seq.setdefault(item.seq, []).append(item)
    digests = {item.digest: item for item in links}

    def member(seq: int) -> _Link:
        """The item at ``seq`` that belongs to the chain: its successor links to it, or
        it links to its (unique) predecessor; else the first one seen."""
        cands = by_seq[seq]
        for c in cands:
            if any(n.prev == c.digest for n in by_seq.get(seq + 1, [])):
                return c
        preds = by_seq.get(seq - 1, [])
        for c in cands:
            if len(preds) == 1 and c.prev == preds[0].digest:
                return c
        return cands[0]

    chain: dict[int, _Link] = {}
    for seq in sorted(by_seq):
        m = member(seq)
        chain[seq] = m
        for other in by_seq[seq]:
            if other is not m:
                out.append(
                    ChainBreak(
                        "duplicate",
                        seq,
                        other.ident,
                        m.ident,
                        other.ident,
                        f"序号重复：{noun} {other.ident} 与 {m.ident} 都是序号 {seq}，"
                        f"{other.ident} 不在链上（可能是插入的）/ duplicate {seq_field} {seq}: "
                        f"{noun} {other.ident} is not part of the chain (inserted?); "
                        f"{m.ident} is the linked one",
                    )
                )
    # Gaps.
    first = anchor[0] + 1 if anchor else 1
    if report_gaps and chain:
        for lo, hi in _missing_ranges(chain, max(chain), first):
            missing = ", ".join(str(s) for s in range(lo, hi + 1))
            out.append(
                ChainBreak(
                    "gap",
                    lo,
                    None,
                    missing,
                    None,
                    f"缺失：序号 {missing} 的{noun}不见了（被删除或未同步）/ gap: missing "
                    f"{seq_field} {missing}",
                )
            )
    # Links.
    for seq, item in sorted(chain.items()):
        pred = chain.get(seq - 1)
        if seq < first:
            continue
        if anchor and seq == first:
            expected: str | None = anchor[1]
            pred = None
        elif seq == 1:
            expected = None
        elif pred is not None:
            expected = pred.digest
        else:
            continue  # predecessor missing: reported as a gap
        if item.prev == expected:
            continue
        target = digests.get(item.prev) if isinstance(item.prev, str) else None
        if pred is not None and isinstance(item.prev, str) and target is None:
            out.append(
                ChainBreak(
                    "altered",
                    pred.seq,
                    pred.ident,
                    item.prev,
                    pred.digest,
                    f"内容被改动：{noun} {pred.ident}（序号 {pred.seq}）的哈希 {pred.digest} 与"
                    f"序号 {seq} 记录的 {prev_field} {item.prev} 不符 / altered: {noun} "
                    f"{pred.ident} ({seq_field} {pred.seq}) hashes to {pred.digest} but "
                    f"{seq_field} {seq} ({item.ident}) recorded {prev_field} {item.prev}",
                )
            )
        elif target is not None:
            out.append(
                ChainBreak(
                    "wrong_link",
                    seq,
                    item.ident,
                    expected,
                    target.digest,
                    f"链接错误：{noun} {item.ident}（序号 {seq}）指向序号 {target.seq}，应指向"
                    f"序号 {seq - 1} / wrong link: {item.ident} ({seq_field} {seq}) links to "
                    f"{seq_field} {target.seq} ({target.ident}), expected {prev_field} {expected}",
                )
            )
        else:
            out.append(
                ChainBreak(
                    "wrong_link",
                    seq,
                    item.ident,
                    expected,
                    None if item.prev is None else str(item.prev),
                    f"链接错误：{noun} {item.ident}（序号 {seq}）的 {prev_field} 应为 "
                    f"{json.dumps(expected)}，实为 {json.dumps(item.prev)} / wrong link: "
                    f"{item.ident} ({seq_field} {seq}) must have {prev_field} "
                    f"{json.dumps(expected)}, found {json.dumps(item.prev)}",
                )
            )
    return out


def _links(
    items: Sequence[Mapping[str, Any]],
    *,
    id_field: str,
    seq_field: str,
    prev_field: str,
    noun: str,
    out: list[ChainBreak],
) -> list[_Link]:
    links = []
    for pos, item in enumerate(items):
        ident = item.get(id_field)
        ident_s = ident if isinstance(ident, str) else f"#{pos}"
        seq, prev = item.get(seq_field), item.get(prev_field)
        problem = None
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            problem = f"{seq_field} {seq!r} is not an integer ≥ 1"
        elif prev is not None and not is_digest(prev):
            problem = f"{prev_field} {prev!r} is not null or sha256:<hex>"
        else:
            try:
                digest = sha256_digest(canonical_json(item))
            except CanonicalJSONError as e:
                problem = e.message
        if problem is not None:
            out.append(
                ChainBreak(
                    "malformed",
                    seq if isinstance(seq, int) else None,
                    ident_s,
                    None,
                    None,
                    f"格式错误：{noun} {ident_s} / malformed {noun} {ident_s}: {problem}",
                )
            )
            continue
        assert isinstance(seq, int)
        links.append(_Link(pos, seq, prev, digest, ident_s))
    return links


def check_case_chain(
    events: Sequence[Mapping[str, Any]], case_id: str | None = None
) -> list[ChainBreak]:
    """Every break in one case's custody-event chain, events given as JSON objects.

    The events are checked in the order given (a descent in ``case_seq`` is a
    ``reorder``); ``case_id`` defaults to the first event's. Breaks: ``wrong_case``,
    ``malformed``, ``reorder``, ``duplicate`` (the one not linked by its successor is
    named), ``gap`` (the missing ``case_seq`` numbers), ``altered`` (an event whose
    successor's ``case_prev`` is not its hash), ``wrong_link`` (``case_prev`` points at
    another event, or is not ``null`` at seq 1). Events deleted from the END of a chain
    leave no break here: compare against the Merkle log for that.
    """
    out: list[ChainBreak] = []
    if case_id is None and events:
        first = events[0].get("case_id")
        case_id = first if isinstance(first, str) else None
    kept = []
    for e in events:
        if e.get("case_id") != case_id:
            ident = e.get("event_id")
            out.append(
                ChainBreak(
                    "wrong_case",
                    e.get("case_seq") if isinstance(e.get("case_seq"), int) else None,
                    str(ident),
                    str(case_id),
                    str(e.get("case_id")),
                    f"案件不符：事件 {ident} 属于案件 {e.get('case_id')}，不是 {case_id} / wrong case: "
                    f"event {ident} belongs to case {e.get('case_id')!r}, not {case_id!r}",
                )
            )
        else:
            kept.append(e)
    links = _links(
        kept,
        id_field="event_id",
        seq_field="case_seq",
        prev_field="case_prev",
        noun="事件 event",
        out=out,
    )
    out += _check_chain(
        links,
        noun="事件 event",
        seq_field="case_seq",
        prev_field="case_prev",
        report_gaps=True,
        anchor=None,
    )
    return out


def check_device_chain(
    manifests: Sequence[Mapping[str, Any]],
    *,
    report_gaps: bool = True,
    anchor: tuple[int, str] | None = None,
) -> list[ChainBreak]:
    """Every break in one device's capture-manifest chain (manifest objects as JSON).

    ``anchor=(seq, "sha256:…")`` is the last manifest already verified (e.g. stored by
    the server): checking then starts at ``seq + 1``, which must link to that hash.
    ``report_gaps=False`` suits a case file, where a device's other captures belong to
    other cases. Input order does not matter (manifests are sorted by ``device_seq``).
    """
    out: list[ChainBreak] = []
    links = _links(
        manifests,
        id_field="manifest_id",
        seq_field="device_seq",
        prev_field="device_prev",
        noun="清单 manifest",
        out=out,
    )
    links.sort(key=lambda link: (link.seq, link.pos))
    out += _check_chain(
        links,
        noun="清单 manifest",
        seq_field="device_seq",
        prev_field="device_prev",
        report_gaps=report_gaps,
        anchor=anchor,
    )
    return out


# --------------------------------------------------------------------------- the case file


@dataclass(frozen=True)
class Problem:
    """One problem found in a case file: ``code`` (stable, machine-readable), ``where``, ``message``."""

    code: str
    where: str
    message: str


def _proof_hashes(proof: object) -> list[bytes] | None:
    if not isinstance(proof, list) or not all(isinstance(h, str) for h in proof):
        return None
    try:
        return [base64.b64decode(h, validate=True) for h in proof]
    except (binascii.Error, ValueError):
        return None


def verify_case_file(
    *,
    events: Sequence[Mapping[str, Any]],
    proofs: Mapping[str, Mapping[str, Any]],
    checkpoint: str,
    log_key: str,
    manifests: Sequence[Mapping[str, Any]] = (),
    device_keys: Sequence[Mapping[str, Any]] = (),
    case_id: str | None = None,
) -> list[Problem]:
    """Check a whole case file and return EVERY problem (an empty list means verified).

    * ``events``: the case's custody events (JSON objects) in ``case_seq`` order;
    * ``proofs``: per ``event_id``, ``{"leaf_index": int, "tree_size": int, "hashes":
      [base64, …]}`` — an RFC 9162 inclusion proof of the event's canonical bytes;
    * ``checkpoint``: the signed checkpoint text the proofs lead to; ``log_key``: the
      trusted log verifier key string (``name+hash+base64``);
    * ``manifests``: signed capture manifests in wire form; ``device_keys``:
      ``[{"alg": "Ed25519"|"ES256", "public_key": "<b64>"}, …]`` (matched by key id).

    Checks: the checkpoint signature; each event's inclusion in the checkpoint; the case
    chain; each manifest's signature and its device's chain links; that every
    ``capture_registered`` event's ``details.manifest_hash`` names a manifest in the file
    and every manifest is registered by such an event.
    """
    problems: list[Problem] = []
    cp: Checkpoint | None = None
    try:
        cp = open_checkpoint(checkpoint, log_key)
    except CheckpointInvalid as e:
        problems.append(Problem("checkpoint_invalid", "checkpoint", e.message))

    for pos, ev in enumerate(events):
        ident = ev.get("event_id")
        where = f"event {ident}" if isinstance(ident, str) else f"event #{pos}"
        try:
            leaf = leaf_hash(canonical_json(ev))
        except CanonicalJSONError as e:
            problems.append(Problem("event_malformed", where, e.message))
            continue
        proof = proofs.get(ident) if isinstance(ident, str) else None
        if proof is None:
            problems.append(
                Problem("proof_missing", where, "缺少包含证明 / no inclusion proof for this event")
            )
            continue
        index, size, hashes = (
            proof.get("leaf_index"),
            proof.get("tree_size"),
            _proof_hashes(proof.get("hashes")),
        )
        if not isinstance(index, int) or not isinstance(size, int) or hashes is None:
            problems.append(
                Problem(
                    "proof_malformed",
                    where,
                    "包含证明格式错误 / inclusion proof needs leaf_index, tree_size, hashes (base64)",
                )
            )
            continue
        if cp is None:
            continue
        if size != cp.size:
            problems.append(
                Problem(
                    "proof_wrong_size",
                    where,
                    f"证明针对大小 {size} 的树，检查点为 {cp.size} / proof is for tree size {size}, "
                    f"the checkpoint has {cp.size}",
                )
            )
            continue
        try:
            verify_inclusion(leaf, index, size, hashes, cp.root_hash)
        except ProofInvalid as e:
            problems.append(
                Problem(
                    "not_in_log",
                    where,
                    "事件不在已签名日志中（内容被改动或证明错误）/ event is not in the signed log "
                    f"(altered or wrong proof): {e.message}",
                )
            )

    for b in check_case_chain(events, case_id):
        where = f"event {b.item_id}" if b.item_id else f"case_seq {b.seq}"
        problems.append(Problem(f"chain_{b.kind}", where, b.message))

    keys: dict[str, PublicKey] = {}
    for i, dk in enumerate(device_keys):
        try:
            k = load_public_key(str(dk.get("alg")), str(dk.get("public_key")))
        except SignatureInvalid as e:
            problems.append(Problem("device_key_invalid", f"device key #{i}", e.message))
            continue
        keys[key_id(k)] = k

    manifest_hashes: dict[str, str] = {}
    by_device: dict[str, list[Mapping[str, Any]]] = {}
    for pos, signed in enumerate(manifests):
        m = signed.get("manifest")
        if not isinstance(m, Mapping):
            problems.append(
                Problem(
                    "manifest_malformed",
                    f"manifest #{pos}",
                    "缺少 manifest 对象 / no 'manifest' object",
                )
            )
            continue
        where = f"manifest {m.get('manifest_id', f'#{pos}')}"
        try:
            manifest_hashes[sha256_digest(canonical_json(m))] = where
        except CanonicalJSONError as e:
            problems.append(Problem("manifest_malformed", where, e.message))
            continue
        by_device.setdefault(str(m.get("device_id")), []).append(m)
        device_key = keys.get(str(m.get("key_id")))
        if device_key is None:
            problems.append(
                Problem(
                    "device_key_missing",
                    where,
                    f"缺少设备公钥 {m.get('key_id')} / no public key {m.get('key_id')} in the case file",
                )
            )
            continue
        try:
            verify_manifest_signature(signed, device_key)
        except (SignatureInvalid, CanonicalJSONError) as e:
            problems.append(Problem("manifest_signature_invalid", where, e.message))
    for device, ms in sorted(by_device.items()):
        for b in check_device_chain(ms, report_gaps=False):
            problems.append(Problem(f"device_chain_{b.kind}", f"device {device}", b.message))

    registered: set[str] = set()
    for ev in events:
        details = ev.get("details")
        if ev.get("type") == "capture_registered" and isinstance(details, Mapping):
            mh = details.get("manifest_hash")
            if isinstance(mh, str):
                registered.add(mh)
                if mh not in manifest_hashes:
                    problems.append(
                        Problem(
                            "manifest_missing",
                            f"event {ev.get('event_id')}",
                            f"登记的采集清单 {mh} 不在案卷中 / registered manifest {mh} is not in the case file",
                        )
                    )
    for mh, where in manifest_hashes.items():
        if mh not in registered:
            problems.append(
                Problem(
                    "manifest_unregistered",
                    where,
                    "此采集清单没有对应的 capture_registered 事件 / no capture_registered event names this manifest",
                )
            )
    return problems


# --------------------------------------------------------------------------- the bag (BagIt case file)
#
# A case file exported by CaseTrail is a BagIt 1.0 bag (RFC 8493) — a directory, or a
# .tar / .zip with one top-level directory — whose ``casetrail/`` tag directory holds
# the custody material that :func:`verify_case_file` checks. :func:`verify_bag` checks
# the bag in full (every payload file re-hashed with SHA-256 and SHA-512, never "fast")
# and then the case file inside it. Tag files read (``casetrail/…``)::
#
#     case.json             case metadata            files.tsv       one line per payload file
#     manifests/*.json      signed capture manifests completeness.json  the completeness report
#     custody/events.jsonl  the case's custody events up to and including ``exported``
#     custody/proofs.json   {"tree_size": n, "proofs": {event_id: {leaf_index, tree_size, hashes}}}
#     custody/checkpoint.txt  the signed checkpoint the proofs lead to
#     keys/log-key.txt      the log's verifier key   keys/devices.json  device public keys
#
# The ``exported`` event (the last one in the file, itself in the signed log) records
# the SHA-256 of the payload manifests and of the tag files written before it, which
# binds the payload to the signed log.

_BAG_HASHES = ("sha256", "sha512")
_MAX_TAG_FILE = 512 * 1024 * 1024
_READ_BLOCK = 1 << 20
FILES_TSV_COLUMNS = (
    "path", "sha256", "sha512", "size", "media_type", "stage", "record_type", "kind",
    "manifest_id", "evidence_id",
)  # fmt: skip


@dataclass(frozen=True)
class BagReport:
    """What :func:`verify_bag` found: every problem, notes for the reader, what was read."""

    problems: list[Problem]
    notes: list[str]
    payload_files: int
    payload_bytes: int

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


class BagFiles:
    """Files of a bag (paths relative to its base directory) in a directory, tar or zip.

    Unsafe entries (links, absolute or ``..`` paths, outside the one top-level
    directory) are never read; each becomes a :class:`Problem` in ``problems``.
    Call :meth:`close` when done.
    """

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        self.files: dict[str, Any] = {}
        self._archive: Any = None
        if path.is_dir():
            self._scan_dir()
        elif zipfile.is_zipfile(path):
            self._archive = zipfile.ZipFile(path)
            self._scan_members(
                [(i.filename, i, "dir" if i.is_dir() else "file") for i in self._archive.infolist()]
            )
        else:
            try:
                self._archive = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by close())
            except (tarfile.TarError, OSError) as e:
                raise ValueError(
                    f"不是目录、tar 或 zip 文件 / not a directory, tar or zip: {e}"
                ) from None
            members = []
            for m in self._archive.getmembers():
                kind = "file" if m.isfile() else "dir" if m.isdir() else "other"
                members.append((m.name, m, kind))
            self._scan_members(members)

    def _unsafe(self, name: str, why: str) -> None:
        self.problems.append(
            Problem(
                "archive_member_unsafe",
                name,
                f"包内条目不安全，未读取 / unsafe entry, not read: {why}",
            )
        )

    def _scan_dir(self) -> None:
        for root, dirs, names in os.walk(self.path):
            for d in list(dirs):
                if Path(root, d).is_symlink():
                    self._unsafe(str(Path(root, d).relative_to(self.path)), "symbolic link")
                    dirs.remove(d)
            for n in names:
                full = Path(root, n)
                rel = full.relative_to(self.path).as_posix()
                if full.is_symlink() or not full.is_file():
                    self._unsafe(rel, "symbolic link or special file")
                    continue
                self.files[rel] = full

    def _scan_members(self, members: list[tuple[str, Any, str]]) -> None:
        base: str | None = None
        for name, member, kind in members:
            parts = name.rstrip("/").split("/")
            if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
                self._unsafe(name, "absolute path, '..' or empty segment")
                continue
            if base is None:
                base = parts[0]
            if parts[0] != base or (len(parts) == 1 and kind != "dir"):
                self.problems.append(
                    Problem(
                        "archive_layout",
                        name,
                        f"不在唯一的顶层目录 {base}/ 之下 / not under the one top-level directory "
                        f"{base}/ (RFC 8493 §4.2)",
                    )
                )
                continue
            if kind == "other":
                self._unsafe(name, "link or special file")
            elif kind == "file":
                self.files["/".join(parts[1:])] = member

    def read(self, name: str) -> bytes | None:
        """A tag file's bytes, or None if absent."""
        ref = self.files.get(name)
        if ref is None:
            return None
        with self._open(ref) as f:
            data: bytes = f.read(_MAX_TAG_FILE + 1)
        if len(data) > _MAX_TAG_FILE:
            raise ValueError(f"{name}: 标签文件过大 / tag file too large")
        return data

    def _open(self, ref: Any) -> Any:
        if isinstance(ref, Path):
            return ref.open("rb")
        if isinstance(self._archive, zipfile.ZipFile):
            return self._archive.open(ref)
        f = self._archive.extractfile(ref)
        assert f is not None
        return f

    def digests(self, name: str) -> tuple[int, dict[str, str]] | str:
        """Size and hex digests of a file, or a message if it cannot be read whole."""
        hashers = {alg: hashlib.new(alg) for alg in _BAG_HASHES}
        size = 0
        try:
            with self._open(self.files[name]) as f:
                while block := f.read(_READ_BLOCK):
                    size += len(block)
                    for h in hashers.values():
                        h.update(block)
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as e:
            return f"读取失败 / unreadable: {e}"
        return size, {alg: h.hexdigest() for alg, h in hashers.items()}

    def close(self) -> None:
        """Close the archive (if any)."""
        if self._archive is not None:
            self._archive.close()


def _decode_manifest_path(path: str) -> str:
    return re.sub(
        r"%(0[dDaA]|25)", lambda m: {"0d": "\r", "0a": "\n", "25": "%"}[m.group(1).lower()], path
    )


def _parse_manifest(name: str, data: bytes, alg: str, problems: list[Problem]) -> dict[str, str]:
    entries: dict[str, str] = {}
    width = hashlib.new(alg).digest_size * 2
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        digest, _, path = line.strip("\r").partition(" ")
        path = _decode_manifest_path(path.strip(" \t"))
        if not re.fullmatch(f"[0-9a-fA-F]{{{width}}}", digest) or not path:
            problems.append(
                Problem(
                    "manifest_line_invalid",
                    f"{name}:{n}",
                    f"清单行格式错误 / malformed line: {line[:80]!r}",
                )
            )
            continue
        if path in entries:
            problems.append(
                Problem(
                    "manifest_line_invalid", f"{name}:{n}", f"路径重复 / duplicate path {path!r}"
                )
            )
        entries[path] = digest.lower()
    return entries


def _bag_info(data: bytes) -> dict[str, str]:
    info: dict[str, str] = {}
    label = None
    for line in data.decode("utf-8", "replace").splitlines():
        if line[:1] in (" ", "\t") and label is not None:
            info[label] += " " + line.strip()
            continue
        label, sep, value = line.partition(":")
        if sep:
            label = label.strip()
            info.setdefault(label, value.strip())
        else:
            label = None
    return info


def _check_payload(
    src: BagFiles, problems: list[Problem]
) -> tuple[dict[str, dict[str, str]], int, int]:
    manifests: dict[str, dict[str, str]] = {}
    for alg in _BAG_HASHES:
        name = f"manifest-{alg}.txt"
        data = src.read(name)
        if data is None:
            problems.append(
                Problem(
                    "payload_manifest_missing",
                    name,
                    f"缺少载荷清单 / payload manifest {name} is missing",
                )
            )
            continue
        manifests[alg] = _parse_manifest(name, data, alg, problems)
        for path in manifests[alg]:
            if not path.startswith("data/"):
                problems.append(
                    Problem(
                        "manifest_line_invalid",
                        name,
                        f"路径不在 data/ 下 / path outside data/: {path!r}",
                    )
                )
    listed = set().union(*manifests.values()) if manifests else set()
    present = {p for p in src.files if p.startswith("data/")}
    for path in sorted(listed - present):
        if path.startswith("data/"):
            problems.append(
                Problem(
                    "payload_missing",
                    path,
                    "清单中的文件不在包内（被删除）/ file listed in the manifest is missing (removed)",
                )
            )
    for path in sorted(present - listed):
        problems.append(
            Problem(
                "payload_extra",
                path,
                "包内多出未列入清单的文件 / file not listed in any payload manifest (added)",
            )
        )
    octets = count = 0
    for path in sorted(present):
        result = src.digests(path)
        count += 1
        if isinstance(result, str):
            problems.append(Problem("payload_unreadable", path, result))
            continue
        size, found = result
        octets += size
        bad = [
            f"{alg} 清单 {manifests[alg][path][:16]}… 实算 {found[alg][:16]}… / {alg} listed "
            f"{manifests[alg][path][:16]}…, computed {found[alg][:16]}…"
            for alg in _BAG_HASHES
            if path in manifests.get(alg, {}) and manifests[alg][path] != found[alg]
        ]
        if bad:
            problems.append(
                Problem(
                    "payload_altered",
                    path,
                    "文件内容被改动 / file content altered: " + "; ".join(bad),
                )
            )
    return manifests, octets, count


def _check_tags(src: BagFiles, problems: list[Problem]) -> None:
    listed: set[str] = set()
    for alg in _BAG_HASHES:
        name = f"tagmanifest-{alg}.txt"
        data = src.read(name)
        if data is None:
            problems.append(
                Problem(
                    "tag_manifest_missing", name, f"缺少标签清单 / tag manifest {name} is missing"
                )
            )
            continue
        for path, digest in _parse_manifest(name, data, alg, problems).items():
            listed.add(path)
            if path not in src.files:
                problems.append(
                    Problem(
                        "tag_missing",
                        path,
                        f"{name} 列出的标签文件不存在 / tag file listed in {name} is missing",
                    )
                )
                continue
            result = src.digests(path)
            if isinstance(result, str):
                problems.append(Problem("tag_unreadable", path, result))
            elif result[1][alg] != digest:
                problems.append(
                    Problem(
                        "tag_altered",
                        path,
                        f"标签文件被改动（{alg} 与 {name} 不符）/ tag file altered: its {alg} differs from {name}",
                    )
                )
    for path in sorted(src.files):
        if (
            not path.startswith("data/")
            and not path.startswith("tagmanifest-")
            and path != SEAL_PATH  # it signs the tag manifests, so they cannot list it
            and path not in listed
        ):
            problems.append(
                Problem(
                    "tag_unlisted",
                    path,
                    "标签文件未列入标签清单 / tag file not listed in the tag manifests (added?)",
                )
            )


def _json_tag(src: BagFiles, name: str, problems: list[Problem]) -> Any:
    data = src.read(name)
    if data is None:
        problems.append(
            Problem(
                "casefile_missing", name, f"案卷缺少 {name} / {name} is missing from the case file"
            )
        )
        return None
    try:
        return parse_json(data)
    except CanonicalJSONError as e:
        problems.append(Problem("casefile_malformed", name, e.message))
        return None


def _check_case_file(
    src: BagFiles,
    info: Mapping[str, str],
    manifests: Mapping[str, Mapping[str, str]],
    log_key: str | None,
    problems: list[Problem],
    notes: list[str],
) -> None:
    events: list[Any] = []
    raw = src.read("casetrail/custody/events.jsonl")
    if raw is None:
        problems.append(
            Problem(
                "casefile_missing",
                "casetrail/custody/events.jsonl",
                "缺少监管链事件 / custody events are missing",
            )
        )
    else:
        for n, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
            try:
                ev = parse_json(line)
            except CanonicalJSONError as e:
                problems.append(Problem("event_malformed", f"events.jsonl:{n}", e.message))
                continue
            if isinstance(ev, dict):
                events.append(ev)
            else:
                problems.append(
                    Problem(
                        "event_malformed", f"events.jsonl:{n}", "不是 JSON 对象 / not a JSON object"
                    )
                )
    proofs_doc = _json_tag(src, "casetrail/custody/proofs.json", problems)
    proofs = proofs_doc.get("proofs", {}) if isinstance(proofs_doc, dict) else {}
    cp_bytes = src.read("casetrail/custody/checkpoint.txt")
    checkpoint = "" if cp_bytes is None else cp_bytes.decode("utf-8", "replace")
    if cp_bytes is None:
        problems.append(
            Problem(
                "casefile_missing",
                "casetrail/custody/checkpoint.txt",
                "缺少检查点 / the checkpoint is missing",
            )
        )
    key_bytes = src.read("casetrail/keys/log-key.txt")
    bag_key = "" if key_bytes is None else key_bytes.decode("utf-8", "replace").strip()
    if log_key is None:
        log_key = bag_key
        notes.append(
            "日志公钥取自包内 keys/log-key.txt，请与本机关公布的公钥核对 / the log key was taken from "
            f"the bag itself: {bag_key} — compare it with the key your agency publishes, or pass --log-key"
        )
    elif bag_key != log_key:
        problems.append(
            Problem(
                "log_key_untrusted",
                "casetrail/keys/log-key.txt",
                f"包内日志公钥不是受信公钥 / the bag's log key {bag_key!r} is not the trusted key {log_key!r}",
            )
        )
    devices = _json_tag(src, "casetrail/keys/devices.json", problems)
    signed_manifests: list[Any] = []
    for name in sorted(
        p for p in src.files if p.startswith("casetrail/manifests/") and p.endswith(".json")
    ):
        m = _json_tag(src, name, problems)
        if isinstance(m, dict):
            signed_manifests.append(m)
    case_doc = _json_tag(src, "casetrail/case.json", problems)
    case_id = case_doc.get("case_id") if isinstance(case_doc, dict) else None
    problems += verify_case_file(
        events=events,
        proofs=proofs if isinstance(proofs, dict) else {},
        checkpoint=checkpoint,
        log_key=log_key,
        manifests=signed_manifests,
        device_keys=devices if isinstance(devices, list) else [],
        case_id=case_id if isinstance(case_id, str) else None,
    )
    _check_export_record(src, info, events, checkpoint, log_key, problems)
    _check_bound_tags(src, info, case_doc, events, checkpoint, log_key, problems)
    _check_seal(src, case_doc, events, checkpoint, log_key, problems)
    _check_files_tsv(src, manifests, signed_manifests, problems)
    notes.append(
        "完整性报告未在此重新计算（需要 CaseTrail 的记录标准），已核对其摘要与签名的导出记录一致；"
        "`casetrail verify` 会重新计算 / the completeness report is not recomputed here (that needs "
        "CaseTrail's recording standards); its digest was checked against the signed export record. "
        "`casetrail verify` recomputes it."
    )
    notes.append(
        "标签清单已与日志密钥的封签 casetrail/seal.txt 核对；记录该封签的 bag_sealed 事件在导出之后写入日志，"
        "不在包内，可向服务器索取其包含证明 / the tag manifests were checked against the log key's "
        "seal (casetrail/seal.txt); the bag_sealed event recording that seal was logged after this "
        "bag was made: ask the server for its inclusion proof to see the log recorded it"
    )


def _check_export_record(
    src: BagFiles,
    info: Mapping[str, str],
    events: Sequence[Mapping[str, Any]],
    checkpoint: str,
    log_key: str,
    problems: list[Problem],
) -> None:
    last = events[-1] if events else {}
    details = last.get("details")
    if last.get("type") != "exported" or not isinstance(details, Mapping):
        problems.append(
            Problem(
                "export_record_missing",
                "casetrail/custody/events.jsonl",
                "最后一个事件不是导出记录 exported（事件被删除？）/ the last event is not the "
                "'exported' record (events removed from the end?)",
            )
        )
        return
    if details.get("export_id") != info.get("CaseTrail-Export-Id"):
        problems.append(
            Problem(
                "export_record_mismatch",
                "bag-info.txt",
                f"导出编号不符 / CaseTrail-Export-Id {info.get('CaseTrail-Export-Id')!r} is not the "
                f"logged export {details.get('export_id')!r}",
            )
        )
    if details.get("payload_oxum") != info.get("Payload-Oxum"):
        problems.append(
            Problem(
                "export_record_mismatch",
                "bag-info.txt",
                f"Payload-Oxum {info.get('Payload-Oxum')!r} 与导出记录 {details.get('payload_oxum')!r} 不符 / "
                "differs from the logged export",
            )
        )
    digests = details.get("tag_digests")
    for path, expected in sorted(digests.items()) if isinstance(digests, Mapping) else []:
        data = src.read(path)
        found = None if data is None else sha256_digest(data)
        if found != expected:
            problems.append(
                Problem(
                    "export_record_mismatch",
                    path,
                    "与已签名的导出记录不符（清单或元数据被替换）/ differs from the digest in the "
                    f"signed 'exported' event: logged {expected}, found {found}",
                )
            )
    try:
        cp = open_checkpoint(checkpoint, log_key)
    except CheckpointInvalid:
        return  # reported by verify_case_file
    stated = f"{cp.size} {base64.b64encode(cp.root_hash).decode('ascii')}"
    if info.get("CaseTrail-Checkpoint") != stated:
        problems.append(
            Problem(
                "bag_info_mismatch",
                "bag-info.txt",
                f"CaseTrail-Checkpoint {info.get('CaseTrail-Checkpoint')!r} 与检查点 {stated!r} 不符 / "
                "differs from the signed checkpoint",
            )
        )


_GUIDE_TEMPLATE = """\
# 行政执法案卷包 / Enforcement case file

| 项目 item | 内容 value |
|---|---|
| 案号 case no. | {case_no} |
| 案件名称 title | {title} |
| 执法机关 agency | {agency} |
| 执法类别 category | {category} |
| 导出编号 export id | {export_id} |
| 导出时间 exported at | {exported_at} |
| 检查点 checkpoint | 日志大小 size {checkpoint_size}，根哈希 root {checkpoint_root} |
| 日志公钥 log key | `{log_key}` |

## 这是什么

本目录是一个 BagIt 1.0（RFC 8493）案卷包，由 CaseTrail 从证据存储中逐字节导出，导出时重新计算了
每个文件的 SHA-256 与 SHA-512。

- `data/`：原始证据，按「环节 / 记录类型 / 序号_文件名」存放，与执法人员设备上签名的原件逐字节相同。
  文件名已做安全处理（统一为 NFC，去掉路径分隔符、控制字符与方向控制符），原文件名见 `casetrail/case.json`。
- `manifest-sha256.txt`、`manifest-sha512.txt`：每个证据文件的摘要；`tagmanifest-*.txt`：其余文件的摘要。
- `casetrail/files.tsv`：每个文件一行（路径、摘要、大小、类型、环节、记录类型、原件/派生件、采集清单编号）。
- `casetrail/manifests/`：设备签名的采集清单（收到时的原样）；`casetrail/keys/devices.json`：设备公钥。
- `casetrail/custody/`：本案全部监管链事件（至本次「导出」事件为止）、每个事件的包含证明、已签名检查点。
- `casetrail/keys/log-key.txt`、`log-key.pem`：服务器日志公钥。
- `casetrail/completeness.json`：导出时的完整性检查报告。
- `casetrail/seal.txt`：封签——服务器日志密钥对两份标签清单摘要与本案身份的签名，封签后任何标签文件的改动都会被发现。

## 如何核验（离线）

只需要 Python 3.11 以上和 `cryptography` 包：

    python casetrail/verify.py                     # 在本目录中运行
    python casetrail/verify.py --log-key '<本机关公布的日志公钥>'

核验会重新计算每个文件的两种摘要，检查文件有无增删、采集清单签名、监管链是否连续、每个事件是否在
已签名日志中、检查点签名。发现任何问题都会逐条列出，并以非零状态退出。也可用
`casetrail verify 本包目录或 .tar/.zip`，或美国国会图书馆的 `bagit.py --validate`（仅 BagIt 部分）。

注意：标签清单由日志密钥签名封存（`casetrail/seal.txt`）；`bag_sealed`（封存）事件也记录了它们与封签的
摘要，它在本包生成之后写入日志，因此不在包内，可向服务器索取该事件的包含证明。日志公钥请与本机关公布的公钥核对。

---

## What this is

A BagIt 1.0 (RFC 8493) case file exported by CaseTrail, streamed from evidence storage with every
file re-hashed (SHA-256 and SHA-512) on the way.

- `data/`: the original evidence, byte-identical to what the inspectors' devices signed, arranged as
  `<stage>/<record type>/<NNN>_<file name>`. Names are made safe (NFC, no path separators, control or
  bidi characters); the original names are in `casetrail/case.json`.
- `manifest-*.txt` list every payload file's digests; `tagmanifest-*.txt` cover the other files.
- `casetrail/files.tsv`: one line per file (path, digests, size, media type, stage, record type,
  original or derivative, capture manifest id).
- `casetrail/manifests/`: the device-signed capture manifests as received; device keys in `keys/devices.json`.
- `casetrail/custody/`: every custody event of the case up to and including this export, an inclusion
  proof per event, and the signed checkpoint they lead to.
- `casetrail/keys/log-key.txt`, `log-key.pem`: the server's log key.
- `casetrail/completeness.json`: the completeness report at export time.
- `casetrail/seal.txt`: the seal — the log key's signature over both tag manifests' digests and the
  case's identity, so any tag file changed after sealing is found.

## How to verify (offline)

Python 3.11+ and the `cryptography` package are all you need:

    python casetrail/verify.py                     # run inside this directory
    python casetrail/verify.py --log-key '<the log key your agency publishes>'

It re-hashes every file, looks for added or removed files, checks the capture-manifest signatures, the
case's custody chain, every event's inclusion in the signed log and the checkpoint signature, lists
every problem and exits non-zero on any. `casetrail verify <bag dir, .tar or .zip>` does the same;
the Library of Congress `bagit.py --validate` checks the BagIt part.

Note: the tag manifests are sealed by the log key's signature in `casetrail/seal.txt`; the `bag_sealed`
event, which records their digests and the seal's, was logged after the bag was made and so is not
inside it; ask the server for its inclusion proof. Compare the log key with the one your agency publishes.
"""
GUIDE_PATH = "casetrail/README.zh-en.md"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def render_case_file_guide(
    *,
    case_no: str,
    title: str,
    agency: str,
    category: str,
    export_id: str,
    exported_at: str,
    checkpoint_size: int,
    checkpoint_root: str,
    log_key: str,
) -> bytes:
    """The bag's ``casetrail/README.zh-en.md`` (UTF-8) from the facts it shows.

    Rendered here so that :func:`verify_bag` can render it again from the facts the
    signed log vouches for and find any edit of the guide.
    """
    return _GUIDE_TEMPLATE.format(
        case_no=_cell(case_no),
        title=_cell(title),
        agency=_cell(agency),
        category=_cell(category),
        export_id=export_id,
        exported_at=exported_at,
        checkpoint_size=checkpoint_size,
        checkpoint_root=checkpoint_root,
        log_key=log_key,
    ).encode("utf-8")


BAGIT_DECLARATION = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
"""The whole ``bagit.txt`` of a CaseTrail bag."""


def _beijing_date(moment: object) -> str | None:
    """The calendar date in Beijing (UTC+8, no DST) of an ISO time, as ``YYYY-MM-DD``."""
    try:
        when = datetime.fromisoformat(str(moment).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(timezone(timedelta(hours=8))).date().isoformat()


def _flat(value: object) -> str:
    """A value as ``bag-info.txt`` holds it (one line, runs of whitespace as one space)."""
    return " ".join(str(value).split())


def _check_bound_tags(
    src: BagFiles,
    info: Mapping[str, str],
    case_doc: object,
    events: Sequence[Mapping[str, Any]],
    checkpoint: str,
    log_key: str,
    problems: list[Problem],
) -> None:
    """``bagit.txt``, the ``bag-info.txt`` facts and the guide are bound to the signed log.

    The tag manifests only say the tag files are what the bag maker wrote; a forger
    rewrites them too. So every fact ``bag-info.txt`` states is compared with where the
    signed log vouches for it: ``case.json`` (its digest is in the ``exported`` event,
    itself proven against the signed checkpoint) for the case number, title, case id,
    agency and standard; the ``exported`` event for its id and the bagging date; the
    checkpoint for the log's name. ``bagit.txt`` must be exactly the BagIt 1.0 declaration,
    and the guide (``README.zh-en.md``) exactly :func:`render_case_file_guide` of those facts.
    """
    raw = src.read("bagit.txt")
    if raw is not None and raw != BAGIT_DECLARATION:
        problems.append(
            Problem(
                "bagit_txt_invalid",
                "bagit.txt",
                "bagit.txt 被改动（须恰为 BagIt 1.0 声明两行）/ bagit.txt was changed: it must be "
                "exactly the two BagIt 1.0 declaration lines",
            )
        )
    last = events[-1] if events else {}
    if not isinstance(case_doc, Mapping) or last.get("type") != "exported":
        return  # reported as a missing or malformed case file / export record
    agency = case_doc.get("agency") if isinstance(case_doc.get("agency"), Mapping) else {}
    standard = case_doc.get("standard") if isinstance(case_doc.get("standard"), Mapping) else {}
    assert isinstance(agency, Mapping) and isinstance(standard, Mapping)
    expected: dict[str, tuple[object, str]] = {
        "External-Identifier": (case_doc.get("case_no"), "case.json case_no 案号"),
        "External-Description": (case_doc.get("title"), "case.json title"),
        "Internal-Sender-Identifier": (case_doc.get("case_id"), "case.json case_id"),
        "Source-Organization": (agency.get("name"), "case.json agency.name 执法机关"),
        "Organization-Address": (agency.get("code"), "case.json agency.code"),
        "CaseTrail-Standard": (
            f"{standard.get('id')}@{standard.get('version')}",
            "case.json standard",
        ),
        "CaseTrail-Exported-Event": (last.get("event_id"), "the exported event"),
        "Bagging-Date": (_beijing_date(last.get("time")), "the exported event's date (北京时间)"),
    }
    if info.get("Bagging-Date") == str(last.get("time", ""))[:10]:
        del expected["Bagging-Date"]  # bags sealed before 2026-12 carry the UTC date
    try:
        cp: Checkpoint | None = open_checkpoint(checkpoint, log_key)
    except CheckpointInvalid:
        cp = None  # reported on its own
    origin = cp.origin if cp is not None else info.get("CaseTrail-Log-Origin")
    expected["CaseTrail-Log-Origin"] = (origin, "the signed checkpoint")
    for label, (value, source) in expected.items():
        found = info.get(label)
        if value is None or found != _flat(value):
            problems.append(
                Problem(
                    "bag_info_mismatch",
                    "bag-info.txt",
                    f"{label} {found!r} 与已签名记录不符 / differs from {source}, which the signed "
                    f"log vouches for: {_flat(value) if value is not None else None!r}",
                )
            )
    name_zh = standard.get("name_zh")
    description = info.get("Internal-Sender-Description", "")
    if isinstance(name_zh, str) and not description.startswith(_flat(name_zh)):
        problems.append(
            Problem(
                "bag_info_mismatch",
                "bag-info.txt",
                f"Internal-Sender-Description {description!r} 不是本案记录标准 / is not the case's "
                f"recording standard {name_zh!r} (case.json)",
            )
        )
    labels = [
        line.partition(":")[0].strip()
        for line in (src.read("bag-info.txt") or b"").decode("utf-8", "replace").splitlines()
        if line[:1] not in (" ", "\t") and ":" in line
    ]
    for label in sorted({x for x in labels if labels.count(x) > 1 and x in expected}):
        problems.append(
            Problem(
                "bag_info_mismatch",
                "bag-info.txt",
                f"{label} 出现多次 / appears more than once (a reader may take the other one)",
            )
        )
    details = last.get("details")
    if cp is None or not isinstance(details, Mapping):
        return
    guide = render_case_file_guide(
        case_no=str(case_doc.get("case_no", "")),
        title=str(case_doc.get("title", "")),
        agency=str(agency.get("name", "")),
        category=description,
        export_id=str(details.get("export_id", "")),
        exported_at=str(last.get("time", "")),
        checkpoint_size=cp.size,
        checkpoint_root=base64.b64encode(cp.root_hash).decode("ascii"),
        log_key=log_key,
    )
    if src.read(GUIDE_PATH) != guide:
        problems.append(
            Problem(
                "guide_altered",
                GUIDE_PATH,
                "说明文件与已签名记录不符（被改动或替换）/ the guide differs from the one the signed "
                "log's facts give: it was edited or replaced",
            )
        )


SEAL_PATH = "casetrail/seal.txt"
"""The bag's seal: a signed note, by the log key, over the tag manifests' digests."""
SEAL_FORMAT = "casetrail-bag-seal/1"
SEALED_MANIFESTS = ("tagmanifest-sha256.txt", "tagmanifest-sha512.txt")


def seal_body(
    *, origin: str, export_id: str, case_id: str, case_no: str, tag_manifests: Mapping[str, bytes]
) -> str:
    """The text the log key signs as ``casetrail/seal.txt`` (a C2SP signed note)::

        casetrail.example.gov.cn/log
        casetrail-bag-seal/1
        export 0b6c…
        case 7d1e…
        case-no 黔市监罚〔2026〕8号
        tagmanifest-sha256.txt sha256:…
        tagmanifest-sha512.txt sha512:…

    The tag manifests list every other tag file (the payload manifests included), so
    this one signature binds the whole bag to its identity. ``tag_manifests`` maps each
    of :data:`SEALED_MANIFESTS` to its bytes (an absent one is sealed as ``missing``).
    """
    lines = [
        origin,
        SEAL_FORMAT,
        f"export {export_id}",
        f"case {case_id}",
        f"case-no {_flat(case_no)}",
    ]
    for name in SEALED_MANIFESTS:
        data = tag_manifests.get(name)
        alg = name.removeprefix("tagmanifest-").removesuffix(".txt")
        lines.append(
            f"{name} "
            + ("missing" if data is None else f"{alg}:{hashlib.new(alg, data).hexdigest()}")
        )
    return "\n".join(lines) + "\n"


def _check_seal(
    src: BagFiles,
    case_doc: object,
    events: Sequence[Mapping[str, Any]],
    checkpoint: str,
    log_key: str,
    problems: list[Problem],
) -> None:
    """``casetrail/seal.txt`` is signed by the log key and seals these tag manifests.

    Any tag file edited after sealing changes a tag manifest (or no longer matches it),
    so a forger who fixes the tag manifests up leaves a stale seal; only the log key
    can sign a new one.
    """
    raw = src.read(SEAL_PATH)
    if raw is None:
        problems.append(
            Problem(
                "seal_missing",
                SEAL_PATH,
                "缺少封签（日志密钥对标签清单的签名）/ the seal (the log key's signature over the "
                "tag manifests) is missing",
            )
        )
        return
    try:
        verifier = NoteVerifier.from_key_string(log_key)
        body, _ = open_note(raw.decode("utf-8", "replace"), [verifier])
    except CheckpointInvalid as e:
        problems.append(
            Problem(
                "seal_invalid",
                SEAL_PATH,
                f"封签签名无效 / the seal's signature does not verify with the log key: {e.message}",
            )
        )
        return
    last = events[-1] if events else {}
    details = last.get("details") if last.get("type") == "exported" else None
    if not isinstance(case_doc, Mapping) or not isinstance(details, Mapping):
        return  # reported as a missing or malformed case file / export record
    try:
        origin = open_checkpoint(checkpoint, log_key).origin
    except CheckpointInvalid:
        origin = verifier.name  # the checkpoint is reported on its own
    expected = seal_body(
        origin=origin,
        export_id=str(details.get("export_id", "")),
        case_id=str(case_doc.get("case_id", "")),
        case_no=str(case_doc.get("case_no", "")),
        tag_manifests={n: d for n in SEALED_MANIFESTS if (d := src.read(n)) is not None},
    )
    if body != expected:
        stale = [line for line in body.splitlines() if line not in expected.splitlines()]
        problems.append(
            Problem(
                "seal_stale",
                SEAL_PATH,
                "封签与本包不符：封签后标签文件被改动（标签清单已重算）或封签来自另一个包 / the seal "
                "does not match this bag: a tag file was changed after sealing (and the tag "
                "manifests fixed up) or the seal belongs to another bag; sealed lines not found: "
                + "; ".join(stale),
            )
        )


def _check_files_tsv(
    src: BagFiles,
    manifests: Mapping[str, Mapping[str, str]],
    signed_manifests: Sequence[Mapping[str, Any]],
    problems: list[Problem],
) -> None:
    data = src.read("casetrail/files.tsv")
    if data is None:
        problems.append(
            Problem(
                "casefile_missing", "casetrail/files.tsv", "缺少文件清单 / files.tsv is missing"
            )
        )
        return
    captured: dict[str, set[tuple[str, object]]] = {}
    for signed in signed_manifests:
        m = signed.get("manifest")
        if isinstance(m, Mapping) and isinstance(m.get("files"), list):
            captured[str(m.get("manifest_id"))] = {
                (str(f.get("sha256")), f.get("size")) for f in m["files"] if isinstance(f, Mapping)
            }
    lines = data.decode("utf-8", "replace").splitlines()
    if not lines or tuple(lines[0].split("\t")) != FILES_TSV_COLUMNS:
        problems.append(
            Problem(
                "casefile_malformed", "casetrail/files.tsv", "表头不符 / unexpected header line"
            )
        )
        return
    seen = set()
    for n, line in enumerate(lines[1:], 2):
        row = dict(zip(FILES_TSV_COLUMNS, line.split("\t"), strict=False))
        path = _decode_manifest_path(row.get("path", "").replace("%09", "\t"))
        where = f"files.tsv:{n} {path}"
        seen.add(path)
        for alg in _BAG_HASHES:
            listed = manifests.get(alg, {}).get(path)
            if listed is None or row.get(alg) != f"{alg}:{listed}":
                problems.append(
                    Problem(
                        "files_tsv_mismatch",
                        where,
                        f"{alg} 与载荷清单不符 / {alg} differs from the payload manifest",
                    )
                )
        if row.get("kind") == "original":
            try:
                size = int(row.get("size", ""))
            except ValueError:
                size = -1
            if (row.get("sha256", ""), size) not in captured.get(row.get("manifest_id", ""), set()):
                problems.append(
                    Problem(
                        "original_not_in_manifest",
                        where,
                        f"原始文件（sha256 与大小）不在其签名采集清单 {row.get('manifest_id')} 中 / the "
                        f"original's sha256 and size are not in its signed capture manifest {row.get('manifest_id')}",
                    )
                )
    listed_payload = set().union(*manifests.values()) if manifests else set()
    for path in sorted(listed_payload - seen):
        problems.append(
            Problem(
                "files_tsv_mismatch", path, "files.tsv 未列出此载荷文件 / not listed in files.tsv"
            )
        )


def verify_bag(path: str | Path, *, log_key: str | None = None) -> BagReport:
    """Check a CaseTrail bag in full — a directory, ``.tar`` or ``.zip`` — and return EVERY problem.

    BagIt (RFC 8493): ``bagit.txt``; both payload manifests (each payload file re-hashed
    with SHA-256 and SHA-512; missing and extra files); ``Payload-Oxum``; both tag
    manifests; no unlisted tag file; unsafe archive entries. The case file: everything
    :func:`verify_case_file` checks, the ``exported`` event against the bag (payload
    manifests and tag files it names, export id, oxum), ``CaseTrail-Checkpoint``, and
    that every original in ``files.tsv`` matches its payload entry and a file (sha256 +
    size) of its signed capture manifest; the seal (``casetrail/seal.txt``) verifies with
    the log key and seals these tag manifests. ``log_key`` pins the trusted log key (else
    the bag's own key is used and a note says so).
    """
    problems: list[Problem] = []
    notes: list[str] = []
    src = BagFiles(Path(path), problems)
    try:
        bagit = src.read("bagit.txt")
        if bagit is None or not re.search(rb"^BagIt-Version: *1\.0\s*$", bagit, re.M):
            problems.append(
                Problem(
                    "bagit_txt_invalid",
                    "bagit.txt",
                    "缺少 bagit.txt 或版本不是 1.0 / bagit.txt missing or not BagIt-Version 1.0",
                )
            )
        elif not re.search(rb"^Tag-File-Character-Encoding: *UTF-8\s*$", bagit, re.M | re.I):
            problems.append(
                Problem(
                    "bagit_txt_invalid",
                    "bagit.txt",
                    "标签文件编码须为 UTF-8 / Tag-File-Character-Encoding must be UTF-8",
                )
            )
        raw_info = src.read("bag-info.txt")
        info = _bag_info(raw_info or b"")
        manifests, octets, count = _check_payload(src, problems)
        oxum = info.get("Payload-Oxum")
        if oxum is not None and oxum != f"{octets}.{count}":
            problems.append(
                Problem(
                    "payload_oxum_mismatch",
                    "bag-info.txt",
                    f"Payload-Oxum 为 {oxum}，实际 {octets}.{count} / Payload-Oxum says {oxum}, the payload is {octets}.{count}",
                )
            )
        _check_tags(src, problems)
        if any(p.startswith("casetrail/") for p in src.files):
            _check_case_file(src, info, manifests, log_key, problems, notes)
        else:
            notes.append(
                "没有 casetrail/ 标签目录：只做了 BagIt 校验 / no casetrail/ tag directory: BagIt checks only"
            )
    finally:
        src.close()
    return BagReport(problems, notes, count, octets)


def _main_bag(target: Path, log_key: str | None) -> int:
    try:
        report = verify_bag(target, log_key=log_key)
    except (OSError, ValueError) as e:
        print(f"无法读取案卷包 / cannot read the bag: {e}", file=sys.stderr)
        return 2
    for p in report.problems:
        print(f"[{p.code}] {p.where}: {p.message}")
    for note in report.notes:
        print(f"注 / note: {note}")
    print(
        f"已逐一重新计算 {report.payload_files} 个载荷文件（{report.payload_bytes} 字节）的 SHA-256 与 "
        f"SHA-512 / re-hashed {report.payload_files} payload file(s), {report.payload_bytes} bytes"
    )
    if report.problems:
        print(f"发现 {len(report.problems)} 个问题 / {len(report.problems)} problem(s) found")
        return 1
    print(
        "校验通过 / verified: bag complete and unaltered, every event in the signed log, "
        "chains and signatures intact"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python verify.py [BAG] [--log-key KEY]``: verify a case file and print every problem.

    ``BAG`` is an exported bag — a directory, ``.tar`` or ``.zip`` (see :func:`verify_bag`;
    by default the bag this file sits in, ``<bag>/casetrail/verify.py``) — or a
    directory holding ``case.json`` with ``{"events": [...], "proofs": {...},
    "checkpoint": "...", "log_key": "...", "manifests": [...], "device_keys": [...]}``
    (the arguments of :func:`verify_case_file`). ``--log-key`` pins the trusted log
    verifier key. Exit status 0 = verified, 1 = problems, 2 = unreadable.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    log_key = None
    if "--log-key" in args:
        at = args.index("--log-key")
        if at + 1 >= len(args):
            args = []
        else:
            log_key = args[at + 1]
            del args[at : at + 2]
    if not args:
        home = Path(__file__).resolve().parent.parent
        if (home / "bagit.txt").is_file():
            args = [str(home)]
    if len(args) != 1:
        print(
            "用法 / usage: python verify.py [BAG-DIR | BAG.tar | BAG.zip] [--log-key KEY]",
            file=sys.stderr,
        )
        return 2
    target = Path(args[0])
    if target.is_file() or (target / "bagit.txt").is_file():
        return _main_bag(target, log_key)
    try:
        data = parse_json(Path(args[0], "case.json").read_bytes())
        problems = verify_case_file(
            events=data["events"],
            proofs=data["proofs"],
            checkpoint=data["checkpoint"],
            log_key=log_key or data["log_key"],
            manifests=data.get("manifests", []),
            device_keys=data.get("device_keys", []),
        )
    except (OSError, KeyError, TypeError, AttributeError, CanonicalJSONError) as e:
        print(f"无法读取案卷 / cannot read the case file: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"[{p.code}] {p.where}: {p.message}")
    if problems:
        print(f"发现 {len(problems)} 个问题 / {len(problems)} problem(s) found")
        return 1
    print("校验通过 / verified: every event is in the signed log, chains and signatures intact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
