"""Capture (现场采集): copy files into the vault, sign their manifest, queue them — atomically.

For one capture: the files are copied into a staging directory of the vault while being
hashed (one pass, fixed blocks; originals are only read), the capture manifest is built
with the next link of the device chain (``device_seq``/``device_prev``) and signed with
the device key, the staged copies are renamed into the vault with a pending marker, and
the capture is queued together with the new chain head in one SQLite transaction; then
the marker is removed. A crash before that commit leaves copies in staging or a vault
directory still marked pending; :meth:`Vault.recover` on the next capture deletes only
staging that holds no complete copy and moves complete, never-queued copies to
``vault/.orphans/`` (``status`` lists them). The queue therefore holds either nothing or a
complete capture, and no copy is ever deleted because the queue does not know it.
Captures are serialised across processes by a lock file, so a capture app and a
docking-station importer can run at once without forking the chain.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from filelock import FileLock

from core.manifest import (
    CaptureManifest,
    Interruption,
    Location,
    ManifestFile,
    sign_manifest,
)
from field_client.config import DeviceConfig, FieldHome
from field_client.errors import CaptureError
from field_client.keys import DeviceKey
from field_client.queue import Queue
from field_client.vault import Vault, VaultFile

__all__ = ["CaptureRequest", "CaptureResult", "Capturer", "capture_lock", "media_type_of"]

_PLACEHOLDER_SHA = "sha256:" + "0" * 64


@dataclass(frozen=True)
class CaptureRequest:
    """The facts an officer states for a capture (what the recording standard asks for).

    ``officers`` are 执法证号 (at least two on site for most records); ``location`` holds
    decimal strings; ``interruptions`` the recording's breaks with their reasons;
    ``credentials_shown`` that the officers showed their credentials (亮证) on site.
    """

    case_ref: str
    category: str
    stage: str
    record_type: str
    officers: tuple[str, ...]
    location: Location | None = None
    interruptions: tuple[Interruption, ...] = ()
    av_reason: str | None = None
    credentials_shown: bool = False
    note: str | None = None
    gnss_time: str | None = None
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class CaptureResult:
    """A queued capture: its manifest id, chain position and vault copies.

    ``set_aside`` lists what recovery from an earlier interrupted capture moved to
    ``vault/.orphans/`` just before this one (usually empty).
    """

    manifest_id: str
    device_seq: int
    manifest_hash: str
    files: tuple[VaultFile, ...]
    set_aside: tuple[Path, ...] = ()


def media_type_of(path: Path) -> str:
    """The media type guessed from the file name (``application/octet-stream`` if unknown)."""
    guessed, _ = mimetypes.guess_type(path.name, strict=False)
    return (guessed or "application/octet-stream").lower()


def local_now() -> str:
    """The device clock as RFC 3339 with the local offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


@contextmanager
def capture_lock(home: FieldHome) -> Iterator[None]:
    """Hold the home's capture lock (one capture at a time across processes)."""
    home.ensure()
    # filelock: flock on POSIX, msvcrt locking on Windows; the lock file stays in place.
    with FileLock(home.lock_file):
        yield


class Capturer:
    """Captures files on an enrolled device: ``Capturer(home, config, key, queue).capture(...)``."""

    def __init__(
        self,
        home: FieldHome,
        config: DeviceConfig,
        key: DeviceKey,
        queue: Queue,
        *,
        vault: Vault | None = None,
        clock: Callable[[], str] = local_now,
    ) -> None:
        self.home = home
        self.config = config
        self.key = key
        self.queue = queue
        self.vault = vault or Vault(home.vault_dir)
        self.clock = clock

    def _manifest(
        self,
        request: CaptureRequest,
        manifest_id: str,
        files: Sequence[ManifestFile],
        seq: int,
        prev: str | None,
    ) -> CaptureManifest:
        return CaptureManifest(
            manifest_id=manifest_id,
            device_id=self.config.device_id,
            key_id=self.key.key_id,
            alg=self.key.alg,
            case_ref=request.case_ref,
            category=request.category,
            stage=request.stage,
            record_type=request.record_type,
            officers=request.officers,
            device_time=self.clock(),
            gnss_time=request.gnss_time,
            timezone=request.timezone,
            location=request.location,
            files=tuple(files),
            interruptions=request.interruptions,
            av_reason=request.av_reason,
            credentials_shown=request.credentials_shown,
            device_seq=seq,
            device_prev=prev,
            note=request.note,
        )

    def capture(
        self,
        sources: Sequence[Path],
        request: CaptureRequest,
        *,
        imported: Sequence[tuple[str, int, int]] = (),
    ) -> CaptureResult:
        """Capture ``sources`` as one capture and queue it; all or nothing.

        Raises :class:`core.errors.ManifestInvalid` (every problem with the stated facts,
        before any byte is copied) or :class:`CaptureError` (a file cannot be read).
        """
        if not sources:
            raise CaptureError("没有要采集的文件 / no files given to capture")
        names = [p.name for p in sources]
        types = [media_type_of(p) for p in sources]
        manifest_id = str(uuid.uuid4())
        # Check the stated facts first, so a typo costs no copying.
        self._manifest(
            request,
            manifest_id,
            [ManifestFile(n, 0, _PLACEHOLDER_SHA, t) for n, t in zip(names, types, strict=True)],
            1,
            None,
        )
        with capture_lock(self.home):
            recovery = self.vault.recover(self.queue.manifest_ids())
            staging = self.vault.stage(manifest_id)
            try:
                copies = [staging.add(p, i, p.name) for i, p in enumerate(sources)]
                seq, prev = self.queue.chain_head(self.config.device_id)
                manifest = self._manifest(
                    request,
                    manifest_id,
                    [
                        ManifestFile(n, c.size, c.sha256, t)
                        for n, c, t in zip(names, copies, types, strict=True)
                    ],
                    seq + 1,
                    prev,
                )
                signed = sign_manifest(manifest, self.key.private_key)
            except BaseException:
                staging.abort()
                raise
            # If queueing fails the directory keeps its pending marker and the next
            # capture's recovery sets it aside: copies are never deleted after this point.
            staging.commit(json.dumps(signed.to_json(), ensure_ascii=False))
            self.queue.add_capture(
                signed,
                copies,
                sources=[str(p.absolute()) for p in sources],
                imported=imported,
            )
            self.vault.settle(manifest_id)
        return CaptureResult(
            manifest_id, seq + 1, manifest.manifest_hash(), tuple(copies), recovery.set_aside
        )
