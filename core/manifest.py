"""Capture manifests (采集清单): what a device signs for each capture.

A manifest lists the files of one capture with their sizes and SHA-256 and the facts
the recording standard asks for (case 案号, category, stage, record type, officers'
执法证号, device/GNSS time, location, recording interruptions). It is canonical JSON
(RFC 8785) signed by the device key; ``device_seq``/``device_prev`` chain a device's
manifests so a deleted capture shows as a gap. Every field is present (``null`` when
absent), so the JSON round-trips byte for byte. Example (wire form)::

    {"manifest": {
        "schema_version": 1, "manifest_id": "m-81", "device_id": "dev-3",
        "key_id": "sha256:5c1e…", "alg": "Ed25519",
        "case_ref": "黔市监罚〔2025〕12号", "category": "market_supervision",
        "stage": "on_site_inspection", "record_type": "现场检查笔录",
        "officers": ["52010012345", "52010012346"],
        "device_time": "2025-03-01T09:30:00+08:00", "gnss_time": null,
        "timezone": "Asia/Shanghai",
        "location": {"lat": "26.6470", "lon": "106.6302", "accuracy": "8.5"},
        "files": [{"name": "IMG_0001.jpg", "size": 2483114,
                   "sha256": "sha256:9b1f…", "media_type": "image/jpeg"}],
        "interruptions": [{"at": "2025-03-01T09:41:00+08:00",
                           "resumed_at": "2025-03-01T09:43:10+08:00",
                           "reason": "battery", "resumption_note": "更换电池后继续"}],
        "av_reason": null, "credentials_shown": true,
        "device_seq": 42, "device_prev": "sha256:0d4a…", "note": null},
     "signature": {"alg": "Ed25519", "key_id": "sha256:5c1e…", "value": "<base64>"}}

The signature is over ``canonical_json(manifest object)`` — never over whatever bytes
the device happened to serialise; a verifier re-canonicalises the object it received.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.canonical import canonical_json, find_floats, is_digest, is_rfc3339, sha256_digest
from core.errors import ManifestInvalid, SignatureInvalid
from core.keys import PrivateKey, algorithm_of, key_id, sign
from core.verify import (
    ALGORITHMS,
    ChainBreak,
    PublicKey,
    check_device_chain,
    verify_manifest_signature,
)

__all__ = [
    "SCHEMA_VERSION",
    "CaptureManifest",
    "ChainBreak",
    "Interruption",
    "Location",
    "ManifestFile",
    "SignedManifest",
    "sign_manifest",
    "verify_device_chain",
    "verify_manifest",
]

SCHEMA_VERSION = 1
MAX_FILE_NAME = 255
"""Longest accepted file name, in characters (names are metadata, never storage keys)."""
MAX_TEXT = 2000

_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


@dataclass(frozen=True)
class ManifestFile:
    """One captured file: client file name (metadata only), size, ``sha256:<hex>``, media type."""

    name: str
    size: int
    sha256: str
    media_type: str


@dataclass(frozen=True)
class Interruption:
    """A recording interruption (中断): when, when resumed (or ``None``), why, and a note."""

    at: str
    resumed_at: str | None
    reason: str
    resumption_note: str | None = None


@dataclass(frozen=True)
class Location:
    """Position as decimal STRINGS (no floats in signed JSON): degrees and metres."""

    lat: str
    lon: str
    accuracy: str | None = None


_FIELDS = (
    "schema_version", "manifest_id", "device_id", "key_id", "alg", "case_ref", "category",
    "stage", "record_type", "officers", "device_time", "gnss_time", "timezone", "location",
    "files", "interruptions", "av_reason", "credentials_shown", "device_seq", "device_prev",
    "note",
)  # fmt: skip


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, zh: str, en: str) -> None:
        self.items.append(f"{where}: {zh} / {en}")

    def text(self, where: str, v: object, *, optional: bool = False, limit: int = MAX_TEXT) -> None:
        if v is None and optional:
            return
        if not isinstance(v, str) or not v.strip():
            self.add(
                where,
                "须为非空字符串",
                "must be a non-empty string" + (" or null" if optional else ""),
            )
        elif len(v) > limit:
            self.add(where, f"超过 {limit} 个字符", f"longer than {limit} characters")
        elif any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in v):
            self.add(where, "含控制字符", "contains control characters")

    def time(self, where: str, v: object, *, optional: bool = False) -> None:
        if v is None and optional:
            return
        if not is_rfc3339(v):
            self.add(
                where,
                f"{v!r} 须为带时区偏移的 RFC 3339 时间",
                "must be RFC 3339 with offset, e.g. 2025-03-01T09:30:00+08:00",
            )

    def keys(self, where: str, d: Mapping[str, Any], names: Iterable[str]) -> bool:
        names = set(names)
        for k in sorted(names - set(d)):
            self.add(
                f"{where}{k}", "缺少字段（无值时用 null）", "missing field (use null when absent)"
            )
        for k in sorted(set(d) - names, key=str):
            self.add(f"{where}{k}", "未知字段", "unknown field")
        return names <= set(d)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _decimal(p: _Problems, where: str, v: object, lo: Decimal, hi: Decimal) -> None:
    if not isinstance(v, str) or not _DECIMAL.fullmatch(v):
        p.add(
            where,
            f"{v!r} 须为十进制数字字符串",
            'must be a decimal number as a string, e.g. "26.6470"',
        )
        return
    try:
        n = Decimal(v)
    except InvalidOperation:  # pragma: no cover - the pattern already rules it out
        n = lo - 1
    if not lo <= n <= hi:
        p.add(where, f"{v} 超出 {lo}..{hi}", f"{v} is outside {lo}..{hi}")


def _file_name(p: _Problems, where: str, v: object) -> None:
    if not isinstance(v, str) or not v:
        p.add(where, "文件名不能为空", "file name must be a non-empty string")
    elif len(v) > MAX_FILE_NAME:
        p.add(
            where,
            f"文件名超过 {MAX_FILE_NAME} 个字符",
            f"file name longer than {MAX_FILE_NAME} characters",
        )
    elif any(unicodedata.category(c) in ("Cc", "Cs") for c in v):
        p.add(where, "文件名含控制字符或 NUL", "file name contains NUL or control characters")


def _manifest_problems(d: Mapping[str, Any]) -> list[str]:
    p = _Problems()
    for place in find_floats(dict(d)):
        p.add(place, "不允许浮点数，请用字符串", "floats are not allowed; send decimals as strings")
    p.keys("", d, _FIELDS)
    if d.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        p.add("schema_version", f"须为 {SCHEMA_VERSION}", f"must be {SCHEMA_VERSION}")
    for name in (
        "manifest_id",
        "device_id",
        "case_ref",
        "category",
        "stage",
        "record_type",
        "timezone",
    ):
        if name in d:
            p.text(name, d[name], limit=200)
    for name in ("av_reason", "note"):
        if name in d:
            p.text(name, d[name], optional=True)
    if "credentials_shown" in d and not isinstance(d["credentials_shown"], bool):
        p.add("credentials_shown", "须为 true 或 false", "must be true or false")
    if "key_id" in d and not is_digest(d["key_id"]):
        p.add("key_id", "须为 sha256:<hex>", "must be sha256:<64 hex>")
    if "alg" in d and d["alg"] not in ALGORITHMS:
        p.add("alg", f"不支持 {d['alg']!r}", "must be Ed25519 or ES256")
    officers = d.get("officers")
    if "officers" in d:
        if not isinstance(officers, list | tuple) or not officers:
            p.add("officers", "须列出至少一个执法证号", "must list at least one officer (执法证号)")
        else:
            for i, o in enumerate(officers):
                p.text(f"officers[{i}]", o, limit=64)
            if len(set(map(str, officers))) != len(officers):
                p.add("officers", "执法证号重复", "an officer is listed twice")
    if "device_time" in d:
        p.time("device_time", d["device_time"])
    if "gnss_time" in d:
        p.time("gnss_time", d["gnss_time"], optional=True)
    loc = d.get("location")
    if loc is not None:
        if not isinstance(loc, Mapping):
            p.add("location", "须为对象或 null", "must be an object or null")
        elif p.keys("location.", loc, ("lat", "lon", "accuracy")):
            _decimal(p, "location.lat", loc["lat"], Decimal(-90), Decimal(90))
            _decimal(p, "location.lon", loc["lon"], Decimal(-180), Decimal(180))
            if loc["accuracy"] is not None:
                _decimal(p, "location.accuracy", loc["accuracy"], Decimal(0), Decimal(10**7))
    files = d.get("files")
    if "files" in d:
        if not isinstance(files, list | tuple) or not files:
            p.add("files", "须列出至少一个文件", "must list at least one file")
        else:
            names: list[str] = []
            for i, f in enumerate(files):
                w = f"files[{i}]"
                if not isinstance(f, Mapping):
                    p.add(w, "须为对象", "must be an object")
                    continue
                if not p.keys(w + ".", f, ("name", "size", "sha256", "media_type")):
                    continue
                _file_name(p, w + ".name", f["name"])
                names.append(str(f["name"]))
                if not _is_int(f["size"]) or f["size"] < 0:
                    p.add(w + ".size", "须为 ≥0 的整数", "must be an integer >= 0")
                if not is_digest(f["sha256"]):
                    p.add(
                        w + ".sha256",
                        "须为 sha256:<64位小写十六进制>",
                        "must be sha256:<64 lowercase hex>",
                    )
                if not isinstance(f["media_type"], str) or not _MEDIA_TYPE.fullmatch(
                    f["media_type"]
                ):
                    p.add(
                        w + ".media_type",
                        "须为 type/subtype",
                        "must be a media type like image/jpeg",
                    )
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                p.add(
                    "files",
                    f"文件名重复：{', '.join(dupes)}",
                    f"duplicate file names: {', '.join(dupes)}",
                )
    inter = d.get("interruptions")
    if "interruptions" in d:
        if not isinstance(inter, list | tuple):
            p.add("interruptions", "须为列表", "must be a list (empty when none)")
        else:
            for i, it in enumerate(inter):
                w = f"interruptions[{i}]"
                if not isinstance(it, Mapping):
                    p.add(w, "须为对象", "must be an object")
                    continue
                if not p.keys(w + ".", it, ("at", "resumed_at", "reason", "resumption_note")):
                    continue
                p.time(w + ".at", it["at"])
                p.time(w + ".resumed_at", it["resumed_at"], optional=True)
                p.text(w + ".reason", it["reason"], limit=500)
                p.text(w + ".resumption_note", it["resumption_note"], optional=True)
                if is_rfc3339(it["at"]) and is_rfc3339(it["resumed_at"]):
                    at = datetime.fromisoformat(it["at"].replace("Z", "+00:00"))
                    back = datetime.fromisoformat(it["resumed_at"].replace("Z", "+00:00"))
                    if back < at:
                        p.add(w + ".resumed_at", "早于中断时间", "is before the interruption")
    seq, prev = d.get("device_seq"), d.get("device_prev")
    if "device_seq" in d:
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            p.add("device_seq", f"{seq!r} 须为 ≥1 的整数", "must be an integer >= 1")
        elif seq == 1 and prev is not None:
            p.add("device_prev", "序号 1 须为 null", "must be null when device_seq is 1")
        elif seq > 1 and not is_digest(prev):
            p.add(
                "device_prev",
                "须为上一份清单的 sha256:<hex>",
                "must be sha256:<hex> of the previous manifest",
            )
    return p.items


@dataclass(frozen=True)
class CaptureManifest:
    """The signed description of one capture (see the module docstring for the JSON form).

    Constructing one with invalid values raises :class:`ManifestInvalid` listing every
    problem. ``officers`` holds 执法证号; ``location`` values are decimal strings.
    """

    manifest_id: str
    device_id: str
    key_id: str
    alg: str
    case_ref: str
    category: str
    stage: str
    record_type: str
    officers: tuple[str, ...]
    device_time: str
    gnss_time: str | None
    timezone: str
    location: Location | None
    files: tuple[ManifestFile, ...]
    interruptions: tuple[Interruption, ...]
    av_reason: str | None
    device_seq: int
    device_prev: str | None
    note: str | None = None
    # 亮证执法: the officers showed their enforcement credentials on site (行政处罚法 Art. 55)
    credentials_shown: bool = False
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        problems = _manifest_problems(self.to_json())
        if problems:
            raise ManifestInvalid("采集清单不合法 / invalid capture manifest", problems)

    def to_json(self) -> dict[str, Any]:
        """The manifest JSON object (every field present, ``null`` when absent)."""
        loc = self.location
        return {
            "schema_version": self.schema_version,
            "manifest_id": self.manifest_id,
            "device_id": self.device_id,
            "key_id": self.key_id,
            "alg": self.alg,
            "case_ref": self.case_ref,
            "category": self.category,
            "stage": self.stage,
            "record_type": self.record_type,
            "officers": list(self.officers),
            "device_time": self.device_time,
            "gnss_time": self.gnss_time,
            "timezone": self.timezone,
            "location": None
            if loc is None
            else {"lat": loc.lat, "lon": loc.lon, "accuracy": loc.accuracy},
            "files": [
                {"name": f.name, "size": f.size, "sha256": f.sha256, "media_type": f.media_type}
                for f in self.files
            ],
            "interruptions": [
                {
                    "at": i.at,
                    "resumed_at": i.resumed_at,
                    "reason": i.reason,
                    "resumption_note": i.resumption_note,
                }
                for i in self.interruptions
            ],
            "av_reason": self.av_reason,
            "credentials_shown": self.credentials_shown,
            "device_seq": self.device_seq,
            "device_prev": self.device_prev,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, d: object) -> CaptureManifest:
        """Build from the JSON object; raises :class:`ManifestInvalid` with EVERY problem."""
        if not isinstance(d, Mapping):
            raise ManifestInvalid(
                "采集清单须为 JSON 对象 / a capture manifest must be a JSON object"
            )
        problems = _manifest_problems(d)
        if problems:
            raise ManifestInvalid("采集清单不合法 / invalid capture manifest", problems)
        loc = d["location"]
        return cls(
            schema_version=d["schema_version"],
            manifest_id=d["manifest_id"],
            device_id=d["device_id"],
            key_id=d["key_id"],
            alg=d["alg"],
            case_ref=d["case_ref"],
            category=d["category"],
            stage=d["stage"],
            record_type=d["record_type"],
            officers=tuple(d["officers"]),
            device_time=d["device_time"],
            gnss_time=d["gnss_time"],
            timezone=d["timezone"],
            location=None if loc is None else Location(loc["lat"], loc["lon"], loc["accuracy"]),
            files=tuple(
                ManifestFile(f["name"], f["size"], f["sha256"], f["media_type"]) for f in d["files"]
            ),
            interruptions=tuple(
                Interruption(i["at"], i["resumed_at"], i["reason"], i["resumption_note"])
                for i in d["interruptions"]
            ),
            av_reason=d["av_reason"],
            credentials_shown=d["credentials_shown"],
            device_seq=d["device_seq"],
            device_prev=d["device_prev"],
            note=d["note"],
        )

    def canonical_bytes(self) -> bytes:
        """RFC 8785 bytes of :meth:`to_json` — what the device signs."""
        return canonical_json(self.to_json())

    def manifest_hash(self) -> str:
        """``sha256:<hex>`` of the canonical bytes: the next manifest's ``device_prev``."""
        return sha256_digest(self.canonical_bytes())


