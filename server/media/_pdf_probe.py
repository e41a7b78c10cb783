"""PDF probe run as a limited child process: ``python -I _pdf_probe.py FILE``.

Prints one JSON object on stdout. Runs out of process because a crafted PDF can make a
pure-Python parser loop or allocate without bound; the parent applies a timeout and
rlimits (``server.media.sandbox``). Imports nothing from CaseTrail.
"""

from __future__ import annotations

import json
import sys
from typing import Any

_SCAN_BLOCK = 1024 * 1024
_SCAN_LIMIT = 256 * 1024 * 1024
_MAX_FIELDS = 10_000


def main(path: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "pages": None,
        "encrypted": False,
        "signatures": 0,
        "sig_flags": 0,
        "version": None,
        "error": None,
        "eof_marker": _has_eof_marker(path),
        "raw_signature_markers": _raw_signature_markers(path),
    }
    try:
        from pypdf import PdfReader

        reader = PdfReader(path, strict=False)
        result["version"] = reader.pdf_header.removeprefix("%PDF-")[:8]
        if reader.is_encrypted:
            result["encrypted"] = True
            try:
                reader.decrypt("")  # owner-password-only files open with the empty password
            except Exception as exc:
                result["error"] = f"encrypted: {type(exc).__name__}"
                return result
        try:
            result["pages"] = len(reader.pages)
        except Exception as exc:
            result["error"] = f"pages: {type(exc).__name__}: {exc}"[:300]
        acro = reader.root_object.get("/AcroForm")
        if acro is not None:
            acro = acro.get_object()
            result["sig_flags"] = int(acro.get("/SigFlags", 0))
            result["signatures"] = _count_signatures(acro.get("/Fields", []))
    except Exception as exc:
        result["error"] = result["error"] or f"{type(exc).__name__}: {exc}"[:300]
    return result


def _count_signatures(fields: Any) -> int:
    """Signature fields with a value (/FT /Sig and /V carrying /ByteRange), walking /Kids."""
    count, seen, stack = 0, 0, list(fields.get_object() if fields is not None else [])
    while stack and seen < _MAX_FIELDS:
        seen += 1
        node = stack.pop().get_object()
        if not hasattr(node, "get"):
            continue
        stack.extend(node.get("/Kids", []) or [])
        value = node.get("/V")
        if node.get("/FT") == "/Sig" and value is not None:
            value = value.get_object()
            if hasattr(value, "get") and value.get("/ByteRange") is not None:
                count += 1
    return count


def _has_eof_marker(path: str) -> bool:
    with open(path, "rb") as fp:
        fp.seek(0, 2)
        size = fp.tell()
        fp.seek(max(0, size - 2048))
        return b"%%EOF" in fp.read()


def _raw_signature_markers(path: str) -> bool:
    """Bounded streaming scan for a signature dictionary's markers, for broken files."""
    found: set[bytes] = set()
    tail = b""
    read = 0
    with open(path, "rb") as fp:
        while read < _SCAN_LIMIT and len(found) < 2:
            block = fp.read(_SCAN_BLOCK)
            if not block:
                break
            read += len(block)
            window = tail + block
            found.update(m for m in (b"/ByteRange", b"/Type/Sig", b"/Type /Sig") if m in window)
            tail = block[-16:]
    return b"/ByteRange" in found and len(found) > 1


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
