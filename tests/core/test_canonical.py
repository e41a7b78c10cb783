"""Canonical JSON (RFC 8785) for CaseTrail's float-free subset, cross-checked with rfc8785."""

from __future__ import annotations

import json
from collections import OrderedDict
from enum import IntEnum, StrEnum
from types import MappingProxyType

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
from core.verify import _reference_canonical_json, _stdlib_writes_jcs

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


# canonical_json hands the common case to the stdlib's C encoder and everything else to
# the reference encoder. These values are built to hit each place where the two could
# differ: floats, integers just past ±(2**53-1), lone surrogates, non-BMP keys (UTF-16
# order), non-string keys, str/int subclasses and Mappings that are not dicts.
class _Kind(StrEnum):
    PHOTO = "photo"
    ODD = "案\n\U0001f600"


class _Level(IntEnum):
    LOW = 1
    TOO_BIG = 2**53


_nasty_chars = st.one_of(
    _chars,
    st.characters(categories=["Cs"]),  # lone surrogates
    st.characters(max_codepoint=0x20),
)
# Not st.text(): it drops lone surrogates from any alphabet mixing them with
# characters(codec="utf-8") (Hypothesis 6.170), so they would never be generated.
_nasty_text = st.lists(_nasty_chars, max_size=6).map("".join)
_nasty_keys = st.one_of(
    _nasty_text, st.sampled_from(list(_Kind)), st.integers(-2, 2), st.booleans(), st.none()
)
_nasty_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-SAFE, SAFE),
    st.sampled_from([SAFE, -SAFE, SAFE + 1, -SAFE - 1, 2**64]),
    st.integers(),
    st.floats(),
    _nasty_text,
    st.sampled_from([*_Kind, *_Level]),
)
# Keys whose UTF-16 order and code-point order disagree (U+E000..U+FFFF against astral).
_clashing_keys = st.text(st.sampled_from("a\ue000\ufb01\uffff\U00010000\U0001f600"), max_size=3)
jsonish_values = st.recursive(
    _nasty_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(_text, inner, max_size=5),
        st.dictionaries(_nasty_keys, inner, max_size=4),
        st.dictionaries(_clashing_keys, inner, min_size=2, max_size=4),
        st.dictionaries(_text, inner, max_size=3).map(OrderedDict),
        st.dictionaries(_text, inner, max_size=3).map(MappingProxyType),
    ),
    max_leaves=20,
)


_bmp_keys = st.text(
    st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]) | st.sampled_from("案\x00\x7f"),
    max_size=8,
)


def _fast_path_shaped(text: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    return st.recursive(
        st.none() | st.booleans() | st.integers(-SAFE, SAFE) | text,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.lists(inner, max_size=3).map(tuple)
            | st.dictionaries(_bmp_keys, inner, max_size=5)
        ),
        max_leaves=20,
    )


_ordinary_values = _fast_path_shaped(st.text(_chars, max_size=8))
_with_lone_surrogates = _fast_path_shaped(_nasty_text)


def _outcome(encode: object, value: object) -> bytes | tuple[type, str]:
    assert callable(encode)
    try:
        out = encode(value)
    except CanonicalJSONError as e:
        return type(e), e.message
    assert isinstance(out, bytes)
    return out


@settings(max_examples=1000, deadline=None)
@given(st.one_of(json_values, jsonish_values, _with_lone_surrogates))
def test_fast_path_gives_the_reference_bytes_or_the_same_error(value: object) -> None:
    assert _outcome(canonical_json, value) == _outcome(_reference_canonical_json, value)


@settings(max_examples=200, deadline=None)
@given(_ordinary_values)
def test_ordinary_values_take_the_fast_path(value: object) -> None:
    # Otherwise the property above would hold trivially and uploads would stay slow.
    assert _stdlib_writes_jcs(value)


def test_a_custody_event_takes_the_fast_path() -> None:
    event = {
        "event_id": "01JQ7ZC6X9V4T2M8K3N5P7R9S1",
        "case_id": "案-2025-0317",
        "case_seq": 42,
        "case_prev": None,
        "type": "evidence.uploaded",
        "time": "2025-03-01T01:30:00.250Z",
        "actor": {"id": "officer-0042", "role": "执法人员"},
        "object": {"sha256": "sha256:" + "0" * 64, "size": 3145728},
        "details": {"note": "现场照片，东门入口处", "tags": ("门", "\U0001f4f7")},
    }
    assert _stdlib_writes_jcs(event)
    assert canonical_json(event) == _reference_canonical_json(event) == rfc8785.dumps(event)


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        [SAFE + 1],
        {"a": -SAFE - 1},
        {1: "x"},
        {"ok": {"\U0001f600": 1}},
        [_Kind.PHOTO],
        {"level": _Level.LOW},
        OrderedDict(a=1),
        MappingProxyType({"a": 1}),
    ],
)
def test_values_the_stdlib_might_write_differently_take_the_reference_path(
    value: object,
) -> None:
    assert not _stdlib_writes_jcs(value)


def test_nested_keys_sort_by_utf16_even_where_code_points_disagree() -> None:
    # U+FB01 < U+1F600 as code points, but U+1F600 is D83D DE00 in UTF-16, below FB01.
    value = {"outer": [{"\ufb01": 1, "\U0001f600": 2}]}
    expected = '{"outer":[{"\U0001f600":2,"\ufb01":1}]}'.encode()
    assert canonical_json(value) == expected == rfc8785.dumps(value)


def test_lone_surrogate_deep_inside_keeps_the_reference_error() -> None:
    with pytest.raises(CanonicalJSONError, match=r"^\$\.a\[1\]: .*孤立代理码元"):
        canonical_json({"a": ["ok", "x\udc00"]})


def test_enum_values_are_written_as_their_values() -> None:
    assert canonical_json({"t": _Kind.ODD, "n": _Level.LOW}) == (
        '{"n":1,"t":"案\\n\U0001f600"}'.encode()
    )


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
