"""Bad input from the acceptance list: each gets its flag, nothing crashes, nothing leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from server.media import (
    DEFAULT_LIMITS,
    DeclaredFacts,
    DerivativeRole,
    FFmpegTools,
    FlagCode,
    MediaKind,
    inspect_media,
)

from .conftest import make_bomb_png, make_photo, three_page_pdf

REPO = Path(__file__).resolve().parents[3]


def codes(report: object) -> set[str]:
    return {f.code.value for f in report.flags}  # type: ignore[attr-defined]


def test_zero_byte_file(tmp_path: Path, ffmpeg: FFmpegTools) -> None:
    empty = tmp_path / "empty.jpg"
    empty.touch()
    report = inspect_media(empty, declared_media_type="image/jpeg", ffmpeg=ffmpeg, out_dir=tmp_path)
    assert codes(report) == {"zero_byte"}
    assert report.size == 0 and report.derivatives == () and report.error is None
    assert "0 字节" in report.flags[0].message_zh and "empty" in report.flags[0].message_en


def test_image_bomb_pillow_refuses_at_open(tmp_path: Path, ffmpeg: FFmpegTools) -> None:
    bomb = make_bomb_png(tmp_path / "bomb.png", 20000, 20000)  # 400 Mpx declared
    assert bomb.stat().st_size < 2000
    started = time.monotonic()
    report = inspect_media(bomb, declared_media_type="image/png", ffmpeg=ffmpeg, out_dir=tmp_path)
    # decoding 400 Mpx would take far longer (and ~1.2 GB, see the memory test below);
    # the bound is generous so a loaded CI machine cannot make it flaky
    assert time.monotonic() - started < 10
    assert codes(report) == {"image_bomb"}
    assert report.derivatives == () and report.error is None
    assert not (tmp_path / "thumbnail.jpg").exists()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_image_bomb_below_pillow_limit_is_refused_by_ours(
    tmp_path: Path, ffmpeg: FFmpegTools
) -> None:
    # 110 Mpx: Pillow would only warn (limit 89 Mpx warns, 179 Mpx errors); our 100 Mpx
    # limit refuses before any pixel is decoded, and still reports the declared size.
    bomb = make_bomb_png(tmp_path / "bomb.png", 11000, 10000)
    report = inspect_media(bomb, declared_media_type="image/png", ffmpeg=ffmpeg, out_dir=tmp_path)
    assert codes(report) == {"image_bomb"}
    assert report.image is not None and (report.image.width, report.image.height) == (11000, 10000)
    assert "110,000,000" in report.flags[0].detail
    assert report.derivatives == ()


def test_image_bomb_memory_stays_bounded(tmp_path: Path) -> None:
    """In a fresh process (clean high-water mark): decoding would need ~1.2 GB, we use little."""
    bomb = make_bomb_png(tmp_path / "bomb.png", 20000, 20000)
    script = (
        "import json,sys\n"
        "from pathlib import Path\n"
        "from server.media import FFmpegTools, inspect_media\n"
        "t = FFmpegTools(Path('/nonexistent'), 'none', 'test')\n"
        "r = inspect_media(Path(sys.argv[1]), declared_media_type=None, ffmpeg=t,"
        " out_dir=Path(sys.argv[2]))\n"
        # VmHWM, not ru_maxrss: ru_maxrss survives exec and would count pytest's own memory
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(json.dumps([sorted(f.code.value for f in r.flags), int(hwm.split()[1])]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(bomb), str(tmp_path)],
        capture_output=True,
        check=True,
        cwd=REPO,
        timeout=60,
    ).stdout
    flags, max_rss_kib = json.loads(out)
    assert flags == ["image_bomb"]
    assert max_rss_kib < 200 * 1024


@pytest.mark.parametrize("name", ["truncated.jpg", "truncated.png"])
def test_truncated_images(
    name: str, media: dict[str, Path], ffmpeg: FFmpegTools, out_dir: Path
) -> None:
    report = inspect_media(media[name], declared_media_type=None, ffmpeg=ffmpeg, out_dir=out_dir)
    assert codes(report) == {"truncated"}
    assert report.kind is MediaKind.IMAGE and report.derivatives == () and report.error is None
    assert report.image is not None and report.image.width > 0  # header facts still reported


def test_truncated_video(media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(media["video.mp4"].read_bytes()[:30000])
    report = inspect_media(cut, declared_media_type="video/mp4", ffmpeg=ffmpeg, out_dir=tmp_path)
    assert report.media_type == "video/mp4"
    assert codes(report) == {"truncated"}
    assert "moov" in report.flags[0].detail
    assert report.derivatives == () and report.error is None


def test_truncated_pdf(tmp_path: Path, ffmpeg: FFmpegTools) -> None:
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(three_page_pdf()[:-40])  # upload cut before the xref trailer
    report = inspect_media(cut, declared_media_type="application/pdf", ffmpeg=ffmpeg)
    assert codes(report) == {"truncated"} and report.error is None
    assert report.pdf is not None and report.pdf.page_count is None


def test_declared_type_mismatch(media: dict[str, Path], ffmpeg: FFmpegTools, out_dir: Path) -> None:
    report = inspect_media(
        media["plain.png"], declared_media_type="video/mp4", ffmpeg=ffmpeg, out_dir=out_dir
    )
    assert codes(report) == {"declared_type_mismatch"}
    assert report.media_type == "image/png"  # the content decides, not the claim
    assert "video/mp4" in report.flags[0].detail and "image/png" in report.flags[0].detail
    assert report.derivative(DerivativeRole.THUMBNAIL) is not None


def test_declared_aliases_and_families_are_not_mismatches(
    media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path
) -> None:
    cases = [
        ("photo.jpg", "image/jpg"),
        ("photo.jpg", "IMAGE/JPEG; charset=binary"),
        ("video.mp4", "video/quicktime"),
        ("photo.jpg", "application/octet-stream"),
    ]
    for name, declared in cases:
        report = inspect_media(
            media[name], declared_media_type=declared, ffmpeg=ffmpeg, out_dir=tmp_path / name
        )
        assert "declared_type_mismatch" not in codes(report), (name, declared)


def test_polyglot_jpeg_with_pdf_inside(
    media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path
) -> None:
    poly = tmp_path / "poly.jpg"
    jpeg = media["photo.jpg"].read_bytes()
    # A PDF header a few bytes in: PDF readers scan the first 1024 bytes for it.
    poly.write_bytes(jpeg[:2] + b"\xff\xfe\x00\x10%PDF-1.7 junk" + jpeg[2:] + three_page_pdf())
    report = inspect_media(poly, declared_media_type="image/jpeg", ffmpeg=ffmpeg, out_dir=tmp_path)
    assert report.media_type == "image/jpeg"  # the leading bytes decide
    assert "polyglot" in codes(report)
    assert "application/pdf" in next(f for f in report.flags if f.code is FlagCode.POLYGLOT).detail


def test_polyglot_pdf_with_jpeg_inside(
    media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path
) -> None:
    poly = tmp_path / "poly.pdf"
    pdf = three_page_pdf()
    poly.write_bytes(pdf[:9] + b"%" + media["photo.jpg"].read_bytes()[:200] + b"\n" + pdf[9:])
    report = inspect_media(poly, declared_media_type="application/pdf", ffmpeg=ffmpeg)
    assert report.media_type == "application/pdf"
    assert "polyglot" in codes(report)


def test_hls_playlist_referencing_local_file_is_never_read(
    tmp_path: Path, ffmpeg: FFmpegTools
) -> None:
    secret = tmp_path / "secret.ts"
    secret.write_bytes(b"TOP-SECRET-7f3a9c\n" * 100)
    os.utime(secret, (0, secret.stat().st_mtime))  # atime far in the past
    secret.read_bytes()
    if secret.stat().st_atime == 0:
        pytest.skip("this filesystem does not record access times")
    os.utime(secret, (0, secret.stat().st_mtime))
    playlist = tmp_path / "evidence.m3u8"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
        f"file://{secret}\n#EXTINF:10,\nconcat:{secret}|{secret}\n#EXT-X-ENDLIST\n"
    )
    disguised = tmp_path / "clip.mp4"
    disguised.write_bytes(playlist.read_bytes())
    out = tmp_path / "out"
    for path, declared in [(playlist, "application/vnd.apple.mpegurl"), (disguised, "video/mp4")]:
        report = inspect_media(path, declared_media_type=declared, ffmpeg=ffmpeg, out_dir=out)
        assert report.media_type == "application/vnd.apple.mpegurl"
        assert report.kind is MediaKind.OTHER
        assert "references_external_resource" in codes(report)
        assert "2 reference(s)" in report.flags[0].detail
        assert report.derivatives == () and report.av is None
        assert "TOP-SECRET" not in json.dumps(report.to_json_dict(), ensure_ascii=False)
    assert "declared_type_mismatch" in codes(report)  # the disguised one
    assert secret.stat().st_atime == 0, "the referenced file was opened"
    for f in out.rglob("*"):
        assert b"TOP-SECRET" not in f.read_bytes()


def test_ffconcat_list_is_refused(tmp_path: Path, ffmpeg: FFmpegTools) -> None:
    lst = tmp_path / "list.txt"
    lst.write_text("ffconcat version 1.0\nfile '/etc/passwd'\nfile 'file:/etc/hosts'\n")
    report = inspect_media(lst, declared_media_type="video/mp4", ffmpeg=ffmpeg, out_dir=tmp_path)
    assert report.media_type == "application/x-ffconcat"
    assert {"references_external_resource", "declared_type_mismatch"} <= codes(report)
    assert "2 reference(s)" in report.flags[0].detail


def test_the_protocol_whitelist_is_enforced_in_every_ffmpeg_run(
    media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path
) -> None:
    """Defence in depth: even a media file that names a URL inside cannot make ffmpeg
    leave the file protocol. An MKV whose name and tags say ``http:`` still only opens
    itself; and a real ffmpeg run with our input arguments on an HLS playlist pointing
    at ``http:`` is refused by the whitelist (shown here through the av layer's args)."""
    from server.media.av import _input_args
    from server.media.sandbox import ChildLimits, run_limited

    playlist = tmp_path / "net.m3u8"
    playlist.write_text("#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n")
    args = _input_args("hls", playlist)
    # The real arguments refuse 'hls' (not on the format whitelist) before any protocol.
    result = run_limited(
        [str(ffmpeg.ffmpeg), *args, "-f", "null", "-"],
        ChildLimits(30, 30, 2 * 1024**3, 1024**2, 65536),
        work_dir=tmp_path,
    )
    assert result.returncode != 0
    assert "whitelist" in result.stderr.lower() or "not allowed" in result.stderr.lower()
    # Without the format whitelist, the protocol whitelist still stops the http: segment.
    no_fmt = [a for a in args if a not in ("-format_whitelist",) and "," not in a]
    result = run_limited(
        [str(ffmpeg.ffmpeg), *no_fmt, "-f", "null", "-"],
        ChildLimits(30, 30, 2 * 1024**3, 1024**2, 65536),
        work_dir=tmp_path,
    )
    assert result.returncode != 0
    assert "not on whitelist" in result.stderr


@pytest.mark.parametrize(
    "name",
    [
        "-rf.mp4",
        "--help.mp4",
        "concat:a.mp4|b.mp4",
        "file:x.mp4",
        "http:evil.mp4",
        "spoof\u202egpj.mp4",  # RTL override: shows as "spoofmp4.jpg"
        "现场检查录像.mp4",
        "a" * 250 + ".mp4",
        "line\nbreak.mp4",
    ],
)
def test_hostile_file_names(
    name: str, media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path
) -> None:
    d = tmp_path / "in"
    d.mkdir()
    target = d / name
    target.write_bytes(media["video.mp4"].read_bytes())
    report = inspect_media(
        target, declared_media_type="video/mp4", ffmpeg=ffmpeg, out_dir=tmp_path / "o"
    )
    assert report.error is None and report.flags == ()
    assert report.av is not None and report.av.duration_ms == 2000
    assert report.derivative(DerivativeRole.POSTER) is not None
    assert sorted(os.listdir(d)) == [name]  # nothing created or removed beside the original


def test_300_byte_name_path(media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    # NAME_MAX is 255 bytes, so a 300-byte name arrives as a nested path of that length.
    deep = tmp_path / ("目" * 40) / ("录" * 40) / ("x" * 50 + ".jpg")
    deep.parent.mkdir(parents=True)
    assert len(str(deep.relative_to(tmp_path)).encode()) >= 290
    make_photo(deep)
    report = inspect_media(
        deep, declared_media_type="image/jpeg", ffmpeg=ffmpeg, out_dir=tmp_path / "o"
    )
    assert report.flags == () and report.derivative(DerivativeRole.THUMBNAIL) is not None


def test_device_time_disagrees(media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    late = DeclaredFacts(
        device_time=datetime(2024, 5, 1, 10, 30, tzinfo=timezone(timedelta(hours=8)))
    )
    photo = inspect_media(
        media["photo.jpg"],
        declared_media_type=None,
        declared=late,
        ffmpeg=ffmpeg,
        out_dir=tmp_path / "p",
    )
    assert codes(photo) == {"device_time_disagrees"}
    assert "7200 s" in photo.flags[0].detail
    video = inspect_media(
        media["video.mp4"],
        declared_media_type=None,
        declared=late,
        ffmpeg=ffmpeg,
        out_dir=tmp_path / "v",
    )
    assert codes(video) == {"device_time_disagrees"}


def test_naive_exif_time_is_read_as_beijing_time(ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.jpg")  # EXIF 08:30 +08:00 …
    utc = DeclaredFacts(device_time=datetime(2024, 5, 1, 0, 30, tzinfo=UTC))
    assert inspect_media(photo, declared_media_type=None, declared=utc, ffmpeg=ffmpeg).flags == ()
    # … and a manifest with no offset is taken as Beijing time too.
    naive = DeclaredFacts(device_time=datetime(2024, 5, 1, 8, 32))
    assert inspect_media(photo, declared_media_type=None, declared=naive, ffmpeg=ffmpeg).flags == ()


def test_gps_disagrees(media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path) -> None:
    beijing = DeclaredFacts(lat="39.9042", lon="116.4074")
    for name in ("photo.jpg", "video.mp4"):
        report = inspect_media(
            media[name],
            declared_media_type=None,
            declared=beijing,
            ffmpeg=ffmpeg,
            out_dir=tmp_path / name,
        )
        assert codes(report) == {"gps_disagrees"}, name
        assert " m > 200 m" in report.flags[0].detail


def test_timeout_kills_the_inspection(
    media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path
) -> None:
    tiny = replace(DEFAULT_LIMITS, child_timeout_s=0.001)
    for name in ("video.mp4", "doc.pdf"):
        started = time.monotonic()
        report = inspect_media(
            media[name],
            declared_media_type=None,
            limits=tiny,
            ffmpeg=ffmpeg,
            out_dir=tmp_path / name,
        )
        assert time.monotonic() - started < 20  # generous: the point is "stopped", not speed
        assert codes(report) == {"inspection_timeout"}, name
        assert report.error is None and report.derivatives == ()


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    from server.media.sandbox import ChildLimits, run_limited

    marker = tmp_path / "grandchild-survived"
    script = f"sleep 2 && touch {marker} & sleep 30"
    started = time.monotonic()
    result = run_limited(
        ["/bin/sh", "-c", script], ChildLimits(0.5, 30, 2**30, 2**20, 4096), work_dir=tmp_path
    )
    # killed long before the shell's 30 s sleep would end (bound generous for loaded CI)
    assert result.timed_out and time.monotonic() - started < 15
    time.sleep(2.5)
    assert not marker.exists()


def test_memory_limit_stops_the_child(tmp_path: Path) -> None:
    from server.media.sandbox import ChildLimits, run_limited

    result = run_limited(
        [sys.executable, "-c", "x = bytearray(2 * 1024**3)"],
        ChildLimits(30, 30, 512 * 1024**2, 2**20, 65536),
        work_dir=tmp_path,
    )
    assert result.hit_resource_limit and "MemoryError" in result.stderr


def test_memory_limit_on_ffmpeg_becomes_a_flag(
    media: dict[str, Path], ffmpeg: FFmpegTools, tmp_path: Path
) -> None:
    starved = replace(DEFAULT_LIMITS, child_memory_bytes=48 * 1024**2)
    report = inspect_media(
        media["video.mp4"],
        declared_media_type=None,
        limits=starved,
        ffmpeg=ffmpeg,
        out_dir=tmp_path,
    )
    assert report.error is None and report.derivatives == ()
    assert codes(report) & {"resource_limit_exceeded", "unreadable"}


@pytest.mark.parametrize(
    "content",
    [
        b"\x00" * 1000,
        b"\xff\xd8\xff\xe0" + b"\x00" * 50,
        b"\x89PNG\r\n\x1a\n" + b"garbage" * 10,
        b"GIF89a\xff\xff\xff\xff",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100,
        b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100,
        b"\x1a\x45\xdf\xa3" + b"\x00" * 100,
        b"RIFF\x10\x00\x00\x00AVI LIST",
        b"ID3\x04\x00" + b"\x00" * 100,
        b"#!AMR\n\x00\x01",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\n",
        "这是一份现场检查笔录。\n".encode() * 10,
    ],
)
def test_garbage_behind_magic_never_raises(
    content: bytes, ffmpeg: FFmpegTools, tmp_path: Path
) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(content)
    report = inspect_media(f, declared_media_type=None, ffmpeg=ffmpeg, out_dir=tmp_path / "o")
    assert report.error is None
    assert report.size == len(content)
    damaged = codes(report) & {"unreadable", "truncated", "unsupported_format"}
    if report.kind in (MediaKind.IMAGE, MediaKind.PDF):
        assert damaged, report.flags
    elif report.kind in (MediaKind.VIDEO, MediaKind.AUDIO):
        # ffmpeg may salvage a few milliseconds of noise; it must not claim a recording.
        assert damaged or (report.av is not None and (report.av.duration_ms or 0) < 100)


def test_not_a_regular_file(tmp_path: Path, ffmpeg: FFmpegTools) -> None:
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    missing = tmp_path / "missing.jpg"
    for path in (fifo, missing, tmp_path):
        report = inspect_media(path, declared_media_type="video/mp4", ffmpeg=ffmpeg)
        assert codes(report) == {"unreadable"} and report.error is None
