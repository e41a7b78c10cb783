"""Completeness (完整性) of a case against its pinned recording standard.

``assess(standard, facts, today=…, calendar=…)`` answers the reviewer's question: what
does this case still lack, and which legal deadline is running out? It returns EVERY
finding, never only the first. The JSON form is documented in
``docs/completeness-report.md``.

Which stages are assessed ("due"):

- a ``required`` stage once it or any later stage is reached;
- a ``conditional`` stage once it is reached, or when its condition holds and a later
  stage is reached;
- an ``optional`` stage only once it is reached.

A stage counts as reached when ``CaseFacts.stages_reached`` lists it or a record was
filed under it. In a due stage every required record type must be present, and every
conditional one whose condition holds. Audio-video: a ``full`` stage needs an
audio/video record; a ``disputed`` stage needs one or a record carrying ``av_reason``;
a ``recommended`` stage without one gets advice only. On-site stages: every record names
at least ``min_officers`` distinct 执法证号, and at least one record of the stage notes
that credentials were shown (亮证 happens once, at the start of the action). Every
interruption of any record carries a reason and a resumption note.

A written record type (…笔录) filed only as audio or video files is a finding: a
recording does not replace the written, signed 笔录.

:func:`capture_sanity` gives the findings that need facts an exported case file does not
carry yet (so they stay out of ``assess``, whose report a bag recomputes offline): an
officer on a capture who is not an active inspector of the case's agency
(``CaseFacts.registered_officers``), and — under a standard's ``daytime_working_days``
rule (行政强制法 Art. 43) — a record of an execution stage captured at night (22:00–6:00,
China time) or on a statutory holiday (``RecordFact.captured_at``).

Findings have a severity: ``defect`` (makes the case incomplete unless waived) or
``advice`` (shown, never changes the status). A waiver (stage + item, who, why, when)
turns a matching defect into a waived item; a waiver that matches nothing is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Any

from core.calendar import WorkingCalendar
from core.deadlines import DEADLINE_RULES, Obligor, due_date
from core.errors import CalendarNotCovered, DeadlineError, StandardError
from core.standards.model import (
    AVLevel,
    LegalBasis,
    RecordingStandard,
    RecordType,
    Requirement,
    RuleCheck,
    Stage,
)

REPORT_SCHEMA = "casetrail.completeness/1"
_CHINA = timezone(timedelta(hours=8))
AV_ITEM = "audio-video"
CREDENTIALS_ITEM = "credentials"


class MediaKind(Enum):
    """What a record is (文书、照片、录音、录像、其他)."""

    DOCUMENT = "document"
    PHOTO = "photo"
    AUDIO = "audio"
    VIDEO = "video"
    OTHER = "other"

    @property
    def is_av(self) -> bool:
        """Audio or video (音像记录)."""
        return self in (MediaKind.AUDIO, MediaKind.VIDEO)


@dataclass(frozen=True)
class Interruption:
    """A break in a recording (中断): when, why, and how it resumed."""

    at: datetime
    reason: str
    resumption_note: str


@dataclass(frozen=True)
class RecordFact:
    """One record of a case as the assessment sees it."""

    record_id: str
    stage: str
    record_type: str | None
    """Record type id of the standard (e.g. ``inquiry-record``); None for plain media."""
    media: MediaKind
    officers: tuple[str, ...] = ()
    """执法证号 of the officers present."""
    credentials_shown: bool = False
    interruptions: tuple[Interruption, ...] = ()
    av_reason: str = ""
    """Why no audio-video was made (for ``disputed`` stages)."""
    captured_on: date | None = None
    """The capture date (China), to judge whether an officer was active then."""
    captured_at: datetime | None = None
    """The aware capture time (行政强制法 Art. 43: not at night, not on a holiday)."""


@dataclass(frozen=True)
class StageReached:
    """A stage the case entered, and when."""

    stage: str
    entered: date


@dataclass(frozen=True)
class Waiver:
    """A reviewer's decision to accept a missing item (豁免): what, by whom, why, when.

    ``item`` is the finding's item: a record type id, ``audio-video``, ``credentials``,
    a record id (officers, interruptions) or a deadline rule id (with ``stage`` None).
    """

    stage: str | None
    item: str
    by: str
    reason: str
    at: date


@dataclass(frozen=True)
class DeadlineCheck:
    """A legal deadline running in this case: rule, start date, whether and when done."""

    rule_id: str
    start: date
    done_on: date | None = None
    extended: bool = False
    paused: tuple[tuple[date, date], ...] = ()
    """Periods not counted (行政许可法 Art. 45: hearing, testing, expert review)."""


@dataclass(frozen=True)
class CaseFacts:
    """What the assessment needs to know about a case."""

    category: str
    standard_version: str
    stages_reached: tuple[StageReached, ...] = ()
    conditions: frozenset[str] = frozenset()
    records: tuple[RecordFact, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    deadlines: tuple[DeadlineCheck, ...] = ()
    registered_officers: Mapping[str, date | None] | None = None
    """执法证号 of the agency's inspectors → the day they were deactivated (None: active).
    None: the register is not known and officers are not checked against it."""


class Severity(Enum):
    """``defect`` makes a case incomplete; ``advice`` never changes the status."""

    DEFECT = "defect"
    ADVICE = "advice"


class Status(Enum):
    """Overall status of a case or a stage."""

    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    COMPLETE_WITH_WAIVERS = "complete_with_waivers"
    NOT_DUE = "not_due"
    """A stage not assessed (not reached, or its condition does not hold)."""

    @property
    def zh(self) -> str:
        """Chinese label."""
        return {
            "complete": "完整",
            "incomplete": "不完整",
            "complete_with_waivers": "完整（含豁免项）",
            "not_due": "未到该环节",
        }[self.value]


@dataclass(frozen=True)
class Finding:
    """One thing wrong (or advised) with a case."""

    code: str
    severity: Severity
    stage: str | None
    item: str
    message_zh: str
    basis: tuple[LegalBasis, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The finding as in the report's ``findings[]``."""
        return _finding_json(self)


