"""A small tus 1.0.0 client (断点续传) on httpx: checksummed chunks, resume, adaptive size.

* every PATCH carries ``Upload-Checksum: sha256 <base64>`` of its chunk — a chunk
  damaged on the way is refused by the server (460) and sent again, never stored;
* an upload always continues from the offset the *server* reports (``HEAD``), so a
  dropped connection, a server restart or a killed client costs at most one chunk;
* chunk size adapts to the link (:class:`ChunkSizer`): it aims at a few seconds per
  PATCH, grows on a fast link, halves after a failure, within fixed bounds;
* files are read in chunks from the vault, never whole.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from field_client.errors import ServerRejected
from field_client.server_api import raise_for_status, transport_errors

__all__ = ["ChunkSizer", "TusClient", "UploadGone", "encode_metadata"]

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
MIN_CHUNK = 256 * 1024
MAX_CHUNK = 16 * 1024 * 1024
START_CHUNK = 1024 * 1024
_ALIGN = 64 * 1024


class UploadGone(ServerRejected):
    """The upload URL no longer exists (404/410: expired or terminated): create a new one."""


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """tus ``Upload-Metadata``: ``key base64(value)`` pairs separated by commas."""
    return ",".join(
        f"{k} {base64.b64encode(v.encode('utf-8')).decode('ascii')}" for k, v in metadata.items()
    )


class ChunkSizer:
    """Chooses the next chunk size from how fast the last ones went.

    Aims at ``target_seconds`` per PATCH, at most doubling per step, halving after a
    failure, aligned to 64 KiB and kept within ``[minimum, maximum]``. Slow links get
    small chunks (little lost on a drop), fast links big ones (few round trips).
    """

    def __init__(
        self,
        *,
        start: int = START_CHUNK,
        minimum: int = MIN_CHUNK,
        maximum: int = MAX_CHUNK,
        target_seconds: float = 2.0,
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.target_seconds = target_seconds
        self.size = self._clamp(start)

    def _clamp(self, n: float) -> int:
        aligned = int(n) // _ALIGN * _ALIGN
        return max(self.minimum, min(self.maximum, aligned))

    def sent(self, nbytes: int, seconds: float) -> None:
        """A chunk of ``nbytes`` went through in ``seconds``."""
        if nbytes <= 0:
            return
        rate = nbytes / max(seconds, 1e-3)
        self.size = self._clamp(min(rate * self.target_seconds, self.size * 2.0))

    def failed(self) -> None:
        """A chunk failed (timeout, dropped connection): be more careful."""
        self.size = self._clamp(self.size / 2)


@dataclass(frozen=True)
class UploadStatus:
    """What ``HEAD`` says: bytes the server holds and the announced length."""

    offset: int
    length: int | None


class TusClient:
    """tus requests against one endpoint (e.g. ``http://host/api/v1/uploads``)."""

    def __init__(self, http: httpx.Client, endpoint: str) -> None:
        self.http = http
        self.endpoint = endpoint

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Tus-Resumable": TUS_VERSION, **extra}

    def _absolute(self, location: str) -> str:
        return str(self.http.base_url.join(location)) if location.startswith("/") else location

    def create(self, length: int, metadata: Mapping[str, str]) -> tuple[str, httpx.Response]:
        """``POST``: create an upload of ``length`` bytes; returns its URL and the response."""
        doing = "创建上传 create upload"
        with transport_errors(str(self.http.base_url), doing):
            r = self.http.post(
                self.endpoint,
                headers=self._headers(
                    **{"Upload-Length": str(length), "Upload-Metadata": encode_metadata(metadata)}
                ),
            )
        raise_for_status(r, doing)
        location = r.headers.get("Location")
        if r.status_code != 201 or not location:
            raise ServerRejected(
                f"{doing}: 服务器未给出上传地址 / no upload URL in the answer "
                f"(HTTP {r.status_code}); is this a CaseTrail server?",
                status=r.status_code,
            )
        return self._absolute(location), r

    def head(self, url: str) -> UploadStatus:
        """``HEAD``: the offset the server holds durably."""
        doing = "查询上传进度 query upload offset"
        with transport_errors(str(self.http.base_url), doing):
            r = self.http.head(url, headers=self._headers())
        if r.status_code in (404, 410):
            raise UploadGone(f"{doing}: 上传已过期或不存在 / upload expired or gone", status=410)
        raise_for_status(r, doing)
        return UploadStatus(
            int(r.headers["Upload-Offset"]),
            int(r.headers["Upload-Length"]) if "Upload-Length" in r.headers else None,
        )

    def patch(self, url: str, offset: int, chunk: bytes) -> httpx.Response:
        """``PATCH`` one chunk at ``offset`` with its SHA-256; returns the response (2xx)."""
        doing = "上传数据 upload chunk"
        digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode("ascii")
        with transport_errors(str(self.http.base_url), doing):
            r = self.http.patch(
                url,
                content=chunk,
                headers=self._headers(
                    **{
                        "Content-Type": OFFSET_CONTENT_TYPE,
                        "Upload-Offset": str(offset),
                        "Upload-Checksum": f"sha256 {digest}",
                    }
                ),
            )
        if r.status_code in (404, 410):
            raise UploadGone(f"{doing}: 上传已过期或不存在 / upload expired or gone", status=410)
        raise_for_status(r, doing)
        return r

    def upload(
        self,
        url: str,
        path: Path,
        length: int,
        sizer: ChunkSizer,
        *,
        on_offset: Callable[[int], None] = lambda o: None,
        clock: Callable[[], float] = time.monotonic,
        max_checksum_retries: int = 3,
    ) -> httpx.Response | None:
        """Send ``path`` from the server's offset to the end; return the final response.

        Returns ``None`` when the server already held every byte (nothing sent).
        ``on_offset`` is told each new server-confirmed offset. A 409 (offset
        disagreement) re-reads the offset; a 460 (chunk damaged in transit) re-sends it.
        """
        offset = self.head(url).offset
        on_offset(offset)
        if offset >= length:
            return None
        bad_checksums = 0
        last: httpx.Response | None = None
        with open(path, "rb") as f:
            while offset < length:
                f.seek(offset)
                chunk = f.read(min(sizer.size, length - offset))
                if not chunk:
                    raise ServerRejected(
                        f"保管库文件比清单短 / the vault file {path} is shorter than captured; "
                        "it was changed after capture — report it"
                    )
                started = clock()
                try:
                    last = self.patch(url, offset, chunk)
                except ServerRejected as e:
                    if e.status == 409:  # we disagree on the offset: the server is right
                        offset = self.head(url).offset
                        on_offset(offset)
                        continue
                    if e.status == 460 and bad_checksums < max_checksum_retries:
                        bad_checksums += 1
                        sizer.failed()
                        continue
                    raise
                except Exception:
                    sizer.failed()
                    raise
                sizer.sent(len(chunk), clock() - started)
                offset = int(last.headers.get("Upload-Offset", offset + len(chunk)))
                on_offset(offset)
        return last
