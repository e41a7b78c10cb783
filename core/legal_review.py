"""The legal-review gate (重大执法决定法制审核).

A decision is major (需法制审核) when any Art. 58 criterion applies (行政处罚法 Art. 58;
seed plan §二(三)1: major public interest, major social impact or risk, directly
affecting major rights after a hearing, complex facts or several legal relations, a law
requiring review) or when the agency's catalogue (目录清单) lists it: fines and property
values above thresholds, licence revocation, orders to stop business, a hearing held…
The default catalogue ships as ``core/standards/review-catalogue.toml``; its amounts are
agency-tunable defaults.

``check_decision_allowed`` refuses (``LegalReviewRequired``) to record a decision on a
major case unless the latest legal review passed: 未经法制审核或者审核未通过的，不得作出决定.
A pass covers the decision draft it reviewed and no other: every review carries the
digest of that draft (:func:`draft_digest`), so a pass on one fine does not cover a
different later fine.

Art. 58 ¶1 names four cases; the seed plan §二(三)1 and 国办发〔2018〕118号 四、（十二）
also list "可能造成重大社会影响或者引发社会风险" and "直接关系当事人或者第三人重大权益"
on its own (the law asks for the latter only after a hearing; a hearing held is itself a
catalogue line). Catalogue lines may be limited to an enforcement level (执法层级) and a
field (所属领域) besides the category and the amount.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from importlib import resources

from core.canonical import canonical_json, sha256_digest
from core.errors import LegalReviewRequired, StandardInvalid
from core.standards.model import LegalBasis
from core.standards.schema import KEBAB, VERSION, Table, TomlReader, join

CATALOGUE_SCHEMA = 1

MEASURES: dict[str, str] = {
    "licence_revocation": "吊销许可证件",
    "licence_withdrawal": "撤销、撤回行政许可",
    "qualification_downgrade": "降低资质等级",
    "order_stop_business": "责令停产停业",
    "order_close": "责令关闭",
    "employment_restriction": "限制从业",
    "detention": "行政拘留",
    "forced_demolition": "强制拆除",
}
"""Measures a catalogue entry may name, with their Chinese names."""


class PartyKind(Enum):
    """Who the decision is against (当事人类型)."""

    INDIVIDUAL = "individual"
    ORGANISATION = "organisation"
    ANY = "any"


class EntryKind(Enum):
    """What a catalogue entry looks at."""

    FINE = "fine"
    PROPERTY_VALUE = "property_value"
    MEASURE = "measure"
    HEARING_HELD = "hearing_held"


@dataclass(frozen=True)
class CatalogueEntry:
    """One line of the agency catalogue."""

    id: str
    category: str
    """A standard id, or ``*`` for every category."""
    kind: EntryKind
    name_zh: str
    basis: tuple[LegalBasis, ...]
    party: PartyKind = PartyKind.ANY
    min_yuan: int = 0
    measures: frozenset[str] = frozenset()
    levels: frozenset[str] = frozenset()
    """执法层级 the entry is limited to (e.g. 县级); empty: every level."""
    fields: frozenset[str] = frozenset()
    """所属领域 the entry is limited to (e.g. 市场监管); empty: every field."""


@dataclass(frozen=True)
class ReviewCatalogue:
    """The agency's catalogue of major decisions (重大执法决定法制审核目录清单)."""

    id: str
    version: str
    name_zh: str
    entries: tuple[CatalogueEntry, ...]
    source: str = ""


