"""Legal deadlines (法定期限) of administrative enforcement, on the working-day calendar.

How a deadline is counted (one rule for all, documented in ``docs/completeness-report.md``):

- The start day is not counted (期间开始的日，不计算在期间内): "N days from D" ends on
  D + N.
- ``working`` days count only working days of the official calendar, 调休 Saturdays
  included. The laws say which short periods are working days: 行政处罚法 Art. 85
  (二日、三日、五日、七日 are working days), 行政许可法 Art. 82 (every licensing period),
  行政强制法 Art. 69 (periods of ten days or less).
- ``natural`` days count every calendar day; when the last day is a statutory holiday or
  a rest day, the deadline moves to the first working day after it
  (期间届满的最后一日是法定节假日的，以节假日后的第一日为期间届满的日期 — 民事诉讼法
  Art. 85, applied in administrative practice). ``Deadline.rolled_from`` keeps the
  unmoved date.
- ``before`` rules count backwards from an event (the hearing notice must be served
  seven working days before the hearing): the due date is the last day the act may be
  done; a backward natural-day date that falls on a holiday moves to the working day
  before it.
- ``fixed_date`` rules fall on a calendar date (annual statistics by 31 January of the
  next year) and do not move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from types import MappingProxyType

from core.calendar import WorkingCalendar
from core.errors import DeadlineError, UnknownDeadlineRule
from core.standards.model import LegalBasis


class DayCount(Enum):
    """How a deadline's days are counted."""

    NATURAL = "natural"
    WORKING = "working"
    FIXED_DATE = "fixed_date"

    @property
    def zh(self) -> str:
        """Chinese label."""
        return {"natural": "自然日", "working": "工作日", "fixed_date": "固定日期"}[self.value]


class Direction(Enum):
    """Whether the deadline runs after its start date or ends before an event."""

    AFTER = "after"
    BEFORE = "before"


@dataclass(frozen=True)
class DeadlineRule:
    """One legal deadline: length, counting, start event, extension, basis."""

    id: str
    name_zh: str
    name_en: str
    days: int
    count: DayCount
    start_zh: str
    """What the start date is (e.g. 作出决定之日; for ``before`` rules the event date)."""
    basis: tuple[LegalBasis, ...]
    direction: Direction = Direction.AFTER
    extension_days: int | None = None
    """Days added by an approved extension; None when the rule cannot be extended."""
    note: str = ""

    @property
    def extensible(self) -> bool:
        """Whether an approved extension (延期) exists."""
        return self.extension_days is not None

    def describe_zh(self) -> str:
        """E.g. ``作出决定之日起 7 个工作日内`` or ``听证举行之日前 7 个工作日``."""
        if self.count is DayCount.FIXED_DATE:
            return f"{self.start_zh}次年 1 月 31 日前"
        unit = "个工作日" if self.count is DayCount.WORKING else "日（自然日）"
        if self.direction is Direction.BEFORE:
            return f"{self.start_zh}前 {self.days} {unit}"
        text = f"{self.start_zh}起 {self.days} {unit}内"
        if self.extension_days is not None:
            ext_unit = "个工作日" if self.count is DayCount.WORKING else "日"
            text += f"，经批准可延长 {self.extension_days} {ext_unit}"
        return text


@dataclass(frozen=True)
class Deadline:
    """A computed deadline: the rule, the start, the due date, how it was reached."""

    rule: DeadlineRule
    start: date
    due: date
    extended: bool = False
    rolled_from: date | None = None
    """The unmoved last day when a natural-day deadline ended on a holiday."""

    def explain_zh(self) -> str:
        """One-line Chinese explanation of the computation."""
        text = f"{self.rule.name_zh}：{self.rule.describe_zh()}"
        if self.extended:
            text += "（已延长）"
        if self.rolled_from is not None:
            text += f"；{self.rolled_from.isoformat()} 为节假日，顺延至 {self.due.isoformat()}"
        return text


def _b(law: str, provision: str, note: str = "", verified: bool = True) -> LegalBasis:
    ident = f"{law}-{provision}"
    return LegalBasis(ident, law, provision, note, verified)


_APL = "中华人民共和国行政处罚法"
_ALP = "中华人民共和国行政许可法"
_ACA = "中华人民共和国行政强制法"
_PLAN = "贵州省发展和改革委员会推行行政执法“三项制度”示范创建工作方案"
_APL_85 = _b(_APL, "第八十五条", "“二日”“三日”“五日”“七日”指工作日，不含法定节假日")
_ALP_82 = _b(_ALP, "第八十二条", "实施行政许可的期限以工作日计算，不含法定节假日")

