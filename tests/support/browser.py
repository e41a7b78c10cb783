"""Real headless Chromium for page tests: Debian's ``chromium`` driven by Playwright.

Playwright's own browser download cannot work on these machines (no network but the
package registries), so the browser is the system's ``chromium`` (installed by
``.ci/system-deps``) launched through ``executable_path``. The flags keep Chromium off
the closed network (background networking, component updates, sync, QUIC) and let it
run as root in CI.

Screenshots that a person should look at go to :data:`ARTEFACTS`
(``tests-artefacts/`` at the top of the checkout, ignored by git).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ARTEFACTS = Path(__file__).resolve().parents[2] / "tests-artefacts"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """The system Chromium (``CASETRAIL_TEST_CHROMIUM`` overrides), or None."""
    configured = os.environ.get("CASETRAIL_TEST_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def artefact(name: str) -> Path:
    """Where a test saves a screenshot or other artefact called ``name``."""
    ARTEFACTS.mkdir(exist_ok=True)
    return ARTEFACTS / name
