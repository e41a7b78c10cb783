"""Acceptance, through a real ``casetrail serve``: decisions published, flagged, withdrawn, corrected.

A 行政处罚 decision against a natural person (made once a device filed the 告知书 and
the 陈述申辩笔录, as 行政处罚法 Art. 62 requires) is published within its window, name
masked, ID number absent from every public response (HTML, JSON, Atom); a licensing
decision dated before National Day is 已逾期 on the 8th working day; a published penalty
is revoked and withdrawn with a public reason; a correction shows both versions. The
Atom feed is read with feedparser.
"""

from __future__ import annotations

from collections.abc import Iterator

import feedparser
import httpx
import pytest

from tests.server.publication_support import decide as _decide
from tests.server.publication_support import ok as _ok
from tests.server.publication_support import person as _person
from tests.support.server_process import ServerProcess

PERSON = "张三丰"
ID_NO = "520102199003071236"
MOBILE = "13812345678"
ADDRESS = "中华北路100号3栋2单元501室"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("publicity") / "var").start(init=True)
    yield proc
    proc.kill()  # throw-away data: no need to wait for a graceful stop


def _public_everything(server: ServerProcess, ids: list[str]) -> str:
    pages = ["/public/", "/public/decisions.json", "/public/decisions.atom", "/public/?q=张"]
    pages += [f"/public/decisions/{i}" for i in ids]
    bodies = []
    for path in pages:
        response = httpx.get(server.url + path, timeout=30)
        if response.status_code == 200:
            bodies.append(response.text)
    return "\n".join(bodies)


