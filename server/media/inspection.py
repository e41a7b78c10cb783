"""``inspect_media``: one original in, one ``MediaReport`` out — never an exception.

Order: stat (regular, non-empty file) → sniff the leading bytes → compare with the
declared type → per-kind facts and derivatives (images in-process with Pillow; audio,
video and PDF in limited child processes) → compare with the capture manifest (device
time, GPS). Each step adds flags; a step that cannot run leaves the earlier findings
intact.
"""

from __future__ import annotations

import math
import os
import stat
import tempfile
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from server.media.av import inspect_av
from server.media.images import inspect_image
from server.media.pdf import inspect_pdf
from server.media.report import (
    DEFAULT_LIMITS,
    AVFacts,
    DeclaredFacts,
    Flag,
    FlagCode,
    ImageFacts,
    InspectionLimits,
    MediaKind,
    MediaReport,
)
from server.media.sniff import (
    FFCONCAT,
    REFERENCING_TYPES,
    SNIFF_BYTES,
    declared_matches,
    normalize_media_type,
    sniff,
)
from server.media.tools import FFmpegTools

_MAX_REFERENCES_SCANNED = 10_000


def inspect_media(
    path: Path,
    *,
    declared_media_type: str | None,
    declared: DeclaredFacts | None = None,
    limits: InspectionLimits = DEFAULT_LIMITS,
    ffmpeg: FFmpegTools,
    out_dir: Path | None = None,
) -> MediaReport:
    """Inspect the stored original at ``path``; the file is only ever read.

    Derivatives (``thumbnail.jpg``, ``poster.jpg``) are written into ``out_dir`` (a new
    temporary directory when ``None``); the caller stores them and removes the directory.
    """
    tools = f"Pillow {_version('pillow')}; pypdf {_version('pypdf')}; ffmpeg {ffmpeg.version}"
    report = MediaReport("application/octet-stream", MediaKind.OTHER, 0, declared_media_type)
    report = replace(report, tools=tools)
    try:
        return _inspect(path, report, declared, limits, ffmpeg, out_dir)
    except Exception as exc:  # the last line of defence: a report, never a crash
        return replace(report, error=f"内部错误 / internal error: {type(exc).__name__}: {exc}")


