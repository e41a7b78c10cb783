"""Sniffing by leading bytes, and ffmpeg dump parsing that hostile tags cannot steer."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from server.media import DerivativeRole, FFmpegTools, MediaKind, inspect_media, sniff

from .conftest import run_ffmpeg


def _image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("head", "media_type", "kind"),
    [
        (_image_bytes("JPEG"), "image/jpeg", MediaKind.IMAGE),
        (_image_bytes("PNG"), "image/png", MediaKind.IMAGE),
        (_image_bytes("GIF"), "image/gif", MediaKind.IMAGE),
        (_image_bytes("WEBP"), "image/webp", MediaKind.IMAGE),
        (_image_bytes("TIFF"), "image/tiff", MediaKind.IMAGE),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image/heic", MediaKind.IMAGE),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1miaf", "image/heif", MediaKind.IMAGE),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", "video/mp4", MediaKind.VIDEO),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "video/quicktime", MediaKind.VIDEO),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "video/quicktime", MediaKind.VIDEO),
        (b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00M4A isom", "audio/mp4", MediaKind.AUDIO),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm", MediaKind.VIDEO),
        (
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska",
            "video/x-matroska",
            MediaKind.VIDEO,
        ),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video/x-msvideo", MediaKind.VIDEO),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav", MediaKind.AUDIO),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg", MediaKind.AUDIO),
        (b"\xff\xfb\x90\x64\x00", "audio/mpeg", MediaKind.AUDIO),
        (b"#!AMR\n<", "audio/amr", MediaKind.AUDIO),
        (b"#!AMR-WB\n", "audio/amr-wb", MediaKind.AUDIO),
        (b"%PDF-1.4\n", "application/pdf", MediaKind.PDF),
        (
            b"\xef\xbb\xbf#EXTM3U\n#EXTINF:1,\nx.ts\n",
            "application/vnd.apple.mpegurl",
            MediaKind.OTHER,
        ),
        (b"ffconcat version 1.0\nfile a.mp4\n", "application/x-ffconcat", MediaKind.OTHER),
        ("现场笔录：当事人在场。\n".encode(), "text/plain", MediaKind.DOCUMENT),
        (b"\x00\x01\x02\x03binary", "application/octet-stream", MediaKind.OTHER),
    ],
)
def test_sniff(head: bytes, media_type: str, kind: MediaKind) -> None:
    assert (sniff(head).media_type, sniff(head).kind) == (media_type, kind)


def test_sniff_ignores_a_cut_utf8_character_at_the_window_edge() -> None:
    text = "执法" * 5000
    assert sniff(text.encode()[:8191]).media_type == "text/plain"


def test_a_scanned_pdf_of_jpeg_pages_is_not_a_polyglot(ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    """Scanners and phones make PDFs that are one JPEG per page (/DCTDecode streams)."""
    scan = tmp_path / "scan.pdf"
    Image.new("RGB", (200, 300), "white").save(scan, "PDF", resolution=100)
    assert b"\xff\xd8\xff" in scan.read_bytes()[:1024]  # the page image sits early
    assert sniff(scan.read_bytes()[:8192]).also_looks_like == ()
    report = inspect_media(scan, declared_media_type="application/pdf", ffmpeg=ffmpeg)
    assert "polyglot" not in {f.code.value for f in report.flags}


def test_hostile_tags_cannot_forge_stream_lines(ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    forged = "x\n  Duration: 09:59:59.00, start: 0\n  Stream #0:9: Video: fake, 9999x9999, 99 fps"
    clip = tmp_path / "tagged.mkv"
    run_ffmpeg(
        ffmpeg,
        "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=5",
        "-c:v", "mpeg4", "-metadata", f"title={forged}", "-metadata", f"comment={forged}",
        str(clip),
    )  # fmt: skip
    report = inspect_media(clip, declared_media_type="video/x-matroska", ffmpeg=ffmpeg)
    assert report.av is not None
    assert (report.av.video_codec, report.av.width, report.av.height) == ("mpeg4", 160, 120)
    assert report.av.frame_rate == "5" and report.av.duration_ms == 1000


def test_webm_without_header_duration_is_measured(ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    # Live-recorded WebM (e.g. a browser's MediaRecorder) has no duration in its header.
    live = tmp_path / "live.webm"
    run_ffmpeg(
        ffmpeg,
        "-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=10",
        "-c:v", "libvpx", "-live", "1", "-f", "webm", "-cluster_time_limit", "500", str(live),
    )  # fmt: skip
    report = inspect_media(live, declared_media_type="video/webm", ffmpeg=ffmpeg, out_dir=tmp_path)
    assert report.av is not None and report.av.duration_ms is not None
    assert 1800 <= report.av.duration_ms <= 2100
    assert report.derivative(DerivativeRole.POSTER) is not None


def test_huge_exif_block_is_skipped_not_parsed(ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "M" * 200_000  # a 200 KB Make string
    png = tmp_path / "big-exif.png"
    Image.new("RGB", (32, 32), (9, 9, 9)).save(png, exif=exif)
    report = inspect_media(png, declared_media_type="image/png", ffmpeg=ffmpeg, out_dir=tmp_path)
    assert {f.code.value for f in report.flags} == {"exif_too_large"}
    assert report.image is not None and report.image.camera_make is None
    assert report.derivative(DerivativeRole.THUMBNAIL) is not None