@dataclass(frozen=True)
class WaivedFinding:
    """A defect accepted by a waiver."""

    finding: Finding
    waiver: Waiver


@dataclass(frozen=True)
class StageResult:
    """One stage of the standard in the report."""

    stage: str
    name_zh: str
    status: Status
    entered: date | None = None


@dataclass(frozen=True)
class DeadlineResult:
    """A deadline as assessed: due date (None when not computable) and state."""

    rule_id: str
    start: date
    due: date | None
    state: str
    """``done``, ``done_late``, ``running``, ``due_soon``, ``overdue``, ``lapsed`` (a
    party's deadline passed unused) or ``not_computable``."""
    done_on: date | None = None
    extended: bool = False
    rolled_from: date | None = None
    note: str = ""
    """What else the reader must know: 若遇法定节假日顺延, days not counted, what to supply."""


@dataclass(frozen=True)
class CompletenessReport:
    """Every finding of a case against its standard, and the overall status."""

    standard_id: str
    standard_version: str
    assessed_on: date
    status: Status
    stages: tuple[StageResult, ...]
    findings: tuple[Finding, ...]
    waived: tuple[WaivedFinding, ...] = ()
    deadlines: tuple[DeadlineResult, ...] = ()

    @property
    def defects(self) -> tuple[Finding, ...]:
        """Findings that make the case incomplete."""
        return tuple(f for f in self.findings if f.severity is Severity.DEFECT)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (``docs/completeness-report.md``)."""
        return {
            "schema": REPORT_SCHEMA,
            "standard": {"id": self.standard_id, "version": self.standard_version},
            "assessed_on": self.assessed_on.isoformat(),
            "status": self.status.value,
            "stages": [
                {
                    "id": s.stage,
                    "name_zh": s.name_zh,
                    "status": s.status.value,
                    "entered": _iso(s.entered),
                }
                for s in self.stages
            ],
            "findings": [_finding_json(f) for f in self.findings],
            "waived": [
                {"finding": _finding_json(w.finding), "waiver": _waiver_json(w.waiver)}
                for w in self.waived
            ],
            "deadlines": [
                {
                    "rule": d.rule_id,
                    "start": d.start.isoformat(),
                    "due": _iso(d.due),
                    "state": d.state,
                    "done_on": _iso(d.done_on),
                    "extended": d.extended,
                    "rolled_from": _iso(d.rolled_from),
                    "note": d.note,
                }
                for d in self.deadlines
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CompletenessReport:
        """Rebuild a report from ``to_json()`` output; ``ValueError`` on another schema."""
        if data.get("schema") != REPORT_SCHEMA:
            raise ValueError(
                f"不是 {REPORT_SCHEMA} 格式的完整性报告 (unsupported schema {data.get('schema')!r})"
            )
        return cls(
            standard_id=data["standard"]["id"],
            standard_version=data["standard"]["version"],
            assessed_on=date.fromisoformat(data["assessed_on"]),
            status=Status(data["status"]),
            stages=tuple(
                StageResult(s["id"], s["name_zh"], Status(s["status"]), _date(s["entered"]))
                for s in data["stages"]
            ),
            findings=tuple(_finding_from(f) for f in data["findings"]),
            waived=tuple(
                WaivedFinding(_finding_from(w["finding"]), _waiver_from(w["waiver"]))
                for w in data["waived"]
            ),
            deadlines=tuple(
                DeadlineResult(
                    d["rule"],
                    date.fromisoformat(d["start"]),
                    _date(d["due"]),
                    d["state"],
                    _date(d["done_on"]),
                    bool(d["extended"]),
                    _date(d["rolled_from"]),
                    d.get("note", ""),
                )
                for d in data["deadlines"]
            ),
        )


def assess(
    standard: RecordingStandard,
    facts: CaseFacts,
    *,
    today: date,
    calendar: WorkingCalendar,
    due_soon_days: int = 3,
) -> CompletenessReport:
    """Assess a case against its pinned standard; every finding is reported.

    ``due_soon_days``: a running deadline within that many natural days gets a
    ``deadline_due_soon`` advice. Raises ``StandardError`` when ``standard`` is not the
    one the case pins (id = category, version = standard_version).
    """
    if (standard.id, standard.version) != (facts.category, facts.standard_version):
        raise StandardError(
            f"案件使用标准 {facts.category} {facts.standard_version}，不能用 "
            f"{standard.id} {standard.version} 评估 (the case pins another standard version)"
        )
    a = _Assessment(standard, facts)
    stages = a.stages()
    a.interruptions()
    deadlines = a.deadlines(today, calendar, due_soon_days)
    findings, waived = a.apply_waivers()
    if any(f.severity is Severity.DEFECT for f in findings):
        status = Status.INCOMPLETE
    elif waived:
        status = Status.COMPLETE_WITH_WAIVERS
    else:
        status = Status.COMPLETE
    stage_results = tuple(_stage_status(s, findings, waived) for s in stages)
    return CompletenessReport(
        standard.id,
        standard.version,
        today,
        status,
        stage_results,
        tuple(findings),
        tuple(waived),
        tuple(deadlines),
    )


def _stage_status(
    s: StageResult, findings: list[Finding], waived: list[WaivedFinding]
) -> StageResult:
    if s.status is Status.NOT_DUE:
        return s
    if any(f.stage == s.stage and f.severity is Severity.DEFECT for f in findings):
        status = Status.INCOMPLETE
    elif any(w.finding.stage == s.stage for w in waived):
        status = Status.COMPLETE_WITH_WAIVERS
    else:
        status = Status.COMPLETE
    return StageResult(s.stage, s.name_zh, status, s.entered)


class _Assessment:
    def __init__(self, standard: RecordingStandard, facts: CaseFacts) -> None:
        self.standard = standard
        self.facts = facts
        self.findings: list[Finding] = []

    def add(
        self,
        code: str,
        stage: str | None,
        item: str,
        message: str,
        basis: Iterable[LegalBasis] = (),
        severity: Severity = Severity.DEFECT,
    ) -> None:
        self.findings.append(Finding(code, severity, stage, item, message, tuple(basis)))

    def stages(self) -> list[StageResult]:
        std, facts = self.standard, self.facts
        entered: dict[str, date] = {}
        for reached in facts.stages_reached:
            if std.stage(reached.stage) is None:
                self.add(
                    "unknown_stage",
                    reached.stage,
                    reached.stage,
                    f"案件进入的环节 {reached.stage!r} 不在标准 {std.id} {std.version} 中",
                )
            else:
                entered.setdefault(reached.stage, reached.entered)
        by_stage: dict[str, list[RecordFact]] = {}
        for rec in facts.records:
            stage = std.stage(rec.stage)
            if stage is None:
                self.add(
                    "unknown_stage",
                    rec.stage,
                    rec.record_id,
                    f"记录 {rec.record_id} 归入的环节 {rec.stage!r} 不在标准 {std.id} {std.version} 中",
                )
                continue
            by_stage.setdefault(rec.stage, []).append(rec)
            if rec.record_type is not None and stage.record(rec.record_type) is None:
                self.add(
                    "unknown_record_type",
                    rec.stage,
                    rec.record_id,
                    f"记录 {rec.record_id} 的类型 {rec.record_type!r} 不属于「{stage.name_zh}」环节",
                )
        reached_ids = set(entered) | set(by_stage)
        furthest = max((std.stage_index(s) for s in reached_ids), default=-1)
        results = []
        for index, stage in enumerate(std.stages):
            is_reached = stage.id in reached_ids
            later = furthest > index
            holds = stage.condition is not None and stage.condition.id in facts.conditions
            if stage.requirement is Requirement.REQUIRED:
                due = is_reached or later
            elif stage.requirement is Requirement.CONDITIONAL:
                due = is_reached or (holds and later)
            else:
                due = is_reached
            if due:
                self.stage(stage, by_stage.get(stage.id, []))
            status = Status.COMPLETE if due else Status.NOT_DUE
            results.append(StageResult(stage.id, stage.name_zh, status, entered.get(stage.id)))
        return results

    def stage(self, stage: Stage, records: list[RecordFact]) -> None:
        conditions = self.facts.conditions
        present = {r.record_type for r in records}
        for rt in stage.records:
            if rt.id in present or not _needed(rt, conditions):
                continue
            why = f"（适用条件：{rt.condition.description_zh}）" if rt.condition else ""
            self.add(
                "missing_record",
                stage.id,
                rt.id,
                f"「{stage.name_zh}」环节缺少{rt.name_zh}{why}",
                rt.basis,
            )
        has_av = any(r.media.is_av for r in records)
        if stage.av is AVLevel.FULL and not has_av:
            self.add(
                "missing_av",
                stage.id,
                AV_ITEM,
                f"「{stage.name_zh}」环节须全程音像记录，但没有录音录像",
                stage.av_basis,
            )
        elif stage.av is AVLevel.DISPUTED and not has_av:
            if not any(r.av_reason.strip() for r in records):
                self.add(
                    "av_neither_recording_nor_reason",
                    stage.id,
                    AV_ITEM,
                    f"「{stage.name_zh}」环节既没有录音录像，也没有记录未录的理由",
                    stage.av_basis,
                )
        elif stage.av is AVLevel.RECOMMENDED and not has_av:
            self.add(
                "av_recommended",
                stage.id,
                AV_ITEM,
                f"「{stage.name_zh}」环节建议音像记录（本案没有）",
                stage.av_basis,
                Severity.ADVICE,
            )
        if stage.on_site:
            self.on_site(stage, records)
        else:
            self.credentials_at_service(stage, records)
        for rt in stage.records:
            typed = [r for r in records if r.record_type == rt.id]
            if "笔录" in rt.name_zh and typed and all(r.media.is_av for r in typed):
                self.add(
                    "written_record_only_av",
                    stage.id,
                    rt.id,
                    f"「{stage.name_zh}」的{rt.name_zh}只有录音录像文件（{len(typed)} 个），"
                    "没有笔录文书：音像记录不能代替书面笔录",
                    rt.basis,
                )

    def unregistered(self, rec: RecordFact) -> list[str]:
        """The record's 执法证号 that are not active inspectors of the agency (when known)."""
        register = self.facts.registered_officers
        if register is None:
            return []
        out = []
        for cert in sorted({o.strip() for o in rec.officers if o.strip()}):
            if cert not in register:
                out.append(cert)
                continue
            gone = register[cert]
            if gone is not None and (rec.captured_on is None or gone <= rec.captured_on):
                out.append(cert)
        return out

    def officers(self) -> None:
        register = self.facts.registered_officers
        if register is None:
            return
        rule = self.standard.rule(RuleCheck.MIN_OFFICERS)
        for rec in self.facts.records:
            if self.standard.stage(rec.stage) is None:
                continue
            for cert in self.unregistered(rec):
                why = "已停用" if cert in register else "不是本机关登记的执法人员"
                self.add(
                    "unregistered_officer",
                    rec.stage,
                    rec.record_id,
                    f"记录 {rec.record_id} 所列执法证号 {cert} {why}，"
                    "不能作为执法人员计入（执法人员须持证上岗）",
                    rule.basis if rule is not None else (),
                )

    def on_site(self, stage: Stage, records: list[RecordFact]) -> None:
        officers_rule = self.standard.rule(RuleCheck.MIN_OFFICERS)
        if officers_rule is not None:
            for rec in records:
                ids = sorted({o.strip() for o in rec.officers if o.strip()})
                if len(ids) < officers_rule.min_officers:
                    named = "、".join(ids) if ids else "无"
                    self.add(
                        "too_few_officers",
                        stage.id,
                        rec.record_id,
                        f"「{stage.name_zh}」记录 {rec.record_id} 只有 {len(ids)} 名执法人员"
                        f"（执法证号：{named}），现场执法须不少于 {officers_rule.min_officers} 人",
                        officers_rule.basis,
                    )
        credentials_rule = self.standard.rule(RuleCheck.CREDENTIALS_SHOWN)
        if (
            credentials_rule is not None
            and records
            and not any(r.credentials_shown for r in records)
        ):
            self.add(
                "credentials_not_shown",
                stage.id,
                CREDENTIALS_ITEM,
                f"「{stage.name_zh}」环节没有记录出示执法证件（亮证执法）",
                credentials_rule.basis,
            )

    def execution_times(self, calendar: WorkingCalendar) -> None:
        rule = self.standard.rule(RuleCheck.DAYTIME_WORKING_DAYS)
        if rule is None:
            return
        for rec in self.facts.records:
            if rec.stage not in rule.stages or rec.captured_at is None:
                continue
            local = rec.captured_at.astimezone(_CHINA)
            why = []
            if local.hour >= 22 or local.hour < 6:
                why.append("夜间")
            try:
                if calendar.is_statutory_holiday(local.date()):
                    why.append("法定节假日")
            except CalendarNotCovered:
                pass  # no schedule for that year: a holiday cannot be told
            if why:
                stage = self.standard.stage(rec.stage)
                name = stage.name_zh if stage else rec.stage
                self.add(
                    "execution_at_night_or_holiday",
                    rec.stage,
                    rec.record_id,
                    f"「{name}」记录 {rec.record_id} 摄于 {local:%Y-%m-%d %H:%M}（{'、'.join(why)}）："
                    "不得在夜间或者法定节假日实施行政强制执行；情况紧急的，须由审核人员说明理由豁免",
                    rule.basis,
                )

    def credentials_at_service(self, stage: Stage, records: list[RecordFact]) -> None:
        rule = self.standard.rule(RuleCheck.CREDENTIALS_SHOWN)
        if rule is None or stage.id not in rule.stages or not records:
            return
        if not any(r.credentials_shown for r in records):
            self.add(
                "credentials_not_recorded",
                stage.id,
                CREDENTIALS_ITEM,
                f"「{stage.name_zh}」环节没有记录出示执法证件：直接送达、留置送达执法文书时"
                "应主动出示执法证件、亮明身份（邮寄、公告送达除外）",
                rule.basis,
                Severity.ADVICE,
            )

    def interruptions(self) -> None:
        rule = self.standard.rule(RuleCheck.INTERRUPTIONS_EXPLAINED)
        if rule is None:
            return
        for rec in self.facts.records:
            for n, gap in enumerate(rec.interruptions, start=1):
                when = gap.at.isoformat(sep=" ", timespec="minutes")
                if not gap.reason.strip():
                    self.add(
                        "interruption_without_reason",
                        rec.stage,
                        rec.record_id,
                        f"记录 {rec.record_id} 第 {n} 次中断（{when}）没有说明原因",
                        rule.basis,
                    )
                if not gap.resumption_note.strip():
                    self.add(
                        "interruption_without_resumption_note",
                        rec.stage,
                        rec.record_id,
                        f"记录 {rec.record_id} 第 {n} 次中断（{when}）没有记录恢复情况",
                        rule.basis,
                    )

    def deadlines(
        self, today: date, calendar: WorkingCalendar, due_soon_days: int
    ) -> list[DeadlineResult]:
        results, findings = deadline_results(
            self.facts.deadlines, today=today, calendar=calendar, due_soon_days=due_soon_days
        )
        self.findings.extend(findings)
        return results

    def apply_waivers(self) -> tuple[list[Finding], list[WaivedFinding]]:
        findings = list(self.findings)
        waived: list[WaivedFinding] = []
        for w in self.facts.waivers:
            if not w.by.strip() or not w.reason.strip():
                findings.append(
                    Finding(
                        "waiver_incomplete",
                        Severity.DEFECT,
                        w.stage,
                        w.item,
                        f"豁免 {w.item} 没有写明决定人或理由，不予采用",
                    )
                )
                continue
            matched = [
                f
                for f in findings
                if f.severity is Severity.DEFECT and f.stage == w.stage and f.item == w.item
            ]
            if not matched:
                findings.append(
                    Finding(
                        "waiver_unmatched",
                        Severity.ADVICE,
                        w.stage,
                        w.item,
                        f"豁免 {w.item}（{w.stage or '全案'}）没有对应的问题，未起作用",
                    )
                )
                continue
            for f in matched:
                findings.remove(f)
                waived.append(WaivedFinding(f, w))
        return findings, waived


