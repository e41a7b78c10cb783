"""The reference deployment of ``deploy/`` on one machine, every part on 127.0.0.1.

PostgreSQL (the settings of ``deploy/postgresql/casetrail.conf`` included), the SeaweedFS
cluster of ``deploy/systemd/seaweedfs-*`` (1 master, 3 volume servers, filer, S3,
replication 001), N ``casetrail serve`` processes and the inspection worker run from
the ``ExecStart`` of their units with an environment file of the same keys as
``deploy/casetrail/casetrail.env``, and nginx with the site of ``deploy/nginx``.
Used by ``tests/cluster`` and by bench cell B10.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg

from tests.support.nginx import Nginx
from tests.support.postgres import PostgresCluster
from tests.support.seaweedfs_cluster import SeaweedFSCluster
from tests.support.server_process import BIN, ServerProcess
from tests.support.systemd_units import (
    DEPLOY,
    Unit,
    read_environment_file,
    write_environment_file,
)

CASETRAIL_IN_UNITS = "/opt/casetrail/venv/bin/casetrail"
PROGRAMS = {
    CASETRAIL_IN_UNITS: str(BIN / "casetrail"),
    "/opt/casetrail/deploy/backup/casetrail-backup.sh": str(DEPLOY / "backup/casetrail-backup.sh"),
}


class UnitServer(ServerProcess):
    """A ``casetrail serve`` started with the ``ExecStart`` of ``casetrail@.service``."""

    def __init__(self, data_dir: Path, unit_env: dict[str, str], **kwargs: Any) -> None:
        super().__init__(data_dir, env={**unit_env, "CASETRAIL_DATA_DIR": str(data_dir)}, **kwargs)

    def command(self, *, init: bool = False) -> list[str]:
        argv = Unit.read("casetrail@.service").command(
            self.extra_env, instance=str(self.port), programs=PROGRAMS
        )
        return [*argv, "--init"] if init else argv

    def start(self, *, init: bool = False, timeout: float = 60.0) -> UnitServer:
        """Start (or restart) the unit's command line and wait for ``/api/v1/health``."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            self.command(init=init),
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"casetrail serve exited {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            self.kill()
            raise RuntimeError(f"casetrail serve did not answer in {timeout}s:\n{self.log()}")
        if init and self.admin_token is None:
            from tests.support.server_process import TOKEN

            found = TOKEN.search(self.log())
            self.admin_token = found.group(0) if found else None
        return self


class Gateway(ServerProcess):
    """The cluster as one server seen through nginx: what clients and the checker use."""

    def __init__(self, first: ServerProcess, nginx: Nginx) -> None:
        super().__init__(first.data_dir, port=nginx.port, env=first.extra_env)
        self.admin_token = first.admin_token