@dataclass(frozen=True)
class DecisionFacts:
    """What the gate needs to know about an intended decision.

    The Art. 58 flags are the case handler's and reviewer's judgement; amounts in yuan.
    """

    category: str
    party: PartyKind = PartyKind.INDIVIDUAL
    fine_yuan: Decimal = Decimal(0)
    property_value_yuan: Decimal = Decimal(0)
    """Value of property confiscated, seized or sealed up."""
    measures: frozenset[str] = frozenset()
    hearing_held: bool = False
    major_public_interest: bool = False
    major_social_impact: bool = False
    affects_major_rights: bool = False
    complex_case: bool = False
    required_by_law: bool = False
    hearing_requested: bool = False
    """The party asked for a hearing (当事人要求听证, Art. 64)."""
    other_severe: bool = False
    """其他较重的行政处罚 (Art. 63 ¶1 (六)), the handler's judgement."""
    enforcement_level: str = ""
    """执法层级 of the deciding agency (省级、市级、县级 …), matched against the catalogue."""
    field: str = ""
    """所属领域 (e.g. 市场监管、生态环境), matched against the catalogue."""

    def to_json(self) -> dict[str, object]:
        """The facts as JSON (amounts as decimal strings, measures sorted)."""
        return {
            "category": self.category,
            "party": self.party.value,
            "fine_yuan": str(self.fine_yuan),
            "property_value_yuan": str(self.property_value_yuan),
            "measures": sorted(self.measures),
            "hearing_held": self.hearing_held,
            "major_public_interest": self.major_public_interest,
            "major_social_impact": self.major_social_impact,
            "affects_major_rights": self.affects_major_rights,
            "complex_case": self.complex_case,
            "required_by_law": self.required_by_law,
            "hearing_requested": self.hearing_requested,
            "other_severe": self.other_severe,
            "enforcement_level": self.enforcement_level,
            "field": self.field,
        }


@dataclass(frozen=True)
class MajorReason:
    """One reason a decision is major, with its basis."""

    code: str
    """``art58-…`` for the statutory criteria, ``catalogue:<entry id>`` for catalogue lines."""
    message_zh: str
    basis: tuple[LegalBasis, ...]


@dataclass(frozen=True)
class MajorDecisionAssessment:
    """Whether a decision needs 法制审核, and every reason why."""

    reasons: tuple[MajorReason, ...]

    @property
    def is_major(self) -> bool:
        """True when at least one reason applies."""
        return bool(self.reasons)


@dataclass(frozen=True)
class LegalReview:
    """A recorded 法制审核意见: who reviewed, when, whether it passed."""

    reviewer: str
    reviewed_at: datetime
    passed: bool
    opinion_ref: str = ""
    draft_digest: str | None = None
    """Digest of the decision draft reviewed (:func:`draft_digest`); None: no draft named."""


def draft_digest(decision_type: str, facts: DecisionFacts) -> str:
    """``sha256:<hex>`` of the canonical JSON of a decision draft (type and facts)."""
    return sha256_digest(canonical_json({"decision_type": decision_type, "facts": facts.to_json()}))


_APL_58 = LegalBasis("apl-58", "中华人民共和国行政处罚法", "第五十八条", "重大执法决定法制审核")
_PLAN = LegalBasis(
    "plan-2-3-1",
    "贵州省发展和改革委员会推行行政执法“三项制度”示范创建工作方案",
    "二、（三）1",
    "法制审核范围",
)
_GBF_118_12 = LegalBasis(
    "gbf-118-12",
    "国办发〔2018〕118号",
    "四、（十二）明确审核范围",
    "重大公共利益、重大社会影响或社会风险、直接关系重大权益、经过听证、疑难复杂",
)

_ART58: tuple[tuple[str, str, str, tuple[LegalBasis, ...]], ...] = (
    (
        "major_public_interest",
        "art58-public-interest",
        "涉及重大公共利益",
        (_APL_58, _PLAN, _GBF_118_12),
    ),
    (
        "major_social_impact",
        "art58-social-impact",
        "可能造成重大社会影响或者引发社会风险",
        (_PLAN, _GBF_118_12),
    ),
    (
        "complex_case",
        "art58-complex",
        "案件情况疑难复杂、涉及多个法律关系",
        (_APL_58, _PLAN, _GBF_118_12),
    ),
    ("required_by_law", "art58-by-law", "法律、法规规定应当进行法制审核", (_APL_58,)),
)


