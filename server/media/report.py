"""The values an inspection produces: what a reviewer sees about one original.

Everything here is a frozen dataclass or an Enum, free of floats so that a report can
be stored as canonical JSON (GPS as decimal-degree strings, durations in integer ms,
frame rates as strings such as ``"30000/1001"`` or ``"29.97"``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

BEIJING = timezone(timedelta(hours=8), "UTC+08:00")


class MediaKind(enum.StrEnum):
    """Broad kind of an original (证据类型大类)."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    PDF = "pdf"
    DOCUMENT = "document"
    OTHER = "other"


class FlagCode(enum.StrEnum):
    """Stable codes of inspection findings; stored on the evidence, never renamed."""

    ZERO_BYTE = "zero_byte"
    UNREADABLE = "unreadable"
    TRUNCATED = "truncated"
    DECLARED_TYPE_MISMATCH = "declared_type_mismatch"
    POLYGLOT = "polyglot"
    IMAGE_BOMB = "image_bomb"
    EXIF_TOO_LARGE = "exif_too_large"
    METADATA_UNREADABLE = "metadata_unreadable"
    UNSUPPORTED_FORMAT = "unsupported_format"
    REFERENCES_EXTERNAL_RESOURCE = "references_external_resource"
    ENCRYPTED = "encrypted"
    DEVICE_TIME_DISAGREES = "device_time_disagrees"
    GPS_DISAGREES = "gps_disagrees"
    INSPECTION_TIMEOUT = "inspection_timeout"
    RESOURCE_LIMIT_EXCEEDED = "resource_limit_exceeded"
    DERIVATIVE_FAILED = "derivative_failed"
    FIXITY_FAILED = "fixity_failed"


# zh first, en beside it; each says what happened to the original and what to do next.
_MESSAGES: dict[FlagCode, tuple[str, str]] = {
    FlagCode.ZERO_BYTE: (
        "文件为空（0 字节）。请在采集设备上确认原始文件是否完整后重新上传。",
        "The file is empty (0 bytes). Check the original on the capture device and upload it again.",
    ),
    FlagCode.UNREADABLE: (
        "无法解析文件内容，未生成缩略图。原件已原样保存，可下载后用专业工具查看。",
        "The file could not be parsed; no preview was made. The original is stored unchanged; "
        "download it to examine it with specialist tools.",
    ),
    FlagCode.TRUNCATED: (
        "文件不完整（被截断）。请核对采集设备上的原始文件，必要时重新上传完整文件。",
        "The file is truncated. Compare it with the original on the capture device and "
        "re-upload the complete file if needed.",
    ),
    FlagCode.DECLARED_TYPE_MISMATCH: (
        "申报的文件类型与实际内容不符。请核实文件来源。",
        "The declared file type does not match the content. Verify where the file came from.",
    ),
    FlagCode.POLYGLOT: (
        "文件同时具有多种格式的特征（多格式混合文件），可能被刻意构造。请核实文件来源。",
        "The file carries the signatures of more than one format (a polyglot) and may have "
        "been crafted. Verify where the file came from.",
    ),
    FlagCode.IMAGE_BOMB: (
        "图像声明的像素数超过上限（疑似解压炸弹），未解码、未生成缩略图。原件已原样保存。",
        "The image declares more pixels than allowed (a likely decompression bomb); it was "
        "not decoded and no thumbnail was made. The original is stored unchanged.",
    ),
    FlagCode.EXIF_TOO_LARGE: (
        "EXIF 元数据块超过上限，已跳过解析（拍摄时间、GPS 未读取）。",
        "The EXIF block exceeds the size limit and was skipped (no capture time or GPS read).",
    ),
    FlagCode.METADATA_UNREADABLE: (
        "元数据（EXIF 等）格式异常，部分信息未能读取。",
        "The metadata (EXIF etc.) is malformed; some facts could not be read.",
    ),
    FlagCode.UNSUPPORTED_FORMAT: (
        "已识别文件格式，但本系统无法解码，未生成预览。原件已原样保存，可下载查看。",
        "The format was recognised but cannot be decoded here; no preview was made. The "
        "original is stored unchanged and can be downloaded.",
    ),
    FlagCode.REFERENCES_EXTERNAL_RESOURCE: (
        "文件是播放列表或拼接清单，引用了其他文件或网络地址；为安全起见未读取被引用内容。"
        "请上传实际的音视频文件。",
        "The file is a playlist or concat list that references other files or URLs; for "
        "safety nothing it references was read. Upload the actual media files instead.",
    ),
    FlagCode.ENCRYPTED: (
        "PDF 已加密，页数或签名信息可能无法读取。请向提交人索取未加密版本或密码。",
        "The PDF is encrypted; page count or signatures may be unreadable. Ask the submitter "
        "for an unencrypted copy or the password.",
    ),
    FlagCode.DEVICE_TIME_DISAGREES: (
        "文件内记录的拍摄时间与采集清单中的设备时间相差超过允许范围。请核实设备时钟。",
        "The capture time recorded in the file differs from the manifest's device time by more "
        "than the tolerance. Check the device clock.",
    ),
    FlagCode.GPS_DISAGREES: (
        "文件内的 GPS 位置与采集清单中的位置相距超过允许范围。请核实采集地点。",
        "The GPS position in the file is further from the manifest's location than the "
        "tolerance. Verify where the capture took place.",
    ),
    FlagCode.INSPECTION_TIMEOUT: (
        "检查超时，已终止。原件已原样保存；可稍后重试检查。",
        "Inspection took too long and was stopped. The original is stored unchanged; the "
        "inspection can be retried later.",
    ),
    FlagCode.RESOURCE_LIMIT_EXCEEDED: (
        "检查超出内存或 CPU 限制，已终止。原件已原样保存。",
        "Inspection exceeded its memory or CPU limit and was stopped. The original is stored "
        "unchanged.",
    ),
    FlagCode.DERIVATIVE_FAILED: (
        "未能生成缩略图或封面帧；文件其他信息已读取。原件已原样保存。",
        "No thumbnail or poster frame could be made; the other facts were read. The original "
        "is stored unchanged.",
    ),
    FlagCode.FIXITY_FAILED: (
        "入库后复核：存储中的原件与入库时核验的 SHA-256 不符，已记录固定性校验失败。"
        "请立即联系管理员保全存储并从备份或设备恢复原件。",
        "Re-check after ingest: the stored original no longer matches the SHA-256 verified at "
        "ingest; fixity_failed was logged. Call the admin now to preserve the store and "
        "restore the original from backup or the device.",
    ),
}


