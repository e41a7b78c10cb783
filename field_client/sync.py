"""Sync (同步): register manifests, upload files by tus, verify receipts — one step at a time.

One pass (:meth:`Syncer.run_once`) works through what is due in the queue, oldest
capture first:

1. **register** each captured manifest (``POST /api/v1/manifests``) in device-chain
   order → the server's evidence ids; the item is ``registered``;
2. **upload** each registered file from the *vault copy* by tus, resuming from the
   offset the server reports (``uploading``); the server compares size and SHA-256 with
   the signed manifest and answers the last chunk with a signed receipt (``uploaded``);
3. **verify** the receipt (:func:`field_client.receipts.verify_receipt`) with the log key
   pinned at enrolment; only then is the item ``done`` and the receipt saved. A file
   the server holds whole but has not stored yet (a server process died between its last
   byte and its completion: ``GET …/receipt`` answers 404) is not given up: its upload
   is asked again (``HEAD``, which makes the server complete it) and, still without a
   receipt, deferred like a locked upload.

No network or a busy server defers the item (backoff with jitter) and ends the pass —
nothing is lost, the next pass resumes. A refusal (e.g. the bytes differ from the signed
manifest) fails the item with the server's message and what to do; a vault copy that no
longer matches what was captured is reported as such — it is never re-hashed and sent
as if it were the original. :meth:`Syncer.watch` repeats passes until stopped.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from field_client.config import DeviceConfig, FieldHome, write_private
from field_client.errors import (
    FieldClientError,
    ReceiptInvalid,
    ServerBusy,
    ServerError,
    ServerRejected,
    VaultError,
)
from field_client.queue import BACKOFF_CAP, ItemState, Queue, QueueItem, backoff_delay
from field_client.receipts import RECEIPT_HEADER, Expected, decode_header, verify_receipt
from field_client.server_api import API_PREFIX, ServerApi
from field_client.tus_client import ChunkSizer, TusClient, UploadGone
from field_client.vault import Vault

__all__ = ["NullObserver", "SyncObserver", "SyncReport", "Syncer", "prune"]

LOCKED_RETRY_CAP = 8.0
"""Longest wait before retrying an upload the server reports locked (423): another
request holds it, or a crashed request's lease has yet to expire (seconds, not minutes)."""


class SyncObserver(Protocol):
    """Told what sync does, e.g. to draw progress bars."""

    def item_started(self, item: QueueItem, offset: int) -> None:
        """An upload of ``item`` begins at ``offset``."""

    def item_progress(self, item: QueueItem, offset: int) -> None:
        """The server now holds ``offset`` bytes of ``item``."""

    def item_finished(self, item: QueueItem, state: ItemState, message: str | None) -> None:
        """``item`` reached ``state`` (done / failed / deferred back to its state)."""


class NullObserver:
    """An observer that ignores everything."""

    def item_started(self, item: QueueItem, offset: int) -> None:
        """Ignored."""

    def item_progress(self, item: QueueItem, offset: int) -> None:
        """Ignored."""

    def item_finished(self, item: QueueItem, state: ItemState, message: str | None) -> None:
        """Ignored."""


@dataclass
class SyncReport:
    """What one pass did."""

    registered: int = 0
    done: list[tuple[str, int]] = field(default_factory=list)
    failed: list[tuple[tuple[str, int], str]] = field(default_factory=list)
    deferred: list[tuple[tuple[str, int], str]] = field(default_factory=list)
    bytes_sent: int = 0
    offline: bool = False
    """True when the pass stopped because the server could not be reached or was busy."""

    @property
    def changed(self) -> bool:
        """True when the pass moved anything forward or back."""
        return bool(self.registered or self.done or self.failed or self.bytes_sent)


class _Offline(Exception):
    """Ends a pass: the server cannot be used right now."""


class _NotStoredYet(ServerBusy):
    """The server holds every byte of the file but has not completed storing it yet."""


