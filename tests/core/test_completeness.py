"""Completeness: per category, a complete case and cases each missing one kind of item.

Complete cases are built from the standard's own data (every stage reached, every
condition holding, so every conditional item is due); each defect case then removes one
kind of item and asserts the EXACT set of findings — every one, not the first.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from core.calendar import WorkingCalendar
from core.completeness import (
    AV_ITEM,
    CREDENTIALS_ITEM,
    REPORT_SCHEMA,
    CaseFacts,
    CompletenessReport,
    DeadlineCheck,
    Finding,
    Interruption,
    MediaKind,
    RecordFact,
    Severity,
    StageReached,
    Status,
    Waiver,
    assess,
    capture_sanity,
)
from core.errors import StandardError
from core.standards import AVLevel, RecordingStandard, RuleCheck, load_standard

CATEGORIES = ["coercion", "confirmation", "inspection", "licensing", "penalty", "penalty-simple"]
CAL = WorkingCalendar()
TODAY = date(2025, 11, 3)
OFFICERS = ("52010012345", "52010067890")


def complete_case(std: RecordingStandard) -> CaseFacts:
    """Every stage reached, every condition true, every record present, AV everywhere."""
    conditions = frozenset(c.id for c in std.conditions)
    records: list[RecordFact] = []
    for n, stage in enumerate(std.stages):
        for rt in stage.records:
            records.append(
                RecordFact(
                    f"{stage.id}/{rt.id}",
                    stage.id,
                    rt.id,
                    MediaKind.DOCUMENT,
                    OFFICERS,
                    credentials_shown=True,
                )
            )
        if stage.av is not AVLevel.NONE:
            records.append(
                RecordFact(
                    f"{stage.id}/video",
                    stage.id,
                    None,
                    MediaKind.VIDEO,
                    OFFICERS,
                    credentials_shown=True,
                    interruptions=(
                        Interruption(
                            datetime(2025, 10, 9, 10, n % 60), "电池更换", "更换后继续录制"
                        ),
                    ),
                )
            )
    reached = tuple(StageReached(s.id, date(2025, 10, 9)) for s in std.stages)
    return CaseFacts(std.id, std.version, reached, conditions, tuple(records))


def keys(report: CompletenessReport) -> set[tuple[str, str | None, str]]:
    return {(f.code, f.stage, f.item) for f in report.findings}


def run(std: RecordingStandard, facts: CaseFacts) -> CompletenessReport:
    return assess(std, facts, today=TODAY, calendar=CAL)


@pytest.fixture(params=CATEGORIES)
def std(request: pytest.FixtureRequest) -> RecordingStandard:
    return load_standard(request.param)


def test_a_complete_case_is_complete(std):
    report = run(std, complete_case(std))
    assert report.findings == ()
    assert report.status is Status.COMPLETE
    assert all(s.status is Status.COMPLETE for s in report.stages)


def test_every_missing_record_is_reported(std):
    facts = complete_case(std)
    # drop the first record type of every stage (required or conditional: all are due here)
    dropped = {(s.id, s.records[0].id) for s in std.stages if s.records}
    due = {(s, r) for s, r in dropped if std.stage(s).records[0].requirement.value != "optional"}
    kept = tuple(r for r in facts.records if (r.stage, r.record_type) not in dropped)
    report = run(std, replace(facts, records=kept))
    assert keys(report) == {("missing_record", s, r) for s, r in due}
    assert report.status is Status.INCOMPLETE
    assert all(f.basis for f in report.findings)


def test_every_missing_audio_video_is_reported_by_level(std):
    facts = complete_case(std)
    kept = tuple(r for r in facts.records if not r.media.is_av)
    report = run(std, replace(facts, records=kept))
    code = {
        AVLevel.FULL: "missing_av",
        AVLevel.DISPUTED: "av_neither_recording_nor_reason",
        AVLevel.RECOMMENDED: "av_recommended",
    }
    expected = {(code[s.av], s.id, AV_ITEM) for s in std.stages if s.av is not AVLevel.NONE}
    assert keys(report) == expected
    advice = {f.stage for f in report.findings if f.severity is Severity.ADVICE}
    assert advice == {s.id for s in std.stages if s.av is AVLevel.RECOMMENDED}


def test_a_recorded_reason_covers_disputed_stages_but_not_full_ones(std):
    facts = complete_case(std)
    kept = tuple(
        replace(r, av_reason="当事人拒绝录像，已在笔录中注明")
        for r in facts.records
        if not r.media.is_av
    )
    report = run(std, replace(facts, records=kept))
    assert {f.code for f in report.findings} <= {"missing_av", "av_recommended"}
    assert {f.stage for f in report.findings if f.code == "missing_av"} == {
        s.id for s in std.stages if s.av is AVLevel.FULL
    }


def test_every_on_site_record_with_one_officer_is_reported(std):
    facts = complete_case(std)
    single = tuple(replace(r, officers=(OFFICERS[0], f" {OFFICERS[0]} ")) for r in facts.records)
    report = run(std, replace(facts, records=single))
    on_site = {s.id for s in std.stages if s.on_site}
    expected = {("too_few_officers", r.stage, r.record_id) for r in single if r.stage in on_site}
    assert expected, "every category has an on-site stage"
    assert keys(report) == expected
    assert "只有 1 名执法人员" in report.findings[0].message_zh


def test_every_on_site_stage_without_credentials_shown_is_reported(std):
    facts = complete_case(std)
    hidden = tuple(replace(r, credentials_shown=False) for r in facts.records)
    report = run(std, replace(facts, records=hidden))
    expected = {("credentials_not_shown", s.id, CREDENTIALS_ITEM) for s in std.stages if s.on_site}
    # 送达 is not on site, but 亮证 is expected there too (118号 二、（五）): advice only
    rule = std.rule(RuleCheck.CREDENTIALS_SHOWN)
    service = set(rule.stages) if rule is not None else set()
    expected |= {("credentials_not_recorded", s, CREDENTIALS_ITEM) for s in service}
    assert keys(report) == expected
    advice = {f.stage for f in report.findings if f.severity is Severity.ADVICE}
    assert advice == service
    assert std.id not in ("penalty", "licensing") or service


def test_every_unexplained_interruption_is_reported(std):
    facts = complete_case(std)
    gap = Interruption(datetime(2025, 10, 9, 11, 0), "", "")
    broken = tuple(
        replace(r, interruptions=r.interruptions + (gap,)) if r.media.is_av else r
        for r in facts.records
    )
    report = run(std, replace(facts, records=broken))
    av_records = [r for r in broken if r.media.is_av]
    expected = {("interruption_without_reason", r.stage, r.record_id) for r in av_records} | {
        ("interruption_without_resumption_note", r.stage, r.record_id) for r in av_records
    }
    assert keys(report) == expected
    assert "第 2 次中断" in report.findings[0].message_zh


def test_every_overdue_deadline_is_reported_alongside_other_findings(std):
    facts = complete_case(std)
    deadlines = (
        DeadlineCheck("publish-other", date(2025, 9, 1)),  # due 2025-09-29, not done
        DeadlineCheck("annual-statistics", date(2024, 5, 1)),  # due 2025-01-31, not done
        DeadlineCheck("publish-licensing-penalty", date(2025, 9, 30), done_on=date(2025, 10, 20)),
        DeadlineCheck("licence-issue", date(2025, 10, 28)),  # due 2025-11-11: running
        DeadlineCheck("hearing-request", date(2025, 10, 29)),  # due 2025-11-05: due soon
    )
    records = facts.records[1:]
    report = run(std, replace(facts, records=records, deadlines=deadlines))
    found = keys(report)
    assert ("deadline_overdue", None, "publish-other") in found
    assert ("deadline_overdue", None, "annual-statistics") in found
    assert ("deadline_missed", None, "publish-licensing-penalty") in found
    assert ("deadline_due_soon", None, "hearing-request") in found
    assert not any(item == "licence-issue" for _, _, item in found)
    first = facts.records[0]
    assert ("missing_record", first.stage, first.record_type) in found
    states = {d.rule_id: d.state for d in report.deadlines}
    assert states == {
        "publish-other": "overdue",
        "annual-statistics": "overdue",
        "publish-licensing-penalty": "done_late",
        "licence-issue": "running",
        "hearing-request": "due_soon",
    }


def test_stages_not_yet_reached_are_not_due():
    std = load_standard("penalty")
    facts = CaseFacts(
        "penalty",
        std.version,
        (
            StageReached("case-source", date(2025, 10, 9)),
            StageReached("filing", date(2025, 10, 10)),
        ),
        frozenset({"hearing_requested"}),
        (
            RecordFact("r1", "case-source", "case-source-register", MediaKind.DOCUMENT),
            RecordFact("r2", "filing", "filing-approval", MediaKind.DOCUMENT),
        ),
    )
    report = run(std, facts)
    assert keys(report) == {("av_recommended", "case-source", AV_ITEM)}
    assert report.status is Status.COMPLETE
    statuses = {s.stage: s.status for s in report.stages}
    assert statuses["filing"] is Status.COMPLETE
    assert statuses["hearing"] is Status.NOT_DUE
    assert statuses["decision"] is Status.NOT_DUE


def test_a_skipped_required_stage_and_a_conditional_one_are_reported_when_passed():
    std = load_standard("penalty")
    facts = CaseFacts(
        "penalty",
        std.version,
        (StageReached("decision", date(2025, 10, 20)),),
        frozenset({"hearing_requested"}),
        (
            RecordFact("d1", "decision", "decision-approval", MediaKind.DOCUMENT),
            RecordFact("d2", "decision", "decision-document", MediaKind.DOCUMENT),
        ),
    )
    found = keys(run(std, facts))
    assert ("missing_record", "filing", "filing-approval") in found
    assert ("missing_record", "hearing", "hearing-transcript") in found
    assert ("av_neither_recording_nor_reason", "hearing", AV_ITEM) in found
    assert not any(stage == "legal-review" for _, stage, _ in found)  # major_case does not hold
    assert not any(stage == "site-inspection" for _, stage, _ in found)  # optional, not reached


def test_waivers_turn_defects_into_waived_items_with_who_and_why():
    std = load_standard("coercion")
    facts = complete_case(std)
    kept = tuple(r for r in facts.records if not (r.stage == "seizure" and r.media.is_av))
    waiver = Waiver(
        "seizure", AV_ITEM, "张三（法制科）", "执法记录仪故障，已有见证人签名", date(2025, 10, 10)
    )
    report = run(std, replace(facts, records=kept, waivers=(waiver,)))
    assert report.findings == ()
    assert report.status is Status.COMPLETE_WITH_WAIVERS
    assert [(w.finding.code, w.waiver.by, w.waiver.reason) for w in report.waived] == [
        ("missing_av", "张三（法制科）", "执法记录仪故障，已有见证人签名")
    ]
    seizure = next(s for s in report.stages if s.stage == "seizure")
    assert seizure.status is Status.COMPLETE_WITH_WAIVERS


def test_a_waiver_without_a_reason_does_not_waive_and_a_stray_waiver_is_reported():
    std = load_standard("coercion")
    facts = complete_case(std)
    kept = tuple(r for r in facts.records if not (r.stage == "seizure" and r.media.is_av))
    waivers = (
        Waiver("seizure", AV_ITEM, "张三", " ", date(2025, 10, 10)),
        Waiver("demolition", "no-such-item", "李四", "误填", date(2025, 10, 10)),
    )
    report = run(std, replace(facts, records=kept, waivers=waivers))
    assert keys(report) == {
        ("missing_av", "seizure", AV_ITEM),
        ("waiver_incomplete", "seizure", AV_ITEM),
        ("waiver_unmatched", "demolition", "no-such-item"),
    }
    assert report.status is Status.INCOMPLETE


def test_unknown_stages_record_types_and_rules_are_reported_not_ignored():
    std = load_standard("inspection")
    facts = CaseFacts(
        "inspection",
        std.version,
        (StageReached("inspect", date(2025, 10, 9)),),
        records=(RecordFact("x1", "approval", "approval-form", MediaKind.DOCUMENT),),
        deadlines=(DeadlineCheck("publish-soon", date(2025, 10, 9)),),
    )
    found = keys(run(std, facts))
    assert ("unknown_stage", "inspect", "inspect") in found
    assert ("unknown_record_type", "approval", "x1") in found
    assert ("unknown_deadline_rule", None, "publish-soon") in found
    assert ("missing_record", "approval", "inspection-approval") in found


def test_a_deadline_in_an_uncovered_year_is_a_finding_not_a_crash():
    std = load_standard("penalty-simple")
    facts = replace(
        complete_case(std), deadlines=(DeadlineCheck("publish-other", date(2026, 12, 20)),)
    )
    report = assess(std, facts, today=date(2026, 12, 21), calendar=CAL)
    [finding] = report.findings
    assert finding.code == "deadline_not_computable"
    assert "CASETRAIL_CALENDAR_FILE" in finding.message_zh
    assert report.deadlines[0].state == "not_computable"


def test_the_report_must_match_the_pinned_standard():
    std = load_standard("penalty")
    with pytest.raises(StandardError, match="2025.1"):
        run(std, CaseFacts("penalty", "2025.1"))


def test_the_json_form_is_stable_and_round_trips():
    std = load_standard("penalty")
    facts = complete_case(std)
    kept = tuple(r for r in facts.records if r.record_type != "hearing-notice")
    waiver = Waiver("filing", "filing-approval", "王五", "原件在档案室", date(2025, 10, 30))
    facts = replace(
        facts,
        records=tuple(r for r in kept if r.record_type != "filing-approval"),
        waivers=(waiver,),
        deadlines=(DeadlineCheck("penalty-decision", date(2025, 7, 3)),),
    )
    report = run(std, facts)
    data = report.to_json()
    assert data["schema"] == REPORT_SCHEMA == "casetrail.completeness/1"
    assert data["status"] == "incomplete"
    assert data["standard"] == {"id": "penalty", "version": "2026.2"}
    assert {f["code"] for f in data["findings"]} == {"missing_record", "deadline_overdue"}
    assert data["waived"][0]["waiver"]["by"] == "王五"
    assert data["deadlines"][0] == {
        "rule": "penalty-decision",
        "start": "2025-07-03",
        "due": "2025-10-09",
        "state": "overdue",
        "done_on": None,
        "extended": False,
        "rolled_from": "2025-10-01",
        "note": "",
    }
    text = json.dumps(data, ensure_ascii=False)
    assert CompletenessReport.from_json(json.loads(text)) == report
    with pytest.raises(ValueError, match="schema"):
        CompletenessReport.from_json({**data, "schema": "other/9"})


def test_an_officer_not_registered_or_deactivated_is_a_capture_finding():
    std = load_standard("penalty")
    facts = complete_case(std)
    site = next(r for r in facts.records if r.record_type == "site-inspection-record")
    stranger = replace(site, officers=(OFFICERS[0], "99999999999"), captured_on=date(2025, 10, 9))
    register = {OFFICERS[0]: None, OFFICERS[1]: None}
    records = tuple(stranger if r is site else r for r in facts.records)
    checked = replace(facts, records=records, registered_officers=register)
    [finding] = capture_sanity(std, checked, calendar=CAL)
    assert (finding.code, finding.stage, finding.item) == (
        "unregistered_officer",
        "site-inspection",
        site.record_id,
    )
    assert "99999999999 不是本机关登记的执法人员" in finding.message_zh
    # the report a case file recomputes offline is not changed by it
    assert run(std, checked).findings == ()
    # deactivated before the capture: a finding; deactivated after it: none
    left_early = {**register, OFFICERS[1]: date(2025, 10, 1)}
    early = capture_sanity(std, replace(facts, registered_officers=left_early), calendar=CAL)
    assert early and all("已停用" in f.message_zh for f in early)
    dated = tuple(replace(r, captured_on=date(2025, 9, 30)) for r in facts.records)
    later = replace(facts, records=dated, registered_officers=left_early)
    assert capture_sanity(std, later, calendar=CAL) == ()


def test_a_written_record_filed_only_as_video_is_a_finding():
    std = load_standard("penalty")
    facts = complete_case(std)
    records = tuple(
        replace(r, media=MediaKind.VIDEO) if r.record_type == "inquiry-record" else r
        for r in facts.records
    )
    report = run(std, replace(facts, records=records))
    assert keys(report) == {
        ("written_record_only_av", "inquiry", "inquiry-record"),
        ("written_record_only_av", "inquiry-room", "inquiry-record"),
    }
    assert all("音像记录不能代替书面笔录" in f.message_zh for f in report.findings)
    # a video beside the written 笔录 of the same type is fine
    both = run(std, replace(facts, records=facts.records + records))
    assert both.findings == ()


def test_aca_art43_execution_at_night_or_on_a_statutory_holiday_is_a_capture_finding():
    std = load_standard("coercion")
    facts = complete_case(std)
    cst = timezone(timedelta(hours=8))

    def at(moment: datetime) -> tuple[Finding, ...]:
        records = tuple(
            replace(r, captured_at=moment) if r.stage == "demolition" else r for r in facts.records
        )
        return capture_sanity(std, replace(facts, records=records), calendar=CAL)

    assert at(datetime(2025, 9, 30, 10, 0, tzinfo=cst)) == ()
    # a Saturday that is not a holiday is not forbidden by Art. 43
    assert at(datetime(2025, 9, 27, 10, 0, tzinfo=cst)) == ()
    night = at(datetime(2025, 9, 30, 23, 30, tzinfo=cst))
    holiday = at(datetime(2025, 10, 3, 10, 0, tzinfo=cst))
    demolition = {r.record_id for r in facts.records if r.stage == "demolition"}
    for found, why in ((night, "夜间"), (holiday, "法定节假日")):
        assert {(f.code, f.stage, f.item) for f in found} == {
            ("execution_at_night_or_holiday", "demolition", rid) for rid in demolition
        }
        assert all(why in f.message_zh for f in found)
        assert all(f.basis[0].provision == "第四十三条" for f in found)
    # 2025-09-29T21:59Z is 05:59 China time: night
    assert at(datetime(2025, 9, 29, 21, 59, tzinfo=UTC))
