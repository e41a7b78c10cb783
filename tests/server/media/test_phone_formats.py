"""HEIC/HEIF and AVIF photos (what phones take) give the same facts and thumbnail as JPEG."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from server.media import DerivativeRole, FFmpegTools, MediaKind, inspect_media
from server.media.formats import register_phone_formats

from .conftest import PHOTO_LAT, PHOTO_LON

CST = timezone(timedelta(hours=8))


# pillow-heif writes an EXIF orientation as the HEIF transform and reads the pixels back
# already turned (orientation 1), so the HEIC sample is stored upright, as phones do.
@pytest.mark.parametrize(
    ("suffix", "pillow_format", "media_type", "orientation"),
    [("heic", "HEIF", "image/heic", 1), ("avif", "AVIF", "image/avif", 6)],
)
def test_phone_photo_facts_and_upright_thumbnail(
    suffix: str,
    pillow_format: str,
    media_type: str,
    orientation: int,
    media: dict[str, Path],
    ffmpeg: FFmpegTools,
    out_dir: Path,
    tmp_path: Path,
) -> None:
    register_phone_formats()  # the encoder side of the same plugins makes the sample
    photo = tmp_path / f"IMG_0001.{suffix}"
    with Image.open(media["photo.jpg"]) as jpeg:
        exif = jpeg.getexif()
        sample = jpeg if orientation == 6 else ImageOps.exif_transpose(jpeg)
        exif[0x0112] = orientation
        sample.save(photo, pillow_format, exif=exif, quality=90)

    report = inspect_media(photo, declared_media_type=media_type, ffmpeg=ffmpeg, out_dir=out_dir)
    assert report.error is None
    assert report.flags == ()
    assert (report.media_type, report.kind) == (media_type, MediaKind.IMAGE)
    img = report.image
    assert img is not None
    stored = (400, 300) if orientation == 6 else (300, 400)
    assert (img.format, (img.width, img.height), img.orientation) == (
        pillow_format,
        stored,
        orientation,
    )
    assert img.capture_time == datetime(2024, 5, 1, 8, 30, tzinfo=CST)
    assert (img.gps_lat, img.gps_lon) == (PHOTO_LAT, PHOTO_LON)
    thumb = report.derivative(DerivativeRole.THUMBNAIL)
    assert thumb is not None
    with Image.open(thumb.path) as t:
        assert t.format == "JPEG" and t.size == (300, 400)  # turned upright by the EXIF
        top = t.convert("RGB").getpixel((150, 20))
    assert top[0] > 150 and top[2] < 100  # the stored left (red) half is on top
