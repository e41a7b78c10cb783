"""`casetrail[field]` installs the field client alone: no server stack, no Rust build.

A copy of the project is installed into a fresh virtualenv with ``uv`` (its wheel cache
makes a repeat run take seconds; the first run on a machine downloads from PyPI).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = (
    "flask",
    "flask_smorest",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "boto3",
    "botocore",
    "gunicorn",
    "rehashes",  # Linux-only wheels; a Rust build anywhere else
    "PIL",
    "imageio_ffmpeg",
)


def _uv() -> str:
    found = Path(sys.executable).parent / "uv"
    if found.is_file():
        return str(found)
    which = shutil.which("uv")
    if which is None:
        pytest.fail("uv missing: pip install -e '.[dev]' (uv is a dev dependency)")
    return which


def _copy_project(target: Path) -> Path:
    """The project without its venv and caches (a build writes into its source tree)."""
    skip = shutil.ignore_patterns(
        ".venv", ".git", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        "tests", "bench", "tests-artefacts", "node_modules",
    )  # fmt: skip
    shutil.copytree(ROOT, target, ignore=skip)
    return target


@pytest.mark.timeout(240)
def test_field_extra_installs_the_field_client_without_the_server_stack(tmp_path: Path) -> None:
    uv = _uv()
    project = _copy_project(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [uv, "pip", "install", "--python", str(python), f"{project}[field]"],
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert install.returncode == 0, install.stderr[-2000:]

    probe = "import importlib.util as u, sys; print(','.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    found = subprocess.run(
        [str(python), "-c", probe, *SERVER_ONLY], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "", f"server-only packages installed with the field client: {found}"

    helped = subprocess.run(
        [str(venv / "bin" / "casetrail-field"), "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "sync" in helped.stdout and "capture" in helped.stdout

    # The server command is there too, and says what to install instead of a traceback.
    server = subprocess.run(
        [str(venv / "bin" / "casetrail"), "--help"], capture_output=True, text=True
    )
    assert server.returncode == 1
    assert "casetrail[server]" in server.stderr and "Traceback" not in server.stderr
