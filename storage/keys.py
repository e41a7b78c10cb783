"""The one key check every adapter runs before any I/O, and the key layout.

Keys are made by the server, never taken from a client's file name (a file name is
metadata only). A key is ``/``-separated segments of ``A-Z a-z 0-9 . _ - = +``; no
segment may be empty, be ``.`` or ``..`` or start with ``.`` (dot names are reserved
for the stores' own bookkeeping, e.g. the local staging directory).

Layout::

    originals/sha256/ab/cd/<hex>                     write-once originals (原始证据)
    derivatives/sha256/ab/cd/<hex>/<name>            thumbnails, posters, … (派生文件)
    quarantine/<token>/<key>  + quarantine/<token>.json   moved aside with a reason (隔离区)
    uploads/<upload id>/<name>                       ingest scratch objects (e.g. a tus tail)
    exports/<export id>/recipe.json                  a sealed case-file export's recipe (导出清单)
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime

from storage.errors import InvalidKey

MAX_KEY_BYTES = 1024  # the S3 limit; also keeps local paths well under PATH_MAX
MAX_SEGMENT_BYTES = 255  # NAME_MAX on every common filesystem

ORIGINALS_PREFIX = "originals/"
DERIVATIVES_PREFIX = "derivatives/"
QUARANTINE_PREFIX = "quarantine/"
UPLOADS_PREFIX = "uploads/"
EXPORTS_PREFIX = "exports/"

_SEGMENT_CHARS = re.compile(r"[A-Za-z0-9._=+-]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SEGMENT = f"[A-Za-z0-9_=+-][A-Za-z0-9._=+-]{{0,{MAX_SEGMENT_BYTES - 1}}}"
_PLAIN_KEY = re.compile(f"{_SEGMENT}(?:/{_SEGMENT})*")
"""A key every rule accepts but its total length: segments of allowed characters, none
empty, too long or starting with '.' (the keys the server makes, checked in one match)."""


def key_problems(key: object) -> list[str]:
    """Every reason ``key`` is not a valid storage key (empty list when it is valid)."""
    if not isinstance(key, str):
        return [f"键必须是字符串 key must be a str, got {type(key).__name__}"]
    if len(key) <= MAX_KEY_BYTES and _PLAIN_KEY.fullmatch(key):  # ASCII: a byte a character
        return []
    return _rule_problems(key)


def _rule_problems(key: str) -> list[str]:
    """:func:`key_problems` rule by rule (every key the fast match refuses comes here)."""
    problems: list[str] = []
    if key == "":
        return ["键为空 key is empty"]
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        problems.append(f"键过长 key longer than {MAX_KEY_BYTES} bytes")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in key):
        problems.append("键含控制字符或 NUL key contains NUL/control characters")
    if "\\" in key:
        problems.append("键含反斜杠 key contains a backslash")
    if key.startswith("/"):
        problems.append("键不能是绝对路径 key is absolute (starts with '/')")
    segments = key.split("/")
    inner = segments[1:] if key.startswith("/") else segments
    if any(s == "" for s in inner):
        problems.append("键含空段 key has an empty segment ('//' or trailing '/')")
    if any(s in (".", "..") for s in segments):
        problems.append("键含 '.' 或 '..' 段 key has a '.' or '..' segment")
    elif any(s.startswith(".") for s in segments):
        problems.append("键段不能以 '.' 开头 key segment starts with '.' (reserved)")
    if any(len(s.encode("utf-8")) > MAX_SEGMENT_BYTES for s in segments):
        problems.append(f"键段过长 key segment longer than {MAX_SEGMENT_BYTES} bytes")
    bad = sorted({c for s in segments for c in s if not _SEGMENT_CHARS.fullmatch(c)})
    bad = [c for c in bad if c != "\\" and ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F]
    if bad:
        problems.append(
            f"键含不允许的字符 key has characters outside A-Z a-z 0-9 . _ - = +: {bad!r}"
        )
    return problems


def check_key(key: str) -> str:
    """Return ``key`` unchanged if valid, else raise ``InvalidKey`` listing every problem."""
    problems = key_problems(key)
    if problems:
        raise InvalidKey(
            "存储键无效，请由服务器按规则生成键 / invalid storage key; keys are made by the "
            f"server with storage.keys helpers: {key!r}",
            problems,
            key=key if isinstance(key, str) else None,
        )
    return key


def check_prefix(prefix: str) -> str:
    """Check a listing prefix: ``""``, or a key optionally ending in ``/``."""
    if prefix == "":
        return prefix
    check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def _sha256_hex(digest: str) -> str:
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or not _HEX64.fullmatch(hexdigest):
        raise InvalidKey(
            f"摘要格式应为 sha256:<64 位小写十六进制> / digest must be 'sha256:<hex>': {digest!r}",
            key=None,
        )
    return hexdigest


def original_key(sha256: str) -> str:
    """Content-addressed key of an original: ``originals/sha256/ab/cd/<hex>``."""
    hexdigest = _sha256_hex(sha256)
    return f"{ORIGINALS_PREFIX}sha256/{hexdigest[:2]}/{hexdigest[2:4]}/{hexdigest}"


def is_original_key(key: str) -> bool:
    """True when ``key`` is a write-once original (deletion needs retention expiry)."""
    return key.startswith(ORIGINALS_PREFIX)


def derivative_key(source_sha256: str, name: str) -> str:
    """Key of a derivative (thumbnail, poster, …) of the original with ``source_sha256``."""
    hexdigest = _sha256_hex(source_sha256)
    return check_key(
        f"{DERIVATIVES_PREFIX}sha256/{hexdigest[:2]}/{hexdigest[2:4]}/{hexdigest}/{name}"
    )


def quarantine_key(key: str, token: str) -> str:
    """Where ``key`` goes when quarantined under ``token`` (unique per quarantine action)."""
    if not _TOKEN.fullmatch(token):
        raise InvalidKey(f"隔离标记无效 / invalid quarantine token: {token!r}", key=None)
    return check_key(f"{QUARANTINE_PREFIX}{token}/{check_key(key)}")


def quarantine_note_key(token: str) -> str:
    """Key of the JSON note (reason, original key, time) written beside a quarantined object."""
    if not _TOKEN.fullmatch(token):
        raise InvalidKey(f"隔离标记无效 / invalid quarantine token: {token!r}", key=None)
    return f"{QUARANTINE_PREFIX}{token}.json"


def upload_key(upload_id: str, name: str = "tail") -> str:
    """Scratch key for an ingest upload, e.g. the durable tus tail below the S3 part minimum."""
    if not _TOKEN.fullmatch(upload_id):
        raise InvalidKey(f"上传标识无效 / invalid upload id: {upload_id!r}", key=None)
    return check_key(f"{UPLOADS_PREFIX}{upload_id}/{name}")


def export_recipe_key(export_id: str) -> str:
    """Key of a sealed export's recipe: ``exports/<export id>/recipe.json``."""
    if not _TOKEN.fullmatch(export_id):
        raise InvalidKey(f"导出标识无效 / invalid export id: {export_id!r}", key=None)
    return check_key(f"{EXPORTS_PREFIX}{export_id}/recipe.json")


def new_quarantine_token(now: datetime | None = None) -> str:
    """A unique, time-sortable quarantine token, e.g. ``20260101T080000Z-3f9a1c2b7d4e``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(6)}"


def quarantine_note(key: str, reason: str, *, bytes_kept: bool, **extra: object) -> bytes:
    """The JSON note stored at ``quarantine_note_key(token)`` (UTF-8, human-readable)."""
    note = {
        "key": key,
        "reason": reason,
        "quarantined_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "bytes_kept": bytes_kept,
        **extra,
    }
    return json.dumps(note, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
