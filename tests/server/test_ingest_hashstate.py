"""The saved SHA-256 state is exact across processes, and a damaged one is refused."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from server import hashstate


def test_state_saved_in_another_process_resumes_to_the_exact_digest() -> None:
    first, second = os.urandom(3_000_001), os.urandom(1_234_567)
    code = (
        "import sys; from server import hashstate\n"
        "h = hashstate.RunningSha256(); h.update(sys.stdin.buffer.read())\n"
        "sys.stdout.buffer.write(h.save())"
    )
    saved = subprocess.run(
        [sys.executable, "-c", code], input=first, capture_output=True, check=True
    ).stdout
    resumed = hashstate.restore(saved, len(first))
    assert resumed is not None
    resumed.update(second)
    assert resumed.digest == "sha256:" + hashlib.sha256(first + second).hexdigest()
    assert resumed.size == len(first) + len(second)


def test_missing_corrupt_or_stale_state_is_refused() -> None:
    h = hashstate.RunningSha256()
    h.update(b"abc")
    saved = h.save()
    assert hashstate.restore(saved, 3) is not None
    assert hashstate.restore(None, 3) is None
    assert hashstate.restore(saved, 4) is None  # covers another byte count
    flipped = bytearray(saved)
    flipped[20] ^= 1
    assert hashstate.restore(bytes(flipped), 3) is None
    assert hashstate.restore(saved[:-1], 3) is None
