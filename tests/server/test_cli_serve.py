"""`casetrail serve --init` in a real subprocess, and the admin CLI on the configured database."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli import main
from server.cli.serve import initialise
from server.settings import Settings
from tests.support.postgres import free_port

CASETRAIL = str(Path(sys.executable).with_name("casetrail"))


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASETRAIL_")}
    env["CASETRAIL_DATA_DIR"] = str(data_dir)
    return env


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers=None, chunked=False
):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def wait_for_health(port: int, process: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"casetrail serve exited early:\n{log.read_text()}")
        try:
            status, body = request(port, "GET", "/api/v1/health")
            if status == 200:
                return body
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"casetrail serve did not answer within 30 s:\n{log.read_text()}")


@pytest.mark.slow
def test_serve_init_on_a_fresh_data_dir_serves_and_prints_a_working_admin_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CASETRAIL, "serve", "--init", "--port", str(port), "--workers", "1", "--threads", "4"],
            env=env_for(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        health = wait_for_health(port, process, log)
        assert health["database"]["ok"] and health["storage"]["ok"]
        output = log.read_text()
        token = re.search(r"(ct_[A-Za-z0-9_-]{40})", output).group(1)
        assert output.count(token) == 1 and "只显示这一次" in output
        # … and how the admin signs in to the web workspace, at the port actually served
        assert f"http://127.0.0.1:{port}/ui/" in output
        assert re.search(r"一次性密码 one-time password: \S{12,}", output)
        key = data_dir / "keys" / "log-signing.pem"
        assert key.stat().st_mode & 0o777 == 0o600
        auth = {"Authorization": f"Bearer {token}"}
        status, me = request(port, "GET", "/api/v1/me", headers=auth)
        assert status == 200 and me["user"]["role"] == "admin"
        big = json.dumps({"category": "penalty", "case_no": "1", "title": "x" * 2_000_000}).encode()
        status, error = request(
            port, "POST", "/api/v1/cases", body=iter([big[:1000], big[1000:]]),
            headers={**auth, "Content-Type": "application/json"}, chunked=True,
        )  # fmt: skip
        assert status == 413 and error["code"] == 413
        status, spec = request(port, "GET", "/api/v1/openapi.json")
        assert status == 200 and "/api/v1/cases" in spec["paths"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    # Running --init again changes nothing: same key, same admin, no new token printed.
    key_bytes = key.read_bytes()
    env = env_for(data_dir)
    initialise(Settings.from_env(env), "另一个机关")
    output = capsys.readouterr().out
    assert "已初始化，未做任何更改" in output and "ct_" not in output
    assert key.read_bytes() == key_bytes
    assert "无需迁移" in CliRunner().invoke(main, ["db", "upgrade"], env=env).output
    listing = CliRunner().invoke(main, ["users", "list"], env=env).output
    assert listing.count("管理员 admin") == 1 and "另一个机关" not in listing


def test_admin_cli_adds_users_and_devices_and_lists_cases(tmp_path: Path) -> None:
    env = env_for(tmp_path / "var")
    runner = CliRunner()
    not_ready = runner.invoke(main, ["users", "list"], env=env)
    assert not_ready.exit_code == 1 and "casetrail db upgrade" in not_ready.output
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    no_agency = runner.invoke(
        main, ["users", "add", "x1", "--name", "x", "--role", "admin"], env=env
    )
    assert no_agency.exit_code == 1 and "serve --init" in no_agency.output

    initialise(Settings.from_env(env), "测试局")
    added = runner.invoke(
        main,
        [
            "users",
            "add",
            "wang.wu",
            "--name",
            "王五",
            "--role",
            "inspector",
            "--cert-no",
            "11000001",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert re.search(r"ct_[A-Za-z0-9_-]{40}", added.output)
    refused = runner.invoke(
        main, ["users", "add", "zhao", "--name", "赵", "--role", "inspector"], env=env
    )
    assert (
        refused.exit_code == 1 and "cert_no" in refused.output and "Traceback" not in refused.output
    )
    listing = runner.invoke(main, ["users", "list"], env=env)
    assert (
        "wang.wu" in listing.output
        and "执法人员" in listing.output
        and "11000001" in listing.output
    )

    device = runner.invoke(
        main, ["devices", "add", "--owner", "wang.wu", "--name", "执法记录仪 07"], env=env
    )
    assert device.exit_code == 0 and "注册码" in device.output
    device_id = re.search(r"id=([0-9a-f-]{36})", device.output).group(1)
    assert "待注册 pending" in runner.invoke(main, ["devices", "list"], env=env).output
    assert runner.invoke(main, ["devices", "revoke", device_id], env=env).exit_code == 0
    assert "已吊销 revoked" in runner.invoke(main, ["devices", "list"], env=env).output

    revoked = runner.invoke(main, ["users", "revoke", "wang.wu"], env=env)
    assert revoked.exit_code == 0
    assert "停用 revoked" in runner.invoke(main, ["users", "list"], env=env).output
    cases = runner.invoke(main, ["cases", "list"], env=env)
    assert cases.exit_code == 0 and "（无 none）" in cases.output
