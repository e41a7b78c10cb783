"""Running an untrusted-input helper process (ffmpeg, the PDF probe) within limits.

Every child gets: an argument list (never a shell), its own process group, a wall-clock
timeout after which the whole group is killed, and rlimits on address space, CPU time,
output file size and core dumps. The rlimits are set by a tiny ``python -I -S`` shim that
calls ``setrlimit`` and then ``execv``s the real program, instead of ``preexec_fn``:
``preexec_fn`` is documented as unsafe in a threaded process, and inspection runs in a
threaded server. Output goes to files in a private directory and only the first
``max_log_bytes`` are read back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from server.media.report import InspectionLimits

_SHIM = (
    "import os,resource as r,sys;a=sys.argv\n"
    "for k,v in ((r.RLIMIT_AS,a[1]),(r.RLIMIT_CPU,a[2]),(r.RLIMIT_FSIZE,a[3]),(r.RLIMIT_CORE,'0')):\n"
    " r.setrlimit(k,(int(v),int(v)))\n"
    "os.execv(a[4],a[4:])\n"
)


_ALLOCATION_FAILURES = ("Cannot allocate memory", "MemoryError", "std::bad_alloc")


@dataclass(frozen=True)
class ChildLimits:
    """Limits for one child process."""

    timeout_s: float
    cpu_s: int
    memory_bytes: int
    output_bytes: int
    max_log_bytes: int


def child_limits(limits: InspectionLimits) -> ChildLimits:
    """The per-child part of the inspection limits."""
    return ChildLimits(
        timeout_s=limits.child_timeout_s,
        cpu_s=limits.child_cpu_s,
        memory_bytes=limits.child_memory_bytes,
        output_bytes=limits.child_output_bytes,
        max_log_bytes=limits.max_log_bytes,
    )


@dataclass(frozen=True)
class ChildResult:
    """What a limited child did: exit status, bounded stdout/stderr, and why it stopped."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool

    @property
    def hit_resource_limit(self) -> bool:
        """Stopped by an rlimit: CPU or file-size signal, or a failed allocation."""
        if self.timed_out:
            return False
        if self.returncode in (-signal.SIGXCPU, -signal.SIGXFSZ, -signal.SIGKILL):
            return True
        return any(m in self.stderr for m in _ALLOCATION_FAILURES)


def run_limited(argv: list[str], limits: ChildLimits, *, work_dir: Path) -> ChildResult:
    """Run ``argv`` under ``limits``; never raises for the child's failures."""
    shim = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _SHIM,
        str(limits.memory_bytes),
        str(limits.cpu_s),
        str(limits.output_bytes),
    ]
    with (
        tempfile.TemporaryFile(dir=work_dir) as out,
        tempfile.TemporaryFile(dir=work_dir) as err,
    ):
        proc = subprocess.Popen(
            [*shim, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=work_dir,
            start_new_session=True,
            close_fds=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
        )
        timed_out = False
        try:
            proc.wait(timeout=limits.timeout_s)
        except BaseException as exc:
            # Not yet reaped, so the group id is still ours: kill the child and anything
            # it started, then reap.
            timed_out = isinstance(exc, subprocess.TimeoutExpired)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if not timed_out:
                raise
        return ChildResult(
            returncode=proc.returncode,
            stdout=_head(out, limits.max_log_bytes),
            stderr=_head(err, limits.max_log_bytes),
            timed_out=timed_out,
        )


def _head(fp: IO[bytes], limit: int) -> str:
    fp.seek(0)
    return fp.read(limit).decode("utf-8", "replace")
