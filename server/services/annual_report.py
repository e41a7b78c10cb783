"""The annual statistics report (行政执法统计年报), due by 31 January of the next year.

Built from the records themselves, one grouped query per section, for one agency and
one calendar year in Beijing time:

- 案件: cases opened by category, cases closed;
- 执法决定: decisions by category and by outcome (decision type);
- 行政处罚: penalty decisions (every decision of a penalty case but 不予处罚, as the
  procedure gates count them) by type (罚款, 没收, each severe measure, 其他) and by fine band;
- 听证: decisions taken after a hearing (any category) — the decision says so
  (``hearing_held``) or a stored 听证笔录 (``hearing-transcript``) of its case was on file
  before it, as the Art. 63/64 gate requires — and decisions in the hearing scope (the
  ``hearing_eligible`` condition the decision keeps);
- 法制审核: reviews passed / returned;
- 信息公开: decisions published on time / late / overdue and unpublished / still due /
  withdrawn / corrected / exempt (decided in the year);
- 全过程记录: decisions whose case was last checked complete (or complete with waivers)
  before the decision, checked incomplete, or never checked;
- 证据: stored originals received in the year, their bytes, by kind;
- 固定性核验: latest fixity results checked in the year.

:func:`build_annual_report` returns an :class:`AnnualReport` (JSON-able); the web page,
the XLSX (:mod:`server.services.annual_report_files`) and the CLI all render it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.calendar import WorkingCalendar
from core.custody import EventType
from core.legal_review import MEASURES
from core.manifest import SignedManifest
from core.procedure import HEARING_ELIGIBLE, HEARING_TRANSCRIPT, NOT_A_PENALTY
from core.publication import PublicationStatus, category_zh
from core.verify import parse_json
from server.errors import NotFound
from server.models import (
    Agency,
    CaptureManifest,
    Case,
    CaseStatus,
    CustodyEventRow,
    Decision,
    Evidence,
    EvidenceStatus,
    FixityCheck,
    LegalReview,
    Publication,
)
from server.services.completeness import media_kind
from server.services.draws import LEDGER_CASE_NO
from server.services.publication_records import sync_publications

CHINA = timezone(timedelta(hours=8), "CST")
PENALTY_CATEGORIES = ("penalty", "penalty-simple")

FINE_BANDS: tuple[tuple[str, Decimal | None], ...] = (
    ("1千元及以下", Decimal(1_000)),
    ("1千至1万元", Decimal(10_000)),
    ("1万至10万元", Decimal(100_000)),
    ("10万至100万元", Decimal(1_000_000)),
    ("100万元以上", None),
)
"""Fine bands (upper bound included); a penalty without a fine is counted apart."""

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Bar:
    """One bar of a server-rendered SVG chart (geometry computed here, not in a template)."""

    label: str
    value: int
    y: int
    width: int


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart: title, bars, and the SVG's size."""

    id: str
    title: str
    bars: tuple[Bar, ...]
    height: int
    width: int = 640
    label_width: int = 150
    bar_area: int = 400


def chart(chart_id: str, title: str, pairs: list[tuple[str, int]]) -> Chart:
    """Bars scaled to the largest value (a zero bar stays empty, its number still shown)."""
    top = max([v for _, v in pairs] + [1])
    bars = tuple(
        Bar(label, value, 10 + n * 30, round(400 * value / top))
        for n, (label, value) in enumerate(pairs)
    )
    return Chart(chart_id, title, bars, 20 + 30 * max(1, len(pairs)))


