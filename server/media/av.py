"""Audio/video facts and a poster frame, with ffmpeg only (no ffprobe needed).

How probing works, and why it is safe:

* ffmpeg never sees the client's file name: it reads a symlink with a fixed name in a
  private work directory, given as ``file:<absolute path>`` (no option or protocol can
  be smuggled in a name starting with ``-`` or containing ``:``).
* The demuxer is forced with ``-f`` from the *sniffed* type and restricted with
  ``-format_whitelist``; protocols are restricted with ``-protocol_whitelist file``.
  Playlists/concat lists are refused before ffmpeg runs, because ``-protocol_whitelist
  file`` alone still lets an HLS playlist open ``file:///any/local/path``.
* Facts come from one run, ``ffmpeg -i file:in -f ffmetadata file:meta.txt``: the exit
  status says whether the input opened, and the input dump on stderr (``Duration:``,
  ``Stream #0:n: Video: …``, ``Metadata:``) is parsed line by line. Tag values with line
  breaks are printed by ffmpeg as indented continuation lines, so a hostile tag cannot
  forge a ``Stream`` or ``Duration`` line (both are matched at their fixed indent).
* Every command is built with ffmpeg-python from one input node (:func:`_input`, which
  carries both whitelists) and compiled to an argument list
  (:meth:`FFmpegTools.command`); every run goes through ``sandbox.run_limited``
  (timeout, rlimits, process group).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_graph

from server.media.images import jpeg_size
from server.media.report import (
    AVFacts,
    Derivative,
    DerivativeRole,
    Flag,
    FlagCode,
    InspectionLimits,
    MediaKind,
)
from server.media.sandbox import ChildResult, child_limits, run_limited
from server.media.tools import FFmpegTools

# Sniffed media type → the only demuxer ffmpeg may use for it.
DEMUXERS = {
    "video/mp4": "mov",
    "video/quicktime": "mov",
    "video/3gpp": "mov",
    "video/3gpp2": "mov",
    "audio/mp4": "mov",
    "video/webm": "matroska",
    "video/x-matroska": "matroska",
    "video/x-msvideo": "avi",
    "video/mp2t": "mpegts",
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/wav": "wav",
    "audio/amr": "amr",
    "audio/amr-wb": "amr",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
}
_FORMAT_WHITELIST = ",".join(sorted(set(DEMUXERS.values())))

_DURATION = re.compile(r"^  Duration: (?:(\d+):(\d\d):(\d\d)(?:\.(\d+))?|N/A)")
_STREAM = re.compile(r"^  Stream #0:\d+(?:\[[^\]]*\])?(?:\([^)]*\))?: (Video|Audio): (.*)$")
_INPUT = re.compile(r"^Input #0, ([A-Za-z0-9_,]+), from ")
_TAG = re.compile(r"^( {4}| {6})([A-Za-z0-9_.\-]+)\s*: (.*)$")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")
_TRUNCATION = ("moov atom not found", "partial file", "Truncat", "End of file")


@dataclass
class AVOutcome:
    """What inspecting one recording found."""

    facts: AVFacts | None = None
    kind: MediaKind | None = None
    flags: list[Flag] = field(default_factory=list)
    derivatives: list[Derivative] = field(default_factory=list)


def inspect_av(
    link: Path,
    media_type: str,
    *,
    ffmpeg: FFmpegTools,
    limits: InspectionLimits,
    out_dir: Path,
    work_dir: Path,
) -> AVOutcome:
    """Probe ``link`` (a fixed-name path in ``work_dir``) and make a poster for video."""
    outcome = AVOutcome()
    demuxer = DEMUXERS.get(media_type)
    if demuxer is None:
        outcome.flags.append(Flag.of(FlagCode.UNSUPPORTED_FORMAT, media_type))
        return outcome
    child = child_limits(limits)
    meta_out = work_dir / "meta.txt"
    result = run_limited(probe_command(ffmpeg, demuxer, link, meta_out), child, work_dir=work_dir)
    failure = _failure_flag(result)
    if failure is not None:
        outcome.flags.append(failure)
        return outcome
    facts = parse_probe(result.stderr)
    if facts.duration_ms is None:
        # Live-recorded WebM/MKV and raw streams carry no duration in their header:
        # measure it by stream-copying every packet to nowhere (no decoding).
        facts = replace(facts, duration_ms=_scan_duration(link, demuxer, ffmpeg, limits, work_dir))
    outcome.facts = facts
    outcome.kind = MediaKind.VIDEO if facts.video_codec else MediaKind.AUDIO
    if facts.video_codec is None and facts.audio_codec is None:
        outcome.flags.append(Flag.of(FlagCode.UNREADABLE, "no audio or video stream"))
        return outcome
    if facts.video_codec is not None:
        poster = _poster(
            link, demuxer, facts, ffmpeg=ffmpeg, limits=limits, out_dir=out_dir, work_dir=work_dir
        )
        if isinstance(poster, Derivative):
            outcome.derivatives.append(poster)
        else:
            outcome.flags.append(poster)
    return outcome


def _scan_duration(
    link: Path, demuxer: str, ffmpeg: FFmpegTools, limits: InspectionLimits, work_dir: Path
) -> int | None:
    result = run_limited(
        scan_command(ffmpeg, demuxer, link), child_limits(limits), work_dir=work_dir
    )
    times = re.findall(r"^out_time_us=(\d+)$", result.stdout, re.MULTILINE)
    return int(times[-1]) // 1000 if result.returncode == 0 and times else None


def _input(demuxer: str, link: Path, *, seek: str | None = None) -> Any:
    """The one input node every command starts from: forced demuxer, both whitelists."""
    options: dict[str, str] = {
        "format": demuxer,
        "format_whitelist": _FORMAT_WHITELIST,
        "protocol_whitelist": "file",
    }
    if seek:
        options["ss"] = seek
    return ffmpeg_graph.input(f"file:{link.absolute()}", **options)


def probe_command(tools: FFmpegTools, demuxer: str, link: Path, meta_out: Path) -> list[str]:
    """``ffmpeg -i file:in -f ffmetadata file:meta.txt``: opens the input, dumps its facts."""
    return tools.command(_input(demuxer, link).output(f"file:{meta_out}", format="ffmetadata"))


def scan_command(tools: FFmpegTools, demuxer: str, link: Path) -> list[str]:
    """Every packet stream-copied to nowhere, progress on stdout (no decoding)."""
    out = _input(demuxer, link).output(
        "-", format="null", map="0", c="copy", progress="pipe:1", nostats=None
    )
    return tools.command(out)


def poster_command(
    tools: FFmpegTools, demuxer: str, link: Path, target: Path, side: int, seek: str | None
) -> list[str]:
    """One frame of the first video stream, never upscaled, as a JPEG at ``target``."""
    video = _input(demuxer, link, seek=seek)["v:0"]
    out = video.output(
        f"file:{target}",
        format="image2",
        # the comma inside min() is escaped for the filter parser
        vf=f"scale=w='min({side}\\,iw)':h='min({side}\\,ih)':force_original_aspect_ratio=decrease",
        update="1",
        **{"frames:v": "1", "q:v": "3"},
    )
    return tools.command(out)


def _input_args(demuxer: str, link: Path, *, seek: str | None = None) -> list[str]:
    """The input half of every command, as compiled (``-f … -protocol_whitelist file -i …``)."""
    argv: list[str] = _input(demuxer, link, seek=seek).output("-", format="null").compile()
    return argv[1:-3]  # without the program name and the ``-f null -`` output


def _failure_flag(result: ChildResult) -> Flag | None:
    if result.timed_out:
        return Flag.of(FlagCode.INSPECTION_TIMEOUT, "ffmpeg")
    if result.hit_resource_limit:
        return Flag.of(FlagCode.RESOURCE_LIMIT_EXCEEDED, f"ffmpeg exit {result.returncode}")
    if result.returncode == 0:
        return None
    detail = _last_error_line(result.stderr)
    if any(marker in result.stderr for marker in _TRUNCATION):
        return Flag.of(FlagCode.TRUNCATED, detail)
    return Flag.of(FlagCode.UNREADABLE, detail or f"ffmpeg exit {result.returncode}")


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "rror" in ln or "not found" in ln or "nvalid" in ln]
    return (errors[0] if errors else (lines[-1] if lines else ""))[:300]


def parse_probe(stderr: str) -> AVFacts:
    """Facts from ffmpeg's input dump (the stderr of ``ffmpeg -i``)."""
    container = ""
    duration_ms: int | None = None
    video: dict[str, object] = {}
    audio: dict[str, object] = {}
    tags: dict[str, str] = {}
    in_input = False
    section = "input"
    for line in stderr.splitlines():
        if m := _INPUT.match(line):
            container, in_input = m.group(1), True
            continue
        if not in_input:
            continue
        if line.startswith(("Output #", "Stream mapping:")):
            break
        if m := _DURATION.match(line):
            section = "duration"
            if m.group(1) is not None:
                frac = (m.group(4) or "0")[:3].ljust(3, "0")
                h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3))
                duration_ms = ((h * 60 + mi) * 60 + s) * 1000 + int(frac)
            continue
        if m := _STREAM.match(line):
            section = m.group(1).lower()
            target = video if section == "video" else audio
            if not target:
                target.update(_stream_facts(section, m.group(2)))
                target["_first"] = True
            else:
                target.pop("_first", None)
            continue
        if m := _TAG.match(line):
            key, value = m.group(2).lower(), m.group(3).strip()
            if section in ("input", "duration") or _target_is_first(video, audio, section):
                tags.setdefault(key, value)
            continue
        if section == "video" and video.get("_first") and (m2 := _ROTATION.search(line)):
            video["rotation"] = round(float(m2.group(1)))
    lat, lon = _iso6709(tags.get("location") or tags.get("com.apple.quicktime.location.iso6709"))
    return AVFacts(
        container=container,
        duration_ms=duration_ms,
        video_codec=_str(video.get("codec")),
        audio_codec=_str(audio.get("codec")),
        width=_int(video.get("width")),
        height=_int(video.get("height")),
        frame_rate=_str(video.get("fps")),
        rotation=_int(video.get("rotation")),
        audio_sample_rate=_int(audio.get("rate")),
        audio_channels=_str(audio.get("channels")),
        creation_time=_parse_time(tags.get("creation_time")),
        gps_lat=lat,
        gps_lon=lon,
    )


