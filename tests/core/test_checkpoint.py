"""Checkpoints as C2SP signed notes: round trip, foreign keys, the Go sumdb/note vector."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from core.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)
from core.errors import CheckpointInvalid
from core.merkle import MemoryTree

ORIGIN = "casetrail.example.gov.cn/log"

# From golang/mod, file sumdb/note/note_test.go (TestNewSigner, TestSign, TestOpen):
# the signer key "PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 || seed)>", its
# verifier key and the exact signed note Go produces.
GO_SKEY_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIGNED = GO_TEXT + (
    "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"


def go_signer() -> NoteSigner:
    seed = base64.b64decode(GO_SKEY_B64)[1:]
    return NoteSigner("PeterNeumann", ed25519.Ed25519PrivateKey.from_private_bytes(seed))


def test_matches_go_sumdb_note_byte_for_byte() -> None:
    signer = go_signer()
    assert signer.verifier().key_string() == GO_VKEY
    assert sign_note(GO_TEXT, signer) == GO_SIGNED
    body, names = open_note(GO_SIGNED, [NoteVerifier.from_key_string(GO_VKEY)])
    assert (body, names) == (GO_TEXT, ["PeterNeumann"])


def test_go_note_with_an_extra_unknown_signature_still_opens_and_both_verify() -> None:
    both = GO_SIGNED + GO_ENOCH_SIG
    assert open_note(both, [NoteVerifier.from_key_string(GO_VKEY)])[1] == ["PeterNeumann"]
    verifiers = [NoteVerifier.from_key_string(k) for k in (GO_VKEY, GO_ENOCH_VKEY)]
    assert open_note(both, verifiers)[1] == ["PeterNeumann", "EnochRoot"]


@pytest.mark.parametrize(
    "bad",
    [
        GO_VKEY[:-1],
        GO_VKEY.replace("c74f20a3", "c74f20a4"),
        GO_VKEY.replace("+ARpc", "+AhRpc"),
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_mangled_verifier_keys_are_refused(bad: str) -> None:
    with pytest.raises(CheckpointInvalid):
        NoteVerifier.from_key_string(bad)


@pytest.fixture
def log() -> tuple[NoteSigner, Checkpoint]:
    tree = MemoryTree()
    for i in range(8):
        tree.append_data(bytes([i]))
    return NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate()), Checkpoint(
        ORIGIN, 8, tree.root()
    )


def test_checkpoint_round_trips_and_verifies_with_the_key_string(
    log: tuple[NoteSigner, Checkpoint],
) -> None:
    signer, cp = log
    text = sign_checkpoint(cp, signer)
    lines = text.split("\n")
    assert lines[:3] == [ORIGIN, "8", base64.b64encode(cp.root_hash).decode()]
    assert lines[3] == "" and lines[4].startswith(f"\u2014 {ORIGIN} ")
    assert open_checkpoint(text, signer.verifier().key_string(), origin=ORIGIN) == cp
    with_ext = Checkpoint(ORIGIN, 8, cp.root_hash, ("Timestamp: 1740792600",))
    assert open_checkpoint(sign_checkpoint(with_ext, signer), signer.verifier()) == with_ext


def test_verifier_keys_whose_base64_contains_plus_signs_parse() -> None:
    for _ in range(40):  # about 1 in 3 random keys has a '+' in its base64
        v = NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate()).verifier()
        assert NoteVerifier.from_key_string(v.key_string()) == v


def test_another_key_fails(log: tuple[NoteSigner, Checkpoint]) -> None:
    signer, cp = log
    other = NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(CheckpointInvalid, match="unknown key"):
        open_checkpoint(sign_checkpoint(cp, other), signer.verifier())


def test_a_note_resigned_by_another_key_under_our_key_hash_fails(
    log: tuple[NoteSigner, Checkpoint],
) -> None:
    """An attacker re-signs an edited checkpoint and keeps our name and key hash."""
    signer, cp = log
    other = ed25519.Ed25519PrivateKey.generate()
    forged_body = Checkpoint(ORIGIN, 9, cp.root_hash).body()
    raw = signer.key_hash + other.sign(forged_body.encode())
    forged = forged_body + f"\n\u2014 {ORIGIN} {base64.b64encode(raw).decode()}\n"
    with pytest.raises(CheckpointInvalid, match="invalid signature"):
        open_checkpoint(forged, signer.verifier())


def test_any_edit_of_the_signed_text_fails(log: tuple[NoteSigner, Checkpoint]) -> None:
    signer, cp = log
    text = sign_checkpoint(cp, signer)
    for old, new in [("\n8\n", "\n9\n"), ("\n8\n", "\n80\n"), (ORIGIN + "\n", ORIGIN + "x\n")]:
        with pytest.raises(CheckpointInvalid, match="invalid signature"):
            open_checkpoint(text.replace(old, new, 1), signer.verifier())
    with pytest.raises(CheckpointInvalid, match="origin"):
        open_checkpoint(text, signer.verifier(), origin="another/log")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("\n\n", "\n"),
        lambda t: t[:-1],
        lambda t: t + "stray line\n",
        lambda t: "\x01" + t,
        lambda t: t.replace("\u2014", "-"),
    ],
)
def test_malformed_notes_are_refused(log: tuple[NoteSigner, Checkpoint], mangle: object) -> None:
    signer, cp = log
    assert callable(mangle)
    with pytest.raises(CheckpointInvalid):
        open_checkpoint(mangle(sign_checkpoint(cp, signer)), signer.verifier())


def test_malformed_checkpoint_bodies_are_refused(log: tuple[NoteSigner, Checkpoint]) -> None:
    signer, _ = log
    for body in [
        f"{ORIGIN}\n08\nAAAA\n",
        f"{ORIGIN}\n8\n",
        f"{ORIGIN}\n8\nnot base64!\n",
        f"{ORIGIN}\n-1\nAAAA\n",
    ]:
        with pytest.raises(CheckpointInvalid):
            open_checkpoint(sign_note(body, signer), signer.verifier())
    with pytest.raises(CheckpointInvalid):
        Checkpoint(ORIGIN, 8, b"short")
