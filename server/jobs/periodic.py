"""A task run now and then every few seconds in a daemon thread (:class:`Every`).

Started by :meth:`server.components.Components.start_background` in serve mode, never at
import: leftover inspection (:mod:`server.jobs.inspection`) and periodic checkpoints
(:mod:`server.jobs.checkpointer`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Every:
    """Runs ``task`` in a daemon thread now and then every ``interval`` seconds until stopped.

    A failing run is logged and retried at the next interval: background work never
    takes the server process down.
    """

    def __init__(self, name: str, interval: float, task: Callable[[], object]) -> None:
        self.name = name
        self.interval = interval
        self.task = task
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Every:
        """Start the thread (the first run begins at once, without blocking the caller)."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end and wait up to ``timeout`` for the current run."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.task()
            except Exception:
                log.exception(
                    "background task %s failed; retrying in %ss", self.name, self.interval
                )
            self._stop.wait(self.interval)
