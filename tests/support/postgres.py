"""A throw-away PostgreSQL cluster for the tests, on a free 127.0.0.1 port.

``initdb`` and ``postgres`` refuse to run as root, and CI runs as root: then the
cluster directory is given to the ``postgres`` system user and every server command
runs through ``runuser -u postgres --``. Debian keeps ``initdb``/``pg_ctl`` off PATH in
``/usr/lib/postgresql/<version>/bin``; both places are searched.

The cluster trades durability for speed (``fsync=off``): it lives for one test session.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

START_TIMEOUT_S = 60


class PostgresUnavailable(Exception):
    """No usable PostgreSQL server binaries on this machine."""


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (PATH first, newest Debian next)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresCluster:
    """Start with :meth:`start`, make databases with :meth:`create_database`, then :meth:`stop`."""

    def __init__(self, bin_dir: Path | None = None, *, durable: bool = False) -> None:
        found = bin_dir or find_pg_bin()
        if found is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
                "/usr/lib/postgresql/*/bin; install the 'postgresql' package "
                "(`make setup` does it with apt-get when run as root)"
            )
        self.bin_dir = found
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.base = Path(tempfile.mkdtemp(prefix="casetrail-pg-"))
        self.data_dir = self.base / "data"
        self.log_file = self.base / "postgres.log"
        self.user = "postgres"
        self.durable = durable
        """fsync and synchronous commit on (benchmarks); tests run without them."""

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
        )

    def start(self) -> PostgresCluster:
        """initdb + pg_ctl start; raises with the server log tail if either fails."""
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
        os.chmod(self.base, 0o700)
        init = self._run(
            "initdb", "-D", str(self.data_dir), "-U", self.user, "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        for attempt in range(3):
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} "
                "-c max_connections=100"
            )
            if not self.durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            started = self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-o", options, "-w", "-t", str(START_TIMEOUT_S),
            )  # fmt: skip
            log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            if started.returncode == 0 or "could not bind" not in log or attempt == 2:
                break
            # another process took the free port between our probe and the bind: retry
            self.log_file.unlink()
            self.port = free_port()
        if started.returncode != 0:
            tail = (
                self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else ""
            )
            raise RuntimeError(f"pg_ctl start failed:\n{started.stderr}\n{tail}")
        return self

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL (psycopg 3) of database ``dbname``."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """Create a database (optionally a copy of ``template``); returns its name."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            conn.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting anyone still connected."""
        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def stop(self) -> None:
        """``pg_ctl stop -m immediate`` and remove every file of the cluster."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
