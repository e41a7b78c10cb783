"""Custody events and the per-case hash chain: every tamper gives its own finding."""

from __future__ import annotations

import dataclasses

import pytest

from core.custody import Actor, CustodyEvent, EventType, ObjectRef, next_event, verify_case_chain
from core.errors import CustodyEventInvalid
from core.verify import ChainBreak

INSPECTOR = Actor("u-17", "inspector")
OBJ = ObjectRef("sha256:" + "ab" * 32, 1048576)


def make_chain(n: int, case_id: str = "c-2025-0042") -> list[CustodyEvent]:
    events: list[CustodyEvent] = []
    prev = None
    for i in range(1, n + 1):
        prev = next_event(
            prev,
            event_id=f"e-{i}",
            case_id=case_id,
            type=EventType.CASE_OPENED if i == 1 else EventType.VIEWED,
            time=f"2025-03-01T01:{i:02d}:00Z",
            actor=INSPECTOR,
            object=None if i == 1 else OBJ,
            details={"n": i, "note": "现场检查笔录"},
        )
        events.append(prev)
    return events


def kinds(breaks: list[ChainBreak]) -> list[tuple[str, int | None, str | None]]:
    return sorted((b.kind, b.seq, b.item_id) for b in breaks)


def test_next_event_links_to_the_previous_hash() -> None:
    a, b = make_chain(2)
    assert (a.case_seq, a.case_prev) == (1, None)
    assert (b.case_seq, b.case_prev) == (2, a.event_hash())
    assert a.event_hash().startswith("sha256:") and len(a.leaf_hash()) == 32
    assert verify_case_chain([a, b]) == []


def test_json_round_trip_is_byte_exact() -> None:
    for e in make_chain(3):
        again = CustodyEvent.from_json(e.to_json())
        assert again == e and again.canonical_bytes() == e.canonical_bytes()
    assert b'"case_prev":null' in make_chain(1)[0].canonical_bytes()


def test_from_json_reports_every_problem() -> None:
    bad = make_chain(2)[1].to_json() | {
        "case_seq": 0,
        "time": "2025-03-01 09:00",
        "type": "teleported",
    }
    bad["object"] = {"sha256": "md5:x", "size": -1}
    bad["details"] = {"ratio": 0.5}
    bad["extra"] = 1
    with pytest.raises(CustodyEventInvalid) as info:
        CustodyEvent.from_json(bad)
    text = "\n".join(info.value.problems)
    for needle in [
        "case_seq",
        "time",
        "type",
        "object.sha256",
        "object.size",
        "$.details.ratio",
        "extra",
    ]:
        assert needle in text, needle


def test_next_event_refuses_another_cases_predecessor() -> None:
    with pytest.raises(CustodyEventInvalid, match="another|not"):
        next_event(
            make_chain(1)[0],
            event_id="x",
            case_id="other",
            type="viewed",
            time="2025-03-01T01:00:00Z",
            actor=INSPECTOR,
        )


def test_drop_gives_a_gap_with_the_missing_seq() -> None:
    ev = make_chain(6)
    breaks = verify_case_chain(ev[:2] + ev[4:])
    assert kinds(breaks) == [("gap", 3, None)]
    assert breaks[0].expected == "3, 4" and "missing case_seq 3, 4" in breaks[0].message


def test_swap_gives_a_reorder() -> None:
    ev = make_chain(5)
    breaks = verify_case_chain([ev[0], ev[2], ev[1], ev[3], ev[4]])
    assert kinds(breaks) == [("reorder", 2, "e-2")]
    assert "after case_seq 3" in breaks[0].message


def test_edit_gives_an_altered_event_with_both_hashes() -> None:
    ev = make_chain(5)
    edited = dataclasses.replace(ev[2], details={"n": 3, "note": "改过"})
    breaks = verify_case_chain([ev[0], ev[1], edited, ev[3], ev[4]])
    assert kinds(breaks) == [("altered", 3, "e-3")]
    assert breaks[0].expected == ev[2].event_hash() and breaks[0].found == edited.event_hash()


def test_insert_gives_a_duplicate_naming_the_inserted_event() -> None:
    ev = make_chain(5)
    forged = next_event(
        ev[1],
        event_id="e-forged",
        case_id=ev[0].case_id,
        type="viewed",
        time="2025-03-01T01:03:30Z",
        actor=INSPECTOR,
    )
    breaks = verify_case_chain([*ev[:3], forged, *ev[3:]])
    assert kinds(breaks) == [("duplicate", 3, "e-forged")]
    assert breaks[0].expected == "e-3"


def test_all_tampers_together_are_all_reported() -> None:
    ev = make_chain(14)
    forged = next_event(
        ev[9],
        event_id="e-forged",
        case_id=ev[0].case_id,
        type="downloaded",
        time="2025-03-01T02:00:00Z",
        actor=INSPECTOR,
    )
    edited = dataclasses.replace(ev[6], details={"n": 7, "note": "edited"})
    tampered = [ev[0], ev[2], ev[1], ev[3], *ev[5:6], edited, *ev[7:11], forged, *ev[11:]]
    # drop seq 5, swap 2/3, edit 7, insert a second seq 11
    assert kinds(verify_case_chain(tampered)) == [
        ("altered", 7, "e-7"),
        ("duplicate", 11, "e-forged"),
        ("gap", 5, None),
        ("reorder", 2, "e-2"),
    ]


def test_wrong_link_and_wrong_case() -> None:
    ev = make_chain(4)
    skip = dataclasses.replace(ev[3], case_prev=ev[1].event_hash())  # seq 4 links to seq 2
    other = make_chain(2, case_id="c-other")[1]
    first = ev[0].to_json() | {"case_prev": "sha256:" + "00" * 32}
    breaks = verify_case_chain([ev[0], ev[1], ev[2], skip, other])
    assert kinds(breaks) == [("wrong_case", 2, "e-2"), ("wrong_link", 4, "e-4")]
    assert "links to case_seq 2" in breaks[1].message or "links to case_seq 2" in breaks[0].message
    with pytest.raises(CustodyEventInvalid, match="case_prev"):
        CustodyEvent.from_json(first)


def test_event_types_have_chinese_labels() -> None:
    assert EventType.INGEST_VERIFIED.label_zh == "入库核验通过"
    assert all(t.label_zh for t in EventType)
