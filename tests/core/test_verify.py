"""The stand-alone case-file verifier: a real case file, every tamper reported, run alone."""

from __future__ import annotations

import ast
import base64
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import core.verify
from core.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from core.custody import Actor, CustodyEvent, EventType, ObjectRef, next_event
from core.keys import PrivateKey, export_public_key, generate_private_key, key_id
from core.manifest import CaptureManifest, Location, ManifestFile, sign_manifest
from core.merkle import MemoryTree
from core.verify import Problem, verify_case_file

ORIGIN = "casetrail.example.gov.cn/log"
CASE = "c-2025-0042"


def _manifest(key: PrivateKey, alg: str, seq: int, prev: str | None, name: str) -> CaptureManifest:
    return CaptureManifest(
        manifest_id=f"m-{alg}-{seq}", device_id=f"dev-{alg}", key_id=key_id(key.public_key()), alg=alg,
        case_ref="黔市监罚〔2025〕12号", category="market_supervision", stage="on_site_inspection",
        record_type="现场检查笔录", officers=("52010012345", "52010012346"),
        device_time="2025-03-01T09:30:00+08:00", gnss_time=None, timezone="Asia/Shanghai",
        location=Location("26.6470", "106.6302", None),
        files=(ManifestFile(name, 1024, "sha256:" + "7e" * 32, "image/jpeg"),),
        interruptions=(), av_reason=None, device_seq=seq, device_prev=prev,
    )  # fmt: skip


def build_case_file() -> dict[str, Any]:
    """A case with two devices (Ed25519, ES256), interleaved with another case in the log."""
    log = MemoryTree()
    signer = NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate())
    devices: dict[str, PrivateKey] = {
        "Ed25519": generate_private_key("Ed25519"),
        "ES256": generate_private_key("ES256"),
    }
    manifests = []
    for alg, k in devices.items():
        prev = None
        for seq in range(1, 5):
            m = _manifest(k, alg, seq, prev, f"照片-{seq}.jpg")
            prev = m.manifest_hash()
            if seq != 3:
                manifests.append(sign_manifest(m, k))

    actor = Actor("u-17", "inspector")
    events: list[CustodyEvent] = []
    other: CustodyEvent | None = None
    prev_ev: CustodyEvent | None = None
    proofs_at: dict[str, int] = {}

    def add(ev: CustodyEvent) -> None:
        proofs_at[ev.event_id] = log.append(ev.leaf_hash())

    def ours(type_: EventType, **kw: Any) -> None:
        nonlocal prev_ev
        prev_ev = next_event(
            prev_ev,
            event_id=f"e-{len(events) + 1}",
            case_id=CASE,
            type=type_,
            time=f"2025-03-01T01:{len(events):02d}:00Z",
            actor=actor,
            **kw,
        )
        events.append(prev_ev)
        add(prev_ev)

    ours(EventType.CASE_OPENED)
    for sm in manifests:
        other = next_event(  # another case's event between ours in the global log
            other,
            event_id=f"x-{log.size}",
            case_id="c-other",
            type="viewed",
            time="2025-03-01T02:00:00Z",
            actor=actor,
        )
        add(other)
        ours(
            EventType.CAPTURE_REGISTERED,
            details={
                "manifest_id": sm.manifest.manifest_id,
                "manifest_hash": sm.manifest.manifest_hash(),
            },
        )
        ours(EventType.INGEST_VERIFIED, object=ObjectRef("sha256:" + "7e" * 32, 1024))
    ours(EventType.BAG_SEALED)

    cp = Checkpoint(ORIGIN, log.size, log.root())
    return {
        "events": [e.to_json() for e in events],
        "proofs": {
            eid: {"leaf_index": i, "tree_size": log.size,
                  "hashes": [base64.b64encode(h).decode() for h in log.inclusion_proof(i)]}
            for eid, i in proofs_at.items() if not eid.startswith("x-")
        },
        "checkpoint": sign_checkpoint(cp, signer),
        "log_key": signer.verifier().key_string(),
        "manifests": [sm.to_json() for sm in manifests],
        "device_keys": [{"alg": alg, "public_key": export_public_key(k.public_key())} for alg, k in devices.items()],
    }  # fmt: skip


@pytest.fixture(scope="module")
def pristine() -> dict[str, Any]:
    return build_case_file()


