"""Redaction (信息公开前的技术处理) of an enforcement decision before it is published.

The seed plan (二、（一）3) asks that information touching 个人隐私 or 商业秘密 be
"作适当处理后公开". These are the rules, pure: values in, values out.

========================  =====================================================
what                      what the public sees
========================  =====================================================
natural person's name     surname + 某 (张三 → 张某, 欧阳娜娜 → 欧阳某), in every field
身份证号 (18 and 15 digit)  ［身份证号已隐去］
mobile number (11 digit)  ［手机号码已隐去］ (also +86 / 138-1234-5678 / 138 1234 5678)
landline                  ［固定电话已隐去］ ((0851)86123456, 0851-86123456-801, 电话：86123456)
bank account (≥ 15 digit) ［银行账号已隐去］ (also in groups of four)
e-mail address            ［电子邮箱已隐去］
home address              a person's address field dropped; after 住址/家住/现住/户籍地… in
                          text, and any 栋/幢/单元/室 detail: ［住址已隐去］
统一社会信用代码            kept (organisations are public), checked by its GB 32100 digit
商业秘密                    a field marked as trade secret is dropped; text between
                          【商业秘密】 and 【/商业秘密】 becomes ［涉及商业秘密，已隐去］
========================  =====================================================

An 18-character all-digit run is kept only when it is a valid credit code, no valid
身份证号, and named as a 代码 just before it (a bank account may pass the check by
chance); every other run of 15 or more digits is removed (a mistyped ID number is still
an ID number). Findings name the rule and the field, never the removed text, so a preview can say what
was removed without keeping it. Known limits (free-text names nobody marked, a home
address written without any keyword or unit detail) are listed in docs/publicity.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


class Rule(StrEnum):
    """Why something was removed; ``.label_zh`` names it for the preview."""

    NAME = "name"
    ID_NUMBER = "id_number"
    MOBILE = "mobile"
    LANDLINE = "landline"
    BANK_ACCOUNT = "bank_account"
    EMAIL = "email"
    ADDRESS = "address"
    TRADE_SECRET = "trade_secret"

    @property
    def label_zh(self) -> str:
        """Chinese name (姓名, 身份证号, …)."""
        return _LABELS[self]


_LABELS = {
    Rule.NAME: "自然人姓名",
    Rule.ID_NUMBER: "身份证号",
    Rule.MOBILE: "手机号码",
    Rule.LANDLINE: "固定电话",
    Rule.BANK_ACCOUNT: "银行账号",
    Rule.EMAIL: "电子邮箱",
    Rule.ADDRESS: "住址",
    Rule.TRADE_SECRET: "商业秘密",
}

REPLACEMENT = {
    Rule.ID_NUMBER: "［身份证号已隐去］",
    Rule.MOBILE: "［手机号码已隐去］",
    Rule.LANDLINE: "［固定电话已隐去］",
    Rule.BANK_ACCOUNT: "［银行账号已隐去］",
    Rule.EMAIL: "［电子邮箱已隐去］",
    Rule.ADDRESS: "［住址已隐去］",
    Rule.TRADE_SECRET: "［涉及商业秘密，已隐去］",
}
"""What replaces each kind of removed text (names are masked instead)."""


class PartyKind(StrEnum):
    """自然人 or 法人或其他组织 (the ``kind`` of a case party)."""

    PERSON = "person"
    ORGANISATION = "organisation"


@dataclass(frozen=True)
class Party:
    """A party (执法对象) as the case holds it: name, kind, ID number or credit code, address."""

    name: str
    kind: PartyKind = PartyKind.PERSON
    id_number: str | None = None
    address: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Party:
        """From a case's ``parties`` entry (unknown kinds count as persons: the safe side)."""
        kind = PartyKind.ORGANISATION if d.get("kind") == "organisation" else PartyKind.PERSON
        return cls(str(d.get("name") or ""), kind, d.get("id_number"), d.get("address"))


@dataclass(frozen=True)
class SourceField:
    """One more labelled field of a decision (违法事实, 处罚依据 …); may be a 商业秘密."""

    label: str
    value: str
    trade_secret: bool = False


@dataclass(frozen=True)
class Finding:
    """One kind of thing removed from one field, and how often (never the removed text)."""

    field: str
    rule: Rule
    count: int = 1

    def to_json(self) -> dict[str, Any]:
        """``{"field", "rule", "rule_zh", "count"}``."""
        return {
            "field": self.field,
            "rule": self.rule.value,
            "rule_zh": self.rule.label_zh,
            "count": self.count,
        }