def _inspect(
    path: Path,
    report: MediaReport,
    declared: DeclaredFacts | None,
    limits: InspectionLimits,
    ffmpeg: FFmpegTools,
    out_dir: Path | None,
) -> MediaReport:
    flags: list[Flag] = []
    try:
        # O_NONBLOCK: a FIFO or device must not hang us; it is refused just below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return _with(report, flags, Flag.of(FlagCode.UNREADABLE, exc.strerror or "open"))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return _with(report, flags, Flag.of(FlagCode.UNREADABLE, "not a regular file"))
    with os.fdopen(fd, "rb") as fp:
        head = fp.read(SNIFF_BYTES)
    report = replace(report, size=st.st_size)
    if st.st_size == 0:
        return _with(
            replace(report, media_type="application/x-empty"), flags, Flag.of(FlagCode.ZERO_BYTE)
        )

    sniffed = sniff(head)
    media_type, kind = sniffed.media_type, sniffed.kind
    if sniffed.also_looks_like:
        flags.append(
            Flag.of(FlagCode.POLYGLOT, f"{media_type} + {', '.join(sniffed.also_looks_like)}")
        )
    if media_type in REFERENCING_TYPES:
        flags.append(Flag.of(FlagCode.REFERENCES_EXTERNAL_RESOURCE, _references(path, media_type)))

    if out_dir is None:
        out_dir = Path(tempfile.mkdtemp(prefix="casetrail-media-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    image = av = pdf = None
    derivatives = []
    with tempfile.TemporaryDirectory(prefix=".work-", dir=out_dir) as tmp:
        work = Path(tmp)
        # Children read a fixed name, so a hostile client file name never reaches an
        # argument list or a log line.
        link = work / "input"
        link.symlink_to(path.absolute())
        if kind is MediaKind.IMAGE:
            img = inspect_image(path, media_type, limits=limits, out_dir=out_dir)
            image, derivatives = img.facts, img.derivatives
            flags += img.flags
        elif kind in (MediaKind.VIDEO, MediaKind.AUDIO):
            rec = inspect_av(
                link, media_type, ffmpeg=ffmpeg, limits=limits, out_dir=out_dir, work_dir=work
            )
            av, derivatives = rec.facts, rec.derivatives
            flags += rec.flags
            if rec.kind is MediaKind.AUDIO and media_type == "video/mp4":
                media_type = "audio/mp4"  # an ISO file with no video track
            kind = rec.kind or kind
        elif kind is MediaKind.PDF:
            doc = inspect_pdf(link, limits=limits, work_dir=work)
            pdf = doc.facts
            flags += doc.flags

    declared_media_type = report.declared_media_type
    if declared_media_type and not declared_matches(declared_media_type, media_type):
        flags.append(
            Flag.of(
                FlagCode.DECLARED_TYPE_MISMATCH,
                f"declared {normalize_media_type(declared_media_type)[:100]}, content is {media_type}",
            )
        )
    if declared is not None:
        flags += _disagreements(image or av, declared, limits)
    return replace(
        report,
        media_type=media_type,
        kind=kind,
        image=image,
        av=av,
        pdf=pdf,
        flags=tuple(flags),
        derivatives=tuple(derivatives),
    )


def _with(report: MediaReport, flags: list[Flag], flag: Flag) -> MediaReport:
    return replace(report, flags=(*flags, flag))


def _references(path: Path, media_type: str) -> str:
    """How many entries a playlist/concat list references (read bounded, never followed)."""
    concat = media_type == FFCONCAT
    count, first = 0, ""
    with path.open("rb") as fp:
        for n, raw in enumerate(fp):
            if n >= _MAX_REFERENCES_SCANNED:
                break
            line = raw[:2048].decode("utf-8", "replace").strip()
            target = ""
            if concat:
                if line.startswith(("file ", "file\t")):
                    target = line[5:].strip().strip("'\"")
            elif line and not line.startswith("#"):  # HLS URI line
                target = line
            elif 'URI="' in line:
                target = line.split('URI="', 1)[1].split('"', 1)[0]
            if target:
                count += 1
                first = first or target
    printable = "".join(c for c in first if c.isprintable())[:200]
    return f"{count} reference(s), first: {printable}" if count else "0 references"


def _disagreements(
    facts: ImageFacts | AVFacts | None, declared: DeclaredFacts, limits: InspectionLimits
) -> list[Flag]:
    """Flags for the file's own time and place disagreeing with the capture manifest."""
    if facts is None:
        return []
    flags = []
    if isinstance(facts, ImageFacts):
        file_time, span = facts.capture_time, timedelta(0)
    else:
        file_time = facts.creation_time
        span = timedelta(milliseconds=facts.duration_ms or 0)
    if declared.device_time is not None and file_time is not None:
        device = _aware(declared.device_time, declared)
        start = _aware(file_time, declared)
        tolerance = timedelta(seconds=limits.time_tolerance_s)
        # A recording's creation time may mark its start or its end.
        if not (start - span - tolerance <= device <= start + span + tolerance):
            delta = int(abs((device - start).total_seconds()))
            flags.append(
                Flag.of(
                    FlagCode.DEVICE_TIME_DISAGREES,
                    f"file {start.isoformat()} vs manifest {device.isoformat()}, Δ {delta} s "
                    f"> {limits.time_tolerance_s} s",
                )
            )
    if None not in (declared.lat, declared.lon, facts.gps_lat, facts.gps_lon):
        try:
            metres = _distance_m(declared.lat, declared.lon, facts.gps_lat, facts.gps_lon)
        except (InvalidOperation, ValueError, TypeError):
            metres = None
        if metres is not None and metres > limits.gps_tolerance_m:
            flags.append(
                Flag.of(
                    FlagCode.GPS_DISAGREES,
                    f"file {facts.gps_lat},{facts.gps_lon} vs manifest {declared.lat},"
                    f"{declared.lon}: {metres:,.0f} m > {limits.gps_tolerance_m} m",
                )
            )
    return flags


def _aware(moment: datetime, declared: DeclaredFacts) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=declared.local_offset)


def _distance_m(*coords: Decimal | str | None) -> float:
    """Great-circle (haversine) distance in metres; floats stay internal."""
    lat1, lon1, lat2, lon2 = (math.radians(float(Decimal(str(c)))) for c in coords)
    a = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, a)))


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"
