"""A 2027 agency calendar file for tests (invented dates: the 2027 schedule is not out)."""

from __future__ import annotations

from pathlib import Path

CALENDAR_2027 = """\
schema = 1
source = "测试数据：国务院办公厅关于2027年部分节假日安排的通知（国办发明电〔2026〕99号，虚构）"

[years.2027]
holidays = [
  "2027-01-01..2027-01-03",
  "2027-02-05..2027-02-12",
  "2027-04-03..2027-04-05",
  "2027-05-01..2027-05-05",
  "2027-06-09",
  "2027-09-15",
  "2027-10-01..2027-10-07",
]
working_days = ["2027-01-31", "2027-02-20", "2027-04-25", "2027-05-08", "2027-09-26", "2027-10-09"]
"""


def calendar_2027(directory: Path) -> Path:
    """Write the test 2027 calendar file into ``directory`` and return its path."""
    path = directory / "calendar-2027.toml"
    path.write_text(CALENDAR_2027, encoding="utf-8")
    return path
