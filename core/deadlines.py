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
- ``hours`` rules (强制法 Art. 19: report within 24 hours) end on the day the hours run
  out, counted from the start date; they never move.
- ``months`` rules (强制法 Art. 53: three months) end on the same day of the month
  (the month's last day when it has no such day) and move like natural days.
- A natural-day or month deadline whose end lies in a year no calendar covers is still
  given, as the unmoved date with "若遇法定节假日顺延" (``Deadline.holiday_unknown``);
  a working-day deadline there cannot be counted (``CalendarNotCovered`` says what to
  supply).
- ``paused`` periods (行政许可法 Art. 45: 听证、检验检测、专家评审 …, told to the applicant
  in writing) are not counted: a working-day rule skips every working day inside them.
- A rule's ``obligor`` is the agency or the party: a party's deadline that passes
  without the act (no hearing asked for, no payment) lapses; it is not the agency's
  defect.
"""

from __future__ import annotations

import calendar as gregorian
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from types import MappingProxyType

from core.calendar import WorkingCalendar
from core.errors import CalendarNotCovered, DeadlineError, UnknownDeadlineRule
from core.standards.model import LegalBasis


class DayCount(Enum):
    """How a deadline's days are counted."""

    NATURAL = "natural"
    WORKING = "working"
    FIXED_DATE = "fixed_date"
    HOURS = "hours"
    MONTHS = "months"

    @property
    def zh(self) -> str:
        """Chinese label."""
        return {
            "natural": "自然日",
            "working": "工作日",
            "fixed_date": "固定日期",
            "hours": "小时",
            "months": "个月",
        }[self.value]


class Obligor(Enum):
    """Who must act by the deadline."""

    AGENCY = "agency"
    PARTY = "party"
    """当事人: a deadline that passes unused lapses (no hearing, no payment)."""


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
    obligor: Obligor = Obligor.AGENCY

    def describe_zh(self) -> str:
        """E.g. ``作出决定之日起 7 个工作日内`` or ``听证举行之日前 7 个工作日``."""
        if self.count is DayCount.FIXED_DATE:
            return f"{self.start_zh}次年 1 月 31 日前"
        unit = {
            DayCount.WORKING: "个工作日",
            DayCount.HOURS: "小时",
            DayCount.MONTHS: "个月",
        }.get(self.count, "日（自然日）")
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
    holiday_unknown: bool = False
    """The due date lies in a year no calendar covers: 若遇法定节假日顺延."""
    paused_days: int = 0
    """Working days not counted (行政许可法 Art. 45)."""

    @property
    def note_zh(self) -> str:
        """What the reader must know beyond the date (empty when nothing)."""
        notes = []
        if self.holiday_unknown:
            notes.append(
                f"{self.due.year} 年节假日安排尚未载入，若遇法定节假日顺延"
                "（公布后请提供工作日历文件以确定）"
            )
        if self.paused_days:
            notes.append(f"听证、检验检测、专家评审等 {self.paused_days} 个工作日不计入")
        return "；".join(notes)

    def explain_zh(self) -> str:
        """One-line Chinese explanation of the computation."""
        text = f"{self.rule.name_zh}：{self.rule.describe_zh()}"
        if self.extended:
            text += "（已延长）"
        if self.rolled_from is not None:
            text += f"；{self.rolled_from.isoformat()} 为节假日，顺延至 {self.due.isoformat()}"
        if self.note_zh:
            text += f"；{self.note_zh}"
        return text


def _b(law: str, provision: str, note: str = "", verified: bool = True) -> LegalBasis:
    ident = f"{law}-{provision}"
    return LegalBasis(ident, law, provision, note, verified)


_APL = "中华人民共和国行政处罚法"
_ALP = "中华人民共和国行政许可法"
_ACA = "中华人民共和国行政强制法"
_PLAN = "贵州省发展和改革委员会推行行政执法“三项制度”示范创建工作方案"
_APL_85 = _b(_APL, "第八十五条", "“二日”“三日”“五日”“七日”指工作日，不含法定节假日")
_ACA_69 = _b(_ACA, "第六十九条", "十日以内期限的规定是指工作日，不含法定节假日")
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
        obligor=Obligor.PARTY,
        note="当事人的期限：逾期未提出的，视为放弃听证，不是机关的问题。",
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
            _b(
                _ACA,
                "第二十五条第三款",
                "检测、检验、检疫或者技术鉴定的期间不计入，应当明确并书面告知当事人",
            ),
        ),
        extension_days=30,
    ),
    DeadlineRule(
        "preservation-decision",
        "对先行登记保存的证据作出处理决定",
        "Decide on evidence registered and preserved",
        7,
        DayCount.WORKING,
        "先行登记保存之日",
        (_b(_APL, "第五十六条", "先行登记保存的，应当在七日内及时作出处理决定"), _APL_85),
    ),
    DeadlineRule(
        "fine-payment",
        "当事人缴纳罚款",
        "The party pays the fine",
        15,
        DayCount.NATURAL,
        "收到行政处罚决定书之日",
        (
            _b(
                _APL,
                "第六十六条",
                "自收到行政处罚决定书之日起十五日内缴纳罚款；可申请延期或者分期缴纳",
            ),
        ),
        obligor=Obligor.PARTY,
        note="当事人的期限：逾期不缴纳的，可以依照第七十二条加处罚款、申请强制执行。",
    ),
    DeadlineRule(
        "fine-handover",
        "当场收缴的罚款交至行政机关",
        "Hand a fine collected on the spot to the agency",
        2,
        DayCount.WORKING,
        "当场收缴罚款之日",
        (
            _b(
                _APL,
                "第七十一条",
                "执法人员当场收缴的罚款，应当自收缴罚款之日起二日内交至行政机关"
                "（在水上、交通不便地区为抵岸或者到达之日起二日内）；行政机关二日内缴付指定银行",
            ),
            _APL_85,
        ),
    ),
    DeadlineRule(
        "correction-notice",
        "一次告知申请人补正全部内容",
        "Tell the applicant at once everything to correct",
        5,
        DayCount.WORKING,
        "收到申请材料之日",
        (
            _b(
                _ALP,
                "第三十二条第一款第（四）项",
                "申请材料不齐全或者不符合法定形式的，当场或者在五日内一次告知；"
                "逾期不告知的，自收到申请材料之日起即为受理",
            ),
            _ALP_82,
        ),
    ),
    DeadlineRule(
        "licensing-hearing-request",
        "申请人、利害关系人提出听证申请",
        "Applicant or interested party asks for a licensing hearing",
        5,
        DayCount.WORKING,
        "被告知听证权利之日",
        (_b(_ALP, "第四十七条第一款", "被告知听证权利之日起五日内提出听证申请"), _ALP_82),
        obligor=Obligor.PARTY,
        note="当事人的期限：逾期未提出的，视为放弃听证。",
    ),
    DeadlineRule(
        "licensing-hearing-held",
        "组织行政许可听证",
        "Hold the licensing hearing",
        20,
        DayCount.WORKING,
        "收到听证申请之日",
        (_b(_ALP, "第四十七条第一款", "行政机关应当在二十日内组织听证"), _ALP_82),
    ),
    DeadlineRule(
        "urgent-measure-report",
        "当场实施行政强制措施后报告负责人并补办批准手续",
        "Report an on-the-spot coercive measure and obtain approval afterwards",
        24,
        DayCount.HOURS,
        "当场实施行政强制措施之时",
        (
            _b(
                _ACA,
                "第十九条",
                "情况紧急当场实施的，二十四小时内向行政机关负责人报告，并补办批准手续",
            ),
        ),
        note="以小时计，自实施时起算，不因节假日顺延；按日期显示为次日。",
    ),
    DeadlineRule(
        "court-enforcement",
        "申请人民法院强制执行",
        "Apply to the people's court for enforcement",
        3,
        DayCount.MONTHS,
        "当事人申请复议、提起诉讼的法定期限届满之日",
        (
            _b(
                _ACA,
                "第五十三条",
                "没有行政强制执行权的行政机关，可以自期限届满之日起三个月内申请人民法院强制执行",
            ),
        ),
        note="起算日为复议、诉讼期限届满之日，须承办人确定后录入。",
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
    rule_id: str,
    start: date,
    *,
    calendar: WorkingCalendar,
    extended: bool = False,
    paused: Iterable[tuple[date, date]] = (),
) -> Deadline:
    """Compute the deadline of ``rule_id`` counted from ``start``.

    ``extended`` adds the rule's approved extension; ``DeadlineError`` when the rule has
    none. ``paused`` lists periods (first, last day) a working-day rule does not count
    (行政许可法 Art. 45). ``CalendarNotCovered`` when working days would have to be
    counted in a year no calendar covers; a natural-day end there is given unmoved with
    ``holiday_unknown``.
    """
    rule = get_rule(rule_id)
    if extended and rule.extension_days is None:
        raise DeadlineError(
            f"期限 {rule.id}（{rule.name_zh}）不能延长 (this deadline cannot be extended)"
        )
    days = rule.days + ((rule.extension_days or 0) if extended else 0)
    if rule.count is DayCount.FIXED_DATE:
        return Deadline(rule, start, date(start.year + 1, 1, 31), extended)
    if rule.count is DayCount.HOURS:
        return Deadline(rule, start, start + timedelta(days=-(-days // 24)), extended)
    sign = -1 if rule.direction is Direction.BEFORE else 1
    if rule.count is DayCount.WORKING:
        skipped = [(a, b) for a, b in paused if b >= a]
        due, paused_days = _working_days(calendar, start, sign * days, skipped)
        return Deadline(rule, start, due, extended, paused_days=paused_days)
    if rule.count is DayCount.MONTHS:
        last = _add_months(start, sign * days)
    else:
        last = start + timedelta(days=sign * days)
    try:
        moved = calendar.next_working_day(last) if sign > 0 else calendar.previous_working_day(last)
    except CalendarNotCovered:
        return Deadline(rule, start, last, extended, holiday_unknown=True)
    return Deadline(rule, start, moved, extended, None if moved == last else last)


def _working_days(
    calendar: WorkingCalendar, start: date, n: int, paused: list[tuple[date, date]]
) -> tuple[date, int]:
    """The ``n``-th counted working day from ``start``, skipping paused ones; and how many."""
    if not paused:
        return calendar.add_working_days(start, n), 0
    step = timedelta(days=1 if n >= 0 else -1)
    d, remaining, skipped = start, abs(n), 0
    while remaining:
        d += step
        if not calendar.is_working_day(d):
            continue
        if any(a <= d <= b for a, b in paused):
            skipped += 1
        else:
            remaining -= 1
    return d, skipped


def _add_months(start: date, months: int) -> date:
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    last_day = gregorian.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last_day))
