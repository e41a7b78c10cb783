"""The case file's human guide (``casetrail/README.zh-en.md``) and its seal (``casetrail/seal.txt``).

The implementation lives in :mod:`core.verify`, which ships inside every bag and renders
the guide and the seal's text again to check them; the server imports them from here.
"""

from __future__ import annotations

from core.verify import GUIDE_PATH, SEAL_PATH, SEALED_MANIFESTS, render_case_file_guide, seal_body

__all__ = ["GUIDE_PATH", "SEALED_MANIFESTS", "SEAL_PATH", "render_case_file_guide", "seal_body"]
