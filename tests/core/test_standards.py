"""Recording standards: the shipped data, the loader, version pinning, validation."""

from __future__ import annotations

import hashlib
import shutil
from importlib import resources
from pathlib import Path

import pytest

from core.errors import StandardInvalid, UnknownStandard
from core.standards import (
    AVLevel,
    Requirement,
    RuleCheck,
    list_standards,
    load_standard,
    load_standard_file,
    validate_standard_text,
)
from core.standards.schema import KEBAB

CATEGORIES = ["coercion", "confirmation", "inspection", "licensing", "penalty", "penalty-simple"]
SHIPPED = Path(str(resources.files("core.standards")))

# A released (id, version) must never change: cases pinned to it would be assessed
# differently. To change a standard, copy <id>.toml to <id>@<old version>.toml, edit
# <id>.toml, raise its version, and add the new digest here.
RELEASED = {
    "coercion@2026.1.toml": "b6382aecb0ab0773f3845c8f51f2737e10999062e81a1ce819548b80410ffe75",
    "coercion.toml": "0326cfb568dc21cc6658d588e88d221b5acf14f091b037ff031411b4f718a2a9",
    "confirmation@2026.1.toml": "3a66117692bd91e94787304614b401b7f5edf6b982c49523ddb41ccdcb7473c1",
    "confirmation.toml": "298dcd8ffa42917a50e0f09f818d04b07f91c0d56a4081989c7c84462bb9065a",
    "inspection@2026.1.toml": "81680f17cad95adf05ef02e38019124b6b57ad6406f584fa42fcdad6655bd284",
    "inspection.toml": "cc665f26b5a9b24b0b0cf92a4e4369b88c594c0bd554d3b6705cbf7b05977f5e",
    "licensing@2026.1.toml": "88136e09d39bb13eaca6299518feb48dc7fd70309c5a1da4172a9b49af8c611d",
    "licensing.toml": "462a703a820e607bac69e11100eb4cbb413ca5aad8a671b6d6e497b91a6c410e",
    "penalty-simple@2026.1.toml": "0f26ae2752b8fa1f9a1aa93d10cc4116394ddf9d556e193f03efb567e6b87041",
    "penalty-simple.toml": "f40f80d69ed99fa647dd79cd82e01002e4a386b791aa701637c022ffe82f594d",
    "penalty@2026.1.toml": "329f64b4da75e71ebd762076e6f3b3ba8091e59d23046da2d457616e9e38bd7c",
    "penalty.toml": "c0a605c9b1fc39c9a63ba5a61dddc61c6e8a97f25422b3617219285cd9e35a0c",
}


def test_every_category_is_shipped_with_a_version():
    summaries = list_standards()
    assert [s.id for s in summaries] == CATEGORIES
    assert all(s.version == "2026.2" and s.name_zh and s.name_en for s in summaries)
    assert all(s.versions == ("2026.1", "2026.2") for s in summaries)


@pytest.mark.parametrize("file_name", sorted(RELEASED))
def test_released_standard_files_are_unchanged(file_name):
    digest = hashlib.sha256((SHIPPED / file_name).read_bytes()).hexdigest()
    assert digest == RELEASED[file_name], (
        f"{file_name} changed while keeping its version: keep the released text as "
        "<id>@<version>.toml and raise the version of the edited file"
    )


@pytest.mark.parametrize("sid", CATEGORIES)
def test_every_rule_carries_its_legal_basis(sid):
    std = load_standard(sid)
    assert std.stages and std.common_rules and std.retention.basis
    for stage in std.stages:
        assert KEBAB.match(stage.id) and stage.name_zh and stage.name_en
        assert stage.basis, stage.id
        if stage.av is not AVLevel.NONE:
            assert stage.av_basis, stage.id
        assert (stage.condition is not None) == (stage.requirement is Requirement.CONDITIONAL)
        for rec in stage.records:
            assert rec.basis, (stage.id, rec.id)
            assert (rec.condition is not None) == (rec.requirement is Requirement.CONDITIONAL)
    for rule in std.common_rules:
        assert rule.basis, rule.id
    checks = {r.check for r in std.common_rules}
    assert {RuleCheck.MIN_OFFICERS, RuleCheck.CREDENTIALS_SHOWN} <= checks
    assert std.rule(RuleCheck.MIN_OFFICERS).min_officers == 2


