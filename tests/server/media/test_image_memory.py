"""A real 100 Mpx PNG (inside the pixel cap) is decoded outside the server process.

Each test runs the inspection in a fresh Python process so its memory high-water mark
(``VmHWM``) is its own; the decoding child's peak is read from ``RUSAGE_CHILDREN``.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from .conftest import png_chunk

REPO = Path(__file__).resolve().parents[3]
SIDE = 10_000  # 100,000,000 px: exactly the default max_image_pixels, so not a bomb

SCRIPT = """
import json, resource, sys
from pathlib import Path
from server.media.images import inspect_image
from server.media.report import InspectionLimits
limits = InspectionLimits(image_decode_memory_bytes=int(sys.argv[3]))
outcome = inspect_image(Path(sys.argv[1]), "image/png", limits=limits, out_dir=Path(sys.argv[2]))
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({
    "flags": sorted(f.code.value for f in outcome.flags),
    "details": [f.detail for f in outcome.flags],
    "thumbnail": [[d.width, d.height] for d in outcome.derivatives],
    "size": [outcome.facts.width, outcome.facts.height] if outcome.facts else None,
    "server_kib": int(hwm.split()[1]),
    "child_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}))
"""


@pytest.fixture(scope="module")
def big_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10000×10000 RGB, every row present (a gradient band, so it compresses fast)."""
    path = tmp_path_factory.mktemp("png") / "big.png"
    row = b"\x00" + bytes(range(256)) * (SIDE * 3 // 256) + b"\x80" * (SIDE * 3 % 256)
    packer = zlib.compressobj(1)
    with path.open("wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", SIDE, SIDE, 8, 2, 0, 0, 0)))
        for _ in range(SIDE // 100):
            data = packer.compress(row * 100)
            if data:
                out.write(png_chunk(b"IDAT", data))
        out.write(png_chunk(b"IDAT", packer.flush()))
        out.write(png_chunk(b"IEND", b""))
    return path


def _inspect(png: Path, out_dir: Path, limit: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(png), str(out_dir), str(limit)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_a_100_mpx_png_gets_its_thumbnail_without_the_server_holding_its_pixels(
    big_png: Path, tmp_path: Path
) -> None:
    found = _inspect(big_png, tmp_path, 1024**3)
    assert found["flags"] == [] and found["size"] == [SIDE, SIDE]
    assert found["thumbnail"] == [[512, 512]] and (tmp_path / "thumbnail.jpg").stat().st_size
    # the server process: ~ its interpreter and Pillow (was 1.28 GB: 400 MB of pixels+)
    assert found["server_kib"] < 150 * 1024, found
    # the decoding child: the pixels (4 bytes each), inside its 1 GiB address-space limit
    assert 350 * 1024 < found["child_kib"] < 1024 * 1024, found


def test_an_image_too_large_for_the_decode_limit_is_flagged_instead_of_thumbnailed(
    big_png: Path, tmp_path: Path
) -> None:
    found = _inspect(big_png, tmp_path, 256 * 1024**2)
    assert found["flags"] == ["resource_limit_exceeded"]
    assert "256 MiB" in found["details"][0] and found["thumbnail"] == []
    assert not (tmp_path / "thumbnail.jpg").exists()
    assert found["size"] == [SIDE, SIDE]  # header facts are still reported
    assert found["server_kib"] < 150 * 1024, found
