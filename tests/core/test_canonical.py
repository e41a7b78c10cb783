"""Canonical JSON (RFC 8785) for CaseTrail's float-free subset, cross-checked with rfc8785."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from core.canonical import (
    canonical_json,
    find_floats,
    is_rfc3339,
    parse_json,
    sha256_digest,
)
from core.errors import CanonicalJSONError, CoreError

SAFE = 2**53 - 1

# Keys and strings that exercise UTF-16 ordering: astral plane (surrogate pairs sort
# BELOW U+E000..U+FFFF in UTF-16 although their code points are higher), private use
# area, CJK, controls and escapes.
_chars = st.one_of(
    st.characters(codec="utf-8"),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF, exclude_categories=["Cs"]),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.sampled_from(list('"\\\x00\x1f\x7f\u2028案号执法')),
)
_text = st.text(_chars, max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-SAFE, SAFE) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_matches_the_rfc8785_reference_package(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_round_trips_through_the_strict_parser(value: object) -> None:
    assert canonical_json(parse_json(canonical_json(value))) == canonical_json(value)


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is a surrogate pair D83D DE00, which sorts before U+E000 in UTF-16.
    out = canonical_json({"\ue000": 1, "\U0001f600": 2, "a": 3})
    assert out == '{"a":3,"\U0001f600":2,"\ue000":1}'.encode()


def test_rfc8785_example_escapes_and_literals() -> None:
    assert canonical_json({"s": '\u20ac$\u000f\nA\'B"\\\\"/'}) == (
        '{"s":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'.encode()
    )
    assert (
        canonical_json([None, True, False, 0, -1, "案"]) == '[null,true,false,0,-1,"案"]'.encode()
    )


@pytest.mark.parametrize(
    "bad", [1.5, {"lat": 39.9}, [0.0], 2**53, -(2**53), {1: "x"}, b"x", "\ud800"]
)
def test_values_without_a_canonical_form_are_refused(bad: object) -> None:
    with pytest.raises(CanonicalJSONError) as info:
        canonical_json(bad)
    assert isinstance(info.value, CoreError)


def test_float_error_tells_the_user_to_send_a_string() -> None:
    with pytest.raises(CanonicalJSONError, match="string"):
        canonical_json({"location": {"lat": 39.9042}})


@pytest.mark.parametrize("text", ['{"a":1,"a":2}', '{"a":NaN}', "[Infinity]", "{", b"\xff\xfe"])
def test_strict_parser_rejects_duplicates_constants_and_garbage(text: str | bytes) -> None:
    with pytest.raises(CanonicalJSONError):
        parse_json(text)


def test_floats_are_located_for_reporting() -> None:
    value = json.loads('{"a": {"b": [1, 2.5]}, "c": 3.0, "d": "4.0"}')
    assert find_floats(value) == ["$.a.b[1]", "$.c"]


def test_digest_notation() -> None:
    assert sha256_digest(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize(
    ("value", "utc", "ok"),
    [
        ("2025-03-01T09:30:00+08:00", False, True),
        ("2025-03-01T01:30:00.250Z", True, True),
        ("2025-03-01T09:30:00+08:00", True, False),
        ("2025-03-01T09:30:00", False, False),
        ("2025-02-30T09:30:00Z", False, False),
        ("2025-03-01 09:30:00Z", False, False),
        (20250301, False, False),
    ],
)
def test_rfc3339_with_offset(value: object, utc: bool, ok: bool) -> None:
    assert is_rfc3339(value, utc=utc) is ok
