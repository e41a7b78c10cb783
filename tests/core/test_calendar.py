"""Working-day calendar: official facts, agency files, uncovered years."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.calendar import WorkingCalendar, load_calendar_file, parse_calendar_text
from core.errors import CalendarFileInvalid, CalendarNotCovered
from tests.support.calendars import calendar_2027

EXAMPLE_2027 = Path(__file__).resolve().parents[2] / "docs" / "calendar-2027.example.toml"
NOTICE = "国务院办公厅关于2025年部分节假日安排的通知（国办发明电〔2024〕0号，测试）"
CAL = WorkingCalendar()


def test_national_day_2025_is_eight_days_off_with_two_weekend_working_days():
    for day in range(1, 9):
        assert not CAL.is_working_day(date(2025, 10, day)), f"2025-10-{day:02} is a holiday"
    assert CAL.is_working_day(date(2025, 9, 28))  # Sunday, 调休上班
    assert CAL.is_working_day(date(2025, 10, 11))  # Saturday, 调休上班
    assert CAL.is_working_day(date(2025, 10, 9))
    assert not CAL.is_working_day(date(2025, 10, 12))  # an ordinary Sunday


def test_seven_working_days_from_30_september_2025_skip_the_national_day_week():
    # 09-30 (Tue) is the start and is not counted. 10-01..10-08 are holidays.
    # 10-09 Thu (1), 10-10 Fri (2), 10-11 Sat 调休 (3), 10-12 Sun rest,
    # 10-13 Mon (4), 10-14 (5), 10-15 (6), 10-16 Thu (7).  → 2025-10-16, not 10-17:
    # the 调休 Saturday 10-11 counts as a working day.
    assert CAL.add_working_days(date(2025, 9, 30), 7) == date(2025, 10, 16)


def test_counting_backwards_and_zero():
    assert CAL.add_working_days(date(2025, 10, 9), -1) == date(2025, 9, 30)
    assert CAL.add_working_days(date(2025, 10, 1), 0) == date(2025, 10, 1)
    assert CAL.next_working_day(date(2025, 10, 1)) == date(2025, 10, 9)
    assert CAL.previous_working_day(date(2025, 10, 8)) == date(2025, 9, 30)


@settings(max_examples=150, deadline=None)
@given(
    start=st.dates(min_value=date(2004, 1, 1), max_value=date(2026, 10, 31)),
    n=st.integers(min_value=1, max_value=40),
)
def test_adding_working_days_lands_on_a_later_working_day(start, n):
    due = CAL.add_working_days(start, n)
    assert due > start
    assert CAL.is_working_day(due)
    between = [start + timedelta(days=i) for i in range(1, (due - start).days + 1)]
    assert sum(CAL.is_working_day(d) for d in between) == n


def test_a_2027_date_without_a_calendar_file_fails_and_says_how_to_supply_one():
    with pytest.raises(CalendarNotCovered) as err:
        CAL.is_working_day(date(2027, 3, 1))
    message = str(err.value)
    assert "2027" in message
    assert "--calendar FILE" in message
    assert "CASETRAIL_CALENDAR_FILE" in message
    # counting that runs from 2026 into 2027 fails the same way, not with a weekend guess
    with pytest.raises(CalendarNotCovered):
        CAL.add_working_days(date(2026, 12, 28), 10)


def test_with_a_supplied_2027_file_2027_works(tmp_path):
    cal = WorkingCalendar.from_files([calendar_2027(tmp_path)])
    assert cal.covers(2027) and cal.covers(2026)
    assert not cal.is_working_day(date(2027, 2, 8))  # Monday inside the file's 春节 block
    assert cal.is_working_day(date(2027, 2, 20))  # Saturday 调休 in the file
    # 2026-12-31 Thu → 2027-01-01..03 off → 01-04 Mon (1)
    assert cal.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 4)
    assert "〔2026〕99号" in cal.source_of(2027)
    lines = cal.describe_sources()
    assert lines[0].startswith("2004–2026：chinese_calendar") and lines[-1].startswith("2027：")
    with pytest.raises(CalendarNotCovered):
        cal.is_working_day(date(2028, 1, 3))


def test_an_agency_year_replaces_the_bundled_one():
    years = parse_calendar_text(
        f'schema = 1\nsource = "{NOTICE}"\n[years.2025]\nholidays = [2025-10-01]\n', "fix.toml"
    )
    cal = WorkingCalendar(years)
    assert not cal.is_working_day(date(2025, 10, 1))
    assert cal.is_working_day(date(2025, 10, 2))  # no longer a holiday in the agency's year
    assert cal.source_of(2025) == NOTICE


def test_a_broken_calendar_file_reports_every_problem(tmp_path):
    path = tmp_path / "cal.toml"
    path.write_text(
        """schema = 1
source = "坏文件"
colour = "red"
[years.2027]
holidays = ["2027-13-01", "2027-02-12..2027-02-05", "2026-12-31", "2027-01-02"]
working_days = ["2027-01-02", "2027-01-04"]
extra = 1
[years.27]
holidays = []
""",
        encoding="utf-8",
    )
    with pytest.raises(CalendarFileInvalid) as err:
        load_calendar_file(path)
    problems = err.value.problems
    fragments = [
        "colour: 未知的键",
        "source: 须写明国务院办公厅通知及文号",
        "years.2027.extra: 未知的键",
        "years.2027.holidays[0]: '2027-13-01' 不是日期",
        "years.2027.holidays[1]: '2027-02-12..2027-02-05' 范围颠倒",
        "years.2027.holidays[2]: '2026-12-31' 不在 2027 年内",
        "years.2027: 2027-01-02 既是假日又是工作日",
        "years.2027.working_days: 2027-01-04 是周一至周五",
        "years.27: 年份应为四位数字",
    ]
    for fragment in fragments:
        assert any(p.startswith(fragment) for p in problems), (fragment, problems)
    assert len(problems) == len(fragments)


def test_an_unreadable_calendar_file_is_reported(tmp_path):
    with pytest.raises(CalendarFileInvalid, match="cannot read"):
        load_calendar_file(tmp_path / "nope.toml")


def test_an_example_calendar_file_is_refused():
    # docs/calendar-2027.example.toml only shows the format; its dates are invented
    with pytest.raises(CalendarFileInvalid) as err:
        WorkingCalendar.from_files([EXAMPLE_2027])
    assert any(p.startswith("example:") and "示例文件" in p for p in err.value.problems)


def test_a_calendar_file_must_name_the_state_council_notice_and_its_number():
    text = 'schema = 1\nsource = "{}"\n[years.2027]\nholidays = ["2027-01-01"]\n'
    with pytest.raises(CalendarFileInvalid) as err:
        parse_calendar_text(text.format("本局整理"), "c.toml")
    assert [p for p in err.value.problems if p.startswith("source:")]
    with pytest.raises(CalendarFileInvalid):
        parse_calendar_text(text.format("国务院办公厅关于2027年部分节假日安排的通知"), "c.toml")
    [year] = parse_calendar_text(
        text.format("国务院办公厅关于2027年部分节假日安排的通知（国办发明电〔2026〕7号）"), "c.toml"
    )
    assert year.source.endswith("〔2026〕7号）")
