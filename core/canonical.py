"""Canonical JSON (RFC 8785 / JCS) for CaseTrail's float-free JSON, and digests.

Everything CaseTrail signs or hashes — capture manifests, custody events — is turned
into bytes by :func:`canonical_json`: object keys sorted by UTF-16 code units, no
insignificant whitespace, strings escaped as ECMAScript ``JSON.stringify`` does
(only ``"``, ``\\`` and control characters; everything else literal UTF-8), integers in
±(2**53-1). Floats are refused: coordinates and other decimals travel as strings, so
two implementations can never disagree about a number's text. Example::

    canonical_json({"lon": "116.4074", "lat": "39.9042", "n": [1, None, True]})
    == b'{"lat":"39.9042","lon":"116.4074","n":[1,null,true]}'

    sha256_digest(canonical_json({})) == "sha256:44136fa3…"   # SHA-256 of b"{}"

The implementation lives in :mod:`core.verify` (the stand-alone verifier must carry it);
this module is the name the rest of the code imports.
"""

from __future__ import annotations

import re
from datetime import datetime

from core.verify import MAX_SAFE_INTEGER, canonical_json, is_digest, parse_json, sha256_digest

__all__ = [
    "MAX_SAFE_INTEGER",
    "canonical_json",
    "find_floats",
    "is_digest",
    "is_rfc3339",
    "parse_json",
    "sha256_digest",
]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def is_rfc3339(value: object, *, utc: bool = False) -> bool:
    """True for an RFC 3339 date-time WITH offset (``2025-03-01T09:30:00+08:00``).

    ``utc=True`` demands the ``Z`` form (``2025-03-01T01:30:00Z``), as custody events use.
    """
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return False
    if utc and not value.endswith("Z"):
        return False
    try:
        datetime.fromisoformat(value[:19])
    except ValueError:
        return False
    return int(value[-5:-3]) <= 23 and int(value[-2:]) <= 59 if value[-1] != "Z" else True


def find_floats(value: object, where: str = "$") -> list[str]:
    """Every place (``$.a.b[2]``) a float occurs in a JSON value — each is a problem."""
    if isinstance(value, float):
        return [where]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in find_floats(v, f"{where}.{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in find_floats(v, f"{where}[{i}]")]
    return []
