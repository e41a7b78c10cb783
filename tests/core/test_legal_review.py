"""Legal-review gate: which decisions are major, and the refusal without a passed review."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest

from core.errors import LegalReviewRequired, StandardInvalid
from core.legal_review import (
    DecisionFacts,
    LegalReview,
    PartyKind,
    check_decision_allowed,
    default_catalogue,
    draft_digest,
    is_major_decision,
    validate_catalogue_text,
)

CATALOGUE = default_catalogue()


def codes(decision: DecisionFacts) -> set[str]:
    return {r.code for r in is_major_decision(decision, CATALOGUE).reasons}


def test_an_ordinary_small_fine_is_not_major():
    small = DecisionFacts("penalty", PartyKind.INDIVIDUAL, fine_yuan=Decimal("500"))
    assessment = is_major_decision(small, CATALOGUE)
    assert not assessment.is_major
    check_decision_allowed(assessment, [])  # nothing to review


@pytest.mark.parametrize(
    ("flag", "code"),
    [
        ("major_public_interest", "art58-public-interest"),
        ("major_social_impact", "art58-social-impact"),
        ("complex_case", "art58-complex"),
        ("required_by_law", "art58-by-law"),
    ],
)
def test_each_article_58_criterion_makes_a_decision_major(flag, code):
    assert codes(DecisionFacts("inspection", **{flag: True})) == {code}


def test_art58_major_rights_count_on_their_own_as_seed_and_118_list_them():
    # 行政处罚法 Art. 58 (二) asks for a hearing; seed §二(三)1 and 118号 四、（十二） do not
    alone = is_major_decision(DecisionFacts("confirmation", affects_major_rights=True), CATALOGUE)
    assert [r.code for r in alone.reasons] == ["major-rights"]
    assert {b.provision for b in alone.reasons[0].basis} == {
        "二、（三）1",
        "四、（十二）明确审核范围",
    }
    assert codes(DecisionFacts("confirmation", affects_major_rights=True, hearing_held=True)) == {
        "art58-major-rights-hearing",
        "catalogue:hearing-held",
    }


def test_fine_thresholds_depend_on_the_party_and_include_the_threshold():
    person = DecisionFacts("penalty", PartyKind.INDIVIDUAL, fine_yuan=Decimal("10000"))
    company = DecisionFacts("penalty", PartyKind.ORGANISATION, fine_yuan=Decimal("10000"))
    assert codes(person) == {"catalogue:fine-individual"}
    assert codes(company) == set()
    assert codes(replace_fine(company, "100000")) == {"catalogue:fine-organisation"}
    assert codes(replace_fine(person, "9999.99")) == set()


def replace_fine(d: DecisionFacts, amount: str) -> DecisionFacts:
    return replace(d, fine_yuan=Decimal(amount))


def test_every_applicable_reason_is_listed_with_its_basis():
    decision = DecisionFacts(
        "penalty",
        PartyKind.ORGANISATION,
        fine_yuan=Decimal("200000"),
        property_value_yuan=Decimal("80000"),
        measures=frozenset({"licence_revocation", "order_stop_business"}),
        hearing_held=True,
        complex_case=True,
    )
    assessment = is_major_decision(decision, CATALOGUE)
    assert {r.code for r in assessment.reasons} == {
        "art58-complex",
        "catalogue:fine-organisation",
        "catalogue:confiscation-value",
        "catalogue:severe-measures",
        "catalogue:hearing-held",
    }
    assert all(r.basis for r in assessment.reasons)
    measures = next(r for r in assessment.reasons if r.code == "catalogue:severe-measures")
    assert "吊销许可证件" in measures.message_zh and "责令停产停业" in measures.message_zh


def test_catalogue_entries_apply_only_to_their_category():
    demolition = frozenset({"forced_demolition"})
    assert codes(DecisionFacts("coercion", measures=demolition)) == {
        "catalogue:coercion-demolition"
    }
    assert codes(DecisionFacts("penalty", measures=demolition)) == set()


def test_a_major_decision_is_refused_until_a_review_passes():
    assessment = is_major_decision(
        DecisionFacts("penalty", PartyKind.INDIVIDUAL, fine_yuan=Decimal("50000")), CATALOGUE
    )
    with pytest.raises(LegalReviewRequired) as err:
        check_decision_allowed(assessment, [])
    assert "法制审核意见" in err.value.message
    assert any("一万元以上罚款" in p for p in err.value.problems)

    passed = LegalReview("法制科 赵六", datetime(2025, 10, 20, 9, 0), True, "法审〔2025〕12号")
    check_decision_allowed(assessment, [passed])

    failed_later = LegalReview("法制科 赵六", datetime(2025, 10, 22, 9, 0), False)
    with pytest.raises(LegalReviewRequired, match="未通过"):
        check_decision_allowed(assessment, [failed_later, passed])


def test_art58_a_pass_covers_the_reviewed_draft_only():
    facts = DecisionFacts("penalty", PartyKind.INDIVIDUAL, fine_yuan=Decimal("50000"))
    assessment = is_major_decision(facts, CATALOGUE)
    reviewed = draft_digest("penalty", facts)
    later = draft_digest("penalty", replace(facts, fine_yuan=Decimal("60000")))
    assert reviewed != later and reviewed.startswith("sha256:")
    passed = LegalReview("法制科 赵六", datetime(2025, 10, 20, 9, 0), True, draft_digest=reviewed)
    check_decision_allowed(assessment, [passed], reviewed)
    with pytest.raises(LegalReviewRequired, match="另一份决定草案") as err:
        check_decision_allowed(assessment, [passed], later)
    assert "第五十八条" in err.value.message
    unbound = LegalReview("法制科 赵六", datetime(2025, 10, 21, 9, 0), True)
    with pytest.raises(LegalReviewRequired, match="未载明所审核的决定草案"):
        check_decision_allowed(assessment, [passed, unbound], reviewed)


def test_art58_catalogue_entries_may_be_limited_to_a_level_and_a_field():
    text = """
