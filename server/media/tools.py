"""Which ffmpeg to run, resolved once.

The system ``ffmpeg`` on PATH is preferred; otherwise the binary bundled by
``imageio-ffmpeg``. That bundle has no ``ffprobe``, so probing is done with ``ffmpeg``
alone everywhere (one code path, tested on every machine): see ``server.media.av``.

Command lines are built with ffmpeg-python (``ffmpeg.input(...).output(...)``) and
compiled by :meth:`FFmpegTools.command` into the argument list the sandboxed runner
(``server.media.sandbox.run_limited``) starts; nothing here runs them.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.media.errors import MediaToolMissing

# Global options of every run: quiet banner, never read stdin, the input dump on stderr
# (``server.media.av.parse_probe`` reads it at ``info``).
GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-loglevel", "info")


@dataclass(frozen=True)
class FFmpegTools:
    """A resolved ffmpeg binary and its version line (recorded in every report)."""

    ffmpeg: Path
    version: str
    origin: str

    @classmethod
    def resolve(cls) -> FFmpegTools:
        """System ffmpeg if on PATH, else imageio-ffmpeg's; raises ``MediaToolMissing``."""
        found = shutil.which("ffmpeg")
        origin = "system"
        if found is None:
            try:
                import imageio_ffmpeg

                found = imageio_ffmpeg.get_ffmpeg_exe()
                origin = "imageio-ffmpeg"
            except (ImportError, RuntimeError) as exc:
                raise MediaToolMissing(
                    "找不到 ffmpeg：请安装系统 ffmpeg（apt-get install ffmpeg）或 imageio-ffmpeg。"
                    " / No ffmpeg found: install the system ffmpeg or imageio-ffmpeg."
                ) from exc
        path = Path(found).resolve()
        try:
            out = subprocess.run(
                [str(path), "-hide_banner", "-version"],
                capture_output=True,
                timeout=30,
                check=True,
                stdin=subprocess.DEVNULL,
            ).stdout.decode("utf-8", "replace")
        except (OSError, subprocess.SubprocessError) as exc:
            raise MediaToolMissing(
                f"ffmpeg 无法运行：{path}；请检查安装。 / ffmpeg at {path} does not run: {exc}"
            ) from exc
        first = out.splitlines()[0] if out else "ffmpeg"
        version = first.split(" Copyright", 1)[0].removeprefix("ffmpeg version ").strip()
        return cls(ffmpeg=path, version=version, origin=origin)

    def command(self, stream: Any) -> list[str]:
        """The argument list of an ffmpeg-python output ``stream``, run by this binary.

        Global options (:data:`GLOBAL_ARGS`) are added and existing outputs overwritten.
        """
        argv: list[str] = stream.global_args(*GLOBAL_ARGS).compile(
            cmd=str(self.ffmpeg), overwrite_output=True
        )
        return argv