class Syncer:
    """Moves queued captures to the server. ``http`` carries the base URL and device token."""

    def __init__(
        self,
        home: FieldHome,
        config: DeviceConfig,
        queue: Queue,
        http: httpx.Client,
        *,
        observer: SyncObserver | None = None,
        sizer: ChunkSizer | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.home = home
        self.config = config
        self.queue = queue
        self.api = ServerApi(http)
        self.tus = TusClient(http, API_PREFIX + "/uploads")
        self.vault = Vault(home.vault_dir)
        self.observer: SyncObserver = observer or NullObserver()
        self.sizer = sizer or ChunkSizer()
        self.rand = rand

    # ----------------------------------------------------------------- one pass

    def run_once(self) -> SyncReport:
        """One pass over everything due now; see the module docstring."""
        report = SyncReport()
        try:
            self._register_due(report)
            for item in self.queue.due():
                if item.state is ItemState.CAPTURED:
                    continue  # its manifest was refused or deferred above
                self._advance(item, report)
        except _Offline:
            report.offline = True
        return report

    def _defer(self, items: list[QueueItem], error: FieldClientError, report: SyncReport) -> None:
        """Back off ``items``; end the pass unless only this upload is locked (423)."""
        locked = isinstance(error, _NotStoredYet) or (
            isinstance(error, ServerError) and error.status == 423
        )
        cap = LOCKED_RETRY_CAP if locked else BACKOFF_CAP
        self.queue.defer([i.key for i in items], str(error), rand=self.rand, cap=cap)
        for i in items:
            report.deferred.append((i.key, str(error)))
            self.observer.item_finished(i, i.state, str(error))
        if not locked:
            raise _Offline

    def _fail(self, item: QueueItem, reason: str, report: SyncReport) -> None:
        self.queue.mark_failed(item.key, reason)
        report.failed.append((item.key, reason))
        self.observer.item_finished(item, ItemState.FAILED, reason)

    def _register_due(self, report: SyncReport) -> None:
        pending: dict[str, list[QueueItem]] = {}
        for item in self.queue.due():
            if item.state is ItemState.CAPTURED:
                pending.setdefault(item.manifest_id, []).append(item)
        for manifest_id, items in pending.items():  # device_seq order (queue.items order)
            try:
                answer = self.api.register_manifest(self.queue.signed_manifest(manifest_id))
            except ServerRejected as e:
                for i in items:
                    self._fail(i, f"清单被服务器拒绝 / manifest refused: {e}", report)
                continue
            except ServerError as e:
                self._defer(items, e, report)  # raises _Offline unless only this one is locked
                continue
            by_index = {f.get("file_index"): f.get("evidence_id") for f in answer.get("files", [])}
            self.queue.mark_registered(
                manifest_id, {i.file_index: by_index.get(i.file_index) for i in items}
            )
            report.registered += 1

    def _advance(self, item: QueueItem, report: SyncReport) -> None:
        """Upload and/or verify one registered item."""
        try:
            receipt = self._upload(item, report) if item.state is not ItemState.UPLOADED else None
            self._finish(self.queue.item(item.key), receipt, report)
        except ServerRejected as e:
            self._fail(item, self._explain_refusal(item, e), report)
        except (VaultError, ReceiptInvalid) as e:
            self._fail(item, str(e), report)
        except ServerError as e:
            self._defer([self.queue.item(item.key)], e, report)

    def _explain_refusal(self, item: QueueItem, e: ServerRejected) -> str:
        """The server's refusal, plus what the vault says when it is about the bytes."""
        reason = f"服务器拒绝 / refused by the server: {e}"
        if e.status in (409, 422):
            try:
                self.vault.check(item.vault_path, item.size, item.sha256)
            except VaultError as local:
                reason += f"\n  本机核对 / local check: {local}"
        return reason

    def _upload(self, item: QueueItem, report: SyncReport) -> dict[str, Any] | None:
        """Send the vault copy; returns the receipt if the final answer carried one."""
        if not item.vault_path.exists():
            self.vault.check(item.vault_path, item.size, item.sha256)  # raises VaultFileMissing
        if item.evidence_id is None:
            raise ServerRejected(
                "服务器登记时未返回该文件的证据编号 / the server did not list this file when the "
                "manifest was registered; contact your admin"
            )
        url = item.upload_url
        final: httpx.Response | None = None
        for _ in range(2):  # at most one re-creation of an expired upload
            if url is None:
                url, created = self.tus.create(
                    item.size, {"evidence_id": item.evidence_id, "filename": item.name}
                )
                self.queue.mark_uploading(item.key, url, 0)
                if item.size == 0:
                    final = created
                    break
            start = self.queue.item(item.key).offset
            self.observer.item_started(item, start)
            sent = [0]

            def progress(offset: int, _url: str = url, _sent: list[int] = sent) -> None:
                now = self.queue.item(item.key).offset
                if offset > now:
                    _sent[0] += offset - now
                self.queue.mark_uploading(item.key, _url, offset)
                self.observer.item_progress(item, offset)

            try:
                final = self.tus.upload(
                    url, item.vault_path, item.size, self.sizer, on_offset=progress
                )
            except UploadGone:
                url = None
                continue
            finally:
                report.bytes_sent += sent[0]
            break
        receipt = None
        if final is not None and RECEIPT_HEADER in final.headers:
            receipt = decode_header(final.headers[RECEIPT_HEADER])
        self.queue.mark_uploaded(item.key, receipt)
        return receipt

    def _finish(self, item: QueueItem, receipt: dict[str, Any] | None, report: SyncReport) -> None:
        """Verify the receipt (fetching it if needed); mark done and save it."""
        if receipt is None:
            receipt = self.queue.receipt(item.key)
        if receipt is None:
            receipt = self._fetch_receipt(item)
        expected = Expected(
            evidence_id=item.evidence_id or "",
            manifest_id=item.manifest_id,
            file_index=item.file_index,
            sha256=item.sha256,
            size=item.size,
        )
        verify_receipt(receipt, self.config.log_key, expected, self.config.log_origin)
        write_private(
            self.home.receipts_dir / f"{item.evidence_id}.json",
            json.dumps(receipt, ensure_ascii=False, indent=2).encode("utf-8"),
        )
        self.queue.mark_done(item.key, receipt)
        report.done.append(item.key)
        self.observer.item_finished(item, ItemState.DONE, None)

    def _fetch_receipt(self, item: QueueItem) -> dict[str, Any]:
        """The stored file's receipt; see the module docstring for a file not stored yet."""
        assert item.evidence_id is not None
        try:
            return self.api.receipt(item.evidence_id)
        except ServerRejected as e:
            if e.status != 404 or item.upload_url is None:
                raise
        self.tus.head(item.upload_url)  # the server completes it (423 while another holds it)
        try:
            return self.api.receipt(item.evidence_id)
        except ServerRejected as e:
            if e.status != 404:
                raise
            raise _NotStoredYet(
                f"{e}\n  服务器已收到全部数据但尚未完成入库，稍后自动重试 (the server holds every "
                "byte but has not finished storing the file; will retry)",
                status=404,
            ) from None

    # ----------------------------------------------------------------- loop

    def watch(
        self,
        *,
        interval: float = 10.0,
        exit_when_settled: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] = time.sleep,
        on_pass: Callable[[SyncReport], None] = lambda r: None,
    ) -> None:
        """Run passes until ``should_stop()``; with ``exit_when_settled``, also stop once
        every item is done or failed. Between passes, wait ``interval`` seconds, or less when
        a deferred item comes due sooner or the offline backoff (with jitter) is shorter."""
        offline_streak = 0
        while not should_stop():
            report = self.run_once()
            on_pass(report)
            offline_streak = offline_streak + 1 if report.offline else 0
            counts = self.queue.counts()
            pending = sum(
                counts[s]
                for s in (
                    ItemState.CAPTURED,
                    ItemState.REGISTERED,
                    ItemState.UPLOADING,
                    ItemState.UPLOADED,
                )
            )
            if exit_when_settled and pending == 0:
                return
            if should_stop():
                return
            wait = interval
            if offline_streak:
                wait = min(wait, backoff_delay(offline_streak, rand=self.rand))
            elif pending:
                soonest = min((i.next_attempt_at for i in self._pending()), default=0.0)
                wait = min(wait, max(0.0, soonest - self.queue.clock()))
            if wait > 0:
                sleep(wait)

    def _pending(self) -> list[QueueItem]:
        return self.queue.items(
            [ItemState.CAPTURED, ItemState.REGISTERED, ItemState.UPLOADING, ItemState.UPLOADED]
        )


def prune(home: FieldHome, queue: Queue, retention_days: float, now: float) -> list[str]:
    """Delete vault copies of captures done more than ``retention_days`` ago; return their ids.

    Receipts and queue records stay; only the local copies go.
    """
    vault = Vault(home.vault_dir)
    removed = []
    for manifest_id in queue.prunable(now - retention_days * 86400):
        vault.remove(manifest_id)
        queue.mark_pruned(manifest_id)
        removed.append(manifest_id)
    return removed
