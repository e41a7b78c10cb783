"""Recompute a bag's completeness report (完整性报告) from the bag alone, with CaseTrail's standards.

The stand-alone ``verify.py`` cannot do this (it ships without the recording standards
and the working-day calendar); ``casetrail verify`` can. The export writes the exact
assessment input into ``casetrail/case.json`` (``completeness_facts``, and in
``agency_calendar`` the agency calendar years the server assessed with) — itself bound to
the signed log by the ``exported`` event. Here each fact record is checked against the
bag (every stored original is one record, with the stage, record type, officers and
``av_reason`` of its signed capture manifest), the report is assessed again under the
pinned standard on the day it was first assessed, and compared with
``casetrail/completeness.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from core.calendar import CalendarYear, WorkingCalendar
from core.completeness import (
    CaseFacts,
    DeadlineCheck,
    Interruption,
    MediaKind,
    RecordFact,
    StageReached,
    Waiver,
    assess,
)
from core.errors import CoreError
from core.standards import load_standard
from core.verify import BagFiles, CanonicalJSONError, Problem, parse_json


def facts_json(facts: CaseFacts) -> dict[str, Any]:
    """JSON form of the assessment input (dates ISO, enums by value)."""
    return {
        "category": facts.category,
        "standard_version": facts.standard_version,
        "stages_reached": [
            {"stage": s.stage, "entered": s.entered.isoformat()} for s in facts.stages_reached
        ],
        "conditions": sorted(facts.conditions),
        "records": [
            {
                "record_id": r.record_id,
                "stage": r.stage,
                "record_type": r.record_type,
                "media": r.media.value,
                "officers": list(r.officers),
                "credentials_shown": r.credentials_shown,
                "interruptions": [
                    {
                        "at": i.at.isoformat(),
                        "reason": i.reason,
                        "resumption_note": i.resumption_note,
                    }
                    for i in r.interruptions
                ],
                "av_reason": r.av_reason,
            }
            for r in facts.records
        ],
        "waivers": [
            {
                "stage": w.stage,
                "item": w.item,
                "by": w.by,
                "reason": w.reason,
                "at": w.at.isoformat(),
            }
            for w in facts.waivers
        ],
        "deadlines": [
            {
                "rule_id": d.rule_id,
                "start": d.start.isoformat(),
                "done_on": d.done_on.isoformat() if d.done_on else None,
                "extended": d.extended,
            }
            for d in facts.deadlines
        ],
    }


def calendar_json(calendar: WorkingCalendar) -> list[dict[str, Any]]:
    """The agency years of ``calendar`` as the bag carries them (``case.json``).

    The bundled years come with ``chinese_calendar``; the agency years (from
    ``CASETRAIL_CALENDAR_FILE``) exist only on the server that assessed the case, so the
    bag carries them for ``casetrail verify`` to assess it again with the same calendar.
    """
    return [
        {
            "year": y.year,
            "source": y.source,
            "holidays": sorted(d.isoformat() for d in y.holidays),
            "working_days": sorted(d.isoformat() for d in y.working_days),
        }
        for y in calendar.agency_years
    ]


def calendar_from_json(years: Sequence[Mapping[str, Any]]) -> WorkingCalendar:
    """Inverse of :func:`calendar_json` (the bundled calendar plus those years)."""
    return WorkingCalendar(
        CalendarYear(
            int(y["year"]),
            frozenset(date.fromisoformat(d) for d in y["holidays"]),
            frozenset(date.fromisoformat(d) for d in y["working_days"]),
            str(y["source"]),
        )
        for y in years
    )


def facts_from_json(d: Mapping[str, Any]) -> CaseFacts:
    """Inverse of :func:`facts_json`; KeyError/ValueError/TypeError when malformed."""
    return CaseFacts(
        category=d["category"],
        standard_version=d["standard_version"],
        stages_reached=tuple(
            StageReached(s["stage"], date.fromisoformat(s["entered"])) for s in d["stages_reached"]
        ),
        conditions=frozenset(d["conditions"]),
        records=tuple(
            RecordFact(
                record_id=r["record_id"],
                stage=r["stage"],
                record_type=r["record_type"],
                media=MediaKind(r["media"]),
                officers=tuple(r["officers"]),
                credentials_shown=bool(r["credentials_shown"]),
                interruptions=tuple(
                    Interruption(datetime.fromisoformat(i["at"]), i["reason"], i["resumption_note"])
                    for i in r["interruptions"]
                ),
                av_reason=r["av_reason"],
            )
            for r in d["records"]
        ),
        waivers=tuple(
            Waiver(w["stage"], w["item"], w["by"], w["reason"], date.fromisoformat(w["at"]))
            for w in d["waivers"]
        ),
        deadlines=tuple(
            DeadlineCheck(
                x["rule_id"],
                date.fromisoformat(x["start"]),
                date.fromisoformat(x["done_on"]) if x["done_on"] else None,
                bool(x["extended"]),
            )
            for x in d["deadlines"]
        ),
    )


@dataclass
class Recomputed:
    """Problems found while recomputing, and notes for the reader."""

    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_WHERE = "casetrail/completeness.json"


def _records_match_bag(files: BagFiles, facts: CaseFacts, out: Recomputed) -> None:
    """Every stored original is exactly one record carrying its signed manifest's facts."""
    tsv = (files.read("casetrail/files.tsv") or b"").decode("utf-8", "replace").splitlines()
    header = tsv[0].split("\t") if tsv else []
    rows = [dict(zip(header, line.split("\t"), strict=False)) for line in tsv[1:]]
    signed: dict[str, Mapping[str, Any]] = {}
    for name in files.files:
        if name.startswith("casetrail/manifests/"):
            try:
                m = parse_json(files.read(name) or b"{}").get("manifest", {})
            except (CanonicalJSONError, AttributeError):
                continue
            signed[str(m.get("manifest_id"))] = m
    records = {r.record_id: r for r in facts.records}
    for row in rows:
        if row.get("kind") != "original":
            continue
        record = records.pop(row.get("evidence_id", ""), None)
        m = signed.get(row.get("manifest_id", ""), {})
        if record is None:
            out.problems.append(
                Problem(
                    "completeness_facts_mismatch",
                    row.get("path", "?"),
                    "完整性评估漏掉了此原件 / this original is not a record of the completeness facts",
                )
            )
        elif (record.stage, record.record_type, record.officers, record.av_reason) != (
            m.get("stage"),
            m.get("record_type"),
            tuple(m.get("officers") or ()),
            m.get("av_reason") or "",
        ):
            out.problems.append(
                Problem(
                    "completeness_facts_mismatch",
                    row.get("path", "?"),
                    "评估所用的环节/记录类型/执法证号与签名采集清单不符 / the stage, record type or "
                    "officers used by the assessment differ from the signed capture manifest",
                )
            )
    for record_id in sorted(records):
        out.problems.append(
            Problem(
                "completeness_facts_mismatch",
                f"record {record_id}",
                "完整性评估含有包内不存在的记录 / the assessment counts a record not in the bag",
            )
        )


