"""Enrolment (设备注册): make the key pair, present it with the one-time code, pin the log key.

1. an Ed25519 (or ES256) key pair is made in the home (private key mode 0600); a key
   left by an earlier failed attempt is reused;
2. ``POST /api/v1/devices/enrol`` with the code and the public key → the device id and
   token (stored mode 0600);
3. the server's log verifier key is fetched (``GET /api/v1/log/public-key``) and pinned
   in ``device.json``: every later receipt must be signed by it. Pass ``log_key`` to
   pin a key obtained out of band (e.g. printed by the admin) — a different server key
   is then refused.
"""

from __future__ import annotations

import json
from datetime import datetime

import httpx

from core.errors import CoreError
from core.keys import Algorithm
from core.verify import NoteVerifier
from field_client.config import DeviceConfig, FieldHome, write_private
from field_client.errors import HomeError, ServerRejected
from field_client.keys import create_device_key
from field_client.server_api import ServerApi

__all__ = ["enrol"]


def enrol(
    home: FieldHome,
    http: httpx.Client,
    code: str,
    *,
    alg: Algorithm = "Ed25519",
    log_key: str | None = None,
) -> DeviceConfig:
    """Enrol this home as a device of the server ``http`` points at; return its settings.

    Refuses to enrol a home that is already enrolled (its queue and chain belong to that
    enrolment): use another ``--home``.
    """
    if home.is_enrolled():
        current = home.load_config()
        raise HomeError(
            f"此目录已注册为设备 {current.device_id}（{current.server_url}）/ this home is already "
            "enrolled; use another --home for a new enrolment"
        )
    if log_key is not None:
        try:
            NoteVerifier.from_key_string(log_key)
        except CoreError as e:
            raise HomeError(f"--log-key 无效 / invalid --log-key: {e}") from None
    key = create_device_key(home, alg)
    api = ServerApi(http)
    pending = home.root / "enrolment.json"
    if pending.exists() and home.token_file.exists():  # the code was used; finish the rest
        device = json.loads(pending.read_text("utf-8"))
    else:
        answer = api.enrol(code, key.alg, key.public_key)
        device = answer.get("device") or {}
        token = answer.get("token")
        if not isinstance(token, str) or not device.get("id"):
            raise ServerRejected(
                "注册应答缺少设备编号或令牌 / the enrolment answer lacks device id or token"
            )
        write_private(home.token_file, token.encode("ascii"))
        write_private(pending, json.dumps(device, ensure_ascii=False).encode("utf-8"))
    published = api.log_public_key()
    server_key = str(published.get("verifier_key", ""))
    if log_key is not None and server_key != log_key:
        raise ServerRejected(
            "服务器的日志公钥与给定的 --log-key 不符，可能连接到了冒充的服务器 / the server's log key "
            f"differs from --log-key (server: {server_key}); check the server address with your admin"
        )
    try:
        NoteVerifier.from_key_string(server_key)
    except CoreError as e:
        raise ServerRejected(
            f"服务器的日志公钥无效 / the server's log key is invalid: {e}"
        ) from None
    config = DeviceConfig(
        server_url=str(http.base_url).rstrip("/"),
        device_id=str(device["id"]),
        device_name=str(device.get("name", "")),
        alg=key.alg,
        key_id=key.key_id,
        log_key=server_key,
        log_origin=published.get("origin"),
        enrolled_at=datetime.now().astimezone().isoformat(timespec="seconds"),
    )
    home.save_config(config)
    pending.unlink(missing_ok=True)
    return config
