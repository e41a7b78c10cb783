"""Payload paths and hostile file names: pure layout rules, then a real export with hostile names."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import bagit
from hypothesis import given, settings
from hypothesis import strategies as st

from core.verify import verify_bag
from server.archive.layout import (
    MAX_NAME_BYTES,
    FileToPlace,
    StageName,
    encode_manifest_path,
    payload_paths,
    safe_name,
)
from tests.server.archive_support import Capture, extract_tar, ingest_case
from tests.server.conftest import World

HOSTILE = [
    "../../etc/passwd",
    "..",
    "invoice\u202egpj.exe",
    "CON",
    "nul.txt",
    "100%25 sure%0A.jpg",
    "e\u0301te\u0301.jpg",  # NFD
    "same.jpg",
    "SAME.jpg",
    'a\\b:c*d?e|f<g>h".jpg',
    "照" * 120 + ".jpg",
    ".hidden",
    "\u200b\u200b",
]


def test_safe_names_stay_one_harmless_segment() -> None:
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("..") == "file"
    assert safe_name("invoice\u202egpj.exe") == "invoicegpj.exe"
    assert safe_name("CON") == "_CON" and safe_name("nul.txt") == "_nul.txt"
    assert safe_name("100%25 sure") == "100\uff0525 sure"
    assert safe_name("e\u0301.jpg") == "\u00e9.jpg"
    assert safe_name("\u200b\u200b") == "file"
    long = safe_name("照" * 120 + ".jpg")
    assert long.endswith(".jpg") and len(long.encode()) <= MAX_NAME_BYTES


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_any_name_becomes_a_safe_nfc_segment(name: str) -> None:
    out = safe_name(name)
    assert out and "/" not in out and "\\" not in out and "%" not in out
    assert out not in (".", "..") and not out.startswith(".")
    assert unicodedata.is_normalized("NFC", out)
    assert len(out.encode("utf-8")) <= MAX_NAME_BYTES
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in out)


def test_paths_are_ordered_by_stage_and_never_collide() -> None:
    stages = {"filing": StageName("filing", "立案", 2)}
    types = {
        "filing": {
            "filing-form": ("filing-form", "立案审批表"),
            "立案审批表": ("filing-form", "立案审批表"),
        }
    }
    files = [
        FileToPlace(str(i), "filing", "立案审批表", n)
        for i, n in enumerate(["a.pdf", "A.pdf", "a.pdf"])
    ]
    files.append(FileToPlace("x", "made-up", "../odd", "x.jpg"))
    paths = payload_paths(files, stages, types)
    assert paths == {
        "0": "data/02_filing_立案/filing-form_立案审批表/001_a.pdf",
        "1": "data/02_filing_立案/filing-form_立案审批表/002_A.pdf",
        "2": "data/02_filing_立案/filing-form_立案审批表/003_a.pdf",
        "x": "data/99_made-up/odd/001_x.jpg",
    }
    assert encode_manifest_path("a%b\r\nc") == "a%25b%0D%0Ac"


def test_hostile_names_from_a_device_stay_inside_data_and_the_bag_validates(
    world: World, tmp_path: Path
) -> None:
    files = [(name, f"content {i}".encode(), "image/jpeg") for i, name in enumerate(HOSTILE)]
    ingested = ingest_case(world, [Capture("site-inspection", "site-inspection-record", files)])
    response = world.as_("a_archivist").post(f"/cases/{ingested.case['id']}/export")
    assert response.status_code == 200
    bag = extract_tar(response.data, tmp_path / "h")
    bagit.Bag(str(bag)).validate()
    assert verify_bag(bag).problems == []
    payload = sorted(
        p for p in bag.rglob("*") if p.is_file() and "data" in p.relative_to(bag).parts[:1]
    )
    assert len(payload) == len(HOSTILE)
    for p in payload:
        assert p.resolve().is_relative_to((bag / "data").resolve())
        assert unicodedata.is_normalized("NFC", p.name)
    contents = {p.read_bytes() for p in payload}
    assert contents == {d for _, d, _ in files}  # nothing overwritten by a colliding name
    case_json = (bag / "casetrail/case.json").read_text("utf-8")
    assert "invoice\\u202egpj.exe" in case_json or "invoice\u202egpj.exe" in case_json