_RULES = (
    DeadlineRule(
        "publish-licensing-penalty",
        "公开行政许可、行政处罚决定信息",
        "Publish licensing and penalty decisions",
        7,
        DayCount.WORKING,
        "作出执法决定之日",
        (_b(_PLAN, "二、（一）3", "行政许可、行政处罚执法决定信息7个工作日内公开"),),
    ),
    DeadlineRule(
        "publish-other",
        "公开其他执法决定信息（执法机关、对象、类别、结论）",
        "Publish other enforcement decisions (agency, party, category, conclusion)",
        20,
        DayCount.WORKING,
        "作出执法决定之日",
        (_b(_PLAN, "二、（一）3", "执法决定作出之日起20个工作日内公布"),),
    ),
    DeadlineRule(
        "withdraw-publication",
        "撤回已公开的被变更、撤销的行政处罚决定信息",
        "Withdraw a published penalty decision that was changed or revoked",
        3,
        DayCount.WORKING,
        "处罚决定被变更、撤销、确认违法或无效之日",
        (_b(_APL, "第四十八条", "三日内撤回并公开说明理由"), _APL_85),
    ),
    DeadlineRule(
        "penalty-decision",
        "作出行政处罚决定",
        "Penalty decision after the case is filed",
        90,
        DayCount.NATURAL,
        "立案之日",
        (
            _b(_APL, "第六十条", "立案之日起九十日内作出决定；法律、法规、规章另有规定的从其规定"),
            _b(
                "市场监督管理行政处罚程序规定",
                "第六十四条",
                "经负责人批准可延长三十日（部门规章，各部门不同）",
                verified=False,
            ),
        ),
        extension_days=30,
        note="延长期限由部门规章规定，默认按市场监管规定延长30日；请按本部门规定核对。",
    ),
    DeadlineRule(
        "serve-absent-party",
        "当事人不在场时送达行政处罚决定书",
        "Serve a penalty decision when the party was absent",
        7,
        DayCount.WORKING,
        "作出行政处罚决定之日",
        (_b(_APL, "第六十一条", "当事人不在场的，七日内依照民事诉讼法送达"), _APL_85),
    ),
    DeadlineRule(
        "hearing-request",
        "当事人提出听证申请",
        "Party asks for a hearing after the notice",
        5,
        DayCount.WORKING,
        "告知听证权利之日",
        (_b(_APL, "第六十四条第（一）项", "告知后五日内提出"), _APL_85),
    ),
    DeadlineRule(
        "hearing-notice",
        "通知当事人听证时间、地点",
        "Notify the party of the hearing",
        7,
        DayCount.WORKING,
        "举行听证之日",
        (_b(_APL, "第六十四条第（二）项", "举行听证的七日前通知"), _APL_85),
        direction=Direction.BEFORE,
    ),
    DeadlineRule(
        "licensing-decision",
        "作出行政许可决定",
        "Licensing decision after acceptance",
        20,
        DayCount.WORKING,
        "受理之日",
        (
            _b(_ALP, "第四十二条", "二十日内作出决定，经本机关负责人批准可延长十日"),
            _ALP_82,
            _b(_ALP, "第四十五条", "听证、检验检测、专家评审等所需时间不计入"),
        ),
        extension_days=10,
        note="听证、招标、检验检测、专家评审等时间不计算在内：以其结束之日作为起算日另行核算。",
    ),
    DeadlineRule(
        "licence-issue",
        "颁发、送达行政许可证件",
        "Issue the licence after a grant",
        10,
        DayCount.WORKING,
        "作出准予行政许可决定之日",
        (_b(_ALP, "第四十四条", "十日内颁发、送达证件"), _ALP_82),
    ),
    DeadlineRule(
        "seizure-duration",
        "查封、扣押期限",
        "Seal-up / seizure duration",
        30,
        DayCount.NATURAL,
        "实施查封、扣押之日",
        (
            _b(
                _ACA,
                "第二十五条",
                "不得超过三十日；情况复杂的经批准可以延长，延长期限不得超过三十日",
            ),
            _b(_ACA, "第六十九条", "十日以内期限指工作日；三十日为自然日"),
        ),
        extension_days=30,
    ),
    DeadlineRule(
        "annual-statistics",
        "公开上年度行政执法统计年报",
        "Publish the annual enforcement statistics",
        0,
        DayCount.FIXED_DATE,
        "统计年度",
        (_b(_PLAN, "二、（一）3", "每年1月31日前公开本机关上年度行政执法总体情况数据"),),
        note="起算日取统计年度内任一日；期限为次年1月31日，不因节假日顺延。",
    ),
)

DEADLINE_RULES: MappingProxyType[str, DeadlineRule] = MappingProxyType({r.id: r for r in _RULES})
"""Every deadline rule by id, in the order shown to users."""


def get_rule(rule_id: str) -> DeadlineRule:
    """The rule with that id; ``UnknownDeadlineRule`` lists the known ids otherwise."""
    try:
        return DEADLINE_RULES[rule_id]
    except KeyError:
        raise UnknownDeadlineRule(
            f"没有期限规则 {rule_id!r} (unknown deadline rule); 可用 known: "
            + ", ".join(DEADLINE_RULES)
        ) from None


def due_date(
    rule_id: str, start: date, *, calendar: WorkingCalendar, extended: bool = False
) -> Deadline:
    """Compute the deadline of ``rule_id`` counted from ``start``.

    ``extended`` adds the rule's approved extension; ``DeadlineError`` when the rule has
    none. ``CalendarNotCovered`` when the counting reaches a year no calendar covers.
    """
    rule = get_rule(rule_id)
    if extended and rule.extension_days is None:
        raise DeadlineError(
            f"期限 {rule.id}（{rule.name_zh}）不能延长 (this deadline cannot be extended)"
        )
    days = rule.days + ((rule.extension_days or 0) if extended else 0)
    if rule.count is DayCount.FIXED_DATE:
        return Deadline(rule, start, date(start.year + 1, 1, 31), extended)
    sign = -1 if rule.direction is Direction.BEFORE else 1
    if rule.count is DayCount.WORKING:
        return Deadline(rule, start, calendar.add_working_days(start, sign * days), extended)
    last = start + timedelta(days=sign * days)
    moved = calendar.next_working_day(last) if sign > 0 else calendar.previous_working_day(last)
    return Deadline(rule, start, moved, extended, None if moved == last else last)