def test_decisions_are_published_redacted_flagged_withdrawn_and_corrected(
    server: ServerProcess,
) -> None:
    admin = server.admin()
    agency = _ok(admin.get("/me"))
    assert agency
    inspector = _person(admin, "e2e-insp", "inspector", "E2E0001")
    reviewer = _person(admin, "e2e-reviewer", "reviewer")

    # 1. a penalty against a natural person: pending, previewed, confirmed, published
    penalty = _decide(
        server,
        admin,
        inspector,
        "云市监立〔2026〕101号",
        "penalty",
        [{"name": PERSON, "kind": "person", "id_number": ID_NO, "address": ADDRESS}],
        f"当事人{PERSON}（身份证号{ID_NO}，电话{MOBILE}）销售过期食品，罚款5000元。",
    )
    pending = _ok(reviewer.get(f"/publications/{penalty}"))
    assert pending["status"] == "pending" and pending["state"] in ("pending", "due_soon")
    assert pending["category_zh"] == "行政处罚"

    body = {"doc_no": "云市监罚〔2026〕101号"}
    preview = _ok(reviewer.post(f"/publications/{penalty}/preview", json=body))
    shown = repr(preview["record"])
    assert "张某" in shown and PERSON not in shown and ID_NO not in shown and MOBILE not in shown
    assert {(f["field"], f["rule"]) for f in preview["findings"]} >= {
        ("parties", "name"),
        ("parties", "id_number"),
        ("parties", "address"),
        ("conclusion", "id_number"),
        ("conclusion", "mobile"),
    }
    assert _public_everything(server, [penalty]).count("云市监罚〔2026〕101号") == 0
    refused = reviewer.post(f"/publications/{penalty}/publish")
    assert refused.status_code == 409 and "确认" in refused.json()["message"]

    _ok(reviewer.post(f"/publications/{penalty}/redaction", json=body))
    published = _ok(reviewer.post(f"/publications/{penalty}/publish"))
    assert published["status"] == "published" and published["version"] == 1
    assert published["first_published_on"] <= published["due_on"]  # within its window
    assert inspector.post(f"/publications/{penalty}/publish").status_code == 403

    listed = httpx.get(server.url + "/public/decisions.json", timeout=30).json()
    assert [i["id"] for i in listed["items"]] == [penalty]
    assert listed["items"][0]["parties"] == ["张某"]
    assert listed["items"][0]["doc_no"] == "云市监罚〔2026〕101号"
    page = httpx.get(server.url + "/public/", params={"q": "101号"}, timeout=30)
    assert "张某" in page.text and "销售过期食品" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]

    # 2. a licensing decision signed before National Day: overdue on the 8th working day
    licence = _decide(
        server,
        admin,
        inspector,
        "云市监许〔2026〕7号",
        "licensing",
        [
            {
                "name": "贵州黔味食品有限公司",
                "kind": "organisation",
                "id_number": "91520100MA6DL12349",
            }
        ],
        "准予食品经营许可",
    )
    _ok(
        reviewer.post(
            f"/publications/{licence}/redaction",
            json={"doc_no": "云市监许决〔2026〕7号", "decided_on": "2026-09-29"},
        )
    )
    on_day_7 = _ok(reviewer.get(f"/publications/{licence}", params={"as_of": "2026-10-14"}))
    on_day_8 = _ok(reviewer.get(f"/publications/{licence}", params={"as_of": "2026-10-15"}))
    assert on_day_7["due_on"] == "2026-10-14"
    assert (on_day_7["state"], on_day_8["state"]) == ("due_soon", "overdue")
    assert on_day_8["state_zh"] == "已逾期"
    overdue = _ok(admin.get("/publications", params={"state": "overdue", "as_of": "2026-10-15"}))
    assert [p["id"] for p in overdue] == [licence]

    # 3. a correction publishes version 2; both versions are public
    _ok(
        reviewer.post(
            f"/publications/{penalty}/corrections",
            json={
                "doc_no": "云市监罚〔2026〕101号",
                "conclusion": f"当事人{PERSON}销售过期食品，罚款3000元。",
                "reason": "罚款金额笔误，更正为3000元",
            },
        )
    )
    detail = httpx.get(f"{server.url}/public/decisions/{penalty}", timeout=30).text
    assert "罚款金额笔误" in detail and "罚款3000元" in detail and "罚款5000元" in detail
    assert "第 2 版" in detail and "第 1 版" in detail

    # 4. the penalty is revoked and withdrawn, with the reason made public
    withdrawn = _ok(
        reviewer.post(
            f"/publications/{penalty}/withdraw",
            json={"reason": "该处罚决定已被复议机关撤销"},
        )
    )
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["withdrawn_on"] <= withdrawn["withdraw_due_on"]
    detail = httpx.get(f"{server.url}/public/decisions/{penalty}", timeout=30).text
    assert "撤回公告" in detail and "该处罚决定已被复议机关撤销" in detail
    assert "罚款3000元" not in detail  # the conclusion itself is no longer shown

    feed = feedparser.parse(httpx.get(server.url + "/public/decisions.atom", timeout=30).content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    assert [e.title.startswith("【已撤回】") for e in feed.entries] == [True]
    assert "撤销" in feed.entries[0].content[0].value

    # nothing unpublished, nothing unredacted, anywhere public
    everything = _public_everything(server, [penalty, licence])
    for raw in (PERSON, ID_NO, MOBILE, ADDRESS, "中华北路"):
        assert raw not in everything
    assert "云市监许决〔2026〕7号" not in everything  # confirmed but never published
    assert httpx.get(f"{server.url}/public/decisions/{licence}", timeout=30).status_code == 404

    # every step is in the case's custody chain
    case_id = _ok(reviewer.get(f"/publications/{penalty}"))["case_id"]
    events = _ok(reviewer.get(f"/cases/{case_id}/custody", params={"limit": 500}))["items"]
    assert [e["event"]["type"] for e in events][-4:] == [
        "publication_redaction_confirmed",
        "decision_published",
        "publication_corrected",
        "publication_withdrawn",
    ]
    for client in (admin, inspector, reviewer):
        client.close()  # no keep-alive connection left to hold up the server's stop
