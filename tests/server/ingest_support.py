"""Test helpers for the ingest path: announced files and a small tus client over Flask."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.components import Components
from server.services.receipts import decode_header
from tests.server.conftest import World, parts
from tests.server.manifest_support import Device, enrol, file_entry, open_case

TUS = {"Tus-Resumable": "1.0.0"}


def sync_runtime(app: Flask) -> Components:
    """Make the app inspect synchronously (before the response); its components."""
    found = parts(app)
    found.jobs.mode = "sync"
    return found


@dataclass
class Announced:
    """A case, an enrolled device and the evidence ids of the files its manifest announced."""

    case: dict[str, Any]
    device: Device
    evidence: list[dict[str, Any]]
    manifest_id: str


def announce(
    world: World,
    files: list[tuple[str, bytes, str]],
    *,
    case_no: str = "黔市监罚〔2025〕7号",
    owner: str = "a_insp1",
    device: Device | None = None,
) -> Announced:
    """Open a case, enrol a device and register a signed manifest announcing ``files``."""
    case = open_case(world, case_no)
    device = device or enrol(world, owner)
    wire = device.manifest(case["case_no"], files=tuple(file_entry(n, d, t) for n, d, t in files))
    response = device.api.post("/manifests", wire)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return Announced(case, device, body["files"], wire["manifest"]["manifest_id"])


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def checksum(data: bytes, algorithm: str = "sha1") -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


class Tus:
    """A minimal tus client over the Flask test client."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.auth = {"Authorization": f"Bearer {token}", **TUS}

    def create(self, length: int, meta: str, body: bytes | None = None, **headers: str) -> Any:
        extra = {"Content-Type": "application/offset+octet-stream"} if body is not None else {}
        return self.client.post(
            "/api/v1/uploads",
            data=body,
            headers={
                **self.auth,
                "Upload-Length": str(length),
                "Upload-Metadata": meta,
                **extra,
                **headers,
            },
        )

    def head(self, location: str) -> Any:
        return self.client.head(location, headers=self.auth)

    def patch(self, location: str, offset: int, data: bytes, **headers: str) -> Any:
        return self.client.patch(
            location,
            data=data,
            headers={
                **self.auth,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                **headers,
            },
        )

    def delete(self, location: str) -> Any:
        return self.client.delete(location, headers=self.auth)


def receipt_of(response: Any) -> dict[str, Any]:
    return decode_header(response.headers["CaseTrail-Receipt"])
