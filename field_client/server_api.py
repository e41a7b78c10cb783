"""The CaseTrail server's REST API as the field client uses it (HTTP only, via httpx).

Every failure becomes a :mod:`field_client.errors` error: no answer →
:class:`ServerUnreachable`; 5xx/423/429 → :class:`ServerBusy` (both retried later);
other 4xx → :class:`ServerRejected` carrying the server's own message and field errors
(its one JSON error shape ``{code, status, message, errors}``) and what to do next.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from field_client.errors import ServerBusy, ServerRejected, ServerUnreachable

__all__ = ["API_PREFIX", "ServerApi", "make_http_client", "raise_for_status", "transport_errors"]

API_PREFIX = "/api/v1"
USER_AGENT = "casetrail-field/0.1"
_TRANSIENT = {408, 423, 425, 429}


def make_http_client(
    server_url: str, token: str | None = None, *, timeout: float = 60.0
) -> httpx.Client:
    """An httpx client for ``server_url`` with the bearer token and sane timeouts."""
    headers = {"User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(
        base_url=server_url.rstrip("/"),
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=False,
    )


def server_message(response: httpx.Response) -> str:
    """The server's message (and field errors) from its JSON error shape, or the raw text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()[:300]
        return text or response.reason_phrase
    if not isinstance(body, Mapping):
        return str(body)[:300]
    message = str(body.get("message") or response.reason_phrase)
    errors = body.get("errors")
    if isinstance(errors, Mapping) and errors:
        details = "; ".join(f"{k}: {_flat(v)}" for k, v in errors.items())
        message = f"{message} — {details}"
    return message


def _flat(v: object) -> str:
    if isinstance(v, list | tuple):
        return " ".join(_flat(x) for x in v)
    if isinstance(v, Mapping):
        return "; ".join(f"{k}: {_flat(x)}" for k, x in v.items())
    return str(v)


_ADVICE = {
    401: "设备令牌无效或已吊销，请管理员重新登记后运行 `casetrail-field enroll` "
    "(device token invalid or revoked: ask an admin to re-register the device, then enrol again)",
    403: "本设备无权执行此操作，请联系管理员 (this device may not do this: contact your admin)",
    404: "服务器上找不到该对象或您无权查看；请检查案号是否正确、您是否已被指派到该案件 "
    "(not found or not visible: check the case number and that you are assigned to the case)",
    409: "与服务器上的记录冲突，请勿重复提交；请联系管理员核查 "
    "(conflicts with the server's records: do not resubmit; ask an admin to check)",
    413: "文件超过服务器允许的大小，请联系管理员 (larger than the server accepts: contact your admin)",
    422: "请按服务器提示修正后用 `casetrail-field retry` 重试 "
    "(fix what the server says, then run `casetrail-field retry`)",
}


def raise_for_status(response: httpx.Response, doing: str) -> None:
    """Raise the matching :class:`ServerError` for a non-2xx ``response``.

    ``doing`` names the step in the officer's words, e.g. ``"登记清单 register manifest"``.
    """
    status = response.status_code
    if status < 400:
        return
    message = f"{doing}: HTTP {status} — {server_message(response)}"
    if status >= 500 or status in _TRANSIENT:
        raise ServerBusy(f"{message}（稍后自动重试 / will retry later）", status=status)
    advice = _ADVICE.get(status, "请联系管理员 (contact your admin)")
    raise ServerRejected(f"{message}\n  → {advice}", status=status)


@contextmanager
def transport_errors(server_url: str, doing: str) -> Iterator[None]:
    """Turn httpx transport failures inside the block into :class:`ServerUnreachable`."""
    try:
        yield
    except httpx.TransportError as e:
        raise ServerUnreachable(
            f"{doing}: 无法连接服务器 {server_url} / cannot reach the server "
            f"({type(e).__name__}: {e}); 有网络时会自动重试 (will retry when the network is back)"
        ) from None


class ServerApi:
    """Calls of the CaseTrail REST API (JSON endpoints; tus uploads live in :mod:`tus_client`)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @property
    def server_url(self) -> str:
        """The server's base URL."""
        return str(self.http.base_url)

    def _json(self, method: str, path: str, doing: str, **kw: Any) -> dict[str, Any]:
        with transport_errors(self.server_url, doing):
            response = self.http.request(method, API_PREFIX + path, **kw)
        raise_for_status(response, doing)
        try:
            body = response.json()
        except ValueError:
            raise ServerBusy(
                f"{doing}: 服务器返回了非 JSON 内容 / the server answered non-JSON "
                f"(HTTP {response.status_code}); check the server URL",
                status=response.status_code,
            ) from None
        if not isinstance(body, dict):
            raise ServerBusy(
                f"{doing}: 意外的回答 / unexpected answer", status=response.status_code
            )
        return body

    def enrol(self, code: str, alg: str, public_key: str) -> dict[str, Any]:
        """``POST /devices/enrol``: present the one-time code and public key → device + token."""
        return self._json(
            "POST",
            "/devices/enrol",
            "设备注册 enrol device",
            json={"enrolment_code": code, "alg": alg, "public_key": public_key},
        )

    def log_public_key(self) -> dict[str, Any]:
        """``GET /log/public-key``: the log's verifier key string and origin."""
        return self._json("GET", "/log/public-key", "获取日志公钥 fetch log key")

    def register_manifest(self, signed: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /manifests``: register a signed capture manifest → expected files."""
        return self._json("POST", "/manifests", "登记清单 register manifest", json=dict(signed))

    def receipt(self, evidence_id: str) -> dict[str, Any]:
        """``GET /evidence/{id}/receipt``: the signed receipt of a stored file."""
        return self._json("GET", f"/evidence/{evidence_id}/receipt", "获取回执 fetch receipt")