@dataclass(frozen=True)
class AnnualReport:
    """The year's figures, section by section (every value an int or a decimal string)."""

    agency: str
    agency_code: str
    year: int
    as_of: date
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON behind the page and the workbook."""
        return {
            "agency": self.agency,
            "agency_code": self.agency_code,
            "year": self.year,
            "as_of": self.as_of.isoformat(),
            "due_on": date(self.year + 1, 1, 31).isoformat(),
            "sections": self.sections,
        }

    def charts(self) -> list[Chart]:
        """The charts of the printable page."""
        s = self.sections
        return [
            chart("decisions", "执法决定（按类别）", list(s["decisions"]["by_category"].items())),
            chart("penalty-types", "行政处罚（按种类）", list(s["penalties"]["by_type"].items())),
            chart("fine-bands", "罚款金额分布", list(s["penalties"]["fine_bands"].items())),
            chart(
                "publication",
                "决定信息公开",
                [(PUBLICATION_ZH[k], v) for k, v in s["publication"].items()],
            ),
        ]


PUBLICATION_ZH = {
    "on_time": "按期公开",
    "late": "逾期公开",
    "overdue": "逾期未公开",
    "due": "尚在期限内",
    "withdrawn": "已撤回",
    "corrected": "已更正",
    "exempt": "不予公开",
}


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The year in Beijing time, as aware datetimes ``[start, end)``."""
    return datetime(year, 1, 1, tzinfo=CHINA), datetime(year + 1, 1, 1, tzinfo=CHINA)


def build_annual_report(
    session: Session,
    agency_id: str,
    year: int,
    calendar: WorkingCalendar,
    *,
    today: date,
    progress: Progress | None = None,
) -> AnnualReport:
    """Every figure of ``year`` for the agency (``today`` decides what is overdue)."""
    agency = session.get(Agency, agency_id)
    assert agency is not None
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("cases", lambda: _cases(session, agency_id, year)),
        ("decisions", lambda: _decisions(session, agency_id, year)),
        ("penalties", lambda: _penalties(session, agency_id, year)),
        ("hearings", lambda: _hearings(session, agency_id, year)),
        ("legal_reviews", lambda: _reviews(session, agency_id, year)),
        ("publication", lambda: _publication(session, agency_id, year, calendar, today)),
        ("completeness", lambda: _completeness(session, agency_id, year)),
        ("evidence", lambda: _evidence(session, agency_id, year)),
        ("fixity", lambda: _fixity(session, agency_id, year)),
    ]
    sections: dict[str, dict[str, Any]] = {}
    for n, (name, step) in enumerate(steps, start=1):
        if progress:
            progress(n, len(steps), name)
        sections[name] = step()
    return AnnualReport(agency.name, agency.code, year, today, sections)


def _in_year(column: Any, year: int) -> Any:
    start, end = year_bounds(year)
    return (column >= start) & (column < end)


def _cases(session: Session, agency_id: str, year: int) -> dict[str, Any]:
    rows = session.execute(
        select(Case.category, func.count())
        .where(
            Case.agency_id == agency_id,
            _in_year(Case.created_at, year),
            Case.case_no != LEDGER_CASE_NO,  # the 双随机 ledger is no enforcement case
        )
        .group_by(Case.category)
    ).all()
    by_category: Counter[str] = Counter()
    for category, n in rows:
        by_category[category_zh(category)] += n
    closed = session.scalar(
        select(func.count())
        .select_from(Case)
        .where(
            Case.agency_id == agency_id,
            Case.status == CaseStatus.CLOSED.value,
            _in_year(Case.closed_at, year),
        )
    )
    return {
        "opened": sum(by_category.values()),
        "opened_by_category": dict(by_category),
        "closed": closed or 0,
    }


def _decision_rows(session: Session, agency_id: str, year: int) -> list[Any]:
    return list(
        session.execute(
            select(
                Decision.id,
                Decision.decision_type,
                Decision.facts,
                Decision.decided_at,
                Case.id,
                Case.category,
                Decision.conditions,
            )
            .join(Case, Case.id == Decision.case_id)
            .where(Case.agency_id == agency_id, _in_year(Decision.decided_at, year))
        )
    )


def _decisions(session: Session, agency_id: str, year: int) -> dict[str, Any]:
    rows = session.execute(
        select(Case.category, Decision.decision_type, func.count())
        .join(Case, Case.id == Decision.case_id)
        .where(Case.agency_id == agency_id, _in_year(Decision.decided_at, year))
        .group_by(Case.category, Decision.decision_type)
    ).all()
    by_category: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    cells: Counter[tuple[str, str]] = Counter()
    for category, outcome, n in rows:
        by_category[category_zh(category)] += n
        by_outcome[outcome] += n
        cells[(category_zh(category), outcome)] += n
    return {
        "total": sum(by_category.values()),
        "by_category": dict(sorted(by_category.items())),
        "by_outcome": dict(sorted(by_outcome.items())),
        "by_category_outcome": [[c, o, n] for (c, o), n in sorted(cells.items())],
    }


