"""Legal deadlines: counting rules checked by hand against the official 2025 calendar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from core.calendar import WorkingCalendar
from core.deadlines import DEADLINE_RULES, DayCount, Direction, due_date
from core.errors import CalendarNotCovered, DeadlineError, UnknownDeadlineRule

CAL = WorkingCalendar()
EXAMPLE_2027 = Path(__file__).resolve().parents[2] / "docs" / "calendar-2027.example.toml"


def test_publication_within_seven_working_days_skips_national_day():
    d = due_date("publish-licensing-penalty", date(2025, 9, 30), calendar=CAL)
    assert d.due == date(2025, 10, 16)  # see test_calendar for the hand count
    assert d.rolled_from is None


def test_withdrawal_in_three_working_days_counts_the_adjusted_saturday():
    # 行政处罚法 Art. 85: 三日 = working days. 10-09 (1), 10-10 (2), 10-11 Sat 调休 (3).
    assert due_date("withdraw-publication", date(2025, 9, 30), calendar=CAL).due == date(
        2025, 10, 11
    )


def test_a_natural_day_deadline_ending_on_a_holiday_moves_to_the_next_working_day():
    # 2025-07-03 + 90 days = 2025-10-01 (National Day) → first working day after: 10-09.
    d = due_date("penalty-decision", date(2025, 7, 3), calendar=CAL)
    assert d.rolled_from == date(2025, 10, 1)
    assert d.due == date(2025, 10, 9)
    assert "顺延" in d.explain_zh()


def test_a_natural_day_deadline_on_a_working_day_does_not_move():
    d = due_date("penalty-decision", date(2025, 3, 3), calendar=CAL)
    # 2025-03-03 + 90 = 2025-06-01 (Sunday, and 端午 05-31..06-02) → 06-03 Tue
    assert d.due == date(2025, 6, 3) and d.rolled_from == date(2025, 6, 1)
    plain = due_date("seizure-duration", date(2025, 3, 3), calendar=CAL)
    assert plain.due == date(2025, 4, 2) and plain.rolled_from is None


def test_seizure_extension_adds_thirty_days_and_still_rolls_over_may_day():
    # 2025-03-03 + 60 = 2025-05-02, inside the 05-01..05-05 holiday → 05-06.
    d = due_date("seizure-duration", date(2025, 3, 3), calendar=CAL, extended=True)
    assert d.extended and d.due == date(2025, 5, 6) and d.rolled_from == date(2025, 5, 2)


def test_licensing_periods_are_working_days_and_extend_by_ten():
    base = due_date("licensing-decision", date(2025, 9, 30), calendar=CAL)
    longer = due_date("licensing-decision", date(2025, 9, 30), calendar=CAL, extended=True)
    assert base.due == CAL.add_working_days(date(2025, 9, 30), 20)
    assert longer.due == CAL.add_working_days(base.due, 10)
    assert DEADLINE_RULES["licence-issue"].count is DayCount.WORKING


def test_hearing_notice_counts_backwards_from_the_hearing():
    # Hearing on 2025-10-13 (Mon). Back: 10-12 Sun rest, 10-11 Sat 调休 (1), 10-10 (2),
    # 10-09 (3), 10-01..08 holidays, 09-30 (4), 09-29 (5), 09-28 Sun 调休 (6), 09-26 (7).
    d = due_date("hearing-notice", date(2025, 10, 13), calendar=CAL)
    assert d.due == date(2025, 9, 26)
    assert DEADLINE_RULES["hearing-notice"].direction is Direction.BEFORE


def test_annual_statistics_are_due_31_january_next_year_without_moving():
    assert due_date("annual-statistics", date(2025, 6, 1), calendar=CAL).due == date(2026, 1, 31)


def test_extending_a_deadline_that_has_no_extension_is_refused():
    with pytest.raises(DeadlineError, match="不能延长"):
        due_date("hearing-request", date(2025, 9, 30), calendar=CAL, extended=True)


def test_unknown_rule_lists_the_known_ones():
    with pytest.raises(UnknownDeadlineRule, match="penalty-decision"):
        due_date("penalty", date(2025, 9, 30), calendar=CAL)


def test_a_deadline_running_into_2027_needs_a_calendar_file():
    with pytest.raises(CalendarNotCovered, match="--calendar"):
        due_date("publish-other", date(2026, 12, 20), calendar=CAL)
    cal = WorkingCalendar.from_files([EXAMPLE_2027])
    assert due_date("publish-other", date(2026, 12, 20), calendar=cal).due.year == 2027


def test_every_rule_is_explicit_about_counting_and_basis():
    expected = {
        "publish-licensing-penalty": (7, DayCount.WORKING, None),
        "publish-other": (20, DayCount.WORKING, None),
        "withdraw-publication": (3, DayCount.WORKING, None),
        "penalty-decision": (90, DayCount.NATURAL, 30),
        "serve-absent-party": (7, DayCount.WORKING, None),
        "hearing-request": (5, DayCount.WORKING, None),
        "hearing-notice": (7, DayCount.WORKING, None),
        "licensing-decision": (20, DayCount.WORKING, 10),
        "licence-issue": (10, DayCount.WORKING, None),
        "seizure-duration": (30, DayCount.NATURAL, 30),
        "annual-statistics": (0, DayCount.FIXED_DATE, None),
    }
    assert set(DEADLINE_RULES) == set(expected)
    for rid, rule in DEADLINE_RULES.items():
        assert (rule.days, rule.count, rule.extension_days) == expected[rid], rid
        assert rule.basis and rule.name_zh and rule.name_en
    # short 行政处罚法 periods are working days by Art. 85
    for rid in ("withdraw-publication", "serve-absent-party", "hearing-request", "hearing-notice"):
        assert any("第八十五条" in b.provision for b in DEADLINE_RULES[rid].basis), rid
