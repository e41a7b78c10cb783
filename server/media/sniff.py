"""Media type from the leading bytes (magic numbers), never from a name or a claim.

``sniff(head)`` looks only at the first ``SNIFF_BYTES`` of a file. Playlists and concat
lists (HLS ``#EXTM3U``, ``ffconcat``) are recognised so that they are never handed to
ffmpeg, which would follow their references.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.media.report import MediaKind

SNIFF_BYTES = 8192

HLS = "application/vnd.apple.mpegurl"
FFCONCAT = "application/x-ffconcat"
OCTET_STREAM = "application/octet-stream"

# Types whose content is a list of other resources: inspecting them means following
# references, which we never do.
REFERENCING_TYPES = frozenset({HLS, FFCONCAT})

_HEIF_BRANDS = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"hevc": "image/heic",
    b"hevx": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
    b"avif": "image/avif",
    b"avis": "image/avif",
}
_ISO_BRANDS = {
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"3gp4": "video/3gpp",
    b"3gp5": "video/3gpp",
    b"3gp6": "video/3gpp",
    b"3g2a": "video/3gpp2",
}
_QT_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")

# Aliases a client may declare for the same thing.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/heic-sequence": "image/heic",
    "image/heif-sequence": "image/heif",
    "audio/mp3": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/3gpp": "video/3gpp",
    "video/mov": "video/quicktime",
    "video/avi": "video/x-msvideo",
    "video/x-matroska": "video/x-matroska",
    "application/x-pdf": "application/pdf",
    "application/x-mpegurl": HLS,
    "audio/mpegurl": HLS,
    "audio/x-mpegurl": HLS,
}
# Declared and sniffed types in one family are not a mismatch (phones label ISO media
# loosely: a .mov declared video/mp4 is the same recording).
_FAMILIES = (
    frozenset({"video/mp4", "video/quicktime", "video/3gpp", "video/3gpp2", "audio/mp4"}),
    frozenset({"video/webm", "video/x-matroska", "audio/webm"}),
    frozenset({"image/heic", "image/heif"}),
    frozenset({"audio/amr", "audio/amr-wb"}),
)


@dataclass(frozen=True)
class Sniffed:
    """The sniffed media type and kind, and other formats whose magic was also seen."""

    media_type: str
    kind: MediaKind
    also_looks_like: tuple[str, ...] = ()


def kind_of(media_type: str) -> MediaKind:
    """The broad kind of a (sniffed) media type."""
    if media_type == "application/pdf":
        return MediaKind.PDF
    if media_type == "text/plain":
        return MediaKind.DOCUMENT
    major = media_type.split("/", 1)[0]
    if major in ("image", "video", "audio"):
        return MediaKind(major)
    return MediaKind.OTHER


def normalize_media_type(declared: str) -> str:
    """Lower-case, parameters dropped, common aliases folded (``image/jpg`` → ``image/jpeg``)."""
    base = declared.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def declared_matches(declared: str, sniffed: str) -> bool:
    """Whether a declared type agrees with the sniffed one (same type or same family).

    A declaration that says nothing (empty, ``application/octet-stream``) agrees.
    """
    d = normalize_media_type(declared)
    if d in ("", OCTET_STREAM, "binary/octet-stream"):
        return True
    if d == sniffed:
        return True
    return any(d in fam and sniffed in fam for fam in _FAMILIES)


def sniff(head: bytes) -> Sniffed:
    """Sniff ``head`` (the first bytes of a file) into a media type and kind."""
    media_type = _primary(head)
    also: list[str] = []
    # PDF readers accept "%PDF-" anywhere in the first 1024 bytes, so an image with a PDF
    # a few bytes in is both at once.
    if media_type != "application/pdf" and b"%PDF-" in head[1:1024]:
        also.append("application/pdf")
    # Conversely a JPEG early in a PDF outside any stream: many viewers scan for the JPEG
    # marker. Inside a ``stream`` it is a scanned page's embedded image (/DCTDecode), which
    # is what every image-only PDF from a scanner or a phone looks like, not a polyglot.
    if media_type == "application/pdf" and _bare_jpeg_in_pdf(head):
        also.append("image/jpeg")
    return Sniffed(media_type, kind_of(media_type), tuple(also))


def _bare_jpeg_in_pdf(head: bytes) -> bool:
    """A JPEG start in the first 1024 bytes of a PDF that no ``stream`` keyword precedes."""
    at = head.find(b"\xff\xd8\xff", 1, 1024)
    return at >= 0 and head.rfind(b"stream", 0, at) < 0


def _primary(h: bytes) -> str:
    if h.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if h[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if h[:4] in (b"RIFF", b"RF64") and len(h) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(
            h[8:12], OCTET_STREAM
        )
    if h[4:8] == b"ftyp":
        return _iso_bmff(h)
    if h[4:8] in _QT_ATOMS:
        return "video/quicktime"
    if h.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in h[:64] else "video/x-matroska"
    if h.startswith(b"%PDF-"):
        return "application/pdf"
    if h.startswith(b"#!AMR-WB\n"):
        return "audio/amr-wb"
    if h.startswith(b"#!AMR\n"):
        return "audio/amr"
    if h.startswith(b"OggS"):
        return "audio/ogg"
    if h.startswith(b"fLaC"):
        return "audio/flac"
    if h.startswith(b"ID3"):
        return "audio/mpeg"
    if len(h) >= 2 and h[0] == 0xFF and (h[1] & 0xE0) == 0xE0:
        # MPEG audio frame sync: layer bits 00 is ADTS AAC, anything else MP1/2/3.
        return "audio/aac" if (h[1] & 0x06) == 0 else "audio/mpeg"
    if len(h) > 376 and h[0] == h[188] == h[376] == 0x47:
        return "video/mp2t"
    text = _text_start(h)
    if text is not None:
        stripped = text.lstrip()
        if stripped.startswith("#EXTM3U"):
            return HLS
        if stripped.startswith("ffconcat version"):
            return FFCONCAT
        return "text/plain"
    return OCTET_STREAM


def _iso_bmff(h: bytes) -> str:
    major = h[8:12]
    box_end = min(int.from_bytes(h[0:4], "big"), len(h))
    brands = [major] + [h[i : i + 4] for i in range(16, box_end - 3, 4)]
    for brand in brands:
        if brand in _HEIF_BRANDS:
            return _HEIF_BRANDS[brand]
    return _ISO_BRANDS.get(major, "video/mp4")


def _text_start(h: bytes) -> str | None:
    """The head as text if it looks like UTF-8 text (no NULs, few control characters)."""
    if not h or b"\x00" in h:
        return None
    body = h[3:] if h.startswith(b"\xef\xbb\xbf") else h
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(body) - 3:  # only a character cut at the sniff boundary is fine
            return None
        text = body[: exc.start].decode("utf-8")
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\r\n\f")
    return text if controls <= len(text) // 100 else None
