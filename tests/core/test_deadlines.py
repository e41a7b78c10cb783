"""Legal deadlines: counting rules checked by hand against the official 2025 calendar."""

from __future__ import annotations

from datetime import date

import pytest

from core.calendar import WorkingCalendar
from core.deadlines import DEADLINE_RULES, DayCount, Direction, Obligor, due_date
from core.errors import CalendarNotCovered, DeadlineError, UnknownDeadlineRule
from tests.support.calendars import calendar_2027

CAL = WorkingCalendar()


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


def test_a_deadline_running_into_2027_needs_a_calendar_file(tmp_path):
    with pytest.raises(CalendarNotCovered, match="--calendar"):
        due_date("publish-other", date(2026, 12, 20), calendar=CAL)
    cal = WorkingCalendar.from_files([calendar_2027(tmp_path)])
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
        "preservation-decision": (7, DayCount.WORKING, None),
        "fine-payment": (15, DayCount.NATURAL, None),
        "fine-handover": (2, DayCount.WORKING, None),
        "correction-notice": (5, DayCount.WORKING, None),
        "licensing-hearing-request": (5, DayCount.WORKING, None),
        "licensing-hearing-held": (20, DayCount.WORKING, None),
        "urgent-measure-report": (24, DayCount.HOURS, None),
        "court-enforcement": (3, DayCount.MONTHS, None),
        "annual-statistics": (0, DayCount.FIXED_DATE, None),
    }
    assert set(DEADLINE_RULES) == set(expected)
    for rid, rule in DEADLINE_RULES.items():
        assert (rule.days, rule.count, rule.extension_days) == expected[rid], rid
        assert rule.basis and rule.name_zh and rule.name_en
    # short 行政处罚法 periods are working days by Art. 85
    for rid in (
        "withdraw-publication",
        "serve-absent-party",
        "hearing-request",
        "hearing-notice",
        "preservation-decision",
        "fine-handover",
    ):
        assert any("第八十五条" in b.provision for b in DEADLINE_RULES[rid].basis), rid


def test_apl_art56_preservation_decision_in_seven_working_days_across_national_day():
    # 09-28 Sun 调休 (1), 09-29 (2), 09-30 (3), 10-01..08 holidays, 10-09 (4), 10-10 (5),
    # 10-11 Sat 调休 (6), 10-13 (7)
    d = due_date("preservation-decision", date(2025, 9, 26), calendar=CAL)
    assert d.due == date(2025, 10, 13)
    assert DEADLINE_RULES["preservation-decision"].basis[0].provision == "第五十六条"


def test_apl_art66_fine_paid_in_fifteen_natural_days_rolls_over_spring_festival():
    # 2026-02-01 + 15 = 02-16, inside the 2026 Spring Festival (02-15..02-23) → 02-24
    d = due_date("fine-payment", date(2026, 2, 1), calendar=CAL)
    assert d.rolled_from == date(2026, 2, 16) and d.due == date(2026, 2, 24)
    assert DEADLINE_RULES["fine-payment"].obligor is Obligor.PARTY


def test_apl_art71_fine_collected_on_the_spot_handed_in_within_two_working_days():
    assert due_date("fine-handover", date(2025, 9, 30), calendar=CAL).due == date(2025, 10, 10)


def test_alp_art32_correction_notice_in_five_working_days_across_spring_festival():
    # 02-13 (1), 02-14 Sat 调休 (2), 02-15..23 holidays, 02-24 (3), 02-25 (4), 02-26 (5)
    assert due_date("correction-notice", date(2026, 2, 12), calendar=CAL).due == date(2026, 2, 26)


def test_alp_art47_hearing_asked_in_five_and_held_in_twenty_working_days():
    asked = due_date("licensing-hearing-request", date(2025, 9, 29), calendar=CAL)
    assert asked.due == date(2025, 10, 13)  # 09-30, 10-09, 10-10, 10-11 调休, 10-13
    held = due_date("licensing-hearing-held", date(2026, 1, 30), calendar=CAL)
    assert held.due == CAL.add_working_days(date(2026, 1, 30), 20) == date(2026, 3, 5)


def test_alp_art45_excluded_time_is_not_counted():
    plain = due_date("licensing-decision", date(2025, 9, 1), calendar=CAL)
    assert plain.due == date(2025, 9, 28)  # the 调休 Sunday is the 20th working day
    paused = due_date(
        "licensing-decision",
        date(2025, 9, 1),
        calendar=CAL,
        paused=[(date(2025, 9, 8), date(2025, 9, 12))],  # 专家评审, five working days
    )
    assert paused.paused_days == 5 and paused.due == date(2025, 10, 11)
    assert "5 个工作日不计入" in paused.explain_zh()


def test_aca_art19_report_within_24_hours_never_moves():
    d = due_date("urgent-measure-report", date(2025, 9, 30), calendar=CAL)
    assert d.due == date(2025, 10, 1) and d.rolled_from is None
    assert "24 小时" in DEADLINE_RULES["urgent-measure-report"].describe_zh()


def test_aca_art53_court_enforcement_within_three_months():
    d = due_date("court-enforcement", date(2025, 7, 1), calendar=CAL)
    assert d.rolled_from == date(2025, 10, 1) and d.due == date(2025, 10, 9)
    # a month without that day ends on its last day: 11-30 + 3 months = 02-28 (调休 Saturday)
    assert due_date("court-enforcement", date(2025, 11, 30), calendar=CAL).due == date(2026, 2, 28)


def test_apl_art60_ninety_days_beyond_the_calendar_give_the_date_with_roll_over_note():
    d = due_date("penalty-decision", date(2026, 12, 5), calendar=CAL)
    assert d.due == date(2027, 3, 5) and d.holiday_unknown
    assert "若遇法定节假日顺延" in d.explain_zh()
    # a working-day rule there still cannot be counted, and says what to supply
    with pytest.raises(CalendarNotCovered, match="CASETRAIL_CALENDAR_FILE"):
        due_date("preservation-decision", date(2026, 12, 28), calendar=CAL)
