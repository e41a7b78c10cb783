"""`casetrail standards …` and `casetrail deadline …` as agency staff use them."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli import main
from tests.support.calendars import calendar_2027

EXAMPLE_2027 = Path(__file__).resolve().parents[2] / "docs" / "calendar-2027.example.toml"
SHIPPED = Path(str(resources.files("core.standards")))


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(main, list(args), env=env or {"CASETRAIL_CALENDAR_FILE": ""})

    return invoke


def test_standards_list_shows_every_category_in_chinese(cli):
    result = cli("standards", "list")
    assert result.exit_code == 0
    for sid, name in [
        ("penalty", "行政处罚（一般程序）"),
        ("coercion", "行政强制"),
        ("licensing", "行政许可"),
    ]:
        line = next(li for li in result.output.splitlines() if li.startswith(sid + " "))
        assert "2026.1" in line and name in line


def test_standards_show_prints_stages_records_av_and_basis(cli):
    result = cli("standards", "show", "coercion")
    assert result.exit_code == 0
    out = result.output
    assert "查封／扣押" in out and "[seizure]" in out
    assert "全程音像记录 (full)" in out
    assert "财物清单（一式二份） [property-list]  必须" in out
    assert "视情形：当事人不到场（邀请见证人）" in out
    assert "中华人民共和国行政强制法 第十八条" in out
    assert "保管期限 retention: 案卷 30 年" in out


def test_standards_show_json_and_pinned_version(cli):
    result = cli("standards", "show", "penalty", "--version", "2026.1", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["id"] == "penalty" and data["version"] == "2026.1"
    assert data["stages"][0]["id"] == "case-source"


def test_standards_show_unknown_is_a_usage_error_with_what_to_do(cli):
    result = cli("standards", "show", "penalty", "--version", "1999.1")
    assert result.exit_code == 2
    assert "没有版本 '1999.1'" in result.output and "2026.1" in result.output
    assert "Traceback" not in result.output


def test_standards_check_ok_prints_one_line_summary(cli, tmp_path):
    path = tmp_path / "mine.toml"
    shutil.copy(SHIPPED / "penalty.toml", path)
    result = cli("standards", "check", str(path))
    assert result.exit_code == 0
    assert result.output.count("\n") == 1
    assert result.output.startswith("OK ") and "17 个环节" in result.output


def test_standards_check_lists_every_problem_and_exits_1(cli, tmp_path):
    text = (SHIPPED / "inspection.toml").read_text(encoding="utf-8")
    text = text.replace('requirement = "required"', 'requirement = "mandatory"', 2)
    text = text.replace('av = "disputed"', 'av = "sometimes"', 1)
    text = text.replace('id = "notice"', 'id = "approval"')
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    result = cli("standards", "check", str(path))
    assert result.exit_code == 1
    out = result.output
    assert "4 处问题" in out
    assert 'stages[0].requirement: "mandatory" is not one of required, conditional, optional' in out
    assert 'stages[0].records[0].requirement: "mandatory"' in out
    assert "stages[1].id: 重复的环节 duplicate id 'approval'" in out
    assert 'stages[2].av: "sometimes"' in out
    assert "Traceback" not in out


def test_standards_check_syntax_error_and_missing_file(cli, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('id = "x"\nstages = [\n', encoding="utf-8")
    result = cli("standards", "check", str(path))
    assert result.exit_code == 1 and "TOML 语法错误" in result.output and "line" in result.output
    missing = cli("standards", "check", str(tmp_path / "none.toml"))
    assert missing.exit_code == 1 and "找不到标准文件" in missing.output


def test_deadline_prints_due_date_counting_and_basis(cli):
    result = cli("deadline", "publish-licensing-penalty", "2025-09-30")
    assert result.exit_code == 0
    out = result.output
    assert "到期日 due:    2025-10-16（星期四）" in out
    assert "7 个工作日" in out and "working" in out
    assert "示范创建工作方案" in out


def test_deadline_shows_holiday_rollover_and_extension(cli):
    result = cli("deadline", "seizure-duration", "2025-03-03", "--extended")
    assert result.exit_code == 0
    assert "2025-05-06" in result.output and "顺延" in result.output
    assert "含批准延长" in result.output


def test_deadline_into_2027_needs_a_calendar_and_works_with_one(cli, tmp_path):
    bare = cli("deadline", "publish-other", "2026-12-20")
    assert bare.exit_code == 1
    assert "--calendar FILE" in bare.output and "CASETRAIL_CALENDAR_FILE" in bare.output
    # the 90 natural days of 处罚法 Art. 60 are given anyway, with the roll-over caveat
    natural = cli("deadline", "penalty-decision", "2026-12-01")
    assert natural.exit_code == 0
    assert "2027-03-01" in natural.output and "若遇法定节假日顺延" in natural.output
    cal_2027 = str(calendar_2027(tmp_path))
    supplied = cli("deadline", "publish-other", "2026-12-20", "--calendar", cal_2027)
    assert supplied.exit_code == 0
    assert "2027-01-" in supplied.output and "〔2026〕99号" in supplied.output
    by_env = cli(
        "deadline", "penalty-decision", "2026-12-01", env={"CASETRAIL_CALENDAR_FILE": cal_2027}
    )
    assert by_env.exit_code == 0 and "2027-03-01" in by_env.output
    assert "若遇法定节假日顺延" not in by_env.output


def test_deadline_refuses_the_example_calendar(cli):
    result = cli("deadline", "publish-other", "2026-12-20", "--calendar", str(EXAMPLE_2027))
    assert result.exit_code == 1
    assert "示例文件" in result.output and "example" in result.output


def test_deadline_with_a_broken_calendar_file_lists_its_problems(cli, tmp_path):
    path = tmp_path / "cal.toml"
    path.write_text(
        'schema = 1\nsource = "国办发明电〔2026〕1号"\n[years.2027]\n'
        'holidays = ["2027-02-30", "soon"]\n',
        encoding="utf-8",
    )
    result = cli("deadline", "publish-other", "2026-12-20", "--calendar", str(path))
    assert result.exit_code == 1
    assert "2 处问题" in result.output
    assert "years.2027.holidays[0]" in result.output and "years.2027.holidays[1]" in result.output


def test_deadline_usage_errors_exit_2(cli):
    bad_date = cli("deadline", "penalty-decision", "2025/09/30")
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    unknown = cli("deadline", "penalty", "2025-09-30")
    assert (
        unknown.exit_code == 2
        and "penalty-decision" in unknown.output
        and "--list" in unknown.output
    )
    missing = cli("deadline")
    assert missing.exit_code == 2 and "--list" in missing.output
    no_extension = cli("deadline", "hearing-request", "2025-09-30", "--extended")
    assert no_extension.exit_code == 2 and "不能延长" in no_extension.output


def test_deadline_list_prints_every_rule_with_its_basis(cli):
    result = cli("deadline", "--list")
    assert result.exit_code == 0
    out = result.output
    for rid in (
        "publish-licensing-penalty",
        "hearing-notice",
        "seizure-duration",
        "annual-statistics",
    ):
        assert f"\n{rid}\n" in f"\n{out}"
    assert "举行听证之日前 7 个工作日" in out
    assert "可延长 +30" in out and "不可延长" in out
    assert "第八十五条" in out


@pytest.mark.parametrize("standard_id", ["penalty", "penalty-simple", "licensing", "coercion"])
def test_standards_show_lists_every_legal_basis_and_the_gates(cli, standard_id):
    from core.procedure import GATES
    from core.standards import load_standard

    out = cli("standards", "show", standard_id).output
    std = load_standard(standard_id)
    bases = {b for s in std.stages for b in (*s.basis, *s.av_basis)}
    bases |= {b for s in std.stages for r in s.records for b in r.basis}
    bases |= {b for r in std.common_rules for b in r.basis}
    for basis in bases:
        assert basis.short() in out, basis
    for gate in GATES:
        if standard_id in gate.categories or "*" in gate.categories:
            assert f"[{gate.code}]" in out and gate.basis[0].short() in out, gate.code
    if standard_id == "penalty":
        assert "听证较大数额 [national-default]" in out


def test_deadline_list_names_every_rule_its_basis_and_the_calendar_sources(cli, tmp_path):
    from core.deadlines import DEADLINE_RULES

    out = cli("deadline", "--list", "--calendar", str(calendar_2027(tmp_path))).output
    for rule in DEADLINE_RULES.values():
        assert f"\n{rule.id}\n" in f"\n{out}", rule.id
        for basis in rule.basis:
            assert basis.cite() in out, (rule.id, basis)
    assert "2004–2026：chinese_calendar" in out and "2027：测试数据" in out
    refused = cli("deadline", "--list", "--calendar", str(EXAMPLE_2027))
    assert refused.exit_code == 1 and "示例文件" in refused.output
