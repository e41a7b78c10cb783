"""Field devices of the cluster test: enrolled ``casetrail-field`` homes and a tuspy sender.

Each :class:`FieldHome` is a real device of the project's field client: enrolled through
nginx with an enrolment code, captures photos and a video, and syncs with
``casetrail-field sync --watch`` in its own process. Its queue database says what was
acknowledged; :meth:`FieldHome.uploads` turns that into the checker's
:class:`~tests.faults.nothing_lost.Upload` records, reading files through ``mmap``
(no whole evidence file in memory).
"""

from __future__ import annotations

import io
import json
import mmap
import shutil
import sqlite3
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from PIL import Image

from tests.faults.nothing_lost import Upload
from tests.support.field_cases import new_field_case
from tests.support.server_process import ServerProcess

FIELD = str(Path(sys.executable).parent / "casetrail-field")
MiB = 1 << 20


def make_photos(out: Path, count: int, seed: int) -> list[Path]:
    """``count`` distinct JPEG photos (Pillow noise, ~0.2 MB each)."""
    paths = []
    for n in range(count):
        img = Image.effect_noise((640, 480), 30 + seed * 7 + n).convert("RGB")
        path = out / f"IMG_{seed:02d}{n:02d}.JPG"
        img.save(path, quality=92)
        paths.append(path)
    return paths


def make_video(path: Path, mib: int) -> Path:
    """A real MPEG-4 of about ``mib`` MiB from ffmpeg's test source (32 Mbit/s)."""
    import imageio_ffmpeg

    ffmpeg = shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()
    seconds = max(1.0, mib * 8 * 1.05 / 32)
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=640x360:rate=25", "-t", f"{seconds:.2f}",
         "-vf", "noise=alls=30:allf=t", "-c:v", "mpeg4", "-b:v", "32M", "-minrate", "32M",
         "-maxrate", "32M", "-bufsize", "4M", "-pix_fmt", "yuv420p", str(path)],
        check=True,
        timeout=600,
    )  # fmt: skip
    return path


def unique_copy(source: Path, target: Path, mark: bytes) -> Path:
    """A copy of ``source`` with ``mark`` written in its middle (another file, same kind)."""
    shutil.copyfile(source, target)
    with target.open("r+b") as f:
        f.seek(target.stat().st_size // 2)
        f.write(mark)
    return target


@dataclass
class FieldHome:
    """One device of the field client, enrolled through the cluster's nginx."""

    home: Path
    case_no: str
    officers: tuple[str, str]
    proc: subprocess.Popen[str] | None = None
    files: list[Path] = field(default_factory=list)

    @classmethod
    def enrol(cls, server: ServerProcess, home: Path) -> FieldHome:
        case = new_field_case(server, title="晚间集中同步检查")
        device = cls(home, case.case_no, case.officers)
        device.run("enroll", "--server", server.url, "--code", case.code)
        return device

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [FIELD, "--home", str(self.home), *args], capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"{args[0]}: exit {done.returncode}\n{done.stderr}"
        return done

    def capture(self, *files: Path) -> None:
        """One capture manifest of ``files`` (a 检查 inspection record at a known place)."""
        self.files += files
        self.run(
            "capture", *map(str, files), "--case", self.case_no, "--category", "inspection",
            "--stage", "implementation", "--record-type", "inspection-record",
            "--officer", self.officers[0], "--officer", self.officers[1],
            "--lat", "26.6470", "--lon", "106.6302",
        )  # fmt: skip

    def start_sync(self, max_chunk: int) -> None:
        """``casetrail-field sync --watch --exit-when-settled`` in the background."""
        self.proc = subprocess.Popen(
            [FIELD, "--home", str(self.home), "sync", "--watch", "--exit-when-settled",
             "--interval", "1", "--max-chunk", str(max_chunk)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def finish(self, timeout: float) -> tuple[int, str]:
        """Wait for the sync to settle: (exit code, its output)."""
        assert self.proc is not None
        try:
            out, err = self.proc.communicate(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, f"{out}\n{err}"

    @property
    def token(self) -> str:
        return (self.home / "device-token").read_text().strip()

    def rows(self) -> list[dict[str, Any]]:
        db = sqlite3.connect(f"file:{self.home / 'queue.db'}?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute("SELECT * FROM items ORDER BY manifest_id")]
        finally:
            db.close()

    def uploads(self, stack: ExitStack) -> list[Upload]:
        """The checker's records: evidence id, the bytes (mmap), tus URL, receipt if acked."""
        out = []
        for row in self.rows():
            path = Path(row["vault_path"])
            if not path.is_absolute():
                path = self.home / path
            f = stack.enter_context(path.open("rb"))
            data = stack.enter_context(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
            receipt = json.loads(row["receipt"]) if row["receipt"] else None
            upload = Upload(row["evidence_id"], cast(bytes, data), row["upload_url"], receipt)
            out.append(upload)
        return out


def tus_send(gateway: ServerProcess, token: str, upload: Upload, chunk: int) -> None:
    """Send ``upload`` with tuspy through nginx, retrying as tuspy does (HEAD, then PATCH)."""
    from tusclient import client as tus

    from server.services.receipts import decode_header

    sender = tus.TusClient(
        gateway.url + "/api/v1/uploads", headers={"Authorization": f"Bearer {token}"}
    )
    uploader = sender.uploader(
        file_stream=io.BytesIO(upload.data),
        chunk_size=chunk,
        metadata={"evidence_id": upload.evidence_id, "filename": "现场执法视频.mp4"},
        retries=60,
        retry_delay=1,
    )
    upload.location = uploader.create_url()
    uploader.set_url(upload.location)
    uploader.upload()
    assert uploader.request is not None  # the last PATCH
    header = uploader.request.response_headers.get("casetrail-receipt")  # tuspy lowercases
    if header:
        upload.receipt = decode_header(header)


def checkpoint(server: ServerProcess) -> dict[str, Any]:
    """The current signed checkpoint and the log's verifier key."""
    with server.admin() as admin:
        cp: dict[str, Any] = admin.get("/log/checkpoint").json()
        cp["verifier_key"] = httpx.get(server.url + "/api/v1/log/public-key").json()["verifier_key"]
    return cp
