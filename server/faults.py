"""Fault injection for the crash tests (``tests/faults``): die at a named point of ingest.

``CASETRAIL_FAULT_POINT=ingest.after_store`` makes the server process SIGKILL itself the
``CASETRAIL_FAULT_SKIP``-th + 1 time (default: the first) it reaches that point — a crash
with nothing flushed, exactly where the test wants it. Unset (production), :func:`fault_point`
is one dictionary lookup and does nothing.

Points (in :mod:`server.services.ingest`): ``ingest.before_first_byte`` (PATCH accepted,
lease taken, no byte read), ``ingest.mid_part`` (a block read and hashed, its part not
yet stored), ``ingest.after_last_part`` (every byte durable, nothing completed),
``ingest.after_store`` (the original complete in storage, the database not yet
committed), ``ingest.after_commit`` (committed, response not yet sent).
"""

from __future__ import annotations

import os
import signal
import threading

ENV_POINT = "CASETRAIL_FAULT_POINT"
ENV_SKIP = "CASETRAIL_FAULT_SKIP"

_hits: dict[str, int] = {}
_lock = threading.Lock()


def fault_point(name: str) -> None:
    """SIGKILL this process if ``CASETRAIL_FAULT_POINT`` names ``name`` (after the skips)."""
    if os.environ.get(ENV_POINT) != name:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        due = _hits[name] > int(os.environ.get(ENV_SKIP, "0") or 0)
    if due:
        os.kill(os.getpid(), signal.SIGKILL)
