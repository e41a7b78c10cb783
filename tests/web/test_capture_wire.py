"""One wire format: the capture app's JavaScript and ``core`` agree byte for byte.

Canonical JSON (RFC 8785) of awkward values, manifests signed in the browser verified by
core and the reverse, with Ed25519 and the ES256 fallback; the page's key cannot be
exported; and a real receipt from the server verifies in the page, while an altered one
does not.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.canonical import canonical_json
from core.errors import SignatureInvalid
from core.keys import export_public_key, generate_private_key, key_id, load_public_key
from core.manifest import (
    CaptureManifest,
    Interruption,
    Location,
    ManifestFile,
    SignedManifest,
    sign_manifest,
    verify_manifest,
)
from tests.server.e2e_support import field_device
from tests.support.server_process import ServerProcess

AWKWARD: list[Any] = [
    {"b": 1, "a": [True, False, None, 0, -1, 9007199254740991, -9007199254740991]},
    {"\U0001f600": 1, "\uffff": 2, "é": 3, "E": 4, "": 5, "\u0001": 6},
    ["\u2028\u2029", "\x7f", '"\\', "\n\r\t\b\f\x00\x1f", "黔市监罚〔2025〕12号", "😀"],
    {"nested": {"z": {}, "y": [], "x": [{"b": "2", "a": "1"}]}},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("wire") / "data").start(init=True)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def page(browser: Any, server: ServerProcess) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        p = context.new_page()
        p.goto(server.url + "/capture/")
        p.wait_for_selector("body[data-ready='1']")
        yield p
    finally:
        context.close()


def _manifest_fields(alg: str, kid: str) -> dict[str, Any]:
    return {
        "manifest_id": "m-wire-1",
        "device_id": "dev-wire",
        "key_id": kid,
        "alg": alg,
        "case_ref": "黔市监罚〔2025〕12号",
        "category": "penalty",
        "stage": "site-inspection",
        "record_type": "site-inspection-record",
        "officers": ["52010012345", "52010012346"],
        "device_time": "2025-03-01T09:30:00+08:00",
        "gnss_time": None,
        "timezone": "Asia/Shanghai",
        "location": {"lat": "26.647000", "lon": "106.630200", "accuracy": "8.5"},
        "files": [
            {
                "name": 'IMG_0001 "现场" 😀.jpg',
                "size": 2483114,
                "sha256": "sha256:" + "9b" * 32,
                "media_type": "image/jpeg",
            }
        ],
        "interruptions": [
            {
                "at": "2025-03-01T09:41:00+08:00",
                "resumed_at": "2025-03-01T09:43:10+08:00",
                "reason": "电量不足",
                "resumption_note": "更换电池后继续\n第二行",
            }
        ],
        "av_reason": None,
        "credentials_shown": True,
        "device_seq": 7,
        "device_prev": "sha256:" + "0d" * 32,
        "note": "备注\t\u2028",
    }


def test_canonical_json_matches_core(page: Any) -> None:
    texts = page.evaluate(
        """async (values) => {
        const c = await import('/capture/js/canonical.js');
        return values.map(v => c.canonicalText(v));
    }""",
        AWKWARD,
    )
    assert texts == [canonical_json(v).decode("utf-8") for v in AWKWARD]
    refused = page.evaluate(
        """async () => {
        const c = await import('/capture/js/canonical.js');
        const out = [];
        for (const v of [{lat: 26.5}, [2 ** 53], "\\ud800"]) {
            try { c.canonicalText(v); out.push('accepted'); } catch (e) { out.push('refused'); }
        }
        return out;
    }"""
    )
    assert refused == ["refused", "refused", "refused"]


@pytest.mark.parametrize("alg", ["Ed25519", "ES256"])
def test_manifest_signed_in_the_browser_verifies_with_core(page: Any, alg: str) -> None:
    out = page.evaluate(
        """async ([alg, fields]) => {
        const keys = await import('/capture/js/keys.js');
        const m = await import('/capture/js/manifest.js');
        const key = await keys.createDeviceKey(alg);
        let exported = 'refused';
        try { await crypto.subtle.exportKey('pkcs8', key.privateKey); exported = 'exported'; } catch {}
        const device = {alg: key.alg, keyId: key.keyId, privateKey: key.privateKey};
        const manifest = m.buildManifest({...fields, alg: key.alg, key_id: key.keyId});
        const signed = await keys.signManifest(manifest, device);
        return {signed, alg: key.alg, publicKey: key.publicKey, keyId: key.keyId,
                extractable: key.privateKey.extractable, exported,
                hash: await m.manifestHash(manifest)};
    }""",
        [alg, _manifest_fields(alg, "sha256:" + "00" * 32)],
    )
    assert out["alg"] == alg
    assert out["extractable"] is False and out["exported"] == "refused"
    public = load_public_key(alg, out["publicKey"])
    assert key_id(public) == out["keyId"]
    parsed = SignedManifest.from_json(out["signed"])  # core's schema accepts every field
    verify_manifest(parsed, public)
    verify_manifest(out["signed"], public)
    assert parsed.manifest.manifest_hash() == out["hash"]
    assert parsed.manifest.to_json() == out["signed"]["manifest"]

    altered = copy.deepcopy(out["signed"])
    altered["manifest"]["officers"] = ["52010012345", "52010099999"]
    with pytest.raises(SignatureInvalid):
        verify_manifest(altered, public)


@pytest.mark.parametrize("alg", ["Ed25519", "ES256"])
def test_manifest_signed_by_core_verifies_in_the_browser(page: Any, alg: str) -> None:
    private = generate_private_key(alg)  # type: ignore[arg-type]
    public_text = export_public_key(private.public_key())
    fields = _manifest_fields(alg, key_id(private.public_key()))
    manifest = CaptureManifest(
        **{
            **fields,
            "officers": tuple(fields["officers"]),
            "location": Location(**fields["location"]),
            "files": tuple(ManifestFile(**f) for f in fields["files"]),
            "interruptions": tuple(Interruption(**i) for i in fields["interruptions"]),
        }
    )
    signed = sign_manifest(manifest, private).to_json()
    altered = copy.deepcopy(signed)
    altered["manifest"]["files"][0]["size"] += 1
    results = page.evaluate(
        """async ([signed, altered, alg, pub]) => {
        const keys = await import('/capture/js/keys.js');
        const m = await import('/capture/js/manifest.js');
        return [await keys.verifyManifest(signed, alg, pub),
                await keys.verifyManifest(altered, alg, pub),
                await m.manifestHash(signed.manifest)];
    }""",
        [signed, altered, alg, public_text],
    )
    assert results == [True, False, manifest.manifest_hash()]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_real_receipt_verifies_in_the_page_and_an_altered_one_does_not(
    page: Any, server: ServerProcess, tmp_path: Path
) -> None:
    device = field_device(server, case_no="黔市监罚〔2025〕7号")
    data = b"\xff\xd8 receipt test " * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    [evidence] = device.announce([("a.jpg", len(data), digest, "image/jpeg")])
    tus = {"Authorization": f"Bearer {device.token}", "Tus-Resumable": "1.0.0"}
    created = httpx.post(
        server.url + "/api/v1/uploads",
        headers={
            **tus,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": "evidence_id " + _b64(evidence["evidence_id"]),
        },
    )
    assert created.status_code == 201, created.text
    patched = httpx.patch(
        created.headers["Location"],
        content=data,
        headers={
            **tus,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert patched.status_code == 204, patched.text
    with device.client() as client:
        receipt = client.get(f"/evidence/{evidence['evidence_id']}/receipt").json()
        log = client.get("/log/public-key").json()
    assert device.last_manifest is not None
    expected = {
        "evidence_id": evidence["evidence_id"],
        "manifest_id": device.last_manifest.manifest_id,
        "file_index": 0,
        "sha256": digest,
        "size": len(data),
    }
    forged = copy.deepcopy(receipt)
    forged["custody_event"]["event"]["object"]["size"] += 1
    resigned_elsewhere = copy.deepcopy(receipt)
    resigned_elsewhere["received_at"] = "2030-01-01T00:00:00Z"
    problems = page.evaluate(
        """async ([receipts, key, expected, origin]) => {
        const r = await import('/capture/js/receipt.js');
        const out = [];
        for (const receipt of receipts) out.push(await r.receiptProblems(receipt, key, expected, origin));
        out.push(await r.receiptProblems(receipts[0], key, {...expected, sha256: 'sha256:' + '0'.repeat(64)}, origin));
        return out;
    }""",
        [[receipt, forged, resigned_elsewhere], log["verifier_key"], expected, log["origin"]],
    )
    valid, forged_problems, resigned_problems, wrong_file = problems
    assert valid == []
    assert any("事件哈希" in p for p in forged_problems)
    assert any("回执签名" in p for p in resigned_problems)
    assert any("sha256" in p for p in wrong_file)