def is_major_decision(
    decision: DecisionFacts, catalogue: ReviewCatalogue
) -> MajorDecisionAssessment:
    """Every reason (Art. 58 criteria and catalogue entries) that makes the decision major."""
    reasons: list[MajorReason] = []
    for flag, code, text, basis in _ART58:
        if getattr(decision, flag):
            reasons.append(MajorReason(code, text, basis))
    if decision.affects_major_rights and decision.hearing_held:
        reasons.append(
            MajorReason(
                "art58-major-rights-hearing",
                "直接关系当事人或者第三人重大权益，经过听证程序",
                (_APL_58,),
            )
        )
    elif decision.affects_major_rights:
        reasons.append(
            MajorReason(
                "major-rights",
                "直接关系当事人或者第三人重大权益",
                (_PLAN, _GBF_118_12),
            )
        )
    for entry in catalogue.entries:
        if entry.category not in ("*", decision.category):
            continue
        if entry.levels and decision.enforcement_level not in entry.levels:
            continue
        if entry.fields and decision.field not in entry.fields:
            continue
        hit = _entry_hit(entry, decision)
        if hit is not None:
            reasons.append(MajorReason(f"catalogue:{entry.id}", hit, entry.basis))
    return MajorDecisionAssessment(tuple(reasons))


def _entry_hit(entry: CatalogueEntry, d: DecisionFacts) -> str | None:
    party_ok = entry.party is PartyKind.ANY or entry.party is d.party
    if entry.kind is EntryKind.FINE and party_ok and d.fine_yuan >= entry.min_yuan > 0:
        return f"{entry.name_zh}：罚款 {d.fine_yuan} 元，目录标准 {entry.min_yuan} 元"
    if (
        entry.kind is EntryKind.PROPERTY_VALUE
        and party_ok
        and d.property_value_yuan >= entry.min_yuan > 0
    ):
        return f"{entry.name_zh}：财物价值 {d.property_value_yuan} 元，目录标准 {entry.min_yuan} 元"
    if entry.kind is EntryKind.MEASURE and (found := sorted(entry.measures & d.measures)):
        return f"{entry.name_zh}：{'、'.join(MEASURES[m] for m in found)}"
    if entry.kind is EntryKind.HEARING_HELD and d.hearing_held:
        return entry.name_zh
    return None


def check_decision_allowed(
    assessment: MajorDecisionAssessment,
    reviews: Iterable[LegalReview],
    digest: str | None = None,
) -> None:
    """Raise ``LegalReviewRequired`` unless the decision is not major or the latest review passed.

    The latest review decides: a later failed review withdraws an earlier pass. With
    ``digest`` (the draft's :func:`draft_digest`) the passing review must have reviewed
    exactly that draft.
    """
    if not assessment.is_major:
        return
    ordered = sorted(reviews, key=lambda r: r.reviewed_at)
    latest = ordered[-1] if ordered else None
    if latest is not None and latest.passed:
        if digest is None or latest.draft_digest == digest:
            return
        state = (
            "最近一次通过的法制审核未载明所审核的决定草案"
            if latest.draft_digest is None
            else f"最近一次通过的法制审核针对的是另一份决定草案（{latest.draft_digest[:19]}…）"
        )
        raise LegalReviewRequired(
            f"该决定属于重大执法决定（行政处罚法第五十八条），{state}，"
            f"不覆盖本决定草案（{digest[:19]}…）：须就本决定草案重新法制审核。"
            " The passed legal review covers another decision draft: review this draft.",
            [r.message_zh for r in assessment.reasons],
        )
    state = "最近一次法制审核未通过" if ordered else "尚无法制审核意见"
    raise LegalReviewRequired(
        f"该决定属于重大执法决定（行政处罚法第五十八条），{state}："
        "须先记录通过的法制审核意见，才能作出决定。"
        " This is a major decision: record a passed legal review (法制审核意见) first.",
        [r.message_zh for r in assessment.reasons],
    )


def default_catalogue() -> ReviewCatalogue:
    """The shipped catalogue (``core/standards/review-catalogue.toml``)."""
    text = resources.files("core.standards").joinpath("review-catalogue.toml").read_text("utf-8")
    return validate_catalogue_text(text, "review-catalogue.toml")


def validate_catalogue_text(text: str, source: str) -> ReviewCatalogue:
    """Parse and validate a catalogue; ``StandardInvalid`` lists every problem with its place."""
    r = TomlReader()
    doc = r.parse(text)
    catalogue = _build(r, doc) if doc is not None else None
    if r.problems or catalogue is None:
        raise StandardInvalid(
            f"目录清单文件 {source} 有 {len(r.problems)} 处问题 "
            f"(catalogue file has {len(r.problems)} problem(s); positions count from 0)",
            r.problems,
        )
    return ReviewCatalogue(
        catalogue.id, catalogue.version, catalogue.name_zh, catalogue.entries, source
    )