def recompute_completeness(bag: Path, calendar: WorkingCalendar | None = None) -> Recomputed:
    """Assess the bag's case again and compare with its stored completeness report.

    The working-day calendar is the one the bag carries (``case.json``
    ``agency_calendar``: the bundled years plus the exporting server's agency years)
    unless ``calendar`` is given.
    """
    out = Recomputed()
    files = BagFiles(bag, [])
    try:
        case_raw, report_raw = files.read("casetrail/case.json"), files.read(_WHERE)
        if case_raw is None or report_raw is None:
            out.notes.append(
                "没有完整性报告或案件元数据，未重新计算 / no report or case.json: not recomputed"
            )
            return out
        try:
            case = parse_json(case_raw)
            stored = parse_json(report_raw)
            facts = facts_from_json(case["completeness_facts"])
            standard = load_standard(case["standard"]["id"], case["standard"]["version"])
            assessed_on = date.fromisoformat(stored["assessed_on"])
            if calendar is None:
                calendar = calendar_from_json(case.get("agency_calendar", []))
        except (
            CanonicalJSONError,
            CoreError,
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
        ) as e:
            out.problems.append(
                Problem(
                    "completeness_unverifiable",
                    _WHERE,
                    f"无法重新计算完整性 / cannot recompute completeness: {e}",
                )
            )
            return out
        _records_match_bag(files, facts, out)
        report = assess(standard, facts, today=assessed_on, calendar=calendar)
        fresh = report.to_json()
        for key in ("status", "stages", "findings", "waived", "deadlines"):
            if fresh[key] != stored.get(key):
                out.problems.append(
                    Problem(
                        "completeness_mismatch",
                        f"{_WHERE} {key}",
                        f"重新计算的完整性「{key}」与包内报告不符 / the recomputed report's {key!r} differs "
                        f"from the stored report (recomputed status {fresh['status']!r}, stored "
                        f"{stored.get('status')!r})",
                    )
                )
        if not out.problems:
            out.notes.append(
                f"已按记录标准 {standard.id}@{standard.version} 重新计算完整性，结论一致：{fresh['status']} / "
                f"completeness recomputed under {standard.id}@{standard.version}: matches ({fresh['status']})"
            )
    finally:
        files.close()
    return out
