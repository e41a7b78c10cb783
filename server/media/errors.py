"""Errors of media inspection. ``inspect_media`` itself never raises; these come only from
setting it up.

::

    MediaError
    └── MediaToolMissing     no usable ffmpeg binary (says how to install one)
"""

from __future__ import annotations


class MediaError(Exception):
    """Base of media-inspection set-up errors."""


class MediaToolMissing(MediaError):
    """No ffmpeg binary could be found."""
