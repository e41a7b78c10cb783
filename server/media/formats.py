"""Image formats phones produce (HEIC/HEIF, AVIF), made known to Pillow once per process.

* HEIC/HEIF (iPhone, many Android cameras): the ``pillow-heif`` plugin (libheif with the
  libde265 HEVC decoder in its wheel), registered as Pillow's ``HEIF`` format.
* AVIF: Pillow's own ``AVIF`` plugin (Pillow ≥ 11.3 wheels carry libavif); where a
  Pillow was built without it, the ``pillow-avif-plugin`` package is used if installed.

:func:`register_phone_formats` registers what is available and returns the sniffed
media type → Pillow format names that may open it (the same allowlist idea as
``server.media.images.PILLOW_FORMATS``). EXIF (time, GPS, orientation) of HEIC/AVIF is
read through Pillow's ``getexif()`` like any other image.
"""

from __future__ import annotations

import functools
import importlib

from PIL import features


@functools.cache
def register_phone_formats() -> dict[str, tuple[str, ...]]:
    """Register the HEIF and AVIF openers (once); the media types they can now open."""
    found: dict[str, tuple[str, ...]] = {}
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # the server extra installs it; tolerate a trimmed install
        pass
    else:
        register_heif_opener()
        found["image/heic"] = ("HEIF",)
        found["image/heif"] = ("HEIF",)
    if features.check("avif"):
        found["image/avif"] = ("AVIF",)
    else:  # pragma: no cover - Pillow without libavif
        try:
            importlib.import_module("pillow_avif")  # registers "AVIF" on import
        except ImportError:
            pass
        else:
            found["image/avif"] = ("AVIF",)
    return found
