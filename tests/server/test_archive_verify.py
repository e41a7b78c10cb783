"""Tampering with an exported case file: each kind is caught with its own precise message.

The attacker here is a careful one: after each edit the tag manifests are recomputed,
so the plain BagIt checks pass and the case-file checks (signatures, chain, proofs,
the signed export record) must find the edit on their own.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import bagit
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.checkpoint import NoteSigner, sign_note
from core.verify import Problem, verify_bag
from tests.server.archive_support import Capture, extract_tar, ingest_case
from tests.server.conftest import World

FILES = [
    ("现场检查笔录.pdf", b"%PDF-1.4\n" + b"r" * 3000, "application/pdf"),
    ("IMG_0001.jpg", b"\xff\xd8\xff\xe0" + b"p" * 7000, "image/jpeg"),
]
RECORD_PATH = "site-inspection-record_现场检查（勘验）笔录"


def _retag(bag: Path) -> None:
    """What a careful forger does after an edit: recompute both tag manifests."""
    for alg in ("sha256", "sha512"):
        lines = []
        for path in sorted(bag.rglob("*")):
            rel = path.relative_to(bag).as_posix()
            if path.is_file() and not rel.startswith(("data/", "tagmanifest-")):
                lines.append(f"{hashlib.new(alg, path.read_bytes()).hexdigest()}  {rel}\n")
        (bag / f"tagmanifest-{alg}.txt").write_text("".join(lines), "utf-8")


def _payload(bag: Path, name: str) -> Path:
    return next(p for p in (bag / "data").rglob("*") if p.name.endswith(name))


def _edit_event(bag: Path, index: int, change: Callable[[dict], None] | None) -> str:  # type: ignore[type-arg]
    path = bag / "casetrail/custody/events.jsonl"
    lines = path.read_text("utf-8").splitlines()
    event = json.loads(lines[index])
    if change is None:
        del lines[index]
    else:
        change(event)
        lines[index] = json.dumps(event, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return str(event["event_id"])


def _flip_byte(path: Path, at: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _resign_checkpoint(bag: Path, replace_key: bool) -> None:
    path = bag / "casetrail/custody/checkpoint.txt"
    note = path.read_text("utf-8")
    body = note[: note.index("\n\n") + 1]
    signer = NoteSigner(body.splitlines()[0], Ed25519PrivateKey.generate())
    path.write_text(sign_note(body, signer), "utf-8")
    if replace_key:
        (bag / "casetrail/keys/log-key.txt").write_text(signer.verifier().key_string() + "\n")


def _alter_proof(bag: Path) -> str:
    path = bag / "casetrail/custody/proofs.json"
    doc = json.loads(path.read_text("utf-8"))
    event_id, proof = next((k, v) for k, v in doc["proofs"].items() if v["hashes"])
    first = bytearray(__import__("base64").b64decode(proof["hashes"][0]))
    first[0] ^= 0x01
    proof["hashes"][0] = __import__("base64").b64encode(bytes(first)).decode()
    path.write_text(json.dumps(doc), "utf-8")
    return str(event_id)


def _edit_manifest(bag: Path) -> None:
    (path,) = (bag / "casetrail/manifests").glob("*.json")
    doc = json.loads(path.read_text("utf-8"))
    doc["manifest"]["officers"] = ["A00001", "X99999"]
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")


def _codes(problems: list[Problem]) -> set[str]:
    return {p.code for p in problems}


def _find(problems: list[Problem], code: str) -> Problem:
    found = [p for p in problems if p.code == code]
    assert found, f"no {code} in {[(p.code, p.where) for p in problems]}"
    return found[0]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_each_tampering_is_detected_with_its_own_message(world: World, tmp_path: Path) -> None:
    ingested = ingest_case(world, [Capture("site-inspection", "site-inspection-record", FILES)])
    response = world.as_("a_archivist").post(f"/cases/{ingested.case['id']}/export")
    pristine = extract_tar(response.data, tmp_path / "pristine")
    log_key = world.as_("a_archivist").get("/log/public-key").get_json()["verifier_key"]
    assert verify_bag(pristine, log_key=log_key).problems == []

    def tampered(name: str, edit: Callable[[Path], object], *, retag: bool = True) -> list[Problem]:
        bag = tmp_path / name
        shutil.copytree(pristine, bag)
        edit(bag)
        if retag:
            _retag(bag)
        return verify_bag(bag, log_key=log_key).problems

    # one payload byte changed
    problems = tampered("byte", lambda b: _flip_byte(_payload(b, "IMG_0001.jpg")), retag=False)
    altered = _find(problems, "payload_altered")
    assert altered.where.endswith("002_IMG_0001.jpg") and "sha256" in altered.message
    assert _codes(problems) == {"payload_altered"}

    # ... and the payload manifests rewritten to match: the signed export record disagrees
    def byte_and_manifests(bag: Path) -> None:
        _flip_byte(_payload(bag, "IMG_0001.jpg"))
        b = bagit.Bag(str(bag))
        b.save(manifests=True)

    problems = tampered("byte+manifests", byte_and_manifests)
    assert _find(problems, "export_record_mismatch").where == "manifest-sha256.txt"

    # a file removed
    problems = tampered("removed", lambda b: _payload(b, "现场检查笔录.pdf").unlink(), retag=False)
    missing = _find(problems, "payload_missing")
    assert (
        missing.where.endswith(f"{RECORD_PATH}/001_现场检查笔录.pdf")
        and "missing" in missing.message
    )
    assert "payload_oxum_mismatch" in _codes(problems)

    # a custody event line edited
    edited: list[str] = []
    problems = tampered(
        "event-edited",
        lambda b: edited.append(_edit_event(b, 1, lambda e: e["actor"].update(id="user:forger"))),
    )
    assert _find(problems, "not_in_log").where == f"event {edited[0]}"
    assert "altered" in _find(problems, "chain_altered").message

    # a custody event removed
    problems = tampered("event-removed", lambda b: _edit_event(b, 2, None))
    gap = _find(problems, "chain_gap")
    assert "case_seq 3" in gap.message

    # the last events removed (the export record itself)
    problems = tampered("tail-removed", lambda b: _edit_event(b, -1, None))
    assert "export_record_missing" in _codes(problems)

    # a proof node altered
    proved: list[str] = []
    problems = tampered("proof", lambda b: proved.append(_alter_proof(b)))
    assert _find(problems, "not_in_log").where == f"event {proved[0]}"
    assert _codes(problems) == {"not_in_log", "seal_stale"}  # the forger re-tagged the bag

    # the checkpoint re-signed with another key
    problems = tampered("resigned", lambda b: _resign_checkpoint(b, replace_key=False))
    assert "no signature by a trusted key" in _find(problems, "checkpoint_invalid").message
    problems = tampered("resigned+key", lambda b: _resign_checkpoint(b, replace_key=True))
    assert "not the trusted key" in _find(problems, "log_key_untrusted").message
    assert "checkpoint_invalid" in _codes(problems)

    # a capture manifest edited
    problems = tampered("manifest", _edit_manifest)
    assert _find(problems, "manifest_signature_invalid").message.startswith("签名验证失败")
    assert "manifest_missing" in _codes(problems)

    # any edit without a careful forger: the tag manifests catch it
    problems = tampered(
        "naive-info",
        lambda b: (b / "casetrail/case.json").write_text("{}", "utf-8"),
        retag=False,
    )
    assert {"tag_altered", "export_record_mismatch"} <= _codes(problems)

    # an extra file slipped into data/
    problems = tampered(
        "extra", lambda b: (b / "data" / "planted.jpg").write_bytes(b"x"), retag=False
    )
    assert _find(problems, "payload_extra").where == "data/planted.jpg"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_verifier_inside_the_bag_runs_with_python_and_cryptography_alone(
    world: World, tmp_path: Path
) -> None:
    ingested = ingest_case(world, [Capture("site-inspection", "site-inspection-record", FILES)])
    data = world.as_("a_archivist").post(f"/cases/{ingested.case['id']}/export").data
    bag = extract_tar(data, tmp_path / "b")
    (tmp_path / "bag.tar").write_bytes(data)
    block_core = "import sys, runpy; sys.modules['core'] = None; sys.modules['server'] = None; "

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = (
            block_core
            + f"sys.argv = ['verify.py', *{list(args)!r}]; runpy.run_path('casetrail/verify.py', run_name='__main__')"
        )
        return subprocess.run(
            [sys.executable, "-I", "-c", code],
            cwd=bag,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    ok = run()  # no argument: the bag the script sits in
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "校验通过 / verified" in ok.stdout and "re-hashed 2 payload file(s)" in ok.stdout
    assert run(str(tmp_path / "bag.tar")).returncode == 0
    _flip_byte(_payload(bag, "IMG_0001.jpg"))
    bad = run()
    assert bad.returncode == 1
    assert "[payload_altered] data/" in bad.stdout and "1 problem(s) found" in bad.stdout