@dataclass(frozen=True)
class Redacted:
    """A text after redaction and what was removed from it."""

    text: str
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class PublicParty:
    """A party as the public sees it: masked or full name, and an organisation's credit code."""

    name: str
    kind: PartyKind
    credit_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"name", "kind", "credit_code"}``."""
        return {"name": self.name, "kind": self.kind.value, "credit_code": self.credit_code}


@dataclass(frozen=True)
class DecisionSource:
    """Everything a decision's publication may draw on, unredacted (never shown publicly)."""

    agency: str  # 执法机关
    category: str  # 执法类别 (Chinese name)
    case_no: str  # 案号
    doc_no: str  # 文书号
    decided_on: date
    parties: tuple[Party, ...]
    conclusion: str  # 执法结论
    fields: tuple[SourceField, ...] = ()


@dataclass(frozen=True)
class PublicRecord:
    """A decision as the public will see it, and what redaction removed to get there."""

    agency: str
    category: str
    case_no: str
    doc_no: str
    decided_on: date
    parties: tuple[PublicParty, ...]
    conclusion: str
    fields: tuple[tuple[str, str], ...] = ()
    findings: tuple[Finding, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        """The public form (no findings: those are for the reviewer's preview)."""
        return {
            "agency": self.agency,
            "category": self.category,
            "case_no": self.case_no,
            "doc_no": self.doc_no,
            "decided_on": self.decided_on.isoformat(),
            "parties": [p.to_json() for p in self.parties],
            "conclusion": self.conclusion,
            "fields": [{"label": k, "value": v} for k, v in self.fields],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PublicRecord:
        """Back from :meth:`to_json`."""
        return cls(
            d["agency"],
            d["category"],
            d["case_no"],
            d["doc_no"],
            date.fromisoformat(d["decided_on"]),
            tuple(
                PublicParty(p["name"], PartyKind(p["kind"]), p.get("credit_code"))
                for p in d["parties"]
            ),
            d["conclusion"],
            tuple((f["label"], f["value"]) for f in d.get("fields", ())),
        )


# --------------------------------------------------------------------------- check digits

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character of an 18-digit 身份证号's first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_resident_id(text: str) -> bool:
    """True for a well-formed 18-digit (check digit, birth date) or 15-digit 身份证号."""
    s = text.strip().upper()
    if re.fullmatch(r"\d{17}[\dX]", s):
        return _valid_birth(s[6:14]) and id_check_digit(s[:17]) == s[17]
    if re.fullmatch(r"\d{15}", s):
        return _valid_birth("19" + s[6:12])
    return False


def _valid_birth(yyyymmdd: str) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return born.year >= 1880


def credit_check_char(first17: str) -> str:
    """The GB 32100 check character of a 统一社会信用代码's first 17 characters."""
    total = sum(_CREDIT_CHARS.index(c) * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_CHARS[(31 - total % 31) % 31]


def is_credit_code(text: str) -> bool:
    """True for a 统一社会信用代码 whose check character is right."""
    s = text.strip().upper()
    if not re.fullmatch(f"[{_CREDIT_CHARS}]{{18}}", s):
        return False
    return credit_check_char(s[:17]) == s[17]


# --------------------------------------------------------------------------- names

COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "轩辕",
        "令狐",
        "钟离",
        "澹台",
        "呼延",
        "端木",
        "西门",
        "南宫",
        "独孤",
        "申屠",
        "太史",
        "闻人",
        "万俟",
        "百里",
        "东郭",
        "公冶",
        "赫连",
        "拓跋",
        "司空",
    ]
)


ORGANISATION_SUFFIXES = (
    "公司", "店", "厂", "商行", "经营部", "合作社", "中心", "超市", "餐厅", "酒店", "医院",
    "学校", "诊所", "加油站", "农场", "养殖场",
)  # fmt: skip
"""Endings that mark an organisation's name after 当事人： and the like (kept public);
single characters that are also given names (行, 部, 社 …) are not among them."""


def mask_person_name(name: str) -> str:
    """张三 → 张某, 欧阳娜娜 → 欧阳某, 买买提·艾力 → 买某, Alice Smith → A某."""
    name = name.strip()
    if not name:
        return name
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[0]
    return surname + "某"


# --------------------------------------------------------------------------- text rules

_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"

_SECRET_SPAN = re.compile(r"【商业秘密】.*?(?:【/商业秘密】|$)", re.S)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# 18-digit IDs and all-digit credit codes share this shape; decided in _long_digits
_DIGIT_RUN = re.compile(_NOT_ALNUM_BEFORE + r"\d{15,}[Xx]?" + _NOT_ALNUM_AFTER)
_ID_GROUPS = re.compile(_NOT_ALNUM_BEFORE + r"\d{6}[ \-]\d{8}[ \-]\d{3}[\dXx]" + _NOT_ALNUM_AFTER)
_CARD_GROUPS = re.compile(
    _NOT_ALNUM_BEFORE + r"\d{4}(?:[ \-]\d{4}){2,3}(?:[ \-]\d{1,7})?" + _NOT_ALNUM_AFTER
)
_MOBILE = re.compile(
    _NOT_ALNUM_BEFORE
    + r"(?:(?:\+|00)?86[ \-]?)?1[3-9]\d(?:\d{8}|[ \-.]\d{4}[ \-.]\d{4})"
    + _NOT_ALNUM_AFTER
)
_LANDLINE = re.compile(
    _NOT_ALNUM_BEFORE
    + r"(?:[(（]0\d{2,3}[)）][ \-]?|0\d{2,3}[ \-－]?)[2-9]\d{6,7}(?:(?:[\-－]|转)\d{1,6})?"
    + _NOT_ALNUM_AFTER
)
# a phone number of any shape right after a phone keyword (local 7–8 digits included)
_PHONE_AFTER_KEYWORD = re.compile(
    r"(?P<kw>(?:联系)?电话|手机|座机|联系方式|手机号码?)(?P<sep>[:：为是\s]*)"
    r"(?P<num>[+（(]?\d[\d\-－ ()（）]{5,}\d)"
)
_ADDRESS_AFTER_KEYWORD = re.compile(
    r"(?P<kw>家庭住址|现住址|住址|家住|现住|居住地|居住于|户籍地址?|户籍所在地|住所地|住所)"
    r"(?P<sep>[:：为是在于\s]*)(?P<addr>[^，,。；;、\n）)]{2,80})"
)
_UNIT_DETAIL = re.compile(
    r"[\u4e00-\u9fa5A-Za-z0-9\-]{0,30}?\d+(?:栋|幢|号楼|座)(?:\d+单元)?\d+(?:室|号|户)"
    r"|[\u4e00-\u9fa5A-Za-z0-9\-]{0,30}?\d+单元\d+(?:室|号|户)"
)
_NAME_AFTER_KEYWORD = re.compile(
    r"(?P<kw>法定代表人|负责人|经营者|委托代理人|代理人|联系人|当事人|户主|姓名|业主)"
    r"(?P<sep>[:：]\s*)(?P<name>[\u4e00-\u9fa5·]{2,6}?)(?=[\s，,。；;（(、]|$)"
)


class _Pass:
    """One text going through the rules, counting what each removed."""

    def __init__(self, text: str, field_name: str) -> None:
        self.text = text
        self.field = field_name
        self.counts: dict[Rule, int] = {}

    def count(self, rule: Rule, n: int = 1) -> None:
        if n:
            self.counts[rule] = self.counts.get(rule, 0) + n

    def sub(self, pattern: re.Pattern[str], rule: Rule) -> None:
        self.text, n = pattern.subn(REPLACEMENT[rule], self.text)
        self.count(rule, n)

    def findings(self) -> tuple[Finding, ...]:
        return tuple(Finding(self.field, r, n) for r, n in self.counts.items())


def _long_digits(p: _Pass) -> None:
    def replace(m: re.Match[str]) -> str:
        token = m.group(0)
        named = "代码" in m.string[max(0, m.start() - 12) : m.start()]
        if named and len(token) == 18 and is_credit_code(token) and not is_resident_id(token):
            return token  # an organisation's all-digit 统一社会信用代码, named as one, stays
        # 15 or 18 characters, or an X check digit: an ID number, even a mistyped one
        rule = Rule.ID_NUMBER if len(token) in (15, 18) or token[-1] in "Xx" else Rule.BANK_ACCOUNT
        p.count(rule)
        return REPLACEMENT[rule]

    p.text = _DIGIT_RUN.sub(replace, p.text)


def _keyword_phone(p: _Pass) -> None:
    def replace(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group("num"))
        if len(digits) < 7:
            return m.group(0)
        rule = Rule.MOBILE if re.search(r"1[3-9]\d{9}$", digits) else Rule.LANDLINE
        p.count(rule)
        return m.group("kw") + m.group("sep") + REPLACEMENT[rule]

    p.text = _PHONE_AFTER_KEYWORD.sub(replace, p.text)


def _keyword_address(p: _Pass) -> None:
    def replace(m: re.Match[str]) -> str:
        if m.group("addr").startswith("［"):
            return m.group(0)
        p.count(Rule.ADDRESS)
        return m.group("kw") + m.group("sep") + REPLACEMENT[Rule.ADDRESS]

    p.text = _ADDRESS_AFTER_KEYWORD.sub(replace, p.text)


def _keyword_names(p: _Pass) -> None:
    def replace(m: re.Match[str]) -> str:
        name = m.group("name")
        if name.endswith("某") or name.endswith(ORGANISATION_SUFFIXES):
            return m.group(0)
        p.count(Rule.NAME)
        return m.group("kw") + m.group("sep") + mask_person_name(name)

    p.text = _NAME_AFTER_KEYWORD.sub(replace, p.text)


def redact_text(
    text: str, *, person_names: Iterable[str] = (), field_name: str = "text"
) -> Redacted:
    """Apply every text rule to ``text``; ``person_names`` (the parties) are masked wherever they occur."""
    p = _Pass(text, field_name)
    p.sub(_SECRET_SPAN, Rule.TRADE_SECRET)
    p.sub(_EMAIL, Rule.EMAIL)
    _keyword_address(p)
    p.sub(_UNIT_DETAIL, Rule.ADDRESS)
    p.sub(_ID_GROUPS, Rule.ID_NUMBER)
    _long_digits(p)
    p.sub(_CARD_GROUPS, Rule.BANK_ACCOUNT)
    _keyword_phone(p)
    p.sub(_MOBILE, Rule.MOBILE)
    p.sub(_LANDLINE, Rule.LANDLINE)
    for name in sorted(
        {n.strip() for n in person_names if len(n.strip()) >= 2}, key=len, reverse=True
    ):
        n = p.text.count(name)
        if n:
            p.text = p.text.replace(name, mask_person_name(name))
            p.count(Rule.NAME, n)
    _keyword_names(p)
    return Redacted(p.text, p.findings())


# --------------------------------------------------------------------------- whole decision


def public_party(party: Party) -> tuple[PublicParty, tuple[Finding, ...]]:
    """A party as published: a person masked (no ID, no address); an organisation whole."""
    if party.kind is PartyKind.ORGANISATION:
        code = (party.id_number or "").strip().upper()
        name = redact_text(party.name, field_name="parties")
        found = list(name.findings)
        if code and (is_resident_id(code) or not is_credit_code(code)):
            found.append(Finding("parties", Rule.ID_NUMBER))  # e.g. 个体户's own ID number
            code = ""
        return PublicParty(name.text, party.kind, code or None), tuple(found)
    found = [Finding("parties", Rule.NAME)]
    if party.id_number:
        found.append(Finding("parties", Rule.ID_NUMBER))
    if party.address:
        found.append(Finding("parties", Rule.ADDRESS))
    return PublicParty(mask_person_name(party.name), party.kind), tuple(found)


def redact_decision(source: DecisionSource) -> PublicRecord:
    """The public record of a decision: every rule applied to every field, findings merged."""
    names = [p.name for p in source.parties if p.kind is PartyKind.PERSON]
    findings: list[Finding] = []
    parties = []
    for party in source.parties:
        shown, found = public_party(party)
        parties.append(shown)
        findings += found

    def clean(value: str, field_name: str) -> str:
        done = redact_text(value, person_names=names, field_name=field_name)
        findings.extend(done.findings)
        return done.text

    extra: list[tuple[str, str]] = []
    for f in source.fields:
        if f.trade_secret:
            findings.append(Finding(f.label, Rule.TRADE_SECRET))
            continue
        extra.append((f.label, clean(f.value, f.label)))
    return PublicRecord(
        agency=source.agency,
        category=source.category,
        case_no=clean(source.case_no, "case_no"),
        doc_no=clean(source.doc_no, "doc_no"),
        decided_on=source.decided_on,
        parties=tuple(parties),
        conclusion=clean(source.conclusion, "conclusion"),
        fields=tuple(extra),
        findings=_merge(findings),
    )


def _merge(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    merged: dict[tuple[str, Rule], int] = {}
    for f in findings:
        merged[(f.field, f.rule)] = merged.get((f.field, f.rule), 0) + f.count
    return tuple(Finding(k[0], k[1], n) for k, n in merged.items())
