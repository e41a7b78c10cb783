"""An image thumbnail made as a limited child: ``python -I _image_thumbnail.py FILE FORMATS SIDE OUT``.

Prints one JSON object on stdout: ``{"width": …, "height": …}`` of the thumbnail written
to ``OUT``, or ``{"error": "…", "truncated": bool}``. Decoding a large image takes
memory in proportion to its pixels (a 100 Mpx PNG: 400 MB), so ``server.media.images``
runs large ones here, under ``server.media.sandbox``'s address-space limit, and the
server process never holds those pixels. Imports nothing from CaseTrail, so the server
also imports :func:`make_thumbnail` from here for small images decoded in-process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageOps


def make_thumbnail(im: Image.Image, side: int, target: Path) -> tuple[int, int]:
    """Decode ``im`` (JPEGs in draft mode at the smallest scale covering ``side``) and save
    an upright JPEG thumbnail of at most ``side`` × ``side`` at ``target``; its size."""
    if im.format == "JPEG":
        im.draft("RGB", (side, side))
    im.load()  # raises on truncated data; never LOAD_TRUNCATED_IMAGES
    # shrink in place first (it keeps the EXIF orientation), then turn upright: turning
    # the full-size image would copy every pixel once more
    im.thumbnail((side, side))
    upright = ImageOps.exif_transpose(im)
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        upright = flat
    else:
        upright = upright.convert("RGB")
    upright.save(target, "JPEG", quality=85)
    return upright.size


def main(path: str, formats: str, side: str, out: str) -> dict[str, object]:
    names = formats.split(",")
    if "HEIF" in names:  # a child of its own (-I): the parent's registration is not here
        from pillow_heif import register_heif_opener

        register_heif_opener()
    try:
        with open(path, "rb") as fp, Image.open(fp, formats=names) as im:
            width, height = make_thumbnail(im, int(side), Path(out))
    except MemoryError:
        raise
    except Exception as exc:  # Pillow reports damaged data through many types
        text = f"{type(exc).__name__}: {exc}"[:300]
        hints = ("truncated", "Truncated", "EOF", "end of file", "broken data stream")
        return {
            "error": text,
            "truncated": isinstance(exc, EOFError) or any(h in text for h in hints),
        }
    return {"width": width, "height": height}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