@dataclass(frozen=True)
class SignedManifest:
    """A manifest with its signature (base64) and the algorithm and key id it claims."""

    manifest: CaptureManifest
    signature: str
    alg: str
    key_id: str

    def to_json(self) -> dict[str, Any]:
        """Wire form ``{"manifest": {...}, "signature": {"alg", "key_id", "value"}}``."""
        return {
            "manifest": self.manifest.to_json(),
            "signature": {"alg": self.alg, "key_id": self.key_id, "value": self.signature},
        }

    @classmethod
    def from_json(cls, d: object) -> SignedManifest:
        """Parse the wire form; raises :class:`ManifestInvalid` with every problem (signature unchecked)."""
        if not isinstance(d, Mapping) or set(d) != {"manifest", "signature"}:
            raise ManifestInvalid(
                '须为 {"manifest": …, "signature": …} / must be {"manifest": …, "signature": …}'
            )
        problems: list[str] = []
        m = d["manifest"]
        sig = d["signature"]
        if not isinstance(m, Mapping):
            problems.append("manifest: 须为 JSON 对象 / must be a JSON object")
        else:
            problems += _manifest_problems(m)
        if not isinstance(sig, Mapping) or set(sig) != {"alg", "key_id", "value"}:
            problems.append(
                'signature: 须为 {"alg","key_id","value"} / must be {"alg", "key_id", "value"}'
            )
        else:
            if not isinstance(sig["value"], str) or not sig["value"]:
                problems.append("signature.value: 须为 base64 字符串 / must be a base64 string")
            if isinstance(m, Mapping) and (
                sig["alg"] != m.get("alg") or sig["key_id"] != m.get("key_id")
            ):
                problems.append(
                    "signature: alg/key_id 与清单不一致 / alg and key_id must equal the manifest's own"
                )
        if problems:
            raise ManifestInvalid("签名清单不合法 / invalid signed manifest", problems)
        assert isinstance(m, Mapping) and isinstance(sig, Mapping)
        return cls(CaptureManifest.from_json(m), sig["value"], sig["alg"], sig["key_id"])


