"""The one key check: whatever string arrives, a key that passes stays inside the store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.errors import InvalidKey
from storage.hashing import read_blocks
from storage.keys import (
    MAX_KEY_BYTES,
    MAX_SEGMENT_BYTES,
    _rule_problems,
    check_key,
    derivative_key,
    key_problems,
    original_key,
    quarantine_key,
)
from storage.local import LocalBlobStore

ROOT = Path("/srv/casetrail/blobs")

# Strings built from the characters that matter for escaping: separators, dots, control
# characters, NUL, RTL override, non-ASCII, plus ordinary key characters.
hostile_text = st.lists(
    st.sampled_from(list("ab09._-=+/\\:\x00\n\u202e证据~ ") + ["..", "../", "/.."]),
    max_size=30,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(hostile_text)
def test_an_accepted_key_never_leaves_the_root(key: str) -> None:
    try:
        check_key(key)
    except InvalidKey as exc:
        assert exc.problems, "a refusal names its reasons"
        return
    resolved = Path(os.path.normpath(ROOT.joinpath(*key.split("/"))))
    assert resolved.is_relative_to(ROOT) and resolved != ROOT
    assert not any(part.startswith(".") for part in key.split("/"))


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "originals/../../x",
        "/abs/key",
        "a//b",
        "a/",
        "a\\b",
        "a/\x00b",
        "a/\u202egpj.exe",
        ".staging/x",
        "a/" + "x" * 256,
        "证据/a",
        "",
    ],
)
def test_hostile_keys_are_refused_before_any_io(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(InvalidKey):
        store.write(key, read_blocks(_Empty()))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_layout_helpers_make_valid_keys() -> None:
    digest = "sha256:" + "ab" * 32
    for key in (
        original_key(digest),
        derivative_key(digest, "thumbnail.jpg"),
        quarantine_key(original_key(digest), "tok123"),
    ):
        assert check_key(key) == key
    assert original_key(digest) == f"originals/sha256/ab/ab/{'ab' * 32}"


class _Empty:
    def read(self, size: int = -1, /) -> bytes:
        return b""


long_segments = st.lists(
    st.sampled_from(
        ["a" * (MAX_SEGMENT_BYTES - 1), "b" * MAX_SEGMENT_BYTES, "c" * (MAX_SEGMENT_BYTES + 1)]
    ),
    min_size=1,
    max_size=6,
).map("/".join)


@settings(max_examples=600, deadline=None)
@given(st.one_of(hostile_text, long_segments, st.text(max_size=40)))
def test_the_one_match_fast_path_judges_keys_as_the_rules_do(key: str) -> None:
    """The server's own keys are checked in one regular-expression match; any key, hostile
    or overlong, gets exactly the rules' verdict and problem list."""
    assert key_problems(key) == _rule_problems(key)


def test_the_fast_path_keeps_the_total_length_limit() -> None:
    longest = "/".join(["a" * 200] * 5) + "/" + "b" * 19
    assert len(longest) == MAX_KEY_BYTES
    assert key_problems(longest) == []
    assert key_problems(longest + "b") == _rule_problems(longest + "b") != []