def test_reference_tables_are_followed():
    coercion = load_standard("coercion")
    assert coercion.stage("seizure").av is AVLevel.FULL
    assert coercion.stage("demolition").av is AVLevel.FULL
    assert coercion.stage("seizure").on_site
    assert coercion.stage("seizure").record("witness-record").condition.id == "party_absent"
    penalty = load_standard("penalty")
    assert [s.id for s in penalty.stages][:3] == ["case-source", "filing", "site-inspection"]
    assert penalty.stage("hearing").condition.id == "hearing_requested"
    assert penalty.stage("legal-review").condition.id == "major_case"
    assert penalty.stage("filing").av is AVLevel.NONE
    assert penalty.stage("service").av is AVLevel.DISPUTED
    assert "第五十八条" in penalty.stage("legal-review").basis[0].provision
    inspection = load_standard("inspection")
    assert inspection.stage("re-inspection").condition.id == "violations_found"
    assert load_standard("confirmation").retention.case_file_years == 50
    simple = load_standard("penalty-simple")
    assert (
        simple.stage("on-the-spot-decision").record("on-the-spot-decision").name_zh
        == "当场行政处罚决定书"
    )


def test_unknown_standard_and_version_say_what_exists():
    with pytest.raises(UnknownStandard, match="penalty-simple"):
        load_standard("penalti")
    with pytest.raises(UnknownStandard, match="2026.1"):
        load_standard("penalty", "2019.1")


def test_a_newer_version_does_not_change_a_case_pinned_to_the_older(tmp_path):
    shutil.copy(SHIPPED / "penalty@2026.1.toml", tmp_path / "penalty@2026.1.toml")
    newer = (SHIPPED / "penalty@2026.1.toml").read_text(encoding="utf-8")
    newer = newer.replace('version = "2026.1"', 'version = "2026.2"')
    newer = newer.replace('name_zh = "案件调查终结报告"', 'name_zh = "调查终结报告（新版）"')
    (tmp_path / "penalty.toml").write_text(newer, encoding="utf-8")

    pinned = load_standard("penalty", "2026.1", directory=tmp_path)
    latest = load_standard("penalty", directory=tmp_path)

    assert pinned.version == "2026.1"
    assert pinned.stage("investigation-end").records[0].name_zh == "案件调查终结报告"
    assert latest.version == "2026.2"
    assert latest.stage("investigation-end").records[0].name_zh == "调查终结报告（新版）"
    assert list_standards(tmp_path)[0].versions == ("2026.1", "2026.2")


def test_a_version_file_whose_content_disagrees_with_its_name_is_refused(tmp_path):
    shutil.copy(SHIPPED / "penalty@2026.1.toml", tmp_path / "penalty@2025.9.toml")
    with pytest.raises(StandardInvalid) as err:
        load_standard("penalty", "2025.9", directory=tmp_path)
    assert "penalty@2026.1.toml" in str(err.value)


def test_releasing_without_raising_the_version_is_caught(tmp_path):
    shutil.copy(SHIPPED / "penalty@2026.1.toml", tmp_path / "penalty.toml")
    shutil.copy(SHIPPED / "penalty@2026.1.toml", tmp_path / "penalty@2026.1.toml")
    with pytest.raises(StandardInvalid, match="raise the version"):
        list_standards(tmp_path)


