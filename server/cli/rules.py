"""`casetrail standards …` and `casetrail deadline …`: the recording rules for agency staff.

Exit codes: 0 done; 1 the input was read but is invalid or cannot be answered (a broken
standard or calendar file, a year no calendar covers); 2 usage errors (unknown id, bad
date, missing argument).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from core.calendar import WorkingCalendar
from core.deadlines import (
    DEADLINE_RULES,
    DayCount,
    Deadline,
    DeadlineRule,
    Direction,
    Obligor,
    due_date,
    get_rule,
)
from core.errors import (
    CalendarFileInvalid,
    CalendarNotCovered,
    CoreError,
    DeadlineError,
    StandardInvalid,
    UnknownDeadlineRule,
    UnknownStandard,
)
from core.legal_review import PartyKind, default_catalogue
from core.procedure import GATES, default_thresholds
from core.standards import (
    AVLevel,
    LegalBasis,
    RecordingStandard,
    Requirement,
    list_standards,
    load_standard,
    load_standard_file,
)

WEEKDAYS_ZH = "一二三四五六日"
OBLIGOR_ZH = {
    Obligor.AGENCY: "行政机关 agency",
    Obligor.PARTY: "当事人 party（逾期未行使即届满，不是机关的问题）",
}


def _fail(message: str, problems: tuple[str, ...] = (), code: int = 1) -> None:
    click.echo(f"错误 Error: {message}", err=True)
    for p in problems:
        click.echo(f"  - {p}", err=True)
    raise SystemExit(code)


def _cites(bases: tuple[LegalBasis, ...], *, full: bool = False) -> str:
    return "；".join(b.cite() if full else b.short() for b in bases) or "—"


def _day(d: date) -> str:
    return f"{d.isoformat()}（星期{WEEKDAYS_ZH[d.weekday()]}）"


@click.group("standards")
def standards() -> None:
    """记录标准：列出、查看、校验 (recording standards: list, show, check)."""


@standards.command("list")
def standards_list() -> None:
    """列出内置记录标准 (list the shipped recording standards)."""
    rows = list_standards()
    width = max(len(s.id) for s in rows)
    click.echo(f"{'id'.ljust(width)}  版本 version  名称 name")
    for s in rows:
        older = [v for v in s.versions if v != s.version]
        extra = f"  （另有旧版 also: {', '.join(older)}）" if older else ""
        click.echo(f"{s.id.ljust(width)}  {s.version.ljust(12)}  {s.name_zh} — {s.name_en}{extra}")


@standards.command("show")
@click.argument("standard_id")
@click.option("--version", "version", help="指定版本 (a pinned version, e.g. 2026.1)")
@click.option("--json", "as_json", is_flag=True, help="输出 JSON (machine-readable)")
def standards_show(standard_id: str, version: str | None, as_json: bool) -> None:
    """查看一个记录标准 (show one recording standard)."""
    try:
        std = load_standard(standard_id, version)
    except UnknownStandard as exc:
        _fail(
            exc.message + "；用 `casetrail standards list` 查看 (see `casetrail standards list`)",
            code=2,
        )
        return
    if as_json:
        click.echo(json.dumps(std.to_json(), ensure_ascii=False, indent=2))
        return
    _print_standard(std)


def _print_standard(std: RecordingStandard) -> None:
    click.echo(f"{std.name_zh}（{std.name_en}）")
    click.echo(f"id {std.id}  版本 version {std.version}")
    ret = std.retention
    click.echo(
        f"保管期限 retention: 案卷 {ret.case_file_zh()}；非证据音像 {ret.av_non_evidence_months} 个月"
        f"  依据 {_cites(ret.basis)}"
    )
    if ret.note:
        click.echo(f"  {ret.note}")
    click.echo("\n通用规则 common rules:")
    for rule in std.common_rules:
        click.echo(f"  · {rule.name_zh}（{rule.name_en}）")
        click.echo(f"      依据 basis: {_cites(rule.basis)}")
    click.echo("\n环节 stages:")
    for n, stage in enumerate(std.stages, start=1):
        when = _requirement_zh(
            stage.requirement, stage.condition.description_zh if stage.condition else ""
        )
        site = "；现场执法（≥2人、亮证）" if stage.on_site else ""
        click.echo(f"{n:>2}. {stage.name_zh}（{stage.name_en}） [{stage.id}]  {when}{site}")
        av = f"音像 AV: {stage.av.zh} ({stage.av.value})"
        if stage.av is not AVLevel.NONE:
            av += f"  依据 {_cites(stage.av_basis)}"
        click.echo(f"      {av}")
        click.echo(f"      环节依据 basis: {_cites(stage.basis)}")
        for rec in stage.records:
            cond = rec.condition.description_zh if rec.condition else ""
            click.echo(
                f"      - {rec.name_zh} [{rec.id}]  {_requirement_zh(rec.requirement, cond)}"
                f"  依据 {_cites(rec.basis)}"
            )
    _print_gates(std)


def _print_gates(std: RecordingStandard) -> None:
    gates = [g for g in GATES if std.id in g.categories or "*" in g.categories]
    thresholds = default_thresholds()
    click.echo("\n决定前的法定程序 procedure gates (decision refused until met):")
    for gate in gates:
        click.echo(f"  · {gate.name_zh} [{gate.code}]")
        click.echo(f"      依据 basis: {_cites(gate.basis)}")
    if std.id == "penalty":
        for entry in thresholds.entries:
            click.echo(
                f"  · 听证较大数额 [{entry.id}]（适用 {', '.join(sorted(entry.applies_to))}）："
                f"罚款 公民 {entry.fine_yuan[PartyKind.INDIVIDUAL]} 元 / 组织 "
                f"{entry.fine_yuan[PartyKind.ORGANISATION]} 元；没收 公民 "
                f"{entry.confiscation_yuan[PartyKind.INDIVIDUAL]} 元 / 组织 "
                f"{entry.confiscation_yuan[PartyKind.ORGANISATION]} 元"
            )
            click.echo(f"      依据 basis: {_cites(entry.basis)}")
    catalogue = default_catalogue()
    entries = [e for e in catalogue.entries if e.category in ("*", std.id)]
    if entries:
        click.echo(f"\n法制审核目录 review catalogue（{catalogue.name_zh} {catalogue.version}）:")
        for e in entries:
            click.echo(f"  · {e.name_zh} [{e.id}]  依据 {_cites(e.basis)}")


def _requirement_zh(req: Requirement, condition: str) -> str:
    if req is Requirement.CONDITIONAL:
        return f"视情形：{condition}"
    return req.zh


@standards.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def standards_check(file: Path) -> None:
    """校验一个记录标准文件，列出全部问题 (validate a standard file; list every problem)."""
    try:
        std = load_standard_file(file)
    except StandardInvalid as exc:
        _fail(exc.message, exc.problems)
        return
    n_records = sum(len(s.records) for s in std.stages)
    click.echo(
        f"OK {file}: {std.id} {std.version} {std.name_zh} — {len(std.stages)} 个环节 stages，"
        f"{n_records} 种记录 record types，{len(std.common_rules)} 条通用规则 common rules"
    )


@click.command("deadline")
@click.argument("rule_id", required=False)
@click.argument("start", metavar="[START_DATE]", required=False)
@click.option(
    "--calendar",
    "calendars",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CASETRAIL_CALENDAR_FILE",
    help="机关工作日历文件，可多次指定 (agency calendar file; repeatable; env CASETRAIL_CALENDAR_FILE)",
)
@click.option(
    "--extended", is_flag=True, help="按批准延长后的期限计算 (with the approved extension)"
)
@click.option(
    "--list", "show_list", is_flag=True, help="列出全部期限规则 (list every deadline rule)"
)
def deadline(
    rule_id: str | None,
    start: str | None,
    calendars: tuple[Path, ...],
    extended: bool,
    show_list: bool,
) -> None:
    """计算法定期限的到期日 (compute a legal deadline's due date).

    例 e.g.: casetrail deadline publish-licensing-penalty 2025-09-30
    """
    if show_list:
        try:
            _print_rules(WorkingCalendar.from_files(calendars))
        except CalendarFileInvalid as exc:
            _fail(exc.message + "；格式见 docs/calendar-file.md", exc.problems)
        return
    if rule_id is None or start is None:
        raise click.UsageError(
            "需要期限规则和起算日，例如 casetrail deadline penalty-decision 2025-09-30；"
            "用 --list 查看规则 (give RULE_ID and START_DATE, or --list)"
        )
    try:
        start_date = date.fromisoformat(start)
    except ValueError:
        raise click.BadParameter(
            f"{start!r} 不是日期，应为 YYYY-MM-DD，如 2025-09-30 (date must be YYYY-MM-DD)",
            param_hint="START_DATE",
        ) from None
    try:
        get_rule(rule_id)
    except UnknownDeadlineRule as exc:
        _fail(exc.message + "；用 --list 查看 (see --list)", code=2)
    try:
        calendar = WorkingCalendar.from_files(calendars)
        result = due_date(rule_id, start_date, calendar=calendar, extended=extended)
    except CalendarFileInvalid as exc:
        _fail(exc.message + "；格式见 docs/calendar-file.md", exc.problems)
        return
    except CalendarNotCovered as exc:
        _fail(exc.message)
        return
    except DeadlineError as exc:
        _fail(exc.message, code=2)
        return
    except CoreError as exc:  # pragma: no cover - every core error is one of the above
        _fail(exc.message)
        return
    _print_deadline(result, calendar)


def _print_deadline(d: Deadline, calendar: WorkingCalendar) -> None:
    rule = d.rule
    click.echo(f"{rule.name_zh}（{rule.name_en}） [{rule.id}]")
    label = "事件日 event" if rule.direction is Direction.BEFORE else "起算日 start"
    click.echo(f"  {label}:  {_day(d.start)}")
    click.echo(f"  到期日 due:    {_day(d.due)}")
    count = f"{rule.describe_zh()}（{rule.count.zh} {rule.count.value}）"
    if d.extended:
        count += "，含批准延长 extended"
    click.echo(f"  计算 counting: {count}")
    if d.rolled_from is not None:
        click.echo(
            f"  顺延 moved:    期间最后一日 {_day(d.rolled_from)} 为节假日，"
            "以节假日后的第一个工作日为到期日 (last day was a holiday)"
        )
    if d.note_zh:
        click.echo(f"  注意 mind:     {d.note_zh}")
    click.echo(f"  依据 basis:    {_cites(rule.basis, full=True)}")
    click.echo(f"  义务人 who:    {OBLIGOR_ZH[rule.obligor]}")
    if rule.note:
        click.echo(f"  说明 note:     {rule.note}")
    if rule.count is not DayCount.FIXED_DATE:
        years = sorted({d.start.year, d.due.year})
        sources = "；".join(
            f"{y}: {calendar.source_of(y) if calendar.covers(y) else '未载入 not covered'}"
            for y in years
        )
        click.echo(f"  日历 calendar: {sources}")


def _print_rules(calendar: WorkingCalendar) -> None:
    for rule in DEADLINE_RULES.values():
        _print_rule(rule)
    click.echo("工作日历 calendars（来源 sources）:")
    for line in calendar.describe_sources():
        click.echo(f"  {line}")


def _print_rule(rule: DeadlineRule) -> None:
    ext = f"可延长 +{rule.extension_days}" if rule.extension_days is not None else "不可延长"
    click.echo(f"{rule.id}")
    click.echo(f"  {rule.name_zh}（{rule.name_en}）")
    click.echo(f"  {rule.describe_zh()} · {rule.count.zh} {rule.count.value} · {ext}")
    click.echo(f"  依据 basis: {_cites(rule.basis, full=True)}")
    click.echo(f"  义务人 who: {OBLIGOR_ZH[rule.obligor]}")


COMMANDS: list[click.Command] = [standards, deadline]
