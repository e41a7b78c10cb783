"""What the public site shows of decisions: published (and withdrawn) records only.

Reads ``publications`` and ``publication_versions`` and nothing else of a case: every
record here went through :mod:`core.redaction` and a reviewer's confirmation before it
was stored. A pending or exempt decision is not found at all. A withdrawn one keeps its
identification (执法机关, 执法类别, 执法对象 as masked, 文书号, date) and the withdrawal
notice with its reason, but no longer its conclusion (行政处罚法 Art. 48 ¶2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.publication import PublicationStatus, category_zh
from server.errors import NotFound
from server.models import Publication, PublicationVersion

VISIBLE = (PublicationStatus.PUBLISHED.value, PublicationStatus.WITHDRAWN.value)
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class PublicVersion:
    """One published version as the public sees it."""

    version: int
    record: dict[str, Any]
    reason: str
    published_at: datetime

    def to_json(self) -> dict[str, Any]:
        """``{"version", "record", "reason", "published_at"}``."""
        return {
            "version": self.version,
            "record": self.record,
            "reason": self.reason,
            "published_at": self.published_at.isoformat(),
        }


@dataclass(frozen=True)
class PublicDecision:
    """A published decision: its current record, and the withdrawal notice if any."""

    id: str
    status: str
    version: int
    record: dict[str, Any]
    first_published_at: datetime
    updated_at: datetime
    withdrawn_on: date | None = None
    withdraw_reason: str | None = None
    history: tuple[PublicVersion, ...] = field(default=())

    @property
    def withdrawn(self) -> bool:
        """True when the decision was withdrawn (撤回)."""
        return self.status == PublicationStatus.WITHDRAWN.value

    def to_json(self) -> dict[str, Any]:
        """The form of ``/public/decisions.json``."""
        r = self.record
        return {
            "id": self.id,
            "status": self.status,
            "status_zh": PublicationStatus(self.status).label_zh,
            "agency": r["agency"],
            "parties": [p["name"] for p in r["parties"]],
            "credit_codes": [p["credit_code"] for p in r["parties"] if p.get("credit_code")],
            "category": r["category"],
            "conclusion": r.get("conclusion"),
            "decided_on": r["decided_on"],
            "doc_no": r["doc_no"],
            "case_no": r["case_no"],
            "fields": r.get("fields", []),
            "version": self.version,
            "first_published_at": self.first_published_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "withdrawal": (
                {"withdrawn_on": _iso(self.withdrawn_on), "reason": self.withdraw_reason}
                if self.withdrawn
                else None
            ),
            "corrections": [
                {
                    "version": v.version,
                    "reason": v.reason,
                    "published_at": v.published_at.isoformat(),
                }
                for v in self.history
                if v.version > 1
            ],
        }


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


@dataclass(frozen=True)
class PublicPage:
    """One page of the public list, newest first."""

    items: list[PublicDecision]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class PublicQuery:
    """Search of the public list: text (案号, 文书号, 对象, 结论), category, date range."""

    q: str = ""
    category: str = ""
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1
    per_page: int = 20


def _shown(record: dict[str, Any], withdrawn: bool) -> dict[str, Any]:
    if not withdrawn:
        return record
    return {**record, "conclusion": None, "fields": []}


def _decision(p: Publication, versions: list[PublicVersion]) -> PublicDecision:
    withdrawn = p.status == PublicationStatus.WITHDRAWN.value
    current = versions[-1]
    assert p.first_published_at is not None
    updated = max([v.published_at for v in versions] + [p.withdrawn_at or p.first_published_at])
    return PublicDecision(
        id=p.id,
        status=p.status,
        version=p.version,
        record=_shown(current.record, withdrawn),
        first_published_at=p.first_published_at,
        updated_at=updated,
        withdrawn_on=p.withdrawn_on,
        withdraw_reason=p.withdraw_reason,
        history=tuple(
            PublicVersion(v.version, _shown(v.record, withdrawn), v.reason, v.published_at)
            for v in versions
        ),
    )


def _versions(session: Session, ids: list[str]) -> dict[str, list[PublicVersion]]:
    found: dict[str, list[PublicVersion]] = {i: [] for i in ids}
    if not ids:
        return found
    for v in session.scalars(
        select(PublicationVersion)
        .where(PublicationVersion.publication_id.in_(ids))
        .order_by(PublicationVersion.publication_id, PublicationVersion.version)
    ):
        found[v.publication_id].append(PublicVersion(v.version, v.record, v.reason, v.published_at))
    return found


def search_public_decisions(session: Session, query: PublicQuery) -> PublicPage:
    """A page of published decisions matching ``query``, most recently published first."""
    per_page = max(1, min(query.per_page, MAX_PER_PAGE))
    page = max(1, query.page)
    stmt = select(Publication).where(Publication.status.in_(VISIBLE))
    text = query.q.strip()
    if text:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(Publication.public_text.like(like, escape="\\")))
    if query.category:
        ids = [k for k in _CATEGORY_IDS if category_zh(k) == query.category] or [query.category]
        stmt = stmt.where(Publication.category.in_(ids))
    if query.date_from:
        stmt = stmt.where(Publication.decided_on >= query.date_from)
    if query.date_to:
        stmt = stmt.where(Publication.decided_on <= query.date_to)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(
        session.scalars(
            stmt.order_by(Publication.first_published_at.desc(), Publication.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    versions = _versions(session, [p.id for p in rows])
    items = [_decision(p, versions[p.id]) for p in rows if versions[p.id]]
    return PublicPage(items, total, page, per_page)


_CATEGORY_IDS = ("penalty", "penalty-simple", "licensing", "coercion", "inspection", "confirmation")

PUBLIC_CATEGORIES = ("行政处罚", "行政许可", "行政强制", "行政检查", "行政确认")
"""执法类别 the public list can be filtered by."""


def public_decision(session: Session, publication_id: str) -> PublicDecision:
    """One published or withdrawn decision with its version history; NotFound otherwise."""
    p = session.get(Publication, publication_id)
    if p is None or p.status not in VISIBLE:
        raise NotFound("未找到该公开信息 (no published decision with this id)")
    return _decision(p, _versions(session, [p.id])[p.id])