def deadline_results(
    checks: Iterable[DeadlineCheck],
    *,
    today: date,
    calendar: WorkingCalendar,
    due_soon_days: int = 3,
) -> tuple[list[DeadlineResult], list[Finding]]:
    """Each clock's due date and state on ``today``, and the findings they give.

    A clock whose end lies beyond every calendar is ``not_computable`` for working-day
    rules (the note says what to supply); natural-day ones carry 若遇法定节假日顺延.
    """
    out: list[DeadlineResult] = []
    findings: list[Finding] = []

    def add(
        code: str,
        stage: str | None,
        item: str,
        message: str,
        basis: Iterable[LegalBasis] = (),
        severity: Severity = Severity.DEFECT,
    ) -> None:
        findings.append(Finding(code, severity, stage, item, message, tuple(basis)))

    for check in checks:
        rule = DEADLINE_RULES.get(check.rule_id)
        if rule is None:
            add(
                "unknown_deadline_rule",
                None,
                check.rule_id,
                f"未知的期限规则 {check.rule_id!r}；可用：{', '.join(DEADLINE_RULES)}",
            )
            continue
        try:
            d = due_date(
                check.rule_id,
                check.start,
                calendar=calendar,
                extended=check.extended,
                paused=check.paused,
            )
        except (CalendarNotCovered, DeadlineError) as exc:
            add(
                "deadline_not_computable",
                None,
                rule.id,
                f"无法计算「{rule.name_zh}」期限：{exc.message}",
                rule.basis,
            )
            out.append(
                DeadlineResult(
                    rule.id,
                    check.start,
                    None,
                    "not_computable",
                    check.done_on,
                    check.extended,
                    note=exc.message,
                )
            )
            continue
        due = d.due
        what = f"「{rule.name_zh}」（{rule.describe_zh()}，起算日 {check.start.isoformat()}）"
        if check.done_on is not None:
            late = (check.done_on - due).days
            state = "done_late" if late > 0 else "done"
            if late > 0:
                add(
                    "deadline_missed",
                    None,
                    rule.id,
                    f"{what}应于 {due.isoformat()} 前完成，实际 {check.done_on.isoformat()} 完成，"
                    f"逾期 {late} 日",
                    rule.basis,
                )
        elif today > due and rule.obligor is Obligor.PARTY:
            state = "lapsed"
            add(
                "deadline_lapsed",
                None,
                rule.id,
                f"{what}已于 {due.isoformat()} 届满，当事人未在期限内行使或履行"
                f"（{rule.note or '当事人的期限'}）",
                rule.basis,
                Severity.ADVICE,
            )
        elif today > due:
            state = "overdue"
            add(
                "deadline_overdue",
                None,
                rule.id,
                f"{what}已于 {due.isoformat()} 到期，至今未完成（已逾期 {(today - due).days} 日）",
                rule.basis,
            )
        elif (due - today).days <= due_soon_days:
            state = "due_soon"
            add(
                "deadline_due_soon",
                None,
                rule.id,
                f"{what}将于 {due.isoformat()} 到期（还剩 {(due - today).days} 日）",
                rule.basis,
                Severity.ADVICE,
            )
        else:
            state = "running"
        out.append(
            DeadlineResult(
                rule.id,
                check.start,
                due,
                state,
                check.done_on,
                check.extended,
                d.rolled_from,
                d.note_zh,
            )
        )
    return out, findings


