"""The procedure gates and derived conditions of core.procedure (pure logic)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import StandardInvalid
from core.legal_review import DecisionFacts, PartyKind, default_catalogue
from core.procedure import (
    COMPLEX_OR_SERIOUS,
    HEARING_ELIGIBLE,
    MAJOR_CASE,
    Conditions,
    DecisionContext,
    check_procedure,
    default_thresholds,
    derive_conditions,
    validate_thresholds_text,
)

CATALOGUE = default_catalogue()
THRESHOLDS = default_thresholds().for_agency("ANY-AGENCY")
NOTIFIED = frozenset({"penalty-notice", "statement-record"})


def context(
    facts: DecisionFacts, records: frozenset[str] = NOTIFIED, **kw: object
) -> DecisionContext:
    conditions = derive_conditions(facts, THRESHOLDS, CATALOGUE)
    return DecisionContext(
        category=facts.category,
        decision_type=str(kw.pop("decision_type", "penalty")),
        facts=facts,
        conditions=conditions,
        record_types=records,
        **kw,  # type: ignore[arg-type]
    )


def codes(ctx: DecisionContext) -> list[str]:
    return [r.code for r in check_procedure(ctx)]


def test_art62_needs_the_art44_notice_and_art45_statement_heard_or_waived_in_writing():
    small = DecisionFacts("penalty", fine_yuan=Decimal(100))
    [refusal] = check_procedure(context(small, frozenset()))
    assert refusal.article_zh == "中华人民共和国行政处罚法第六十二条"
    assert refusal.message_zh.startswith("行政处罚法第六十二条")
    assert len(refusal.missing) == 2
    assert codes(context(small, frozenset({"penalty-notice"}))) == ["apl-62"]
    assert codes(context(small, NOTIFIED)) == []
    waived = frozenset({"penalty-notice", "statement-waiver"})
    assert codes(context(small, waived)) == []
    # not a penalty, or not the general procedure: Art. 62 does not apply
    assert codes(context(small, frozenset(), decision_type="no-penalty")) == []
    assert codes(context(DecisionFacts("inspection"), frozenset())) == []


def test_art57_2_complex_or_serious_needs_the_discussion_record_and_the_head():
    complex_case = DecisionFacts("penalty", fine_yuan=Decimal(100), complex_case=True)
    [refusal] = check_procedure(context(complex_case))
    assert refusal.code == "apl-57-2"
    assert refusal.missing == (
        "集体讨论笔录（discussion-record）",
        "由行政机关负责人（角色 head）登记决定",
    )
    discussed = NOTIFIED | {"discussion-record"}
    assert codes(context(complex_case, discussed)) == ["apl-57-2"]
    assert codes(context(complex_case, discussed, decided_by_head=True)) == []


def test_art63_64_hearing_scope_needs_the_notice_and_a_requested_hearing_before_deciding():
    order = DecisionFacts("penalty", measures=frozenset({"order_stop_business"}))
    base = NOTIFIED | {"discussion-record"}
    [refusal] = check_procedure(context(order, base, decided_by_head=True))
    assert refusal.code == "apl-63-64"
    assert "责令停产停业" in refusal.message_zh
    assert refusal.missing == ("听证告知书（hearing-rights-notice）",)
    noticed = base | {"hearing-rights-notice"}
    assert codes(context(order, noticed, decided_by_head=True)) == []
    requested = noticed | {"hearing-application"}
    assert codes(context(order, requested, decided_by_head=True, hearing_chair="u9")) == [
        "apl-63-64"
    ]
    held = requested | {"hearing-transcript"}
    assert codes(context(order, held, decided_by_head=True, hearing_chair="u9")) == []


def test_art64_4_the_hearing_chair_is_not_an_investigator():
    facts = DecisionFacts("penalty", fine_yuan=Decimal(100), hearing_requested=True)
    held = NOTIFIED | {"hearing-transcript"}
    investigators = frozenset({"u1", "u2"})
    ctx = context(facts, held, investigators=investigators, hearing_chair="u1")
    [refusal] = check_procedure(ctx)
    assert refusal.article_zh.endswith("第六十四条第（四）项")
    assert "听证主持人是本案调查人员" in refusal.message_zh
    assert codes(context(facts, held, investigators=investigators)) == ["apl-64-4"]
    assert codes(context(facts, held, investigators=investigators, hearing_chair="u3")) == []


@pytest.mark.parametrize(
    ("party", "fine", "allowed"),
    [
        (PartyKind.INDIVIDUAL, "200", True),
        (PartyKind.INDIVIDUAL, "200.01", False),
        (PartyKind.ORGANISATION, "3000", True),
        (PartyKind.ORGANISATION, "3001", False),
        (PartyKind.INDIVIDUAL, "0", True),  # 警告
    ],
)
def test_art51_simple_procedure_only_for_a_warning_or_a_small_fine(party, fine, allowed):
    facts = DecisionFacts("penalty-simple", party, fine_yuan=Decimal(fine))
    refusals = check_procedure(context(facts, frozenset()))
    assert (not refusals) is allowed
    if not allowed:
        assert refusals[0].message_zh.startswith("行政处罚法第五十一条")
        assert "普通程序" in refusals[0].message_zh


def test_art51_simple_procedure_refuses_confiscation_and_measures():
    facts = DecisionFacts("penalty-simple", measures=frozenset({"licence_revocation"}))
    assert codes(context(facts, frozenset())) == ["apl-51"]


def test_art63_hearing_eligible_is_derived_from_amounts_per_party_and_measures():
    def holds(facts: DecisionFacts) -> frozenset[str]:
        return derive_conditions(facts, THRESHOLDS, CATALOGUE).names

    assert holds(DecisionFacts("penalty", fine_yuan=Decimal(9999))) == frozenset()
    assert HEARING_ELIGIBLE in holds(DecisionFacts("penalty", fine_yuan=Decimal(10000)))
    company = DecisionFacts("penalty", PartyKind.ORGANISATION, fine_yuan=Decimal(99999))
    assert HEARING_ELIGIBLE not in holds(company)
    confiscation = DecisionFacts("penalty", property_value_yuan=Decimal(10000))
    assert {HEARING_ELIGIBLE, COMPLEX_OR_SERIOUS} <= holds(confiscation)
    assert HEARING_ELIGIBLE in holds(DecisionFacts("penalty", other_severe=True))
    assert MAJOR_CASE in holds(DecisionFacts("penalty", major_public_interest=True))


def test_conditions_the_handler_adds_need_a_reason_and_cannot_remove_derived_ones():
    facts = DecisionFacts("penalty", fine_yuan=Decimal(20000))
    added = derive_conditions(facts, THRESHOLDS, CATALOGUE, {MAJOR_CASE: "社会关注度高"})
    assert added.holds(HEARING_ELIGIBLE) and added.holds(MAJOR_CASE)
    assert added.to_json()[MAJOR_CASE][-1] == {
        "reason": "承办人添加：社会关注度高",
        "added_by_handler": True,
    }
    with pytest.raises(ValueError, match="理由"):
        derive_conditions(facts, THRESHOLDS, CATALOGUE, {HEARING_ELIGIBLE: " "})
    with pytest.raises(ValueError, match="不是可添加的条件"):
        derive_conditions(facts, THRESHOLDS, CATALOGUE, {"statement_made": "x"})
    assert Conditions(()).names == frozenset()


def test_art63_thresholds_are_data_per_agency_with_a_national_default():
    text = (
        'schema = 1\nid = "hearing-thresholds"\nversion = "2026.1"\nname_zh = "x"\n'
        '[bases]\nlocal = { law = "某省行政处罚听证程序规定", provision = "第三条" }\n'
        '[[thresholds]]\nid = "province"\napplies_to = ["GZ-AGENCY"]\nname_zh = "某省"\n'
        "individual_fine_yuan = 2000\norganisation_fine_yuan = 50000\n"
        "individual_confiscation_yuan = 2000\norganisation_confiscation_yuan = 50000\n"
        'basis = ["local"]\n'
        '[[thresholds]]\nid = "default"\napplies_to = ["*"]\nname_zh = "默认"\n'
        "individual_fine_yuan = 10000\norganisation_fine_yuan = 100000\n"
        "individual_confiscation_yuan = 10000\norganisation_confiscation_yuan = 100000\n"
        'basis = ["local"]\n'
    )
    table = validate_thresholds_text(text, "t.toml")
    assert table.for_agency("GZ-AGENCY").id == "province"
    assert table.for_agency("OTHER").id == "default"
    facts = DecisionFacts("penalty", fine_yuan=Decimal(2000))
    assert derive_conditions(facts, table.for_agency("GZ-AGENCY"), CATALOGUE).holds(
        HEARING_ELIGIBLE
    )
    assert not derive_conditions(facts, table.for_agency("OTHER"), CATALOGUE).holds(
        HEARING_ELIGIBLE
    )
    with pytest.raises(StandardInvalid) as err:
        validate_thresholds_text(text.replace("individual_fine_yuan = 2000", ""), "bad.toml")
    assert any("individual_fine_yuan" in p for p in err.value.problems)


def test_art62_applies_to_every_penalty_type_not_only_the_one_named_penalty():
    warning = DecisionFacts("penalty")
    assert codes(context(warning, frozenset(), decision_type="warning")) == ["apl-62"]
    assert codes(context(warning, frozenset(), decision_type="no-penalty")) == []