def _build(r: TomlReader, doc: Table) -> ReviewCatalogue | None:
    r.keys(doc, "", ("schema", "id", "version", "name_zh", "bases", "entries"), ("name_en",))
    schema = r.integer(doc, "schema", "")
    if schema is not None and schema != CATALOGUE_SCHEMA:
        r.problem("schema", f"不支持的格式版本 unsupported schema {schema} (expected 1)")
    cid = r.string(doc, "id", "", pattern=KEBAB, hint="ASCII kebab-case")
    version = r.string(doc, "version", "", pattern=VERSION, hint="YYYY.N (e.g. 2026.1)")
    name_zh = r.string(doc, "name_zh", "")
    r.string(doc, "name_en", "", required=False)
    bases = r.basis_table(doc)
    tables = r.tables(doc, "entries", "")
    r.unique((t.get("id") for t in tables), "entries", "目录项")
    entries = tuple(
        e
        for i, t in enumerate(tables)
        if (e := _entry(r, t, join("entries", i), bases)) is not None
    )
    if cid is None or version is None or name_zh is None:
        return None
    return ReviewCatalogue(cid, version, name_zh, entries)


_ENTRY_LIMITS = ("basis", "levels", "fields")

_ENTRY_KEYS: dict[EntryKind, tuple[str, ...]] = {
    EntryKind.FINE: ("party", "min_yuan"),
    EntryKind.PROPERTY_VALUE: ("party", "min_yuan"),
    EntryKind.MEASURE: ("measures",),
    EntryKind.HEARING_HELD: (),
}


def _entry(
    r: TomlReader, t: Table, path: str, bases: dict[str, LegalBasis]
) -> CatalogueEntry | None:
    kind = r.choice(t, "kind", path, EntryKind)
    extra = _ENTRY_KEYS[kind] if kind is not None else ("party", "min_yuan", "measures")
    r.keys(t, path, ("id", "category", "kind", "name_zh", *extra), _ENTRY_LIMITS)
    eid = r.string(t, "id", path, pattern=KEBAB, hint="ASCII kebab-case")
    category = r.string(t, "category", path)
    if category is not None and category != "*" and not KEBAB.match(category):
        r.problem(
            join(path, "category"), f'{category!r} 应为标准 id 或 "*" must be a standard id or "*"'
        )
    name_zh = r.string(t, "name_zh", path)
    basis = r.bases(t, "basis", path, bases)
    party = r.choice(t, "party", path, PartyKind) or PartyKind.ANY
    min_yuan = r.integer(t, "min_yuan", path, minimum=1) or 0
    measures: frozenset[str] = frozenset()
    if "measures" in t:
        raw = t["measures"]
        if not isinstance(raw, list) or not raw:
            r.problem(join(path, "measures"), "应为非空列表 must be a non-empty list")
        else:
            for i, m in enumerate(raw):
                if m not in MEASURES:
                    r.problem(
                        join(join(path, "measures"), i),
                        f"{m!r} is not one of {', '.join(MEASURES)} (未知措施)",
                    )
            measures = frozenset(m for m in raw if m in MEASURES)
    levels = _names(r, t, "levels", path)
    fields = _names(r, t, "fields", path)
    if eid is None or category is None or kind is None or name_zh is None:
        return None
    return CatalogueEntry(
        eid, category, kind, name_zh, basis, party, min_yuan, measures, levels, fields
    )


def _names(r: TomlReader, t: Table, key: str, path: str) -> frozenset[str]:
    """An optional non-empty list of non-empty strings (执法层级 / 所属领域)."""
    if key not in t:
        return frozenset()
    raw = t[key]
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(v, str) and v.strip() for v in raw)
    ):
        r.problem(join(path, key), "应为非空字符串列表 must be a non-empty list of strings")
        return frozenset()
    return frozenset(v.strip() for v in raw)
