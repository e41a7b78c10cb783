"""Test media, generated once per session: Pillow images, ffmpeg test sources, hand-made PDFs."""

from __future__ import annotations

import io
import random
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from server.media import FFmpegTools

# Guiyang (贵阳) — where the sample photos are "taken".
PHOTO_LAT, PHOTO_LON = "26.578300", "106.713500"
PHOTO_TIME = "2024:05:01 08:30:00"


@pytest.fixture(scope="session")
def ffmpeg() -> FFmpegTools:
    return FFmpegTools.resolve()


@pytest.fixture(autouse=True)
def _temp_files_under_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``inspect_media`` without ``out_dir`` makes its own directory (the caller keeps the
    derivatives in it): in these tests under ``tmp_path``, removed with it, not in /tmp."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture
def out_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "derivatives"
    d.mkdir()
    yield d


def run_ffmpeg(tools: FFmpegTools, *args: str) -> None:
    subprocess.run(
        [str(tools.ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", *args, "-y"],
        check=True,
        timeout=120,
    )


def _dms(value: str) -> tuple[float, float, float]:
    deg = float(value)
    d = int(deg)
    m = int((deg - d) * 60)
    s = round(((deg - d) * 60 - m) * 60, 4)
    return (float(d), float(m), s)


def make_photo(path: Path, *, orientation: int = 6, exif_time: str = PHOTO_TIME) -> Path:
    """A 400×300 landscape JPEG: left half red, right half blue; EXIF time, GPS, camera."""
    im = Image.new("RGB", (400, 300), (220, 20, 20))
    im.paste((20, 20, 220), (200, 0, 400, 300))
    exif = Image.Exif()
    exif[0x010F] = "CaseCam"
    exif[0x0110] = "BodyCam X1"
    exif[0x0112] = orientation
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = exif_time
    ifd[0x9011] = "+08:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", _dms(PHOTO_LAT)
    gps[3], gps[4] = "E", _dms(PHOTO_LON)
    im.save(path, "JPEG", exif=exif, quality=90)
    return path


def noisy_image(size: tuple[int, int]) -> Image.Image:
    rnd = random.Random(6)
    return Image.frombytes("RGB", size, rnd.randbytes(size[0] * size[1] * 3))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_bomb_png(path: Path, width: int, height: int) -> Path:
    """A PNG of a few hundred bytes whose header declares width×height RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + width * 3) * 4, 9)  # only four rows present
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )
    return path


def build_pdf(objects: list[bytes], *, root: int = 1, trailer_extra: bytes = b"") -> bytes:
    """A PDF with a correct xref table; ``objects[i]`` is the body of object i+1."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, root, trailer_extra, xref)
    )
    return out.getvalue()


def three_page_pdf() -> bytes:
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        ]
    )


def signed_pdf() -> bytes:
    contents = b"<" + b"30" * 64 + b">"
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Annots [4 0 R] >>",
            b"<< /FT /Sig /T (Signature1) /Type /Annot /Subtype /Widget /Rect [0 0 0 0]"
            b" /P 3 0 R /V 5 0 R >>",
            b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached"
            b" /ByteRange [0 100 200 300] /Contents " + contents + b" >>",
        ]
    )


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory, ffmpeg: FFmpegTools) -> dict[str, Path]:
    """Every sample file, by name."""
    d = tmp_path_factory.mktemp("media")
    files: dict[str, Path] = {}
    files["photo.jpg"] = make_photo(d / "photo.jpg")
    png = Image.new("RGBA", (64, 48), (0, 128, 0, 255))
    png.save(d / "plain.png")
    files["plain.png"] = d / "plain.png"

    noisy = io.BytesIO()
    noisy_image((640, 480)).save(noisy, "JPEG", quality=95)
    files["truncated.jpg"] = d / "truncated.jpg"
    files["truncated.jpg"].write_bytes(noisy.getvalue()[: len(noisy.getvalue()) * 6 // 10])
    noisy = io.BytesIO()
    noisy_image((320, 240)).save(noisy, "PNG")
    files["truncated.png"] = d / "truncated.png"
    files["truncated.png"].write_bytes(noisy.getvalue()[: len(noisy.getvalue()) * 6 // 10])

    src = ["-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=10"]
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=2"]
    files["video.mp4"] = d / "video.mp4"
    run_ffmpeg(
        ffmpeg,
        *src,
        *tone,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        "-metadata",
        "creation_time=2024-05-01T00:30:00Z",
        "-metadata",
        "location=+26.5783+106.7135/",
        str(files["video.mp4"]),
    )
    files["video.webm"] = d / "video.webm"
    run_ffmpeg(ffmpeg, *src, "-c:v", "libvpx", "-b:v", "200k", str(files["video.webm"]))
    files["video.avi"] = d / "video.avi"
    run_ffmpeg(ffmpeg, *src, "-c:v", "mpeg4", str(files["video.avi"]))
    files["audio.mp3"] = d / "audio.mp3"
    run_ffmpeg(ffmpeg, *tone, "-c:a", "libmp3lame", str(files["audio.mp3"]))
    files["audio.wav"] = d / "audio.wav"
    run_ffmpeg(ffmpeg, *tone, str(files["audio.wav"]))
    files["audio.m4a"] = d / "audio.m4a"
    run_ffmpeg(ffmpeg, *tone, "-c:a", "aac", "-f", "ipod", str(files["audio.m4a"]))
    files["audio.amr"] = d / "audio.amr"
    run_ffmpeg(
        ffmpeg,
        *tone,
        "-ar",
        "8000",
        "-ac",
        "1",
        "-c:a",
        "libopencore_amrnb",
        str(files["audio.amr"]),
    )
    files["doc.pdf"] = d / "doc.pdf"
    files["doc.pdf"].write_bytes(three_page_pdf())
    files["signed.pdf"] = d / "signed.pdf"
    files["signed.pdf"].write_bytes(signed_pdf())
    return files
