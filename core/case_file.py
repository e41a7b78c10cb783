"""The case file's human guide (``casetrail/README.zh-en.md``).

The implementation lives in :mod:`core.verify`, which ships inside every bag and renders
the guide again to check it; the server imports it from here.
"""

from __future__ import annotations

from core.verify import GUIDE_PATH, render_case_file_guide

__all__ = ["GUIDE_PATH", "render_case_file_guide"]