class Cluster:
    """Start with :meth:`start`; ``servers``, ``weed``, ``nginx``, ``gateway``; :meth:`stop`."""

    def __init__(self, servers: int = 3, *, overrides: dict[str, str] | None = None) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="casetrail-cluster-"))
        self.n_servers = servers
        self.overrides = overrides or {}
        self.pg: PostgresCluster | None = None
        self.weed: SeaweedFSCluster | None = None
        self.servers: list[UnitServer] = []
        self.worker: subprocess.Popen[bytes] | None = None
        self.nginx: Nginx | None = None
        self.gateway: Gateway | None = None
        self.env: dict[str, str] = {}

    # ------------------------------------------------------------------ parts

    def start_postgres(self) -> PostgresCluster:
        """A cluster with ``deploy/postgresql/casetrail.conf`` included, restarted to apply."""
        pg = self.pg = PostgresCluster().start()
        conf = pg.data_dir / "postgresql.conf"
        with conf.open("a") as f:
            f.write(f"\ninclude '{DEPLOY / 'postgresql' / 'casetrail.conf'}'\n")
        restarted = pg._run(
            "pg_ctl", "restart", "-D", str(pg.data_dir), "-l", str(pg.log_file), "-w", "-m", "fast"
        )
        if restarted.returncode != 0:
            raise RuntimeError(f"PostgreSQL refused deploy/postgresql/casetrail.conf:\n{restarted}")
        pg.create_database("casetrail")
        return pg

    def postgres_setting(self, name: str) -> str:
        assert self.pg is not None
        with psycopg.connect(self.pg.admin_conninfo("casetrail")) as conn:
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        assert row is not None
        return str(row[0])

    def render_env(self) -> dict[str, str]:
        """``casetrail.env`` for this machine: the example's keys, test addresses and paths."""
        assert self.pg is not None and self.weed is not None
        example = read_environment_file(DEPLOY / "casetrail" / "casetrail.env")
        bucket = f"evidence-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=self.weed.endpoint_url,
            aws_access_key_id=self.weed.access_key,
            aws_secret_access_key=self.weed.secret_key,
            region_name=self.weed.region,
        ).create_bucket(Bucket=bucket)
        values = {
            **example,
            "CASETRAIL_DATA_DIR": str(self.base / "var"),
            "CASETRAIL_DATABASE_URL": self.pg.url("casetrail"),
            "CASETRAIL_STORAGE_URL": f"s3://{bucket}/casetrail",
            "CASETRAIL_S3_ENDPOINT_URL": self.weed.endpoint_url,
            "CASETRAIL_S3_ACCESS_KEY": self.weed.access_key,
            "CASETRAIL_S3_SECRET_KEY": self.weed.secret_key,
            "CASETRAIL_SIGNING_KEY_FILE": str(self.base / "keys" / "log-signing.pem"),
            "CASETRAIL_LOG_ORIGIN": "casetrail.test/log",
            "SERVE_BIND": "127.0.0.1",
            "SERVE_WORKERS": "1",
            "SERVE_THREADS": "8",
            "BACKUP_DIR": str(self.base / "backups"),
            **self.overrides,
        }
        values.pop("CASETRAIL_PUBLIC_URL")  # set below, once nginx's port is known
        write_environment_file(self.base / "casetrail.env", values)
        return values

    def start(self) -> Cluster:
        """Every part, in the order an operator brings them up."""
        try:
            pg_thread = threading.Thread(target=self.start_postgres)
            pg_thread.start()
            self.weed = SeaweedFSCluster(3).start()
            pg_thread.join()
            assert self.pg is not None, "PostgreSQL did not start"
            self.env = self.render_env()
            ports = [ServerProcess(self.base).port for _ in range(self.n_servers)]
            self.nginx = Nginx(ports)
            self.env["CASETRAIL_PUBLIC_URL"] = self.nginx.url
            self.servers = [
                UnitServer(self.base / f"host{i + 1}", dict(self.env), port=port)
                for i, port in enumerate(ports)
            ]
            self.servers[0].start(init=True)  # the one-off first run: migrate, key, admin
            rest = [threading.Thread(target=s.start) for s in self.servers[1:]]
            for t in rest:
                t.start()
            for t in rest:
                t.join()
            assert all(s.proc and s.proc.poll() is None for s in self.servers)
            self.worker = self.run_unit("casetrail-worker.service", background=True)
            self.nginx.start()
            self.gateway = Gateway(self.servers[0], self.nginx)
        except BaseException:
            self.stop()
            raise
        return self

    def unit_command(self, name: str) -> list[str]:
        return Unit.read(name).command(self.env, programs=PROGRAMS)

    def run_unit(self, name: str, *, background: bool = False) -> Any:
        """Run a unit's ``ExecStart`` with the cluster's environment file."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")}
        env.update(self.env)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        if background:
            log = (self.base / f"{name}.log").open("ab")
            proc = subprocess.Popen(
                self.unit_command(name),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            return proc
        return subprocess.run(
            self.unit_command(name), env=env, capture_output=True, text=True, timeout=300
        )

    def stop(self) -> None:
        """Everything this cluster started, by PID; the temp directories removed."""
        if self.nginx is not None:
            self.nginx.stop()
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(20)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(10)
        for server in self.servers:
            server.kill()
        if self.weed is not None:
            self.weed.stop()
        if self.pg is not None:
            self.pg.stop()
        import shutil

        shutil.rmtree(self.base, ignore_errors=True)
