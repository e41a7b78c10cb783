"""Still images: EXIF facts and an orientation-corrected thumbnail, with Pillow.

Decompression bombs are refused *before any pixel is decoded*: the header's width ×
height is compared with ``InspectionLimits.max_image_pixels`` right after
``Image.open`` (which reads headers only). That check is the error the brief asks for in
place of Pillow's ``DecompressionBombWarning``; we do not flip the process-wide
warnings filter, which is not thread-safe on Python 3.11. Pillow's own
``DecompressionBombError`` (over twice ``Image.MAX_IMAGE_PIXELS``) is caught as well.
``LOAD_TRUNCATED_IMAGES`` is never set: a truncated file fails to load and is flagged.
JPEGs are decoded with ``draft()`` at the smallest DCT scale that still covers the
thumbnail, so a 100 Mpx photo costs about 1/64 of its full decode.

Memory is bounded: an image whose decoded pixels (after draft) would take more than
:data:`IN_PROCESS_DECODE_BYTES` is decoded in a child process
(``server/media/_image_thumbnail.py``) under ``sandbox.run_limited`` with
``InspectionLimits.image_decode_memory_bytes`` of address space, so the server process
never holds a large image's pixels; an image the child cannot decode within that limit
gets the ``resource_limit_exceeded`` flag instead of a thumbnail (docs/media-inspection.md).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from server.media._image_thumbnail import make_thumbnail
from server.media.formats import register_phone_formats
from server.media.report import (
    Derivative,
    DerivativeRole,
    Flag,
    FlagCode,
    ImageFacts,
    InspectionLimits,
)
from server.media.sandbox import child_limits, run_limited

IN_PROCESS_DECODE_BYTES = 32 * 1024**2
"""Largest decode (pixels × bytes per pixel, after JPEG draft) done in the server process."""

_CHILD = Path(__file__).with_name("_image_thumbnail.py")

# Sniffed type → the only Pillow plugins allowed to open it.
PILLOW_FORMATS = {
    "image/jpeg": ("JPEG", "MPO"),
    "image/png": ("PNG",),
    "image/gif": ("GIF",),
    "image/webp": ("WEBP",),
    "image/tiff": ("TIFF",),
}

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_ORIENTATION, _MAKE, _MODEL, _DATETIME = 0x0112, 0x010F, 0x0110, 0x0132
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL, _SUBSEC_ORIGINAL = 0x9003, 0x9011, 0x9291
_MAX_TEXT = 128
_TRUNCATION_HINTS = ("truncated", "Truncated", "EOF", "end of file", "broken data stream")


@dataclass
class ImageOutcome:
    """What inspecting one image found."""

    facts: ImageFacts | None = None
    flags: list[Flag] = field(default_factory=list)
    derivatives: list[Derivative] = field(default_factory=list)


def inspect_image(
    path: Path, media_type: str, *, limits: InspectionLimits, out_dir: Path
) -> ImageOutcome:
    """Read facts from ``path`` and write ``thumbnail.jpg`` into ``out_dir``."""
    outcome = ImageOutcome()
    formats = PILLOW_FORMATS.get(media_type) or register_phone_formats().get(media_type)
    if formats is None:
        outcome.flags.append(Flag.of(FlagCode.UNSUPPORTED_FORMAT, media_type))
        return outcome
    large = False
    try:
        with path.open("rb") as fp, Image.open(fp, formats=list(formats)) as im:
            width, height = im.size
            facts, meta_flags = _facts(im, limits)
            outcome.facts = facts
            outcome.flags.extend(meta_flags)
            if width * height > limits.max_image_pixels:
                outcome.flags.append(
                    Flag.of(
                        FlagCode.IMAGE_BOMB,
                        f"{width}×{height} = {width * height:,} px > {limits.max_image_pixels:,}",
                    )
                )
                return outcome
            side = limits.thumbnail_max_side
            if im.format == "JPEG":
                im.draft("RGB", (side, side))  # sizes only; nothing decoded yet
            large = decode_bytes(im) > IN_PROCESS_DECODE_BYTES
            if not large:
                outcome.derivatives.append(_thumbnail(im, limits, out_dir))
        if large:
            _thumbnail_in_child(path, formats, limits, out_dir, outcome)
    except Image.DecompressionBombError as exc:
        outcome.flags.append(Flag.of(FlagCode.IMAGE_BOMB, str(exc)[:300]))
    except UnidentifiedImageError as exc:
        outcome.flags.append(Flag.of(_truncated_or_unreadable(path, exc), str(exc)[:300]))
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as exc:
        # Pillow reports damaged data through all of these.
        code = _truncated_or_unreadable(path, exc)
        outcome.flags.append(Flag.of(code, f"{type(exc).__name__}: {exc}"[:300]))
    return outcome


def _truncated_or_unreadable(path: Path, exc: BaseException) -> FlagCode:
    text = str(exc)
    if any(h in text for h in _TRUNCATION_HINTS) or isinstance(exc, EOFError):
        return FlagCode.TRUNCATED
    return FlagCode.UNREADABLE


def decode_bytes(im: Image.Image) -> int:
    """Bytes Pillow allocates to decode ``im`` at its current (draft) size."""
    width, height = im.size
    if im.mode in ("1", "L", "P"):
        per_pixel = 1
    elif im.mode.startswith("I;16"):
        per_pixel = 2
    else:
        per_pixel = 4  # Pillow keeps every multi-band and 32-bit mode in 4 bytes a pixel
    return width * height * per_pixel


def _thumbnail(im: Image.Image, limits: InspectionLimits, out_dir: Path) -> Derivative:
    target = out_dir / "thumbnail.jpg"
    width, height = make_thumbnail(im, limits.thumbnail_max_side, target)
    return Derivative(DerivativeRole.THUMBNAIL, target, "image/jpeg", width, height)


def _thumbnail_in_child(
    path: Path,
    formats: tuple[str, ...],
    limits: InspectionLimits,
    out_dir: Path,
    outcome: ImageOutcome,
) -> None:
    target = out_dir / "thumbnail.jpg"
    bounded = replace(child_limits(limits), memory_bytes=limits.image_decode_memory_bytes)
    result = run_limited(
        [sys.executable, "-I", str(_CHILD), str(path.absolute()), ",".join(formats),
         str(limits.thumbnail_max_side), str(target.absolute())],
        bounded,
        work_dir=out_dir,
    )  # fmt: skip
    if result.timed_out:
        outcome.flags.append(Flag.of(FlagCode.INSPECTION_TIMEOUT, "image decode"))
        return
    if result.hit_resource_limit:
        limit_mib = limits.image_decode_memory_bytes >> 20
        outcome.flags.append(
            Flag.of(
                FlagCode.RESOURCE_LIMIT_EXCEEDED,
                f"image decode needs more than {limit_mib} MiB; no thumbnail made",
            )
        )
        return
    try:
        found = json.loads(result.stdout)
    except ValueError:
        detail = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        outcome.flags.append(Flag.of(FlagCode.UNREADABLE, detail[:300]))
        return
    if "error" in found:
        code = FlagCode.TRUNCATED if found.get("truncated") else FlagCode.UNREADABLE
        outcome.flags.append(Flag.of(code, str(found["error"])[:300]))
        return
    outcome.derivatives.append(
        Derivative(
            DerivativeRole.THUMBNAIL,
            target,
            "image/jpeg",
            int(found["width"]),
            int(found["height"]),
        )
    )


def jpeg_size(path: Path) -> tuple[int, int] | None:
    """Width and height of a JPEG we made ourselves (e.g. a poster frame)."""
    try:
        with Image.open(path, formats=["JPEG"]) as im:
            return im.size
    except (OSError, SyntaxError, ValueError):
        return None


def _facts(im: Image.Image, limits: InspectionLimits) -> tuple[ImageFacts, list[Flag]]:
    flags: list[Flag] = []
    width, height = im.size
    base = ImageFacts(format=im.format or "", width=width, height=height)
    raw = im.info.get("exif")
    if im.format == "PNG" and raw is None:
        # Pillow's PNG getexif() decodes the whole image to look for a late eXIf chunk:
        # never before the bomb check, and camera EXIF in PNG comes before the pixels.
        return base, flags
    if isinstance(raw, bytes) and len(raw) > limits.max_exif_bytes:
        flags.append(
            Flag.of(FlagCode.EXIF_TOO_LARGE, f"{len(raw):,} B > {limits.max_exif_bytes:,} B")
        )
        return base, flags
    try:
        exif = im.getexif()
        ifd = exif.get_ifd(_EXIF_IFD)
        gps = exif.get_ifd(_GPS_IFD)
        lat = _gps_coord(gps.get(2), gps.get(1), "NS", 90)
        lon = _gps_coord(gps.get(4), gps.get(3), "EW", 180)
        orientation = exif.get(_ORIENTATION)
        facts = ImageFacts(
            format=base.format,
            width=width,
            height=height,
            orientation=orientation if isinstance(orientation, int) else None,
            capture_time=_exif_time(
                ifd.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME),
                ifd.get(_OFFSET_TIME_ORIGINAL),
                ifd.get(_SUBSEC_ORIGINAL),
            ),
            gps_lat=lat if lon is not None else None,
            gps_lon=lon if lat is not None else None,
            camera_make=_text(exif.get(_MAKE)),
            camera_model=_text(exif.get(_MODEL)),
        )
    except Exception as exc:  # Pillow's EXIF parser raises many types on crafted data
        flags.append(Flag.of(FlagCode.METADATA_UNREADABLE, f"EXIF: {type(exc).__name__}"))
        return base, flags
    return facts, flags


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    clean = "".join(c for c in value if c.isprintable()).strip()
    return clean[:_MAX_TEXT] or None


def _exif_time(value: Any, offset: Any, subsec: Any) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    sub = _text(subsec)
    if sub and sub.isdigit():
        moment = moment.replace(microsecond=int(sub[:6].ljust(6, "0")))
    off = _text(offset)
    if off and len(off) == 6 and off[0] in "+-" and off[3] == ":":
        try:
            delta = timedelta(hours=int(off[1:3]), minutes=int(off[4:6]))
        except ValueError:
            return moment
        moment = moment.replace(tzinfo=timezone(-delta if off[0] == "-" else delta))
    return moment


def _gps_coord(value: Any, ref: Any, refs: str, bound: int) -> str | None:
    """EXIF degrees/minutes/seconds rationals → decimal degrees as a string (6 places)."""
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    try:
        d, m, s = (Decimal(str(float(v))) for v in value)
    except (TypeError, ValueError, ZeroDivisionError, InvalidOperation):
        return None
    degrees = d + m / 60 + s / 3600
    ref_text = _text(ref) or refs[0]
    if ref_text[:1].upper() == refs[1]:
        degrees = -degrees
    if not degrees.is_finite() or abs(degrees) > bound:
        return None
    return str(degrees.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN))