def _target_is_first(video: dict[str, object], audio: dict[str, object], section: str) -> bool:
    """Whether tag lines now belong to the first stream of their kind."""
    target = video if section == "video" else audio if section == "audio" else None
    return bool(target and target.get("_first"))


def _stream_facts(kind: str, rest: str) -> dict[str, object]:
    parts = _split_top(rest)
    facts: dict[str, object] = {"codec": parts[0].split(" ", 1)[0] if parts else None}
    for part in parts[1:]:
        p = part.strip()
        if kind == "video":
            if m := re.match(r"^(\d{1,5})x(\d{1,5})\b", p):
                facts.setdefault("width", int(m.group(1)))
                facts.setdefault("height", int(m.group(2)))
            elif m := re.match(r"^(\d+(?:\.\d+)?k?) fps$", p):
                facts["fps"] = m.group(1)
        else:
            if m := re.match(r"^(\d+) Hz$", p):
                facts["rate"] = int(m.group(1))
            elif p in ("mono", "stereo") or re.match(r"^\d+(\.\d+)?( channels)?$|^[0-9.]+\(", p):
                facts.setdefault("channels", p)
    return facts


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses/brackets."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _iso6709(value: str | None) -> tuple[str | None, str | None]:
    if not value or not (m := _ISO6709.match(value)):
        return None, None
    lat, lon = Decimal(m.group(1)), Decimal(m.group(2))
    if abs(lat) > 90 or abs(lon) > 180:
        return None, None
    return str(lat.normalize() if lat == lat.to_integral() else lat), str(lon)


