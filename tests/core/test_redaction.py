"""Redaction before publication: a table of real-format cases and property tests."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.redaction import (
    DecisionSource,
    Party,
    PartyKind,
    Rule,
    SourceField,
    credit_check_char,
    id_check_digit,
    is_credit_code,
    is_resident_id,
    mask_person_name,
    redact_decision,
    redact_text,
)

ID_18 = "520102199003071236"
ID_18_X = "11010519491231002X"
ID_15 = "520102900307123"
CREDIT = "91520100MA6DL12349"
CREDIT_DIGITS = "915201007099000001"

# (text, substring that must be gone, rule expected to fire) — real formats as they turn
# up in 处罚决定书 and 许可决定书.
REMOVED = [
    (f"身份证号：{ID_18}", ID_18, Rule.ID_NUMBER),
    (f"身份证号码{ID_18}，", ID_18, Rule.ID_NUMBER),
    (f"公民身份号码 {ID_18_X}", ID_18_X, Rule.ID_NUMBER),
    (f"证件号 {ID_18_X.lower()}", ID_18_X.lower(), Rule.ID_NUMBER),
    (f"身份证：{ID_15}", ID_15, Rule.ID_NUMBER),
    ("身份证号440304198512243015（男）", "440304198512243015", Rule.ID_NUMBER),
    ("522627197808154714号", "522627197808154714", Rule.ID_NUMBER),
    ("ID 510107199202290044.", "510107199202290044", Rule.ID_NUMBER),
    ("身份证号520102199003071235（校验位错误）", "520102199003071235", Rule.ID_NUMBER),
    ("身份证 520102 19900307 1236", "19900307", Rule.ID_NUMBER),
    ("手机13812345678", "13812345678", Rule.MOBILE),
    ("138.1234.5678", "1234.5678", Rule.MOBILE),
    ("联系电话：13985012345。", "13985012345", Rule.MOBILE),
    ("手机号 +86 138 5100 2233", "5100 2233", Rule.MOBILE),
    ("电话+8613985012345", "13985012345", Rule.MOBILE),
    ("手机：139-8501-2345", "8501-2345", Rule.MOBILE),
    ("其于19912345678致电", "19912345678", Rule.MOBILE),
    ("（17708510000）", "17708510000", Rule.MOBILE),
    ("座机0851-86123456", "86123456", Rule.LANDLINE),
    ("电话(0851)86123456", "86123456", Rule.LANDLINE),
    ("电话（0851）86123456转801", "86123456", Rule.LANDLINE),
    ("010-62345678", "62345678", Rule.LANDLINE),
    ("020 87654321", "87654321", Rule.LANDLINE),
    ("085186123456", "085186123456", Rule.LANDLINE),
    ("联系电话：86123456", "86123456", Rule.LANDLINE),
    ("电话 0851-86123456-102", "86123456", Rule.LANDLINE),
    ("银行账号6222021234567890123", "6222021234567890123", Rule.BANK_ACCOUNT),
    ("账户 6217 0012 3456 7890 123", "3456 7890", Rule.BANK_ACCOUNT),
    ("卡号6228480402564890018", "6228480402564890018", Rule.BANK_ACCOUNT),
    ("开户账号 5201 0110 0000 0000", "0110 0000", Rule.BANK_ACCOUNT),
    ("对公账户52050110360800000123", "52050110360800000123", Rule.BANK_ACCOUNT),
    ("信用卡 6225880212345678", "6225880212345678", Rule.BANK_ACCOUNT),
    ("邮箱zhangsan@example.com", "zhangsan@example.com", Rule.EMAIL),
    ("电子邮件：li.si+gz@mail.gz.gov.cn。", "li.si+gz@mail.gz.gov.cn", Rule.EMAIL),
    ("住址：贵阳市云岩区中华北路100号3栋2单元501室，", "中华北路100号", Rule.ADDRESS),
    ("家住南明区花果园B区5栋1单元2203", "花果园", Rule.ADDRESS),
    ("现住观山湖区金阳南路6号世纪城龙耀苑", "世纪城龙耀苑", Rule.ADDRESS),
    ("户籍地：遵义市红花岗区老城街道", "红花岗区老城", Rule.ADDRESS),
    ("经查，其在宝山北路12号9栋3单元702室内", "702室", Rule.ADDRESS),
    ("居住于清镇市红枫湖镇民乐村4组", "民乐村", Rule.ADDRESS),
    ("住所地贵州省安顺市西秀区东关办事处", "东关办事处", Rule.ADDRESS),
    ("小区12幢1单元301号", "1单元301", Rule.ADDRESS),
    ("【商业秘密】配方：甲30%、乙70%【/商业秘密】", "配方", Rule.TRADE_SECRET),
    ("法定代表人：王小明，", "王小明", Rule.NAME),
    ("委托代理人：欧阳娜娜（律师）", "欧阳娜娜", Rule.NAME),
    ("联系人: 赵六 电话", "赵六", Rule.NAME),
    ("当事人：李建行，", "李建行", Rule.NAME),
]

KEPT = [
    f"统一社会信用代码：{CREDIT}",
    f"统一社会信用代码{CREDIT_DIGITS}",
    "罚款人民币5000元",
    "罚款20000元，没收违法所得1234.56元",
    "依据《中华人民共和国食品安全法》第一百二十四条第一款",
    "黔云市监罚〔2026〕15号",
    "于2026年1月5日作出",
    "12315投诉举报",
    "经营场所：中华北路100号",
    "责令改正，给予警告",
    "当事人：黔味食品店，",
    "当事人：花溪超市，",
]


@pytest.mark.parametrize(("text", "gone", "rule"), REMOVED)
def test_real_format_cases_are_removed(text: str, gone: str, rule: Rule) -> None:
    done = redact_text(text)
    assert gone not in done.text, done.text
    assert rule in {f.rule for f in done.findings}, done.findings


@pytest.mark.parametrize("text", KEPT)
def test_public_facts_are_kept(text: str) -> None:
    done = redact_text(text)
    assert done.text == text
    assert done.findings == ()


def test_table_has_at_least_forty_real_format_cases() -> None:
    assert len(REMOVED) + len(KEPT) >= 40


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张某"),
        ("李小龙", "李某"),
        ("欧阳娜娜", "欧阳某"),
        ("诸葛亮", "诸葛某"),
        ("司马", "司某"),  # a two-character name is surname + given name
        ("买买提·艾力", "买某"),
        ("Alice Smith", "A某"),
    ],
)
def test_person_names_become_surname_mou(name: str, masked: str) -> None:
    assert mask_person_name(name) == masked


def test_check_digits() -> None:
    assert is_resident_id(ID_18) and is_resident_id(ID_18_X) and is_resident_id(ID_15)
    assert not is_resident_id("520102199003071235")  # wrong check digit
    assert not is_resident_id("520102199013071232")  # month 13
    assert is_credit_code(CREDIT) and is_credit_code(CREDIT_DIGITS)
    assert not is_credit_code("91520100MA6DL12340")


def _decision(**kw: object) -> DecisionSource:
    base: dict[str, object] = {
        "agency": "云岩区市场监督管理局",
        "category": "行政处罚",
        "case_no": "云市监立〔2026〕7号",
        "doc_no": "云市监罚〔2026〕7号",
        "decided_on": date(2026, 1, 5),
        "parties": (
            Party("张三丰", PartyKind.PERSON, ID_18, "中华北路100号3栋2单元501室"),
            Party("贵州黔味食品有限公司", PartyKind.ORGANISATION, CREDIT, "宝山北路1号"),
        ),
        "conclusion": f"当事人张三丰（身份证号{ID_18}，手机13812345678）销售过期食品，罚款5000元。",
        "fields": (
            SourceField("违法事实", "张三丰于2025年12月在店内销售过期食品"),
            SourceField("进货价格", "每箱38元，供应商甲", trade_secret=True),
        ),
    }
    base.update(kw)
    return DecisionSource(**base)  # type: ignore[arg-type]


def test_a_decision_against_a_person_is_published_masked() -> None:
    record = redact_decision(_decision())
    public = repr(record.to_json())
    for raw in ("张三丰", ID_18, "13812345678", "中华北路", "每箱38元"):
        assert raw not in public
    assert [p.name for p in record.parties] == ["张某", "贵州黔味食品有限公司"]
    assert record.parties[1].credit_code == CREDIT
    assert record.conclusion.startswith("当事人张某（身份证号［身份证号已隐去］")
    assert record.fields == (("违法事实", "张某于2025年12月在店内销售过期食品"),)
    rules = {(f.field, f.rule) for f in record.findings}
    assert ("进货价格", Rule.TRADE_SECRET) in rules
    assert ("parties", Rule.ADDRESS) in rules and ("conclusion", Rule.MOBILE) in rules


def test_an_organisation_party_with_a_person_id_loses_it() -> None:
    record = redact_decision(
        _decision(parties=(Party("云岩区小李便利店", PartyKind.ORGANISATION, ID_18),))
    )
    assert record.parties[0].credit_code is None
    assert ID_18 not in repr(record.to_json())


# --------------------------------------------------------------------------- properties

SURNAMES = st.sampled_from(list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗") + ["欧阳", "司马"])
GIVEN = st.text(alphabet="伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂", min_size=1, max_size=2)
FILLER = st.text(alphabet="，。；当事人经营销售的食品于年月日在店内罚款元整改 ", max_size=20)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(["520102", "110105", "440304", "522627", "510107"]))
    born = draw(st.dates(min_value=date(1930, 1, 1), max_value=date(2010, 12, 31)))
    seq = draw(st.integers(0, 999))
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    first17 = draw(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17))
    return first17 + credit_check_char(first17)


@settings(deadline=None)  # shared CI machines: no per-example time limit
@given(resident_ids(), FILLER, FILLER)
def test_any_valid_id_number_in_any_text_is_removed(id_no: str, before: str, after: str) -> None:
    done = redact_text(before + id_no + after)
    assert id_no not in done.text
    assert id_no[:-1] not in done.text


@settings(deadline=None)  # shared CI machines: no per-example time limit
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), FILLER, FILLER)
def test_any_mobile_number_is_removed(mobile: str, before: str, after: str) -> None:
    assert mobile not in redact_text(before + mobile + after).text


@settings(deadline=None)  # shared CI machines: no per-example time limit
@given(st.from_regex(r"[0-9]{16,19}", fullmatch=True), FILLER)
def test_any_long_digit_run_is_removed(account: str, before: str) -> None:
    assert account not in redact_text(before + "账号" + account).text


@settings(deadline=None)  # shared CI machines: no per-example time limit
@given(credit_codes(), FILLER)
def test_credit_codes_that_are_not_id_numbers_stay(code: str, before: str) -> None:
    text = before + "统一社会信用代码" + code
    if not is_resident_id(code):
        assert code in redact_text(text).text


@settings(deadline=None)  # shared CI machines: no per-example time limit
@given(SURNAMES, GIVEN, FILLER, FILLER)
def test_a_named_party_never_appears_unmasked(
    surname: str, given_name: str, before: str, after: str
) -> None:
    name = surname + given_name
    done = redact_text(before + name + after + name, person_names=[name])
    assert name not in done.text
    assert done.text.count(surname + "某") >= 2


@settings(deadline=None)  # shared CI machines: no per-example time limit
@given(st.text(max_size=80))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact_text(text, person_names=["张三丰"]).text
    assert redact_text(once, person_names=["张三丰"]).text == once
