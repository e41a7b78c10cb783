"""A 检查 case ready for a field device, made through a running server's API as its admin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tests.support.server_process import ServerProcess


@dataclass
class FieldCase:
    """A case with two assigned inspectors and a fresh device enrolment code."""

    id: str
    case_no: str
    officers: tuple[str, str]
    """The two inspectors' 执法证号."""
    code: str
    """The enrolment code of a device owned by the first inspector."""


def new_field_case(
    server: ServerProcess, tag: str | None = None, title: str = "某超市食品安全检查"
) -> FieldCase:
    """Two inspectors, a 检查 case assigning both, and a device for the first one."""
    tag = tag or uuid.uuid4().hex[:8]
    with server.admin() as admin:
        ids, certs = [], []
        for n in (1, 2):
            cert = f"5201{int(tag, 16) % 10**7:07d}{n}"
            r = admin.post(
                "/users",
                json={
                    "username": f"insp-{tag}-{n}",
                    "display_name": f"检查员{n}",
                    "role": "inspector",
                    "cert_no": cert,
                },
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
            certs.append(cert)
        case_no = f"黔市监检〔2026〕{tag}号"
        r = admin.post(
            "/cases",
            json={"category": "inspection", "case_no": case_no, "title": title, "officer_ids": ids},
        )
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = admin.post("/devices", json={"owner_user_id": ids[0], "name": f"执法记录仪 {tag}"})
        assert r.status_code == 201, r.text
        return FieldCase(case_id, case_no, (certs[0], certs[1]), r.json()["enrolment_code"])
