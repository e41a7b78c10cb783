"""Publication deadlines and the states the workspace shows (bundled calendar)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from core.calendar import WorkingCalendar
from core.publication import (
    Due,
    PublicationState,
    PublicationStatus,
    annual_report_reminder,
    publication_due,
    publication_state,
    withdrawal_due,
)
from tests.support.calendars import calendar_2027

CAL = WorkingCalendar()
BEFORE_NATIONAL_DAY = date(2026, 9, 29)  # Tue; 10-01…10-07 off, Sat 10-10 worked (调休)


@pytest.mark.parametrize(
    ("category", "due"),
    [
        ("licensing", date(2026, 10, 14)),  # 9-30, 10-8, 10-9, 10-10, 10-12, 10-13, 10-14
        ("penalty", date(2026, 10, 14)),
        ("penalty-simple", date(2026, 10, 14)),
        ("inspection", date(2026, 11, 2)),  # 20 working days
        ("coercion", date(2026, 11, 2)),
    ],
)
def test_due_dates_count_working_days_across_national_day(category: str, due: date) -> None:
    assert publication_due(category, BEFORE_NATIONAL_DAY, CAL) == Due(due)


def test_a_licensing_decision_is_overdue_on_the_eighth_working_day() -> None:
    due = publication_due("licensing", BEFORE_NATIONAL_DAY, CAL).on
    pending = PublicationStatus.PENDING
    assert publication_state(pending, due, date(2026, 10, 9), CAL) is PublicationState.PENDING
    assert publication_state(pending, due, date(2026, 10, 12), CAL) is PublicationState.DUE_SOON
    assert publication_state(pending, due, date(2026, 10, 14), CAL) is PublicationState.DUE_SOON
    assert publication_state(pending, due, date(2026, 10, 15), CAL) is PublicationState.OVERDUE
    assert PublicationState.OVERDUE.label_zh == "已逾期"


def test_settled_publications_are_never_overdue() -> None:
    long_ago = date(2026, 1, 5)
    today = date(2026, 12, 1)
    for status in (
        PublicationStatus.PUBLISHED,
        PublicationStatus.WITHDRAWN,
        PublicationStatus.EXEMPT,
    ):
        assert publication_state(status, long_ago, today, CAL).value == status.value


def test_withdrawal_within_three_working_days() -> None:
    # 10-8, 10-9 and the 调休 Saturday 10-10
    assert withdrawal_due(date(2026, 9, 30), CAL) == Due(date(2026, 10, 10))


def test_past_the_last_calendar_the_due_date_is_an_estimate_on_weekdays(tmp_path: Path) -> None:
    # 12-31 Thu (2026, known) → 2027 not bundled: Fri 1-1, Mon 1-4 … counted as weekdays
    due = publication_due("penalty", date(2026, 12, 30), CAL)
    assert due == Due(date(2027, 1, 8), estimated=True)
    assert publication_due("penalty", date(2026, 12, 1), CAL).estimated is False
    agency_2027 = WorkingCalendar.from_files([calendar_2027(tmp_path)])  # the agency's file
    assert publication_due("penalty", date(2026, 12, 30), agency_2027).estimated is False


def test_the_annual_report_reminder_runs_through_january() -> None:
    assert annual_report_reminder(date(2026, 12, 31)) is None
    assert annual_report_reminder(date(2027, 2, 1)) is None
    first = annual_report_reminder(date(2027, 1, 1))
    assert (
        first is not None
        and "2026 年度" in first
        and "2027-01-31" in first
        and "还有 30 天" in first
    )
    assert "今天" in (annual_report_reminder(date(2027, 1, 31)) or "")
