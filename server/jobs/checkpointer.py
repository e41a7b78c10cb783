"""Periodic log checkpoints (定期检查点): signed in the background, never in an API request.

Each server process runs :meth:`Checkpointer.run_once` every ``CASETRAIL_CHECKPOINT_SECONDS``
(:class:`server.jobs.periodic.Every`, started by
:meth:`server.components.Components.start_background` in serve mode); a checkpoint is
signed only when the log grew and the latest one is older than ``max_age``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta

from core.checkpoint import NoteSigner
from server.services.custody import checkpoint_if_due
from server.services.unit_of_work import UnitOfWork


@dataclass
class Checkpointer:
    """Signs a log checkpoint when the log grew and the latest is older than ``max_age``."""

    uow_factory: Callable[[], AbstractContextManager[UnitOfWork]]
    signer: Callable[[], NoteSigner]
    max_age: timedelta = timedelta(seconds=60)

    def run_once(self) -> bool:
        """Sign one checkpoint if due; True when one was signed."""
        with self.uow_factory() as uow:
            signed = checkpoint_if_due(uow, self.signer(), max_age=self.max_age)
            uow.commit()
        return signed is not None
