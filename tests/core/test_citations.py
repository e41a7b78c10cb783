"""Citations the legal audit (issue 15) found wrong stay fixed in everything shipped now.

Released older standard versions (``<id>@2026.1.toml``) keep their text as released;
this looks at the newest version of every standard, the review catalogue, the hearing
thresholds and the deadline rules.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.deadlines import DEADLINE_RULES
from core.legal_review import default_catalogue
from core.procedure import default_thresholds
from core.standards import LegalBasis, list_standards, load_standard

AV_LIST = "现场执法、调查取证、举行听证、留置送达和公告送达"


def shipped_bases() -> Iterator[tuple[str, LegalBasis]]:
    for summary in list_standards():
        std = load_standard(summary.id)
        for rule in std.common_rules:
            yield f"{std.id}:{rule.id}", *rule.basis  # type: ignore[misc]
        for stage in std.stages:
            for b in (*stage.basis, *stage.av_basis):
                yield f"{std.id}:{stage.id}", b
            for rt in stage.records:
                for b in rt.basis:
                    yield f"{std.id}:{stage.id}/{rt.id}", b
    for entry in default_catalogue().entries:
        for b in entry.basis:
            yield f"catalogue:{entry.id}", b
    for thresholds in default_thresholds().entries:
        for b in thresholds.basis:
            yield f"thresholds:{thresholds.id}", b
    for rule in DEADLINE_RULES.values():
        for b in rule.basis:
            yield f"deadline:{rule.id}", b


def all_bases() -> list[tuple[str, LegalBasis]]:
    out = []
    for where, *bases in shipped_bases():
        out += [(where, b) for b in bases]
    return out


def is_118(b: LegalBasis) -> bool:
    return "118号" in b.law


def test_118_record_keeping_is_section_three_nine_never_three_ten():
    cited = [(w, b) for w, b in all_bases() if is_118(b) and "防删改" in b.note]
    assert cited, "the 防删改/集中储存 rule must be cited"
    for where, b in cited:
        assert b.provision.startswith("三、（九）"), where
        assert b.verified, where
    assert not [w for w, b in all_bases() if is_118(b) and b.provision.startswith("三、（十）")]


def test_118_review_scope_is_section_four_twelve_never_four_thirteen():
    assert not [w for w, b in all_bases() if is_118(b) and "（十三）" in b.provision]
    scope = [b for _, b in all_bases() if is_118(b) and "明确审核范围" in b.provision]
    assert scope and all(b.provision.startswith("四、（十二）") for b in scope)


def test_licensing_credentials_rest_on_118_two_five_not_licensing_law_art_34():
    licensing = load_standard("licensing")
    rule = next(r for r in licensing.common_rules if r.id == "credentials-shown")
    assert [b.provision for b in rule.basis] == ["二、（五）规范事中公示"]
    assert all("行政许可法" not in b.law for b in rule.basis)


def test_118_eight_lists_what_the_notice_lists():
    av = [(w, b) for w, b in all_bases() if is_118(b) and b.provision.startswith("三、（八）")]
    assert av
    for where, b in av:
        assert AV_LIST in b.note, where
        assert "执法办案场所" in b.note and "查封扣押财产、强制拆除" in b.note, where
    room = load_standard("penalty").stage("inquiry-room")
    assert room is not None and room.av.value == "full"


def test_demolition_property_list_does_not_rest_on_coercion_law_art_18():
    demolition = load_standard("coercion").stage("demolition")
    assert demolition is not None
    listing = demolition.record("property-list")
    assert listing is not None
    assert not [
        b for b in listing.basis if b.law.endswith("行政强制法") and "第十八条" in b.provision
    ]


def test_simple_procedure_statement_rests_on_arts_44_45_not_52():
    simple = load_standard("penalty-simple")
    record = simple.stage("on-the-spot-decision").record("statement-record")  # type: ignore[union-attr]
    assert record is not None
    assert [b.provision for b in record.basis] == ["第四十四条", "第四十五条"]


@pytest.mark.parametrize(
    ("standard", "stage", "record", "provision"),
    [
        ("penalty", "preservation", "preservation-approval", "第五十六条"),
        ("penalty", "notification", "statement-waiver", "第四十五条"),
        ("penalty-simple", "payment", "fine-handover", "第七十一条"),
        ("coercion", "seizure", "party-summons", "第十八条第（四）项至第（六）项"),
        ("coercion", "seizure", "rights-notice-record", "第十八条第（四）项至第（六）项"),
        ("coercion", "seizure", "measure-statement-record", "第十八条第（四）项至第（六）项"),
        ("coercion", "extension-release", "handling-decision", "第二十七条"),
        ("coercion", "extension-release", "testing-period-notice", "第二十五条第三款"),
        ("licensing", "expert-review", "excluded-time-notice", "第四十五条"),
    ],
)
def test_the_records_the_audit_named_are_in_the_newest_standards(
    standard, stage, record, provision
):
    found = load_standard(standard).stage(stage)
    assert found is not None
    rt = found.record(record)
    assert rt is not None and provision in [b.provision for b in rt.basis]