BROKEN = """
schema = 1
id = "Penalty Custom"
version = "2026"
name_zh = "自定义"
name_en = "custom"
colour = "red"

[bases]
apl-42 = { law = "中华人民共和国行政处罚法", provision = "第四十二条" }

[conditions]
hearing_requested = { zh = "当事人申请听证" }

[retention]
case_file = "forever"
av_non_evidence_months = 6
basis = ["apl-42"]

[[common_rules]]
id = "two-officers"
name_zh = "两人"
name_en = "two"
check = "min_officers"
basis = ["apl-42"]

[[stages]]
id = "filing"
name_zh = "立案"
name_en = "Filing"
requirement = "required"
av = "none"
on_site = false
basis = ["apl-42"]

  [[stages.records]]
  id = "filing-approval"
  name_zh = "立案审批表"
  name_en = "Filing approval"
  requirement = "required"
  basis = ["apl-42"]

[[stages]]
id = "filing"
name_zh = "重复"
name_en = "Duplicate"
requirement = "conditional"
av = "always"
on_site = "yes"
basis = ["apl-99"]

  [[stages.records]]
  id = "x"
  name_zh = "X"
  name_en = "X"
  requirement = "required"

[[stages]]
id = "hearing"
name_zh = "听证"
name_en = "Hearing"
requirement = "conditional"
condition = "hearing_requested"
av = "disputed"
on_site = false
basis = ["apl-42"]

  [[stages.records]]
  id = "hearing-notice"
  name_zh = "听证通知书"
  name_en = "Hearing notice"
  requirement = "required"
  basis = ["apl-42"]

  [[stages.records]]
  id = "hearing-record"
  name_zh = "听证笔录"
  name_en = "Hearing record"
  requirement = "mandatory"
  basis = ["apl-42"]
"""


def test_a_broken_standard_reports_every_fault_with_its_place():
    with pytest.raises(StandardInvalid) as err:
        validate_standard_text(BROKEN, "custom.toml")
    problems = err.value.problems
    expected = [
        "id: 'Penalty Custom' 格式不对",
        "version: '2026' 格式不对",
        "colour: 未知的键 unknown key",
        "retention.case_file: 'forever'",
        'common_rules[0].min_officers: check = "min_officers" 需要人数',
        "stages[1].id: 重复的环节 duplicate id 'filing'",
        "stages[1].condition: 视情形 (conditional) 必须写明条件",
        'stages[1].av: "always" is not one of full, disputed, recommended, none',
        "stages[1].on_site: 应为 true 或 false",
        "stages[1].basis[0]: 未定义的依据 unknown basis 'apl-99'",
        "stages[1].records[0].basis: 缺少法律依据 missing legal basis",
        "stages[2].av_basis: 缺少法律依据 missing legal basis",
        'stages[2].records[1].requirement: "mandatory" is not one of required, conditional, optional',
    ]
    for fragment in expected:
        assert any(p.startswith(fragment) for p in problems), (fragment, problems)
    assert len(problems) == len(expected), problems
    assert "13 处问题" in err.value.message


def test_toml_syntax_errors_give_line_and_column():
    with pytest.raises(StandardInvalid) as err:
        validate_standard_text('schema = 1\nid = "penalty"\nversion = 2026.1.1\n', "bad.toml")
    assert len(err.value.problems) == 1
    assert "line 3" in err.value.problems[0]


def test_agency_file_loads_from_a_path_and_missing_files_are_reported(tmp_path):
    path = tmp_path / "my-inspection.toml"
    shutil.copy(SHIPPED / "inspection.toml", path)
    assert load_standard_file(path).id == "inspection"
    with pytest.raises(StandardInvalid, match="not found"):
        load_standard_file(tmp_path / "missing.toml")
    (tmp_path / "latin1.toml").write_bytes("name_zh = '\xe9'".encode("latin-1"))
    with pytest.raises(StandardInvalid, match="UTF-8"):
        load_standard_file(tmp_path / "latin1.toml")


def test_standard_json_is_plain_data():
    data = load_standard("coercion").to_json()
    seizure = next(s for s in data["stages"] if s["id"] == "seizure")
    assert seizure["av"] == "full"
    assert seizure["records"][0]["requirement"] == "required"
    assert data["retention"]["case_file_years"] == 30


def test_a_daytime_execution_rule_names_existing_stages(tmp_path):
    text = (SHIPPED / "coercion.toml").read_text(encoding="utf-8")
    rule = load_standard("coercion").rule(RuleCheck.DAYTIME_WORKING_DAYS)
    assert rule is not None and rule.stages == ("demolition",)
    assert rule.basis[0].provision == "第四十三条"
    with pytest.raises(StandardInvalid) as err:
        validate_standard_text(
            text.replace('stages = ["demolition"]', 'stages = ["night-raid"]'), "x.toml"
        )
    assert any("'night-raid' 不是本标准的环节" in p for p in err.value.problems)
    with pytest.raises(StandardInvalid) as err:
        validate_standard_text(text.replace('stages = ["demolition"]\n', ""), "x.toml")
    assert any("needs a list of stage ids" in p for p in err.value.problems)