def capture_sanity(
    standard: RecordingStandard, facts: CaseFacts, *, calendar: WorkingCalendar
) -> tuple[Finding, ...]:
    """Officers not registered or not active, and executions at night or on holidays.

    Defects a reviewer should see beside the report (see the module docstring); they do
    not change the report's status.
    """
    a = _Assessment(standard, facts)
    a.officers()
    a.execution_times(calendar)
    return tuple(a.findings)


def _needed(rt: RecordType, conditions: frozenset[str]) -> bool:
    if rt.requirement is Requirement.REQUIRED:
        return True
    if rt.requirement is Requirement.CONDITIONAL:
        return rt.condition is not None and rt.condition.id in conditions
    return False


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _basis_json(b: LegalBasis) -> dict[str, Any]:
    return {
        "id": b.id,
        "law": b.law,
        "provision": b.provision,
        "note": b.note,
        "verified": b.verified,
        "cite": b.cite(),
    }


def _finding_json(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "severity": f.severity.value,
        "stage": f.stage,
        "item": f.item,
        "message_zh": f.message_zh,
        "basis": [_basis_json(b) for b in f.basis],
    }


def _finding_from(d: Mapping[str, Any]) -> Finding:
    return Finding(
        d["code"],
        Severity(d["severity"]),
        d["stage"],
        d["item"],
        d["message_zh"],
        tuple(
            LegalBasis(b["id"], b["law"], b["provision"], b["note"], b["verified"])
            for b in d["basis"]
        ),
    )


def _waiver_json(w: Waiver) -> dict[str, Any]:
    return {
        "stage": w.stage,
        "item": w.item,
        "by": w.by,
        "reason": w.reason,
        "at": w.at.isoformat(),
    }


def _waiver_from(d: Mapping[str, Any]) -> Waiver:
    return Waiver(d["stage"], d["item"], d["by"], d["reason"], date.fromisoformat(d["at"]))
