"""Media inspection (媒体检查): facts, flags and derivatives of a stored original.

Called by the ingest path after an original is safely stored; the original is only
read, never modified. Entry point::

    tools = FFmpegTools.resolve()          # once per process
    report = inspect_media(path, declared_media_type="image/jpeg",
                           declared=DeclaredFacts(device_time, lat, lon),
                           ffmpeg=tools, out_dir=work_dir)

``inspect_media`` never raises on hostile input; see ``docs/media-inspection.md``.
"""

from server.media.errors import MediaError, MediaToolMissing
from server.media.inspection import inspect_media
from server.media.report import (
    BEIJING,
    DEFAULT_LIMITS,
    AVFacts,
    DeclaredFacts,
    Derivative,
    DerivativeRole,
    Flag,
    FlagCode,
    ImageFacts,
    InspectionLimits,
    MediaKind,
    MediaReport,
    PdfFacts,
)
from server.media.sniff import Sniffed, sniff
from server.media.tools import FFmpegTools

__all__ = [
    "AVFacts",
    "BEIJING",
    "DEFAULT_LIMITS",
    "DeclaredFacts",
    "Derivative",
    "DerivativeRole",
    "FFmpegTools",
    "Flag",
    "FlagCode",
    "ImageFacts",
    "InspectionLimits",
    "MediaError",
    "MediaKind",
    "MediaReport",
    "MediaToolMissing",
    "PdfFacts",
    "Sniffed",
    "inspect_media",
    "sniff",
]
