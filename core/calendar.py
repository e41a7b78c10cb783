"""The Chinese working-day calendar (工作日历): holidays and 调休 working days.

Built from the bundled ``chinese_calendar`` data (State Council schedules up to its
last published year, 2026 in chinesecalendar 1.11) plus optional agency calendar files
for later years or corrections. An agency file's year replaces the bundled one.

A date in a year no calendar covers raises ``CalendarNotCovered`` — never a
weekends-only guess, which would silently miss the Spring Festival week.

Agency calendar file (TOML, see ``docs/calendar-file.md``)::

    schema = 1
    source = "国务院办公厅关于2027年部分节假日安排的通知（国办发明电〔2026〕N号）"

    [years.2027]
    holidays = ["2027-01-01", "2027-02-06..2027-02-12"]   # 放假 (dates or ranges)
    working_days = ["2027-02-14"]                          # 调休上班 (weekend days worked)

Every file states its source: the 国务院办公厅 notice with its document number
(〔YYYY〕N号); the loader keeps it per year and reports it (``source_of``,
``describe_sources``). A file marked ``example = true`` is refused: its dates only
illustrate the format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar

from core.errors import CalendarFileInvalid, CalendarNotCovered
from core.standards.schema import Table, TomlReader, join

CALENDAR_SCHEMA = 1
HOW_TO_SUPPLY = (
    "请提供该年的机关工作日历文件：命令行用 --calendar FILE，服务器设置 CASETRAIL_CALENDAR_FILE；"
    "格式见 docs/calendar-file.md。"
    " Supply an agency calendar file for that year: --calendar FILE on the command line or "
    "the server setting CASETRAIL_CALENDAR_FILE (format: docs/calendar-file.md)."
)
_DAY = timedelta(days=1)
_RANGE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})\s*$")
_NOTICE = re.compile(r"(国务院办公厅|国办).*〔\d{4}〕\d+号")
"""A source naming the State Council General Office notice and its document number."""


@dataclass(frozen=True)
class CalendarYear:
    """One year of holidays (放假) and 调休 working days, and where it came from."""

    year: int
    holidays: frozenset[date]
    working_days: frozenset[date]
    source: str

    def is_working_day(self, d: date) -> bool:
        """Working day: a 调休 working day, or a weekday that is not a holiday."""
        return d in self.working_days or (d.weekday() < 5 and d not in self.holidays)


def _bundled_years() -> range:
    years = [d.year for d in chinese_calendar.holidays]
    return range(min(years), max(years) + 1)


class WorkingCalendar:
    """Answers whether a date is a working day, and counts working days.

    ``WorkingCalendar()`` uses the bundled data; ``WorkingCalendar(agency_years)`` adds
    (or replaces) years from agency files; ``bundled=False`` uses agency years only.
    """

    def __init__(self, agency_years: Iterable[CalendarYear] = (), *, bundled: bool = True) -> None:
        self._agency: dict[int, CalendarYear] = {y.year: y for y in agency_years}
        self._bundled = _bundled_years() if bundled else range(0)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> WorkingCalendar:
        """The bundled calendar plus the years of every agency file in ``paths`` (later files win)."""
        years: list[CalendarYear] = []
        for path in paths:
            years.extend(load_calendar_file(path))
        return cls(years)

    @property
    def agency_years(self) -> tuple[CalendarYear, ...]:
        """The years from agency files (those replacing or extending the bundled data), by year."""
        return tuple(self._agency[y] for y in sorted(self._agency))

    @property
    def covered_years(self) -> tuple[int, ...]:
        """Every year this calendar can answer for."""
        return tuple(sorted(set(self._bundled) | set(self._agency)))

    def covers(self, year: int) -> bool:
        """Whether ``year`` is known."""
        return year in self._agency or year in self._bundled

    def source_of(self, year: int) -> str:
        """Where a year's data comes from (agency file name or the bundled package)."""
        if year in self._agency:
            return self._agency[year].source
        if year in self._bundled:
            return f"chinese_calendar {_package_version()}（国务院办公厅节假日安排）"
        raise self._not_covered(date(year, 1, 1))

    def describe_sources(self) -> list[str]:
        """One line per source: the bundled years as a range, each agency year on its own."""
        lines = []
        bundled = [y for y in self._bundled if y not in self._agency]
        if bundled:
            lines.append(
                f"{bundled[0]}–{bundled[-1]}：chinese_calendar {_package_version()}"
                "（各年《国务院办公厅关于部分节假日安排的通知》）"
            )
        for year in sorted(self._agency):
            lines.append(f"{year}：{self._agency[year].source}")
        return lines

    def is_working_day(self, d: date) -> bool:
        """True on a working day (工作日); raises ``CalendarNotCovered`` outside known years."""
        agency = self._agency.get(d.year)
        if agency is not None:
            return agency.is_working_day(d)
        if d.year not in self._bundled:
            raise self._not_covered(d)
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:  # the package's own "year not covered"
            raise self._not_covered(d) from None

    def is_statutory_holiday(self, d: date) -> bool:
        """A day of an official holiday block (法定节假日放假), not a plain weekend.

        Raises ``CalendarNotCovered`` outside known years.
        """
        agency = self._agency.get(d.year)
        if agency is not None:
            return d in agency.holidays
        if d.year not in self._bundled:
            raise self._not_covered(d)
        try:
            on_holiday, name = chinese_calendar.get_holiday_detail(d)
        except NotImplementedError:
            raise self._not_covered(d) from None
        return bool(on_holiday) and name is not None

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself not counted).

        ``n`` < 0 counts backwards (the ``|n|``-th working day before ``start``);
        ``n`` == 0 returns ``start``.
        """
        step = _DAY if n >= 0 else -_DAY
        d = start
        remaining = abs(n)
        while remaining:
            d += step
            if self.is_working_day(d):
                remaining -= 1
        return d

    def next_working_day(self, d: date) -> date:
        """``d`` itself if a working day, else the first working day after it."""
        while not self.is_working_day(d):
            d += _DAY
        return d

    def previous_working_day(self, d: date) -> date:
        """``d`` itself if a working day, else the last working day before it."""
        while not self.is_working_day(d):
            d -= _DAY
        return d

    def _not_covered(self, d: date) -> CalendarNotCovered:
        years = self.covered_years
        have = f"{years[0]}–{years[-1]}" if years else "无 none"
        gaps = [y for y in range(years[0], years[-1] + 1) if y not in years] if years else []
        if gaps:
            have += f"（缺 missing {', '.join(map(str, gaps))}）"
        return CalendarNotCovered(
            f"{d.isoformat()}：{d.year} 年没有工作日历（已有 covered: {have}），无法计算工作日。"
            f" No working-day calendar covers {d.year}. {HOW_TO_SUPPLY}"
        )


def _package_version() -> str:
    return str(getattr(chinese_calendar, "__version__", ""))


def load_calendar_file(path: str | Path) -> tuple[CalendarYear, ...]:
    """Read and validate an agency calendar file; ``CalendarFileInvalid`` lists every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarFileInvalid(
            f"无法读取工作日历文件 cannot read calendar file {path}",
            [f"{path}: {exc}"],
        ) from None
    return parse_calendar_text(text, str(path))


