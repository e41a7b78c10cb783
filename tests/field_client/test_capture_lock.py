"""One capture at a time per device home, across processes (filelock: POSIX and Windows)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from field_client.capture import capture_lock
from field_client.config import FieldHome

HOLDER = """
import sys
from pathlib import Path
from field_client.capture import capture_lock
from field_client.config import FieldHome
with capture_lock(FieldHome(Path(sys.argv[1]))):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_capture_waits_until_the_first_process_lets_go(tmp_path: Path) -> None:
    home = FieldHome(tmp_path / "home")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "held"
    acquired = threading.Event()

    def second() -> None:
        with capture_lock(home):
            acquired.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.5)
    assert not acquired.is_set()  # blocked while the other process captures
    holder.stdin.write("done\n")
    holder.stdin.flush()
    assert holder.wait(10) == 0
    waiter.join(10)
    assert acquired.is_set()
    assert home.lock_file.exists()  # the lock file stays for the next capture
