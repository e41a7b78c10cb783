"""Publication (执法决定信息公开) deadlines and states, pure.

Both rules count working days (the rule data in :mod:`core.deadlines` says how many);
past the last calendar year loaded the count goes on Monday–Friday and says so
(:class:`Due`).

- 行政许可 and 行政处罚 decisions are published within 7 working days of the decision,
  every other decision within 20 (seed plan 二、（一）3; rules ``publish-licensing-penalty``
  and ``publish-other`` in :mod:`core.deadlines`), on the agency's working-day calendar.
  "法律、行政法规另有规定的除外": a decision may be exempted, with a reason.
- A published penalty decision that is changed, revoked, or found unlawful or void is
  withdrawn within 3 working days, with the reason made public (行政处罚法 Art. 48 ¶2;
  rule ``withdraw-publication``).

States for the workspace: 待公开 (pending, more than ``soon`` working days left),
即将到期 (due today or within the next ``soon`` working days), 已逾期 (past due, still
unpublished), and the settled 已公开 / 已撤回 / 不予公开.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from core.calendar import WorkingCalendar
from core.deadlines import get_rule
from core.errors import CalendarNotCovered

SEVEN_DAY_CATEGORIES = frozenset({"licensing", "penalty", "penalty-simple"})
"""Standard ids whose decisions are 行政许可 or 行政处罚 (7 working days)."""

DUE_SOON_WORKING_DAYS = 2

CATEGORY_ZH = {
    "penalty": "行政处罚",
    "penalty-simple": "行政处罚",
    "licensing": "行政许可",
    "coercion": "行政强制",
    "inspection": "行政检查",
    "confirmation": "行政确认",
}
"""执法类别 as published, by recording-standard id."""


def category_zh(category: str) -> str:
    """The 执法类别 a decision of ``category`` is published under (the id when unknown)."""
    return CATEGORY_ZH.get(category, category)


class PublicationStatus(StrEnum):
    """What has been done with a decision's publication (stored)."""

    PENDING = "pending"  # not yet published
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"  # 已撤回, with a public reason
    EXEMPT = "exempt"  # 不予公开: 法律、行政法规另有规定

    @property
    def label_zh(self) -> str:
        """Chinese name."""
        return {"pending": "待公开", "published": "已公开", "withdrawn": "已撤回"}.get(
            self.value, "不予公开"
        )


class PublicationState(StrEnum):
    """What the workspace shows for a publication today (computed, never stored)."""

    PENDING = "pending"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"
    EXEMPT = "exempt"

    @property
    def label_zh(self) -> str:
        """待公开 / 即将到期 / 已逾期 / 已公开 / 已撤回 / 不予公开."""
        return _STATE_ZH[self]


_STATE_ZH = {
    PublicationState.PENDING: "待公开",
    PublicationState.DUE_SOON: "即将到期",
    PublicationState.OVERDUE: "已逾期",
    PublicationState.PUBLISHED: "已公开",
    PublicationState.WITHDRAWN: "已撤回",
    PublicationState.EXEMPT: "不予公开",
}


def publication_rule(category: str) -> str:
    """The deadline rule id for a decision of ``category`` (a standard id)."""
    return "publish-licensing-penalty" if category in SEVEN_DAY_CATEGORIES else "publish-other"


@dataclass(frozen=True)
class Due:
    """A due date; ``estimated`` when part of the count ran past the calendars loaded.

    An estimate counts Monday–Friday as working days in the uncovered year (the bundled
    calendar ends with the last year the State Council has published); it is recomputed
    once the agency supplies that year's calendar (``CASETRAIL_CALENDAR_FILE``).
    """

    on: date
    estimated: bool = False


def _add_working_days(start: date, n: int, calendar: WorkingCalendar) -> Due:
    d, remaining, estimated = start, n, False
    while remaining:
        d += timedelta(days=1)
        try:
            working = calendar.is_working_day(d)
        except CalendarNotCovered:
            working, estimated = d.weekday() < 5, True
        remaining -= working
    return Due(d, estimated)


def publication_due(category: str, decided_on: date, calendar: WorkingCalendar) -> Due:
    """Last day to publish a decision of ``category`` made on ``decided_on``."""
    return _add_working_days(decided_on, get_rule(publication_rule(category)).days, calendar)


def withdrawal_due(revoked_on: date, calendar: WorkingCalendar) -> Due:
    """Last day to withdraw a published decision changed or revoked on ``revoked_on``."""
    return _add_working_days(revoked_on, get_rule("withdraw-publication").days, calendar)


def publication_state(
    status: PublicationStatus,
    due_on: date,
    today: date,
    calendar: WorkingCalendar,
    *,
    soon: int = DUE_SOON_WORKING_DAYS,
) -> PublicationState:
    """The state to show today for a publication of ``status`` due on ``due_on``."""
    if status is not PublicationStatus.PENDING:
        return PublicationState(status.value)
    if today > due_on:
        return PublicationState.OVERDUE
    if due_on <= calendar.add_working_days(today, soon):
        return PublicationState.DUE_SOON
    return PublicationState.PENDING


@dataclass(frozen=True)
class Timeliness:
    """Whether an act was done by its due date (for the annual report)."""

    due_on: date
    done_on: date

    @property
    def on_time(self) -> bool:
        """True when done on or before the due date."""
        return self.done_on <= self.due_on


def annual_report_reminder(today: date) -> str | None:
    """From 1 to 31 January: the reminder that last year's statistics report is due.

    The workspace shows it to admins (seed plan 二、（一）3: 每年1月31日前公开本机关上年度
    行政执法总体情况有关数据，并报本级人民政府和上级主管部门).
    """
    if today.month != 1:
        return None
    left = 31 - today.day
    when = "今天" if left == 0 else f"还有 {left} 天"
    return (
        f"{today.year - 1} 年度行政执法统计年报须于 {today.year}-01-31 前公开，"
        f"并报本级人民政府和上级主管部门（{when}）。生成：casetrail report annual --year {today.year - 1}"
    )
