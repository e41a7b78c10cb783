"""Capture manifests: validation, Ed25519/ES256 signatures, device chain."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from core.canonical import canonical_json
from core.errors import ManifestInvalid, SignatureInvalid
from core.keys import (
    PrivateKey,
    export_public_key,
    generate_private_key,
    key_id,
    load_public_key,
    sign,
)
from core.manifest import (
    CaptureManifest,
    Interruption,
    Location,
    ManifestFile,
    SignedManifest,
    sign_manifest,
    verify_device_chain,
    verify_manifest,
)


def manifest_for(
    key: PrivateKey, seq: int = 1, prev: str | None = None, **changes: object
) -> CaptureManifest:
    pub = key.public_key()
    m = CaptureManifest(
        manifest_id=f"m-{seq}",
        device_id="dev-3",
        key_id=key_id(pub),
        alg="Ed25519" if len(export_public_key(pub)) == 44 else "ES256",
        case_ref="黔市监罚〔2025〕12号",
        category="market_supervision",
        stage="on_site_inspection",
        record_type="现场检查笔录",
        officers=("52010012345", "52010012346"),
        device_time="2025-03-01T09:30:00+08:00",
        gnss_time="2025-03-01T01:30:00.120Z",
        timezone="Asia/Shanghai",
        location=Location("26.6470", "106.6302", "8.5"),
        files=(ManifestFile("现场照片 001.jpg", 2483114, "sha256:" + "9b" * 32, "image/jpeg"),),
        interruptions=(
            Interruption(
                "2025-03-01T09:41:00+08:00",
                "2025-03-01T09:43:10+08:00",
                "battery",
                "更换电池后继续",
            ),
        ),
        av_reason=None,
        device_seq=seq,
        device_prev=prev,
    )
    return dataclasses.replace(m, **changes) if changes else m


@pytest.fixture(params=["Ed25519", "ES256"])
def key(request: pytest.FixtureRequest) -> PrivateKey:
    return generate_private_key(request.param)


def test_json_round_trip_is_byte_exact(key: PrivateKey) -> None:
    m = manifest_for(key)
    wire = json.loads(json.dumps(sign_manifest(m, key).to_json(), ensure_ascii=False))
    again = SignedManifest.from_json(wire)
    assert again.manifest == m and again.manifest.canonical_bytes() == m.canonical_bytes()
    assert m.manifest_hash().startswith("sha256:")


def test_valid_signature_verifies_for_both_algorithms(key: PrivateKey) -> None:
    signed = sign_manifest(manifest_for(key), key)
    verify_manifest(signed, key.public_key())
    verify_manifest(json.loads(json.dumps(signed.to_json())), key.public_key())
    assert len(base64.b64decode(signed.signature)) == 64  # ES256 too: raw r||s


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("case_ref", "黔市监罚〔2025〕13号"),
        ("officers", ["52010012345"]),
        ("device_seq", 2),
        ("device_time", "2025-03-01T09:31:00+08:00"),
        ("note", "added later"),
        ("credentials_shown", True),
    ],
)
def test_any_changed_field_fails(key: PrivateKey, field: str, value: object) -> None:
    wire = sign_manifest(manifest_for(key), key).to_json()
    wire["manifest"][field] = value
    with pytest.raises(SignatureInvalid):
        verify_manifest(wire, key.public_key())


def test_a_changed_file_hash_or_size_fails(key: PrivateKey) -> None:
    for change in ({"size": 1}, {"sha256": "sha256:" + "9c" * 32}, {"name": "other.jpg"}):
        wire = sign_manifest(manifest_for(key), key).to_json()
        wire["manifest"]["files"][0].update(change)
        with pytest.raises(SignatureInvalid):
            verify_manifest(wire, key.public_key())


def test_a_different_key_fails(key: PrivateKey) -> None:
    signed = sign_manifest(manifest_for(key), key)
    other = generate_private_key("Ed25519")
    with pytest.raises(SignatureInvalid, match="not the given key"):
        verify_manifest(signed, other.public_key())
    # Even when the manifest is re-labelled with the other key's id, the signature fails.
    forged = manifest_for(other)
    wire = {
        "manifest": forged.to_json(),
        "signature": signed.to_json()["signature"] | {"alg": forged.alg, "key_id": forged.key_id},
    }
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_manifest(wire, other.public_key())


def test_signing_non_canonical_bytes_fails(key: PrivateKey) -> None:
    """A device that signed json.dumps output (key order, spaces) is refused."""
    m = manifest_for(key)
    raw = json.dumps(m.to_json(), ensure_ascii=False).encode()
    assert raw != canonical_json(m.to_json())
    wire = {
        "manifest": m.to_json(),
        "signature": {
            "alg": m.alg,
            "key_id": m.key_id,
            "value": base64.b64encode(sign(key, raw)).decode(),
        },
    }
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_manifest(wire, key.public_key())


def test_reordered_keys_in_the_received_json_still_verify(key: PrivateKey) -> None:
    """The verifier re-canonicalises: transport key order does not matter."""
    wire = sign_manifest(manifest_for(key), key).to_json()
    wire["manifest"] = dict(reversed(list(wire["manifest"].items())))
    verify_manifest(wire, key.public_key())


def test_sign_refuses_a_manifest_describing_another_key(key: PrivateKey) -> None:
    with pytest.raises(SignatureInvalid, match="key_id"):
        sign_manifest(manifest_for(key), generate_private_key("Ed25519"))


def test_es256_public_key_round_trips_as_spki() -> None:
    k = generate_private_key("ES256")
    text = export_public_key(k.public_key())
    assert text.startswith("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
    assert key_id(load_public_key("ES256", text)) == key_id(k.public_key())
    with pytest.raises(SignatureInvalid):
        load_public_key("Ed25519", text)


def test_from_json_reports_every_problem() -> None:
    m = manifest_for(generate_private_key()).to_json()
    m.update(
        officers=[],
        device_time="2025-03-01 09:30",
        device_seq=0,
        note=None,
        credentials_shown="yes",
        extra="x",
        location={"lat": 26.647, "lon": "200", "accuracy": None},
        files=[
            {"name": "a\x00b", "size": -1, "sha256": "SHA256:AB", "media_type": "jpeg"},
            {"name": "", "size": 1, "sha256": "sha256:" + "00" * 32, "media_type": "image/jpeg"},
        ],
        interruptions=[
            {
                "at": "2025-03-01T09:41:00+08:00",
                "resumed_at": "2025-03-01T09:40:00+08:00",
                "reason": "",
                "resumption_note": None,
            }
        ],
    )
    del m["timezone"]
    with pytest.raises(ManifestInvalid) as info:
        CaptureManifest.from_json(m)
    problems = "\n".join(info.value.problems)
    for needle in [
        "$.location.lat",
        "officers",
        "device_time",
        "device_seq",
        "extra",
        "timezone: ",
        "location.lon",
        "files[0].name",
        "files[0].size",
        "files[0].sha256",
        "files[0].media_type",
        "files[1].name",
        "interruptions[0].reason",
        "interruptions[0].resumed_at",
        "credentials_shown",
    ]:
        assert needle in problems, needle
    assert len(info.value.problems) >= 15


def test_file_names_are_unicode_metadata_but_not_controls_or_huge() -> None:
    k = generate_private_key()
    ok = manifest_for(
        k, files=(ManifestFile("../案卷/😀 photo.jpg", 0, "sha256:" + "00" * 32, "image/jpeg"),)
    )
    assert ok.files[0].name.startswith("../")
    for bad in ["x" * 256, "a\nb", "\x7f"]:
        with pytest.raises(ManifestInvalid, match="file name"):
            manifest_for(k, files=(ManifestFile(bad, 0, "sha256:" + "00" * 32, "image/jpeg"),))


def device_chain(n: int) -> list[CaptureManifest]:
    k = generate_private_key()
    out: list[CaptureManifest] = []
    prev = None
    for seq in range(1, n + 1):
        m = manifest_for(k, seq, prev)
        out.append(m)
        prev = m.manifest_hash()
    return out


def test_device_chain_in_any_order_is_intact() -> None:
    chain = device_chain(5)
    assert verify_device_chain(reversed(chain)) == []


def test_device_chain_gaps_list_the_missing_numbers() -> None:
    chain = device_chain(9)
    breaks = verify_device_chain([chain[0], chain[1], chain[4], chain[5], chain[8]])
    assert [(b.kind, b.expected) for b in breaks] == [("gap", "3, 4"), ("gap", "7, 8")]
    assert "missing device_seq 3, 4" in breaks[0].message


def test_device_chain_duplicate_broken_link_and_bad_first() -> None:
    chain = device_chain(4)
    k = generate_private_key()
    dup = manifest_for(k, 3, chain[1].manifest_hash(), manifest_id="m-dup")
    edited = dataclasses.replace(chain[1], note="edited")
    breaks = verify_device_chain([chain[0], edited, chain[2], dup, chain[3]])
    assert sorted((b.kind, b.seq, b.item_id) for b in breaks) == [
        ("altered", 2, "m-2"),
        ("duplicate", 3, "m-dup"),
    ]
    assert verify_device_chain(chain[2:]) and verify_device_chain(chain[2:])[0].kind == "gap"


def test_device_chain_continues_from_an_anchor() -> None:
    chain = device_chain(5)
    anchor = (2, chain[1].manifest_hash())
    assert verify_device_chain(chain[2:], anchor=anchor) == []
    breaks = verify_device_chain(chain[3:], anchor=anchor)
    assert [(b.kind, b.expected) for b in breaks] == [("gap", "3")]
    wrong = verify_device_chain(chain[2:], anchor=(2, chain[0].manifest_hash()))
    assert [b.kind for b in wrong] == ["wrong_link"]
