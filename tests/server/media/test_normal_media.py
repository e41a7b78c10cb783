"""Each normal kind of original: the facts a reviewer sees, and the derivatives made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from PIL import Image

from server.media import (
    DeclaredFacts,
    DerivativeRole,
    FFmpegTools,
    FlagCode,
    MediaKind,
    inspect_media,
)

from .conftest import PHOTO_LAT, PHOTO_LON

CST = timezone(timedelta(hours=8))


def test_photo_facts_and_upright_thumbnail(
    media: dict[str, Path], ffmpeg: FFmpegTools, out_dir: Path
) -> None:
    report = inspect_media(
        media["photo.jpg"], declared_media_type="image/jpeg", ffmpeg=ffmpeg, out_dir=out_dir
    )
    assert report.error is None
    assert report.flags == ()
    assert (report.media_type, report.kind) == ("image/jpeg", MediaKind.IMAGE)
    assert report.size == media["photo.jpg"].stat().st_size
    img = report.image
    assert img is not None
    assert (img.format, img.width, img.height, img.orientation) == ("JPEG", 400, 300, 6)
    assert img.capture_time == datetime(2024, 5, 1, 8, 30, tzinfo=CST)
    assert img.capture_time.isoformat() == "2024-05-01T08:30:00+08:00"
    assert (img.gps_lat, img.gps_lon) == (PHOTO_LAT, PHOTO_LON)
    assert (img.camera_make, img.camera_model) == ("CaseCam", "BodyCam X1")

    thumb = report.derivative(DerivativeRole.THUMBNAIL)
    assert thumb is not None and thumb.media_type == "image/jpeg"
    assert thumb.path.parent == out_dir
    with Image.open(thumb.path) as t:
        assert t.format == "JPEG"
        # Stored landscape with orientation 6 (rotate 90° clockwise) → shown portrait,
        # the stored left (red) half on top and the right (blue) half at the bottom.
        assert t.size == (thumb.width, thumb.height) == (300, 400)
        top, bottom = t.convert("RGB").getpixel((150, 20)), t.convert("RGB").getpixel((150, 380))
    assert top[0] > 150 and top[2] < 100
    assert bottom[2] > 150 and bottom[0] < 100


def test_thumbnail_is_bounded(media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 1000), (1, 2, 3)).save(big)
    report = inspect_media(big, declared_media_type="image/png", ffmpeg=ffmpeg, out_dir=tmp_path)
    thumb = report.derivative(DerivativeRole.THUMBNAIL)
    assert thumb is not None and (thumb.width, thumb.height) == (512, 171)


def test_png_with_alpha(media: dict[str, Path], ffmpeg: FFmpegTools, out_dir: Path) -> None:
    report = inspect_media(
        media["plain.png"], declared_media_type="image/png", ffmpeg=ffmpeg, out_dir=out_dir
    )
    assert report.flags == () and report.error is None
    assert report.image is not None
    assert (report.image.format, report.image.width, report.image.height) == ("PNG", 64, 48)
    assert report.image.capture_time is None and report.image.gps_lat is None
    thumb = report.derivative(DerivativeRole.THUMBNAIL)
    assert thumb is not None
    with Image.open(thumb.path) as t:
        r, g, b = t.convert("RGB").getpixel((32, 24))
    assert g > 100 and r < 50 and b < 50


def test_video_facts_and_poster(media: dict[str, Path], ffmpeg: FFmpegTools, out_dir: Path) -> None:
    report = inspect_media(
        media["video.mp4"], declared_media_type="video/mp4", ffmpeg=ffmpeg, out_dir=out_dir
    )
    assert report.error is None and report.flags == ()
    assert (report.media_type, report.kind) == ("video/mp4", MediaKind.VIDEO)
    av = report.av
    assert av is not None
    assert av.duration_ms == 2000
    assert (av.video_codec, av.audio_codec) == ("h264", "aac")
    assert (av.width, av.height, av.frame_rate) == (320, 240, "10")
    assert av.audio_sample_rate == 44100 and av.audio_channels == "mono"
    assert av.creation_time == datetime(2024, 5, 1, 0, 30, tzinfo=UTC)
    assert (av.gps_lat, av.gps_lon) == ("26.5783", "106.7135")
    poster = report.derivative(DerivativeRole.POSTER)
    assert poster is not None and poster.path.parent == out_dir
    with Image.open(poster.path) as p:
        assert p.format == "JPEG" and p.size == (320, 240) == (poster.width, poster.height)
    # Derivatives are the only files left behind; no work files, no copy of the original.
    assert sorted(f.name for f in out_dir.iterdir()) == ["poster.jpg"]


def test_webm_and_avi(media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    for name, codec, mt in [
        ("video.webm", "vp8", "video/webm"),
        ("video.avi", "mpeg4", "video/x-msvideo"),
    ]:
        report = inspect_media(
            media[name], declared_media_type=mt, ffmpeg=ffmpeg, out_dir=tmp_path / name
        )
        assert report.media_type == mt and report.kind is MediaKind.VIDEO, name
        assert report.av is not None and report.av.video_codec == codec, name
        assert report.av.audio_codec is None
        assert report.derivative(DerivativeRole.POSTER) is not None, name


def test_audio_files(media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    expected = {
        "audio.mp3": ("audio/mpeg", "mp3", "audio/mpeg"),
        "audio.wav": ("audio/wav", "pcm_s16le", "audio/x-wav"),
        "audio.m4a": ("audio/mp4", "aac", "audio/x-m4a"),
        "audio.amr": ("audio/amr", "amr_nb", "audio/amr"),
    }
    for name, (media_type, codec, declared) in expected.items():
        report = inspect_media(
            media[name], declared_media_type=declared, ffmpeg=ffmpeg, out_dir=tmp_path / name
        )
        assert (report.media_type, report.kind) == (media_type, MediaKind.AUDIO), name
        assert report.flags == (), (name, report.flags)
        assert report.av is not None and report.av.audio_codec == codec, name
        assert report.av.video_codec is None and report.derivatives == (), name
        assert report.av.duration_ms is not None and abs(report.av.duration_ms - 2000) <= 150, (
            name
        )  # AMR: estimated


def test_pdf_pages_and_signatures(
    media: dict[str, Path], ffmpeg: FFmpegTools, out_dir: Path
) -> None:
    plain = inspect_media(media["doc.pdf"], declared_media_type="application/pdf", ffmpeg=ffmpeg)
    assert (plain.media_type, plain.kind) == ("application/pdf", MediaKind.PDF)
    assert plain.flags == () and plain.error is None
    assert plain.pdf is not None
    assert (plain.pdf.page_count, plain.pdf.signed, plain.pdf.encrypted) == (3, False, False)
    assert plain.pdf.version == "1.7"

    signed = inspect_media(
        media["signed.pdf"], declared_media_type="application/pdf", ffmpeg=ffmpeg
    )
    assert signed.pdf is not None
    assert (signed.pdf.page_count, signed.pdf.signed, signed.pdf.signature_count) == (1, True, 1)


def test_device_time_and_gps_agreeing_with_manifest_raise_no_flag(
    media: dict[str, Path], ffmpeg: FFmpegTools, out_dir: Path
) -> None:
    declared = DeclaredFacts(
        device_time=datetime(2024, 5, 1, 0, 31, tzinfo=UTC),  # 08:31 Beijing
        lat="26.5790",
        lon="106.7140",  # ~90 m away
    )
    for name in ("photo.jpg", "video.mp4"):
        report = inspect_media(
            media[name], declared_media_type=None, declared=declared, ffmpeg=ffmpeg, out_dir=out_dir
        )
        assert report.flags == (), (name, report.flags)


def test_report_is_json_ready(media: dict[str, Path], ffmpeg: FFmpegTools, out_dir: Path) -> None:
    report = inspect_media(
        media["photo.jpg"], declared_media_type="video/mp4", ffmpeg=ffmpeg, out_dir=out_dir
    )
    data = report.to_json_dict()
    assert data["media_type"] == "image/jpeg" and data["kind"] == "image"
    assert data["image"]["capture_time"] == "2024-05-01T08:30:00+08:00"
    assert data["image"]["gps_lat"] == PHOTO_LAT
    assert data["derivatives"][0]["role"] == "thumbnail"
    assert data["flags"][0]["code"] == FlagCode.DECLARED_TYPE_MISMATCH.value
    assert "申报" in data["flags"][0]["message_zh"] and data["flags"][0]["message_en"]
    assert "ffmpeg n" in data["tools"] and "Pillow" in data["tools"]
