"""Signed checkpoints of the custody log: C2SP tlog-checkpoint in a C2SP signed note.

A checkpoint commits to the whole log at one size. Text form — origin line, tree size
in decimal, base64 root hash, optional extension lines, a blank line, then one
signature line per signer (``—`` is U+2014 EM DASH)::

    casetrail.example.gov.cn/log
    8
    XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=

    — casetrail.example.gov.cn/log 3T1gYW3v…base64(4-byte key hash || 64-byte Ed25519 signature)…

The signature covers the note text up to and including the newline before the blank
line. Key hash = first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``; the
verifier key string is ``<name>+<hex key hash>+<base64(0x01 || public key)>``, so
anyone can check a checkpoint with that one line. CaseTrail names the log key after
the origin. Parsing and verification (:func:`open_checkpoint`, :func:`open_note`,
:class:`NoteVerifier`, :class:`Checkpoint`) live in :mod:`core.verify`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from core.errors import CheckpointInvalid
from core.verify import Checkpoint, NoteVerifier, note_key_hash, open_checkpoint, open_note

__all__ = [
    "Checkpoint",
    "NoteSigner",
    "NoteVerifier",
    "open_checkpoint",
    "open_note",
    "sign_checkpoint",
    "sign_note",
]


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 signed-note signer: a key name and the private key."""

    name: str
    private_key: ed25519.Ed25519PrivateKey

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            raise CheckpointInvalid("检查点签名密钥须为 Ed25519 / checkpoint keys must be Ed25519")
        self.verifier()  # validates the name

    @cached_property
    def _public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @cached_property
    def key_hash(self) -> bytes:
        """The 4-byte key hash that prefixes each signature."""
        return note_key_hash(self.name, self._public_bytes)

    def verifier(self) -> NoteVerifier:
        """The matching verifier (publish ``verifier().key_string()``)."""
        return NoteVerifier(self.name, self._public_bytes)

    def signature_line(self, text: str) -> str:
        """``— <name> <base64(key hash || signature)>\\n`` over the note ``text``."""
        sig = self.private_key.sign(text.encode("utf-8"))
        return f"\u2014 {self.name} {base64.b64encode(self.key_hash + sig).decode('ascii')}\n"


_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f]")


def sign_note(text: str, *signers: NoteSigner) -> str:
    """Sign note ``text`` (non-empty, ends with a newline, no control characters but newline)."""
    if not text.endswith("\n") or _CONTROL_BUT_NEWLINE.search(text) or "\n\n" in text:
        raise CheckpointInvalid(
            "注记正文须以换行结尾且不含空行或控制字符 / note text must end with a newline and "
            "contain no blank line or control character"
        )
    if not signers:
        raise CheckpointInvalid("至少需要一个签名者 / at least one signer is needed")
    return text + "\n" + "".join(s.signature_line(text) for s in signers)


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The signed checkpoint text for ``checkpoint``."""
    return sign_note(checkpoint.body(), signer)