def sign_manifest(manifest: CaptureManifest, private_key: PrivateKey) -> SignedManifest:
    """Sign the canonical bytes of ``manifest`` with the device key.

    The manifest's ``alg`` and ``key_id`` must describe ``private_key`` (else
    :class:`SignatureInvalid`, saying which to set).
    """
    public = private_key.public_key()
    alg, kid = algorithm_of(public), key_id(public)
    if manifest.alg != alg or manifest.key_id != kid:
        raise SignatureInvalid(
            f"清单的 alg/key_id 与签名密钥不符 / manifest alg/key_id ({manifest.alg}, {manifest.key_id}) "
            f"do not describe this key; set alg={alg!r}, key_id={kid!r}"
        )
    value = base64.b64encode(sign(private_key, manifest.canonical_bytes())).decode("ascii")
    return SignedManifest(manifest, value, alg, kid)


def verify_manifest(signed: SignedManifest | Mapping[str, Any], public_key: PublicKey) -> None:
    """Verify a signed manifest (object or wire JSON) with the device's public key.

    Raises :class:`SignatureInvalid`: wrong key, wrong algorithm, any changed field, or a
    signature over non-canonical bytes.
    """
    wire = signed.to_json() if isinstance(signed, SignedManifest) else signed
    verify_manifest_signature(wire, public_key)


def verify_device_chain(
    manifests: Iterable[CaptureManifest | SignedManifest],
    *,
    anchor: tuple[int, str] | None = None,
) -> list[ChainBreak]:
    """EVERY break in one device's manifest chain; manifests in any order.

    Reports ``gap`` (the missing ``device_seq`` numbers), ``duplicate``, ``altered``
    (a manifest whose hash is not its successor's ``device_prev``), ``wrong_link``
    (``device_prev`` not null at seq 1, or pointing at another manifest). ``anchor`` =
    ``(seq, manifest_hash)`` of the last manifest already accepted from this device:
    checking starts after it and the first new manifest must link to it.
    """
    objs = [m.manifest if isinstance(m, SignedManifest) else m for m in manifests]
    return check_device_chain([m.to_json() for m in objs], anchor=anchor)
