"""The annual statistics report as an XLSX workbook (openpyxl): one sheet per section.

The first sheet (概况) carries the agency, the year, the date the data was taken and the
due date; each section sheet lists its figures with Chinese labels, and the decisions
sheet has a bar chart (a native Excel chart, so it stays editable).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font

from server.services.annual_report import PUBLICATION_ZH, AnnualReport

SECTION_ZH = {
    "cases": "案件",
    "decisions": "执法决定",
    "penalties": "行政处罚",
    "hearings": "听证",
    "legal_reviews": "法制审核",
    "publication": "信息公开",
    "completeness": "全过程记录",
    "evidence": "证据",
    "fixity": "固定性核验",
}

LABELS_ZH = {
    "opened": "立案数",
    "closed": "结案数",
    "total": "合计",
    "fine_total_yuan": "罚款总额（元）",
    "held": "举行听证后作出的决定",
    "eligible": "属于听证范围的决定",
    "passed": "审核通过",
    "returned": "审核退回",
    "decisions": "作出决定数",
    "complete": "决定时记录完整",
    "incomplete": "决定时记录不完整",
    "not_checked": "决定前未做完整性检查",
    "files": "原始证据文件数",
    "bytes": "原始证据字节数",
    "ok": "核验通过",
    "failed": "核验失败",
    "missing": "原件缺失",
    **PUBLICATION_ZH,
}


GROUPS_ZH = {
    "opened_by_category": "按类别立案",
    "by_category": "按类别",
    "by_outcome": "按决定类型",
    "by_category_outcome": "按类别和决定类型",
    "by_type": "按处罚种类",
    "fine_bands": "罚款金额分布",
    "by_kind": "按文件类型",
}

VALUES_ZH = {
    "penalty": "处罚",
    "no-penalty": "不予处罚",
    "warning": "警告",
    "grant": "准予许可",
    "refuse": "不予许可",
    "rectify": "责令整改",
    "no-violation": "未发现违法",
    "seizure": "查封扣押",
    "release": "解除强制措施",
    "document": "文书",
    "photo": "照片",
    "audio": "录音",
    "video": "录像",
    "other": "其他",
}
"""Chinese names of decision types and evidence kinds the system knows; others show as given."""


def label_zh(value: str) -> str:
    """``grant`` → ``准予许可 (grant)``; unknown values unchanged."""
    return f"{VALUES_ZH[value]} ({value})" if value in VALUES_ZH else value


def section_rows(section: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(group, label, value) rows of a section; nested figures become their own groups."""
    rows: list[tuple[str, str, Any]] = []
    for key, value in section.items():
        group = GROUPS_ZH.get(key, key)
        if isinstance(value, dict):
            rows += [(group, label_zh(str(k)), v) for k, v in value.items()]
        elif isinstance(value, list):
            rows += [(group, f"{c} · {label_zh(o)}", n) for c, o, n in value]
        else:
            rows.append(("", LABELS_ZH.get(key, key), value))
    return rows


def write_xlsx(report: AnnualReport, target: str | Path | IO[bytes]) -> None:
    """Write the workbook to a path or a binary stream."""
    book = Workbook()
    summary = book.active
    assert summary is not None
    summary.title = "概况"
    data = report.to_json()
    summary.append([f"{report.agency} {report.year} 年度行政执法统计年报"])
    summary["A1"].font = Font(bold=True, size=14)
    summary.append(["机关代码", report.agency_code])
    summary.append(["统计年度", report.year])
    summary.append(["数据截至", data["as_of"]])
    summary.append(["公开期限", data["due_on"]])
    summary.column_dimensions["A"].width = 16
    summary.column_dimensions["B"].width = 30
    for name, section in report.sections.items():
        sheet = book.create_sheet(SECTION_ZH.get(name, name))
        sheet.append(["分组", "项目", "数值"])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in section_rows(section):
            sheet.append(list(row))
        sheet.column_dimensions["A"].width = 18
        sheet.column_dimensions["B"].width = 28
        sheet.column_dimensions["C"].width = 16
        if name == "decisions" and section["by_category"]:
            count = len(section["by_category"])
            bar = BarChart()
            bar.title = "执法决定（按类别）"
            bar.add_data(
                Reference(sheet, min_col=3, min_row=2, max_row=1 + count), titles_from_data=False
            )
            bar.set_categories(Reference(sheet, min_col=2, min_row=2, max_row=1 + count))
            bar.legend = None
            sheet.add_chart(bar, "E2")
    book.save(target)