def parse_calendar_text(text: str, source: str) -> tuple[CalendarYear, ...]:
    """Parse an agency calendar file's text; ``CalendarFileInvalid`` lists every problem."""
    r = TomlReader()
    doc = r.parse(text)
    years: list[CalendarYear] = []
    if doc is not None:
        r.keys(doc, "", ("schema", "source", "years"), ("example",))
        schema = r.integer(doc, "schema", "")
        if schema is not None and schema != CALENDAR_SCHEMA:
            r.problem("schema", f"不支持的格式版本 unsupported schema {schema} (expected 1)")
        label = r.string(doc, "source", "") or source
        if "source" in doc and not _NOTICE.search(str(doc["source"])):
            r.problem(
                "source",
                "须写明国务院办公厅通知及文号，如「国务院办公厅关于2027年部分节假日安排的通知"
                "（国办发明电〔2026〕N号）」 (name the State Council General Office notice "
                "and its document number)",
            )
        if r.boolean(doc, "example", ""):
            r.problem(
                "example",
                "示例文件（example = true）的日期仅示范格式，不能用于计算法定期限；请按国务院办公厅"
                "正式通知编制工作日历文件 (an example calendar is refused: its dates are not the "
                "official schedule)",
            )
        table = r.table(doc["years"], "years") if "years" in doc else None
        for key, value in (table or {}).items():
            year = _year(r, key, value, label)
            if year is not None:
                years.append(year)
    if r.problems:
        raise CalendarFileInvalid(
            f"工作日历文件 {source} 有 {len(r.problems)} 处问题 "
            f"(calendar file has {len(r.problems)} problem(s))",
            r.problems,
        )
    return tuple(years)


def _year(r: TomlReader, key: str, value: object, source: str) -> CalendarYear | None:
    path = join("years", key)
    if not re.fullmatch(r"\d{4}", key):
        r.problem(path, "年份应为四位数字 year must be four digits, e.g. [years.2027]")
        return None
    year = int(key)
    t = r.table(value, path)
    if t is None:
        return None
    r.keys(t, path, ("holidays",), ("working_days",))
    holidays = _dates(r, t, "holidays", path, year)
    working = _dates(r, t, "working_days", path, year)
    for d in sorted(holidays & working):
        r.problem(path, f"{d} 既是假日又是工作日 is both a holiday and a working day")
    for d in sorted(working):
        if d.weekday() < 5:
            r.problem(
                join(path, "working_days"),
                f"{d} 是周一至周五，本来就是工作日 is a weekday; list only weekend days worked (调休)",
            )
    return CalendarYear(year, frozenset(holidays), frozenset(working), source)


def _dates(r: TomlReader, t: Table, key: str, path: str, year: int) -> set[date]:
    where = join(path, key)
    raw = t.get(key)
    if raw is None:
        return set()
    if not isinstance(raw, list):
        r.problem(where, '应为日期列表 must be a list of dates or "YYYY-MM-DD..YYYY-MM-DD" ranges')
        return set()
    out: set[date] = set()
    for i, item in enumerate(raw):
        spot = join(where, i)
        span = _span(item)
        if span is None:
            r.problem(
                spot,
                f"{item!r} 不是日期或日期范围 is not a date or a range "
                "(YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)",
            )
            continue
        first, last = span
        if last < first:
            r.problem(spot, f"{item!r} 范围颠倒 range ends before it starts")
            continue
        if first.year != year or last.year != year:
            r.problem(spot, f"{item!r} 不在 {year} 年内 is outside year {year}")
            continue
        d = first
        while d <= last:
            out.add(d)
            d += _DAY
    return out


def _span(item: object) -> tuple[date, date] | None:
    if isinstance(item, datetime):
        return None
    if isinstance(item, date):
        return item, item
    if not isinstance(item, str):
        return None
    try:
        m = _RANGE.match(item)
        if m:
            return date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
        d = date.fromisoformat(item.strip())
    except ValueError:
        return None
    return d, d