def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value or "0"))
    except InvalidOperation:
        return Decimal(0)


def _penalties(session: Session, agency_id: str, year: int) -> dict[str, Any]:
    types: Counter[str] = Counter({"罚款": 0, "没收违法所得、非法财物": 0})
    bands: Counter[str] = Counter({label: 0 for label, _ in FINE_BANDS})
    total = Decimal(0)
    count = 0
    for _id, decision_type, facts, _decided, _case, category, _c in _decision_rows(
        session, agency_id, year
    ):
        facts = facts or {}
        if category not in PENALTY_CATEGORIES or decision_type in NOT_A_PENALTY:
            continue  # 不予处罚 is no 行政处罚决定
        count += 1
        fine = _amount(facts.get("fine_yuan"))
        kinds = []
        if fine > 0:
            kinds.append("罚款")
            total += fine
            bands[next(label for label, top in FINE_BANDS if top is None or fine <= top)] += 1
        if _amount(facts.get("property_value_yuan")) > 0:
            kinds.append("没收违法所得、非法财物")
        kinds += [MEASURES.get(m, m) for m in facts.get("measures") or ()]
        for kind in kinds or ["警告及其他"]:
            types[kind] += 1
    return {
        "total": count,
        "by_type": dict(types),
        "fine_bands": dict(bands),
        "fine_total_yuan": str(total),
    }


def _hearings(session: Session, agency_id: str, year: int) -> dict[str, Any]:
    rows = _decision_rows(session, agency_id, year)
    transcripts = _transcripts_on_file(session, {row[4] for row in rows})
    held = eligible = 0
    for _id, _type, facts, decided_at, case_id, _category, conditions in rows:
        on_file = any(t <= decided_at for t in transcripts.get(case_id, ()))
        held += bool((facts or {}).get("hearing_held") or on_file)
        eligible += HEARING_ELIGIBLE in (conditions or {})
    return {"held": held, "eligible": eligible}


def _transcripts_on_file(session: Session, case_ids: set[str]) -> dict[str, list[datetime]]:
    """When each case's stored 听证笔录 (``hearing-transcript``) manifests were received.

    Canonical JSON has no whitespace, so the SQL filter finds the candidates; each is
    then parsed to read its record type for certain."""
    found: dict[str, list[datetime]] = {}
    if not case_ids:
        return found
    stored = (
        select(Evidence.id)
        .where(
            Evidence.manifest_id == CaptureManifest.id,
            Evidence.status == EvidenceStatus.STORED.value,
        )
        .exists()
    )
    rows = session.execute(
        select(
            CaptureManifest.case_id, CaptureManifest.received_at, CaptureManifest.signed_json
        ).where(
            CaptureManifest.case_id.in_(case_ids),
            CaptureManifest.signed_json.contains(f'"record_type":"{HEARING_TRANSCRIPT}"'),
            stored,
        )
    )
    for case_id, received_at, text in rows:
        if SignedManifest.from_json(parse_json(text)).manifest.record_type == HEARING_TRANSCRIPT:
            found.setdefault(case_id, []).append(received_at)
    return found


def _reviews(session: Session, agency_id: str, year: int) -> dict[str, Any]:
    rows = dict(
        session.execute(
            select(LegalReview.outcome, func.count())
            .join(Case, Case.id == LegalReview.case_id)
            .where(Case.agency_id == agency_id, _in_year(LegalReview.reviewed_at, year))
            .group_by(LegalReview.outcome)
        ).all()
    )
    return {"passed": rows.get("passed", 0), "returned": rows.get("returned", 0)}


