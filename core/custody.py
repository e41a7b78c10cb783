"""Custody events (监管链事件) and the per-case hash chain.

Every thing that happens to a case or its evidence is one custody event, and each event
is one leaf of the global Merkle log (:mod:`core.merkle`). Within a case the events form
a hash chain: ``case_seq`` counts 1, 2, 3, … and ``case_prev`` is the ``sha256:<hex>`` of
the previous event's canonical JSON bytes (``null`` for seq 1), so dropping, reordering,
inserting or editing an event breaks the chain. Wire/storage form (canonical JSON)::

    {"actor": {"id": "u-17", "role": "inspector"},
     "case_id": "c-2025-0042", "case_prev": "sha256:9f2c…", "case_seq": 3,
     "details": {"manifest_hash": "sha256:1b7e…", "manifest_id": "m-81"},
     "event_id": "e-5512", "object": {"sha256": "sha256:77ab…", "size": 1048576},
     "time": "2025-03-01T01:30:00Z", "type": "capture_registered"}

``event_hash()`` = ``sha256:<hex>`` of those bytes; ``leaf_hash()`` = RFC 6962 leaf hash
of the same bytes (what goes into the log). Convention used by the case-file verifier:
a ``capture_registered`` event carries ``details.manifest_hash`` (the capture manifest's
``manifest_hash()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.canonical import canonical_json, find_floats, is_digest, is_rfc3339, sha256_digest
from core.errors import CanonicalJSONError, CustodyEventInvalid
from core.verify import ChainBreak, check_case_chain, leaf_hash

__all__ = [
    "Actor",
    "ChainBreak",
    "CustodyEvent",
    "EventType",
    "ObjectRef",
    "next_event",
    "verify_case_chain",
]


class EventType(StrEnum):
    """The custody event vocabulary (see DESIGN.md "Custody"); ``.label_zh`` gives the Chinese name."""

    CASE_OPENED = "case_opened"
    CAPTURE_REGISTERED = "capture_registered"
    UPLOAD_STARTED = "upload_started"
    UPLOAD_ENDED = "upload_ended"
    INGEST_VERIFIED = "ingest_verified"
    INGEST_MISMATCH = "ingest_mismatch"
    STORED = "stored"
    VIEWED = "viewed"
    DOWNLOADED = "downloaded"
    EXPORTED = "exported"
    STAGE_CHANGED = "stage_changed"
    OFFICERS_ASSIGNED = "officers_assigned"
    COMPLETENESS_CHECKED = "completeness_checked"
    LEGAL_REVIEW_RECORDED = "legal_review_recorded"
    DECISION_RECORDED = "decision_recorded"
    DECISION_REFUSED = "decision_refused"
    FIXITY_OK = "fixity_ok"
    FIXITY_FAILED = "fixity_failed"
    QUARANTINED = "quarantined"
    CASE_CLOSED = "case_closed"
    BAG_SEALED = "bag_sealed"
    DEVICE_CHAIN_GAP = "device_chain_gap"
    PUBLICATION_REDACTION_CONFIRMED = "publication_redaction_confirmed"
    PUBLICATION_EXEMPTED = "publication_exempted"
    DECISION_PUBLISHED = "decision_published"
    PUBLICATION_WITHDRAWN = "publication_withdrawn"
    PUBLICATION_CORRECTED = "publication_corrected"
    DRAW_COMMITTED = "draw_committed"
    DRAW_PERFORMED = "draw_performed"

    @property
    def label_zh(self) -> str:
        """Chinese name for display (e.g. ``入库核验通过`` for ``ingest_verified``)."""
        return _LABELS_ZH[self]


_LABELS_ZH = {
    EventType.CASE_OPENED: "立案",
    EventType.CAPTURE_REGISTERED: "采集登记",
    EventType.UPLOAD_STARTED: "开始上传",
    EventType.UPLOAD_ENDED: "上传结束（未入库）",
    EventType.INGEST_VERIFIED: "入库核验通过",
    EventType.INGEST_MISMATCH: "入库核验不符",
    EventType.STORED: "已存储",
    EventType.VIEWED: "查看",
    EventType.DOWNLOADED: "下载",
    EventType.EXPORTED: "导出",
    EventType.STAGE_CHANGED: "环节变更",
    EventType.OFFICERS_ASSIGNED: "指派执法人员",
    EventType.COMPLETENESS_CHECKED: "完整性检查",
    EventType.LEGAL_REVIEW_RECORDED: "法制审核登记",
    EventType.DECISION_RECORDED: "决定登记",
    EventType.DECISION_REFUSED: "决定被拒（程序未满足）",
    EventType.FIXITY_OK: "固定性校验通过",
    EventType.FIXITY_FAILED: "固定性校验失败",
    EventType.QUARANTINED: "隔离",
    EventType.CASE_CLOSED: "结案",
    EventType.BAG_SEALED: "案卷封存",
    EventType.DEVICE_CHAIN_GAP: "设备链缺口",
    EventType.PUBLICATION_REDACTION_CONFIRMED: "公开前技术处理确认",
    EventType.PUBLICATION_EXEMPTED: "决定信息不予公开",
    EventType.DECISION_PUBLISHED: "决定信息公开",
    EventType.PUBLICATION_WITHDRAWN: "决定信息撤回",
    EventType.PUBLICATION_CORRECTED: "决定信息更正",
    EventType.DRAW_COMMITTED: "双随机抽查计划登记",
    EventType.DRAW_PERFORMED: "双随机抽取",
}


_EVENT_TYPES = frozenset(EventType)


@dataclass(frozen=True)
class Actor:
    """Who acted: an id (user, device or ``system``) and a role (``inspector``, ``reviewer``, …)."""

    id: str
    role: str


@dataclass(frozen=True)
class ObjectRef:
    """The stored object an event is about: ``sha256:<hex>`` and size in bytes."""

    sha256: str
    size: int


def _json_problems(d: Mapping[str, Any]) -> list[str]:
    return _checked(d)[0]


def _checked(d: Mapping[str, Any]) -> tuple[list[str], bytes | None]:
    """Every problem of the JSON form ``d``, and its canonical bytes (``None`` when it has
    problems)."""
    problems: list[str] = []

    def text(name: str, v: object) -> None:
        if not isinstance(v, str) or not v.strip():
            problems.append(f"{name}: 须为非空字符串 / must be a non-empty string")

    expected = {
        "event_id",
        "case_id",
        "case_seq",
        "case_prev",
        "type",
        "time",
        "actor",
        "object",
        "details",
    }
    for k in sorted(expected - set(d)):
        problems.append(f"{k}: 缺少字段 / missing field")
    for k in sorted(set(d) - expected, key=str):
        problems.append(f"{k}: 未知字段 / unknown field")
    text("event_id", d.get("event_id"))
    text("case_id", d.get("case_id"))
    seq, prev = d.get("case_seq"), d.get("case_prev")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        problems.append(f"case_seq: {seq!r} 须为 ≥1 的整数 / must be an integer >= 1")
    elif seq == 1 and prev is not None:
        problems.append("case_prev: 序号 1 的事件须为 null / must be null for case_seq 1")
    elif seq > 1 and not is_digest(prev):
        problems.append(
            f"case_prev: {prev!r} 须为 sha256:<hex> / must be sha256:<hex> for case_seq > 1"
        )
    if d.get("type") not in _EVENT_TYPES:
        problems.append(f"type: 未知事件类型 {d.get('type')!r} / unknown event type")
    if not is_rfc3339(d.get("time"), utc=True):
        problems.append(
            f"time: {d.get('time')!r} 须为 UTC RFC 3339（以 Z 结尾）/ must be RFC 3339 UTC ending in Z"
        )
    actor = d.get("actor")
    if not isinstance(actor, Mapping) or set(actor) != {"id", "role"}:
        problems.append('actor: 须为 {"id", "role"} / must be {"id": …, "role": …}')
    else:
        text("actor.id", actor["id"])
        text("actor.role", actor["role"])
    obj = d.get("object")
    if obj is not None:
        if not isinstance(obj, Mapping) or set(obj) != {"sha256", "size"}:
            problems.append(
                'object: 须为 null 或 {"sha256", "size"} / must be null or {"sha256": …, "size": …}'
            )
        else:
            if not is_digest(obj["sha256"]):
                problems.append("object.sha256: 须为 sha256:<hex> / must be sha256:<64 hex>")
            size = obj["size"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                problems.append("object.size: 须为 ≥0 的整数 / must be an integer >= 0")
    details = d.get("details")
    if not isinstance(details, Mapping):
        problems.append("details: 须为 JSON 对象 / must be a JSON object")
    try:
        canonical: bytes | None = canonical_json(d)
    except CanonicalJSONError as e:
        canonical, unencodable = None, e.message
    if canonical is None:  # (encoded, it has no float: nothing to look for)
        problems += [
            f"{p}: 不允许浮点数，请用字符串 / floats not allowed, use a string"
            for p in find_floats(dict(d))
        ]
        if not problems:
            problems.append(unencodable)
    return problems, None if problems else canonical


@dataclass(frozen=True)
class CustodyEvent:
    """One custody event: a leaf of the Merkle log and a link of its case's hash chain.

    Construct with :func:`next_event` (which computes ``case_seq``/``case_prev``) or
    :meth:`from_json`. Invalid field values raise :class:`CustodyEventInvalid` listing
    every problem. ``details`` is a JSON object without floats; do not mutate it.
    """

    event_id: str
    case_id: str
    case_seq: int
    case_prev: str | None
    type: EventType
    time: str
    actor: Actor
    object: ObjectRef | None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems, canonical = _checked(self.to_json())
        if problems:
            raise CustodyEventInvalid("监管链事件不合法 / invalid custody event", problems)
        object.__setattr__(self, "_canonical", canonical)  # encoded once, while checked

    def to_json(self) -> dict[str, Any]:
        """The JSON object form (see module docstring)."""
        return {
            "event_id": self.event_id,
            "case_id": self.case_id,
            "case_seq": self.case_seq,
            "case_prev": self.case_prev,
            "type": str(self.type),
            "time": self.time,
            "actor": {"id": self.actor.id, "role": self.actor.role},
            "object": None
            if self.object is None
            else {"sha256": self.object.sha256, "size": self.object.size},
            "details": dict(self.details) if isinstance(self.details, Mapping) else self.details,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CustodyEvent:
        """Build from the JSON object form; raises :class:`CustodyEventInvalid` with every problem."""
        if not isinstance(d, Mapping):
            raise CustodyEventInvalid(
                "监管链事件须为 JSON 对象 / a custody event must be a JSON object"
            )
        problems = _json_problems(d)
        if problems:
            raise CustodyEventInvalid("监管链事件不合法 / invalid custody event", problems)
        obj = d["object"]
        return cls(
            event_id=d["event_id"],
            case_id=d["case_id"],
            case_seq=d["case_seq"],
            case_prev=d["case_prev"],
            type=EventType(d["type"]),
            time=d["time"],
            actor=Actor(d["actor"]["id"], d["actor"]["role"]),
            object=None if obj is None else ObjectRef(obj["sha256"], obj["size"]),
            details=dict(d["details"]),
        )

    def canonical_bytes(self) -> bytes:
        """RFC 8785 bytes of :meth:`to_json` — what is hashed and logged."""
        canonical: bytes = self.__dict__["_canonical"]
        return canonical

    def event_hash(self) -> str:
        """``sha256:<hex>`` of the canonical bytes; the next event's ``case_prev``."""
        return sha256_digest(self.canonical_bytes())

    def leaf_hash(self) -> bytes:
        """RFC 6962 leaf hash of the canonical bytes (the Merkle log leaf)."""
        return leaf_hash(self.canonical_bytes())