def _str(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _int(v: object) -> int | None:
    return v if isinstance(v, int) else None


def _poster(
    link: Path,
    demuxer: str,
    facts: AVFacts,
    *,
    ffmpeg: FFmpegTools,
    limits: InspectionLimits,
    out_dir: Path,
    work_dir: Path,
) -> Derivative | Flag:
    target = out_dir / "poster.jpg"
    side = limits.poster_max_side
    # A frame a little in (first frames are often black), falling back to the very first.
    seek_ms = min(1000, (facts.duration_ms or 0) // 10)
    last: ChildResult | None = None
    for seek in ([f"{seek_ms / 1000:.3f}"] if seek_ms else []) + [None]:
        target.unlink(missing_ok=True)
        last = run_limited(
            poster_command(ffmpeg, demuxer, link, target, side, seek),
            child_limits(limits),
            work_dir=work_dir,
        )
        if last.timed_out or last.hit_resource_limit:
            break
        if last.returncode == 0 and target.is_file() and target.stat().st_size > 0:
            size = jpeg_size(target)
            if size is not None:
                return Derivative(DerivativeRole.POSTER, target, "image/jpeg", *size)
    assert last is not None
    return _failure_flag(last) or Flag.of(FlagCode.DERIVATIVE_FAILED, "poster frame")