@dataclass(frozen=True)
class Flag:
    """One finding about an original: a stable ``code``, zh/en messages, and a detail line."""

    code: FlagCode
    message_zh: str
    message_en: str
    detail: str = ""

    @classmethod
    def of(cls, code: FlagCode, detail: str = "") -> Flag:
        """The flag for ``code`` with its standard messages and an optional detail."""
        zh, en = _MESSAGES[code]
        return cls(code, zh, en, detail)


class DerivativeRole(enum.StrEnum):
    """What a derivative is for (衍生文件用途)."""

    THUMBNAIL = "thumbnail"
    POSTER = "poster"


@dataclass(frozen=True)
class Derivative:
    """A file made from the original; the caller stores it with ``derived_from``."""

    role: DerivativeRole
    path: Path
    media_type: str
    width: int
    height: int


@dataclass(frozen=True)
class DeclaredFacts:
    """What the capture manifest claims (采集清单申报的信息), to compare with the file.

    ``lat``/``lon`` are decimal degrees (strings or Decimals, never floats).
    ``local_offset`` is used for file timestamps that carry no offset (EXIF often does
    not); the default is Beijing time.
    """

    device_time: datetime | None = None
    lat: Decimal | str | None = None
    lon: Decimal | str | None = None
    local_offset: timezone = BEIJING


@dataclass(frozen=True)
class InspectionLimits:
    """Bounds for inspecting one hostile-until-proven-otherwise file."""

    max_image_pixels: int = 100_000_000
    max_exif_bytes: int = 128 * 1024
    thumbnail_max_side: int = 512
    poster_max_side: int = 640
    child_timeout_s: float = 60.0
    child_cpu_s: int = 120
    child_memory_bytes: int = 2 * 1024**3
    image_decode_memory_bytes: int = 1024**3
    child_output_bytes: int = 64 * 1024**2
    max_log_bytes: int = 1024**2
    time_tolerance_s: int = 300
    gps_tolerance_m: int = 200


DEFAULT_LIMITS = InspectionLimits()


@dataclass(frozen=True)
class ImageFacts:
    """Facts of a still image (照片)."""

    format: str
    width: int
    height: int
    orientation: int | None = None
    capture_time: datetime | None = None
    gps_lat: str | None = None
    gps_lon: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None


@dataclass(frozen=True)
class AVFacts:
    """Facts of an audio or video recording (音视频)."""

    container: str
    duration_ms: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: str | None = None
    rotation: int | None = None
    audio_sample_rate: int | None = None
    audio_channels: str | None = None
    creation_time: datetime | None = None
    gps_lat: str | None = None
    gps_lon: str | None = None


@dataclass(frozen=True)
class PdfFacts:
    """Facts of a PDF document (文书)."""

    page_count: int | None
    signed: bool
    signature_count: int
    encrypted: bool
    version: str | None = None


@dataclass(frozen=True)
class MediaReport:
    """The result of inspecting one original; never raised, always returned.

    ``media_type`` is sniffed from the leading bytes, never taken from the file name or
    the declared type. Findings about the file are ``flags``; ``error`` is set only when
    our own code failed unexpectedly (the report then carries no other facts).
    """

    media_type: str
    kind: MediaKind
    size: int
    declared_media_type: str | None = None
    image: ImageFacts | None = None
    av: AVFacts | None = None
    pdf: PdfFacts | None = None
    flags: tuple[Flag, ...] = ()
    derivatives: tuple[Derivative, ...] = ()
    error: str | None = None
    tools: str = ""

    @property
    def flag_codes(self) -> frozenset[FlagCode]:
        """The set of flag codes, for quick checks."""
        return frozenset(f.code for f in self.flags)

    def derivative(self, role: DerivativeRole) -> Derivative | None:
        """The derivative with ``role``, if one was made."""
        return next((d for d in self.derivatives if d.role is role), None)

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no floats; datetimes ISO 8601; paths as strings)."""
        out: dict[str, Any] = _jsonable(self)
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


__all__ = [
    "AVFacts",
    "BEIJING",
    "DEFAULT_LIMITS",
    "DeclaredFacts",
    "Derivative",
    "DerivativeRole",
    "Flag",
    "FlagCode",
    "ImageFacts",
    "InspectionLimits",
    "MediaKind",
    "MediaReport",
    "PdfFacts",
]