def next_event(
    previous: CustodyEvent | None,
    *,
    event_id: str,
    case_id: str,
    type: EventType | str,
    time: str,
    actor: Actor,
    object: ObjectRef | None = None,
    details: Mapping[str, Any] | None = None,
) -> CustodyEvent:
    """The event that follows ``previous`` in case ``case_id`` (``None`` = the case's first).

    Sets ``case_seq = previous.case_seq + 1`` and ``case_prev = previous.event_hash()``.
    Raises :class:`CustodyEventInvalid` if ``previous`` belongs to another case or a field
    is invalid (every problem listed).
    """
    if previous is not None and previous.case_id != case_id:
        raise CustodyEventInvalid(
            f"前一事件属于案件 {previous.case_id}，不是 {case_id} / previous event belongs to "
            f"case {previous.case_id!r}, not {case_id!r}"
        )
    try:
        etype = EventType(type)
    except ValueError:
        raise CustodyEventInvalid(f"未知事件类型 {type!r} / unknown event type {type!r}") from None
    return CustodyEvent(
        event_id=event_id,
        case_id=case_id,
        case_seq=1 if previous is None else previous.case_seq + 1,
        case_prev=None if previous is None else previous.event_hash(),
        type=etype,
        time=time,
        actor=actor,
        object=object,
        details=dict(details or {}),
    )


def verify_case_chain(
    events: Iterable[CustodyEvent], case_id: str | None = None
) -> list[ChainBreak]:
    """EVERY break in a case's chain, events in their stored order (empty list = intact).

    Kinds: ``gap`` (missing ``case_seq`` numbers, listed), ``reorder``, ``duplicate``
    (names the event not linked by its successor — typically an inserted one),
    ``altered`` (an event's hash differs from its successor's ``case_prev``), ``wrong_link``,
    ``wrong_case``. Each :class:`ChainBreak` carries seq, event id, expected and found
    values and a Chinese + English message.
    """
    return check_case_chain([e.to_json() for e in events], case_id)
