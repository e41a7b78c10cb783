"""Where each file goes inside a case-file bag (案卷包): payload paths and safe names.

Payload layout (decided here, documented in ``docs/case-file.md``)::

    data/<NN>_<stage id>_<环节中文名>/<record type id>_<文书种类中文名>/<NNN>_<safe file name>

* ``NN`` is the stage's position in the case's pinned recording standard (``01`` …), so
  a file browser lists the stages in procedure order; a stage the standard does not know
  gets ``99``.
* The record type folder uses the standard's id and Chinese name when the manifest's
  ``record_type`` is a record type id or Chinese name of that stage; otherwise the
  manifest's text itself, made safe.
* ``NNN`` counts the files of one record-type folder in capture order (manifest receipt
  time, then file index), so two captures with the same file name never collide.
* Only originals are exported (byte-identical); derivatives (thumbnails, posters) can be
  remade from them and are left out.

File names come from inspectors' devices and are hostile until proven otherwise:
:func:`safe_name` NFC-normalises, removes path separators, control, format and bidi
characters (``\\u202e`` RTL override …), Windows-reserved characters and names, leading
dots, and cuts the name to :data:`MAX_NAME_BYTES` keeping the extension. ``%`` becomes
the full-width ``％`` so no manifest line ever needs percent-encoding (the Library of
Congress ``bagit`` tool decodes only ``%0D``/``%0A``, not ``%25``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MAX_NAME_BYTES = 180
"""Longest file name segment written, in UTF-8 bytes (below every filesystem's 255)."""

UNKNOWN_STAGE_NUMBER = 99

_WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?", re.IGNORECASE)
_REPLACED = set('/\\<>:"|?*')


def _allowed(ch: str) -> bool:
    category = unicodedata.category(ch)
    # Cc control, Cf format (bidi overrides, zero-width), Cs surrogates, Co private use,
    # Cn unassigned, Zl/Zp line and paragraph separators.
    return category not in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"} and ch not in _REPLACED


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes without splitting a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")


def safe_name(name: str, *, fallback: str = "file", limit: int = MAX_NAME_BYTES) -> str:
    """A file name that is safe as one path segment on every common system.

    >>> safe_name("../../etc/passwd")
    'etc_passwd'
    >>> safe_name("invoice\\u202egpj.exe")
    'invoicegpj.exe'
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join(ch if _allowed(ch) else ("_" if ch in _REPLACED else "") for ch in text)
    text = text.replace("%", "\uff05").replace("\t", " ")
    text = re.sub(r"_{2,}", "_", text)
    text = text.strip(" ._")  # no leading dots (hidden, '..'), no trailing dot or space (Windows)
    if not text:
        text = fallback
    if _WINDOWS_RESERVED.fullmatch(text):
        text = "_" + text
    if len(text.encode("utf-8")) > limit:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext.encode("utf-8")) <= 16 and stem:
            text = _cut(stem, limit - len(ext.encode("utf-8")) - 1).rstrip(" .") + "." + ext
        else:
            text = _cut(text, limit).rstrip(" .")
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True)
class StageName:
    """A stage of the pinned standard: its id, Chinese name and position (1-based)."""

    id: str
    name_zh: str
    position: int


@dataclass(frozen=True)
class FileToPlace:
    """One original to place: which capture it came from and its client file name."""

    key: str
    """Any id unique among the files placed (the evidence id)."""
    stage: str
    record_type: str
    name: str


def stage_folder(stage: str, stages: dict[str, StageName]) -> str:
    """``<NN>_<stage id>_<中文名>`` for a known stage, ``99_<stage>`` otherwise."""
    known = stages.get(stage)
    if known is None:
        return safe_name(f"{UNKNOWN_STAGE_NUMBER}_{stage}", fallback="99_unknown-stage")
    return safe_name(f"{known.position:02d}_{known.id}_{known.name_zh}")


def record_folder(record_type: str, names: dict[str, tuple[str, str]]) -> str:
    """``<id>_<中文名>`` when ``record_type`` is a known id or Chinese name, else it made safe."""
    found = names.get(record_type)
    if found is not None:
        return safe_name(f"{found[0]}_{found[1]}")
    return safe_name(record_type, fallback="unknown-record-type")


def payload_paths(
    files: Iterable[FileToPlace],
    stages: dict[str, StageName],
    record_types: dict[str, dict[str, tuple[str, str]]],
) -> dict[str, str]:
    """Bag path (``data/…``) of every file, keyed by :attr:`FileToPlace.key`.

    ``files`` must come in capture order; ``record_types`` maps a stage id to
    ``{record type id or 中文名: (id, 中文名)}``. Paths are unique even when compared
    case-insensitively (the ``NNN`` counter makes them so; a clash is a bug → ValueError).
    """
    counters: dict[str, int] = {}
    out: dict[str, str] = {}
    seen: set[str] = set()
    for f in files:
        folder = (
            f"data/{stage_folder(f.stage, stages)}/"
            f"{record_folder(f.record_type, record_types.get(f.stage, {}))}"
        )
        counters[folder] = counters.get(folder, 0) + 1
        path = f"{folder}/{counters[folder]:03d}_{safe_name(f.name)}"
        folded = path.casefold()
        if folded in seen or f.key in out:
            raise ValueError(f"payload path clash: {path!r}")
        seen.add(folded)
        out[f.key] = path
    return out


def encode_manifest_path(path: str) -> str:
    """A path as written in a BagIt manifest line (RFC 8493 §2.1.3: ``%``, CR, LF encoded)."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