@pytest.fixture
def case(pristine: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(pristine)


def codes(problems: list[Problem]) -> list[tuple[str, str]]:
    return sorted((p.code, p.where) for p in problems)


def test_an_intact_case_file_verifies(case: dict[str, Any]) -> None:
    assert verify_case_file(**case) == []
    assert len(case["events"]) == 14 and len(case["manifests"]) == 6


def test_an_edited_event_is_out_of_the_log_and_breaks_the_chain(case: dict[str, Any]) -> None:
    case["events"][3]["time"] = "2025-03-01T05:00:00Z"
    assert codes(verify_case_file(**case)) == [
        ("chain_altered", "event e-4"),
        ("not_in_log", "event e-4"),
    ]


def test_a_dropped_event_is_a_gap(case: dict[str, Any]) -> None:
    del case["events"][6]  # e-7, an ingest_verified event
    assert codes(verify_case_file(**case)) == [("chain_gap", "case_seq 7")]


def test_a_wrong_log_key_or_a_forged_checkpoint_is_reported(case: dict[str, Any]) -> None:
    other = NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate())
    bad = verify_case_file(**(case | {"log_key": other.verifier().key_string()}))
    assert codes(bad) == [("checkpoint_invalid", "checkpoint")]
    assert "unknown key" in bad[0].message
    lines = case["checkpoint"].split("\n")
    lines[1] = str(int(lines[1]) + 1)  # claim a bigger tree: the signature breaks
    assert codes(verify_case_file(**(case | {"checkpoint": "\n".join(lines)}))) == [
        ("checkpoint_invalid", "checkpoint")
    ]


def test_a_proof_for_another_tree_size_is_reported(case: dict[str, Any]) -> None:
    case["proofs"]["e-2"]["tree_size"] -= 1
    case["proofs"]["e-3"]["hashes"][0] = base64.b64encode(b"\x00" * 32).decode()
    del case["proofs"]["e-4"]
    assert codes(verify_case_file(**case)) == [
        ("not_in_log", "event e-3"),
        ("proof_missing", "event e-4"),
        ("proof_wrong_size", "event e-2"),
    ]


def test_manifest_problems(case: dict[str, Any]) -> None:
    case["manifests"][0]["manifest"]["officers"] = ["52010099999"]  # edited after signing
    case["device_keys"] = case["device_keys"][:1]  # the ES256 device's key is missing
    removed = case["manifests"].pop(2)  # m-Ed25519-4 left out of the file
    assert removed["manifest"]["manifest_id"] == "m-Ed25519-4"
    assert codes(verify_case_file(**case)) == [
        ("device_chain_altered", "device dev-Ed25519"),  # m-2 no longer links to edited m-1
        ("device_key_missing", "manifest m-ES256-1"),
        ("device_key_missing", "manifest m-ES256-2"),
        ("device_key_missing", "manifest m-ES256-4"),
        ("manifest_missing", "event e-2"),  # registered hash of m-1 no longer present
        ("manifest_missing", "event e-6"),  # m-4 removed
        ("manifest_signature_invalid", "manifest m-Ed25519-1"),
        ("manifest_unregistered", "manifest m-Ed25519-1"),
    ]


def test_everything_at_once_is_reported_together(case: dict[str, Any]) -> None:
    case["events"][3]["details"] = {"edited": True}
    del case["events"][7]
    case["events"][9], case["events"][10] = case["events"][10], case["events"][9]
    case["manifests"][4]["signature"]["value"] = case["manifests"][5]["signature"]["value"]
    found = {p.code for p in verify_case_file(**case)}
    assert {
        "chain_altered",
        "not_in_log",
        "chain_gap",
        "chain_reorder",
        "manifest_signature_invalid",
    } <= found


def test_verify_py_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(Path(core.verify.__file__).read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert "core" not in roots
    assert roots - set(sys.stdlib_module_names) == {"cryptography"}


def _run_standalone(tmp_path: Path, case: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "verify.py").write_bytes(Path(core.verify.__file__).read_bytes())
    bag = tmp_path / "case"
    bag.mkdir(exist_ok=True)
    (bag / "case.json").write_text(json.dumps(case, ensure_ascii=False), encoding="utf-8")
    # -I: no PYTHONPATH, no cwd on sys.path; importing `core` is made impossible.
    code = "import sys, runpy; sys.modules['core'] = None; runpy.run_path('verify.py', run_name='__main__')"
    return subprocess.run(
        [sys.executable, "-I", "-c", code, str(bag)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_copied_file_runs_alone(tmp_path: Path, case: dict[str, Any]) -> None:
    ok = _run_standalone(tmp_path, case)
    assert ok.returncode == 0, ok.stderr
    assert "校验通过 / verified" in ok.stdout
    case["events"][2]["actor"]["id"] = "someone-else"
    bad = _run_standalone(tmp_path, case)
    assert bad.returncode == 1
    assert "[not_in_log] event e-3" in bad.stdout and "[chain_altered] event e-3" in bad.stdout


def test_custody_events_from_a_case_file_parse_back(pristine: dict[str, Any]) -> None:
    assert [CustodyEvent.from_json(e).to_json() for e in pristine["events"]] == pristine["events"]


def test_bagging_date_is_read_in_beijing_time() -> None:
    """A bag sealed at 23:30 UTC is dated the next day, as people in Beijing read it."""
    from core.verify import _beijing_date

    assert _beijing_date("2026-03-02T23:30:00+00:00") == "2026-03-03"
    assert _beijing_date("2026-03-02T15:59:59Z") == "2026-03-02"
    assert _beijing_date("not a time") is None