schema = 1
id = "county-catalogue"
version = "2026.1"
name_zh = "县级市场监管目录"
[bases]
x = { law = "某法" }
[[entries]]
id = "county-market-fine"
category = "penalty"
kind = "fine"
party = "individual"
min_yuan = 5000
levels = ["县级"]
fields = ["市场监管"]
name_zh = "县级市场监管罚款五千元以上"
basis = ["x"]
"""
    catalogue = validate_catalogue_text(text, "county.toml")
    facts = DecisionFacts("penalty", fine_yuan=Decimal(5000), enforcement_level="县级")
    assert not is_major_decision(facts, catalogue).is_major
    market = replace(facts, field="市场监管")
    assert [r.code for r in is_major_decision(market, catalogue).reasons] == [
        "catalogue:county-market-fine"
    ]
    assert not is_major_decision(replace(market, enforcement_level="市级"), catalogue).is_major
    with pytest.raises(StandardInvalid) as err:
        validate_catalogue_text(text.replace('levels = ["县级"]', "levels = []"), "bad.toml")
    assert any("levels" in p for p in err.value.problems)


def test_the_default_catalogue_labels_its_amounts_as_agency_defaults():
    for entry in CATALOGUE.entries:
        if entry.min_yuan:
            assert "默认值" in entry.name_zh, entry.id
    assert "机关可调整" in CATALOGUE.name_zh


def test_a_broken_catalogue_reports_every_problem():
    text = """
schema = 1
id = "my-catalogue"
version = "2026.1"
name_zh = "本局目录"
[bases]
x = { law = "某法" }
[[entries]]
id = "a"
category = "penalty"
kind = "fine"
party = "company"
min_yuan = 0
name_zh = "罚款"
basis = ["x"]
[[entries]]
id = "a"
category = "Penalty"
kind = "measure"
measures = ["beheading"]
name_zh = "措施"
[[entries]]
id = "c"
category = "*"
kind = "bonus"
name_zh = "?"
basis = ["x"]
"""
    with pytest.raises(StandardInvalid) as err:
        validate_catalogue_text(text, "my.toml")
    fragments = [
        'entries[0].party: "company" is not one of individual, organisation, any',
        "entries[0].min_yuan: 0 小于 1",
        "entries[1].id: 重复的目录项 duplicate id 'a'",
        "entries[1].category: 'Penalty'",
        "entries[1].basis: 缺少法律依据",
        "entries[1].measures[0]: 'beheading' is not one of",
        'entries[2].kind: "bonus" is not one of fine, property_value, measure, hearing_held',
    ]
    for fragment in fragments:
        assert any(p.startswith(fragment) for p in err.value.problems), (
            fragment,
            err.value.problems,
        )
