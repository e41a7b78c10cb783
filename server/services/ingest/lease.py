"""One upload's write lease (写入租约): at most one request writes an upload at a time.

``uploads.lock_owner`` / ``lock_expires_at`` form the lease, shared by every server
process through the database (tusd's *locker*). The owner is
``<host>:<pid>:<token>`` — unique per request, so a lease once lost is never mistaken
for one's own again.

* :func:`take` — one atomic ``UPDATE … WHERE the lease is free or expired``;
  :class:`Locked` (423, with ``Retry-After``) while another request holds it.
* :func:`renew` — one ``UPDATE`` that must touch exactly one row, with extra
  conditions (the parts count and offset this request knows, before a part is put).
* :func:`release` — the owner ends it (a lease nobody releases expires by itself).
* :func:`owner_gone` / :func:`release_dead` — a lease whose owner is a process of this
  host that no longer exists (``kill -9``, a crash; a zombie not yet reaped counts as
  gone) is provably dead: :func:`take` takes it over at once, and a restarted server
  and the reconciler release it, so the client resumes (or its finished upload
  completes) without waiting for the expiry. Another host's lease only its expiry can
  end.

Each function works inside the caller's unit of work, so the lease is taken, renewed
or ended in the same transaction as the step it guards. Their statements leave upload
objects the session has loaded as they were (:data:`UNSYNCHRONIZED`): nobody reads the
row after them (``append`` reads it to write, before :func:`take`).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from server.errors import Locked
from server.models import Upload, utcnow

HELD = (
    "此上传正在由另一个请求写入，请稍后 HEAD 查询偏移量再续传 (another request is "
    "writing this upload right now; wait, send HEAD, then resume)"
)
LOST = (
    "写入租约已被另一请求接管，本请求已停止；请 HEAD 查询后续传 (this request lost its "
    "write lease to another one and stopped; send HEAD and resume)"
)

UNSYNCHRONIZED: dict[str, Any] = {"synchronize_session": False}
"""Execution options of an ``UPDATE`` of uploads that need not touch objects already
loaded: the ORM's default evaluates its criteria against each of them (≈ 0.1 ms of the
≈ 0.3 an ``UPDATE`` costs on SQLite here)."""


def owner_prefix() -> str:
    """``<host>:<pid>`` of this process: the first two fields of every lease it takes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def take(
    session: Session,
    upload_id: str,
    *,
    ttl: timedelta,
    prefix: str,
) -> tuple[str, datetime]:
    """Take the lease of ``upload_id``: its owner id and when it was taken.

    A lease held by a gone process of this host (:func:`owner_gone`) is taken over: a
    server process killed after storing an upload's last byte must not leave the next
    HEAD or PATCH, on another process, waiting for the expiry.
    """
    owner = f"{prefix}:{uuid.uuid4().hex[:12]}"
    now = utcnow()
    if _claim(session, upload_id, owner, now, ttl):
        return owner, now
    held = session.scalar(select(Upload.lock_owner).where(Upload.id == upload_id))
    if (
        held is None
        or not owner_gone(held)
        or not _claim(session, upload_id, owner, now, ttl, held)
    ):
        raise Locked(HELD)
    return owner, now


def _claim(
    session: Session,
    upload_id: str,
    owner: str,
    now: datetime,
    ttl: timedelta,
    dead: str | None = None,
) -> bool:
    """One atomic ``UPDATE``: the lease becomes ``owner``'s if it was free, expired or held
    by the gone ``dead``."""
    free = or_(Upload.lock_owner.is_(None), Upload.lock_expires_at < now)
    if dead is not None:
        free = or_(free, Upload.lock_owner == dead)
    result = session.execute(
        update(Upload)
        .where(Upload.id == upload_id, free)
        .values(
            lock_owner=owner,
            lock_expires_at=now + ttl,
            updated_at=Upload.updated_at,  # a lease is not a change of the upload
        )
        .execution_options(**UNSYNCHRONIZED)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def renew(
    session: Session,
    upload_id: str,
    owner: str,
    *,
    ttl: timedelta,
    now: datetime,
    conditions: tuple[Any, ...] = (),
) -> None:
    """Extend the lease to ``now + ttl``; :class:`Locked` if it is no longer ``owner``'s
    (or a condition no longer holds)."""
    result = session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.lock_owner == owner, *conditions)
        .values(lock_expires_at=now + ttl, updated_at=Upload.updated_at)
        .execution_options(**UNSYNCHRONIZED)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Locked(LOST)


def release(session: Session, upload_id: str, owner: str) -> None:
    """End ``owner``'s lease of ``upload_id`` (nothing if it is not theirs any more)."""
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.lock_owner == owner)
        .values(lock_owner=None, lock_expires_at=None, updated_at=Upload.updated_at)
        .execution_options(**UNSYNCHRONIZED)
    )


def owner_gone(owner: str) -> bool:
    """True when a lease owner (``host:pid:token``) is a process of this host that is gone."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's process: only its lease expiry tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """True when ``pid`` has exited but is not reaped yet (its parent hung or stopped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return False  # no /proc (not Linux): kill() alone decides
    return state in (b"Z", b"X")


def release_dead(session: Session, now: datetime | None = None) -> list[str]:
    """Release every unexpired lease held by a gone process of this host; their uploads."""
    now = now or utcnow()
    held = session.execute(
        select(Upload.id, Upload.lock_owner).where(
            Upload.lock_owner.like(f"{socket.gethostname()}:%"),
            Upload.lock_expires_at > now,
        )
    ).all()
    released = []
    for upload_id, owner in held:
        if owner is not None and owner_gone(owner):
            release(session, upload_id, owner)
            released.append(upload_id)
    return released
