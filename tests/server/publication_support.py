"""Helpers for end-to-end publication tests against a real ``casetrail serve`` (httpx)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.server.e2e_support import enrol_field_device
from tests.server.procedure_support import NOTIFIED
from tests.support.server_process import ServerProcess


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def person(admin: httpx.Client, username: str, role: str, cert: str | None = None) -> httpx.Client:
    user = ok(
        admin.post(
            "/users",
            json={"username": username, "display_name": username, "role": role, "cert_no": cert},
        ),
        201,
    )
    token = ok(admin.post(f"/users/{user['id']}/tokens", json={"name": "e2e"}), 201)["token"]
    client = httpx.Client(
        base_url=str(admin.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    client.user_id = user["id"]  # type: ignore[attr-defined]
    client.cert_no = cert  # type: ignore[attr-defined]
    return client


def decide(
    server: ServerProcess,
    admin: httpx.Client,
    inspector: httpx.Client,
    case_no: str,
    category: str,
    parties: list[dict[str, Any]],
    summary: str,
) -> str:
    case = ok(
        admin.post(
            "/cases",
            json={
                "case_no": case_no,
                "title": f"案件 {case_no}",
                "category": category,
                "parties": parties,
                "officer_ids": [inspector.user_id],  # type: ignore[attr-defined]
            },
        ),
        201,
    )
    if category == "penalty":  # 告知 and 陈述申辩 on file before the decision (Art. 62)
        owner, cert = inspector.user_id, inspector.cert_no  # type: ignore[attr-defined]
        enrol_field_device(server, owner, case_no, case["id"], (cert,)).file_records(*NOTIFIED)
    decision = ok(
        inspector.post(
            f"/cases/{case['id']}/decisions",
            json={
                "decision_type": "penalty" if "penalty" in category else "grant",
                "summary": summary,
            },
        ),
        201,
    )
    found = ok(admin.get("/publications", params={"case_id": case["id"]}))
    assert [p["decision_id"] for p in found] == [decision["id"]]
    return str(found[0]["id"])