def _publication(
    session: Session, agency_id: str, year: int, calendar: WorkingCalendar, today: date
) -> dict[str, Any]:
    sync_publications(session, calendar, agency_id)
    counts = Counter({k: 0 for k in PUBLICATION_ZH})
    rows = session.execute(
        select(
            Publication.status,
            Publication.due_on,
            Publication.first_published_on,
            Publication.version,
        ).where(
            Publication.agency_id == agency_id,
            Publication.decided_on >= date(year, 1, 1),
            Publication.decided_on < date(year + 1, 1, 1),
        )
    ).all()
    for status, due_on, published_on, version in rows:
        if status == PublicationStatus.EXEMPT.value:
            counts["exempt"] += 1
            continue
        if published_on is None:
            counts["overdue" if today > due_on else "due"] += 1
            continue
        counts["on_time" if published_on <= due_on else "late"] += 1
        if status == PublicationStatus.WITHDRAWN.value:
            counts["withdrawn"] += 1
        if version > 1:
            counts["corrected"] += 1
    return dict(counts)


def _completeness(session: Session, agency_id: str, year: int) -> dict[str, Any]:
    decisions = _decision_rows(session, agency_id, year)
    case_ids = {row[4] for row in decisions}
    checks: dict[str, list[tuple[datetime, str]]] = {}
    if case_ids:
        for case_id, created_at, text in session.execute(
            select(
                CustodyEventRow.case_id, CustodyEventRow.created_at, CustodyEventRow.canonical_json
            )
            .where(
                CustodyEventRow.event_type == EventType.COMPLETENESS_CHECKED.value,
                CustodyEventRow.case_id.in_(case_ids),
            )
            .order_by(CustodyEventRow.case_seq)
        ):
            status = json.loads(text).get("details", {}).get("status")
            if status:
                checks.setdefault(case_id, []).append((created_at, status))
    found = Counter({"complete": 0, "incomplete": 0, "not_checked": 0})
    for _id, _type, _facts, decided_at, case_id, _category, _conditions in decisions:
        before = [s for t, s in checks.get(case_id, []) if t <= decided_at]
        if not before:
            found["not_checked"] += 1
        elif before[-1] in ("complete", "complete_with_waivers"):
            found["complete"] += 1
        else:
            found["incomplete"] += 1
    return {"decisions": len(decisions), **found}


def _evidence(session: Session, agency_id: str, year: int) -> dict[str, Any]:
    rows = session.execute(
        select(
            Evidence.media_type, func.count(), func.coalesce(func.sum(Evidence.expected_size), 0)
        )
        .join(Case, Case.id == Evidence.case_id)
        .where(
            Case.agency_id == agency_id,
            Evidence.status == EvidenceStatus.STORED.value,
            _in_year(Evidence.received_at, year),
        )
        .group_by(Evidence.media_type)
    ).all()
    kinds: Counter[str] = Counter()
    files = size = 0
    for media_type, n, total in rows:
        kinds[media_kind(media_type).value] += n
        files += n
        size += int(total)
    return {"files": files, "bytes": size, "by_kind": dict(sorted(kinds.items()))}


def _fixity(session: Session, agency_id: str, year: int) -> dict[str, Any]:
    rows = dict(
        session.execute(
            select(FixityCheck.status, func.count())
            .join(Evidence, Evidence.id == FixityCheck.evidence_id)
            .join(Case, Case.id == Evidence.case_id)
            .where(Case.agency_id == agency_id, _in_year(FixityCheck.checked_at, year))
            .group_by(FixityCheck.status)
        ).all()
    )
    return {k: rows.get(k, 0) for k in ("ok", "failed", "missing")}


def agency_by_code(session: Session, code: str | None) -> Agency:
    """The agency with ``code``, or the only one when ``code`` is empty; NotFound otherwise."""
    agencies = list(session.scalars(select(Agency).order_by(Agency.code)))
    if code:
        agencies = [a for a in agencies if a.code == code]
    if len(agencies) != 1:
        raise NotFound(
            "请指定机关代码 (name the agency by its code): "
            + ", ".join(a.code for a in session.scalars(select(Agency)))
        )
    return agencies[0]
