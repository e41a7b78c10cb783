"""The law's procedure gates before a penalty decision, and the conditions derived from facts.

Pure functions over an intended decision (``DecisionFacts``) and what the case holds
(the record types filed, who investigated, who decides). Each gate that fails gives a
:class:`Refusal` naming the article and every thing missing; the decision service
refuses the decision (409) with all of them and records nothing but the refusal.

Gates (行政处罚法):

- **Art. 62** — no penalty decision unless the 告知 of Art. 44 is on file
  (``penalty-notice``) and the party's 陈述、申辩 was heard (``statement-record``) or
  waived in writing (``statement-waiver``, Art. 45).
- **Art. 57 ¶2** — 情节复杂或者重大违法行为: a 集体讨论 record (``discussion-record``) and
  the decision recorded by the agency's 负责人 (role ``head``).
- **Art. 63/64** — in the hearing scope the 听证告知书 (``hearing-rights-notice``) must be
  on file; a requested hearing must have been held (``hearing-transcript``) before the
  decision, chaired by someone who is not one of the case's investigators (Art. 64 (四)).
- **Art. 51** — the 简易程序 (``penalty-simple``) only for a 警告 or a fine of at most
  ¥200 (natural person) / ¥3,000 (organisation); anything else goes the general way.

Conditions (:func:`derive_conditions`): ``hearing_eligible``, ``complex_or_serious`` and
``major_case`` come from the facts, the agency's hearing thresholds
(``core/standards/hearing-thresholds.toml``) and the review catalogue. A handler may
add a condition with a reason; nothing removes a derived one. By default every decision
in the hearing scope also counts as 重大违法行为 (collective discussion), as most
departmental rules do; ``complex_case`` (疑难复杂) adds it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

from core.errors import StandardInvalid
from core.legal_review import MEASURES, DecisionFacts, PartyKind, ReviewCatalogue, is_major_decision
from core.standards.model import LegalBasis
from core.standards.schema import KEBAB, Table, TomlReader, join

HEARING_ELIGIBLE = "hearing_eligible"
COMPLEX_OR_SERIOUS = "complex_or_serious"
MAJOR_CASE = "major_case"
CONDITIONS: dict[str, str] = {
    HEARING_ELIGIBLE: "拟作出的处罚属于听证范围（第六十三条）",
    COMPLEX_OR_SERIOUS: "情节复杂或者重大违法行为，须集体讨论（第五十七条第二款）",
    MAJOR_CASE: "重大执法决定，须法制审核（第五十八条）",
}
"""The conditions derived here, with their Chinese descriptions."""

HEARING_MEASURES = frozenset(
    {
        "qualification_downgrade",
        "licence_revocation",
        "order_stop_business",
        "order_close",
        "employment_restriction",
    }
)
"""Art. 63 ¶1 (二)–(五): measures always in the hearing scope."""

NOT_A_PENALTY = frozenset({"no-penalty"})
"""Decision types of a penalty case that impose no penalty (不予处罚): the penalty gates
skip them. Every other type (penalty, warning, confiscation …) is a 行政处罚决定."""

SIMPLE_LIMIT_YUAN = {PartyKind.INDIVIDUAL: Decimal(200), PartyKind.ORGANISATION: Decimal(3000)}
"""Art. 51: the 简易程序 fine ceilings (natural person / organisation)."""

# record type ids of the penalty standard the gates look for
PENALTY_NOTICE = "penalty-notice"
STATEMENT_RECORD = "statement-record"
STATEMENT_WAIVER = "statement-waiver"
DISCUSSION_RECORD = "discussion-record"
HEARING_RIGHTS_NOTICE = "hearing-rights-notice"
HEARING_APPLICATION = "hearing-application"
HEARING_TRANSCRIPT = "hearing-transcript"

_APL = "中华人民共和国行政处罚法"


@dataclass(frozen=True)
class Gate:
    """A procedure gate as listed to users: which categories, what it needs, its basis."""

    code: str
    categories: tuple[str, ...]
    name_zh: str
    basis: tuple[LegalBasis, ...]


def _apl(provision: str, note: str) -> LegalBasis:
    return LegalBasis(f"apl-{provision}", _APL, provision, note)


GATES: tuple[Gate, ...] = (
    Gate(
        "apl-62",
        ("penalty",),
        "行政处罚决定前：告知书在案，陈述申辩已听取或者当事人书面放弃",
        (
            _apl("第六十二条", "未告知、未听取陈述申辩的，不得作出行政处罚决定"),
            _apl("第四十四条", "告知拟作出的处罚内容及事实、理由、依据和陈述、申辩、听证权利"),
            _apl("第四十五条", "当事人有权进行陈述和申辩，行政机关必须充分听取"),
        ),
    ),
    Gate(
        "apl-57-2",
        ("penalty",),
        "情节复杂或者重大违法行为：集体讨论笔录在案，由行政机关负责人登记决定",
        (_apl("第五十七条第二款", "行政机关负责人应当集体讨论决定"),),
    ),
    Gate(
        "apl-63-64",
        ("penalty",),
        "属于听证范围：听证告知书在案；当事人要求听证的，先举行听证",
        (
            _apl("第六十三条", "听证范围：较大数额罚款、没收较大数额违法所得等"),
            _apl("第六十四条", "听证程序"),
        ),
    ),
    Gate(
        "apl-64-4",
        ("penalty",),
        "听证主持人不是本案调查人员",
        (_apl("第六十四条第（四）项", "听证由行政机关指定的非本案调查人员主持"),),
    ),
    Gate(
        "apl-51",
        ("penalty-simple",),
        "简易程序只适用于警告或者对公民二百元以下、对法人或者其他组织三千元以下罚款",
        (_apl("第五十一条", "当场作出行政处罚决定的条件"),),
    ),
    Gate(
        "apl-58",
        ("*",),
        "重大执法决定：最近一次法制审核通过，且审核的正是本决定草案",
        (_apl("第五十八条", "未经法制审核或者审核未通过的，不得作出决定"),),
    ),
)
"""Every gate ``check_procedure`` and the legal-review check apply, for listing."""


@dataclass(frozen=True)
class HearingThresholds:
    """较大数额 for the hearing scope, for the agencies it applies to (``*``: default)."""

    id: str
    applies_to: frozenset[str]
    name_zh: str
    fine_yuan: Mapping[PartyKind, int]
    confiscation_yuan: Mapping[PartyKind, int]
    basis: tuple[LegalBasis, ...]


@dataclass(frozen=True)
class ThresholdTable:
    """Every thresholds entry of the data file; :meth:`for_agency` picks one."""

    entries: tuple[HearingThresholds, ...]
    source: str

    def for_agency(self, agency_code: str) -> HearingThresholds:
        """The entry naming ``agency_code``, else the ``*`` default."""
        for entry in self.entries:
            if agency_code in entry.applies_to:
                return entry
        for entry in self.entries:
            if "*" in entry.applies_to:
                return entry
        raise StandardInvalid(
            f"听证数额标准 {self.source} 没有适用于 {agency_code} 的条目，也没有默认条目 (*)",
            [f"{self.source}: no entry for {agency_code!r} and no '*' default"],
        )


@dataclass(frozen=True)
class ConditionReason:
    """Why a condition holds: derived from the facts, or added by the handler."""

    condition: str
    message_zh: str
    added_by_handler: bool = False


@dataclass(frozen=True)
class Conditions:
    """The conditions of an intended decision, each with every reason it holds."""

    reasons: tuple[ConditionReason, ...]

    @property
    def names(self) -> frozenset[str]:
        """The conditions that hold."""
        return frozenset(r.condition for r in self.reasons)

    def holds(self, condition: str) -> bool:
        """Whether ``condition`` holds."""
        return condition in self.names

    def to_json(self) -> dict[str, list[dict[str, object]]]:
        """``{condition: [{"reason", "added_by_handler"}]}``."""
        out: dict[str, list[dict[str, object]]] = {}
        for r in self.reasons:
            out.setdefault(r.condition, []).append(
                {"reason": r.message_zh, "added_by_handler": r.added_by_handler}
            )
        return out


def derive_conditions(
    facts: DecisionFacts,
    thresholds: HearingThresholds,
    catalogue: ReviewCatalogue,
    added: Mapping[str, str] | None = None,
) -> Conditions:
    """The conditions the facts make hold, plus the handler's additions (each with a reason).

    ``ValueError`` when an addition names an unknown condition or gives no reason.
    """
    reasons: list[ConditionReason] = []
    for text in hearing_scope(facts, thresholds):
        reasons.append(ConditionReason(HEARING_ELIGIBLE, text))
        reasons.append(ConditionReason(COMPLEX_OR_SERIOUS, f"重大违法行为：{text}"))
    if facts.complex_case:
        reasons.append(ConditionReason(COMPLEX_OR_SERIOUS, "案件情况疑难复杂"))
    for major in is_major_decision(facts, catalogue).reasons:
        reasons.append(ConditionReason(MAJOR_CASE, major.message_zh))
    for condition, why in (added or {}).items():
        if condition not in CONDITIONS:
            raise ValueError(
                f"{condition!r} 不是可添加的条件 (not a condition); 可选: {', '.join(CONDITIONS)}"
            )
        if not why.strip():
            raise ValueError(f"添加条件 {condition} 须说明理由 (adding a condition needs a reason)")
        reasons.append(ConditionReason(condition, f"承办人添加：{why.strip()}", True))
    return Conditions(tuple(reasons))


def hearing_scope(facts: DecisionFacts, thresholds: HearingThresholds) -> list[str]:
    """Every reason the decision falls in the Art. 63 hearing scope (empty: it does not)."""
    out: list[str] = []
    party = facts.party if facts.party is not PartyKind.ANY else PartyKind.INDIVIDUAL
    who = "公民" if party is PartyKind.INDIVIDUAL else "法人或者其他组织"
    fine_min = thresholds.fine_yuan[party]
    if facts.fine_yuan >= fine_min:
        out.append(f"较大数额罚款：对{who}罚款 {facts.fine_yuan} 元（标准 {fine_min} 元）")
    confiscation_min = thresholds.confiscation_yuan[party]
    if facts.property_value_yuan >= confiscation_min:
        out.append(
            f"没收较大数额违法所得或者较大价值非法财物：{facts.property_value_yuan} 元"
            f"（标准 {confiscation_min} 元）"
        )
    for m in sorted(facts.measures & HEARING_MEASURES):
        out.append(MEASURES[m])
    if facts.other_severe:
        out.append("其他较重的行政处罚")
    return out


@dataclass(frozen=True)
class Refusal:
    """One gate that refuses the decision: the article and what is missing."""

    code: str
    article_zh: str
    message_zh: str
    missing: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """JSON form for the error body and the custody log."""
        return {
            "code": self.code,
            "article": self.article_zh,
            "message_zh": self.message_zh,
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class DecisionContext:
    """What the gates weigh besides the facts: the case's records and the people."""

    category: str
    decision_type: str
    facts: DecisionFacts
    conditions: Conditions
    record_types: frozenset[str]
    """Record type ids of the case's stored records."""
    investigators: frozenset[str] = frozenset()
    """User ids of the case's officers (承办、调查人员)."""
    decided_by_head: bool = False
    hearing_chair: str | None = None
    """User id of the hearing's chair (主持人)."""


def check_procedure(ctx: DecisionContext) -> tuple[Refusal, ...]:
    """Every procedure gate the intended decision fails (empty: the procedure allows it)."""
    if ctx.category == "penalty-simple":
        return tuple(r for r in (_art51(ctx.facts),) if r is not None)
    if ctx.category != "penalty" or ctx.decision_type in NOT_A_PENALTY:
        return ()
    gates = (_art62(ctx), _art57(ctx), _art63(ctx), _art64_chair(ctx))
    return tuple(r for r in gates if r is not None)


def _art62(ctx: DecisionContext) -> Refusal | None:
    missing = []
    if PENALTY_NOTICE not in ctx.record_types:
        missing.append("行政处罚告知书（第四十四条，penalty-notice）")
    if not {STATEMENT_RECORD, STATEMENT_WAIVER} & ctx.record_types:
        missing.append(
            "陈述申辩笔录（statement-record）或者当事人书面放弃陈述申辩（statement-waiver）"
            "（第四十五条）"
        )
    if not missing:
        return None
    return Refusal(
        "apl-62",
        f"{_APL}第六十二条",
        "行政处罚法第六十二条：未依照第四十四条、第四十五条向当事人告知拟作出的处罚"
        "并听取陈述、申辩（或者当事人书面放弃）的，不得作出行政处罚决定。缺少："
        + "；".join(missing),
        tuple(missing),
    )


def _art57(ctx: DecisionContext) -> Refusal | None:
    if not ctx.conditions.holds(COMPLEX_OR_SERIOUS):
        return None
    missing = []
    if DISCUSSION_RECORD not in ctx.record_types:
        missing.append("集体讨论笔录（discussion-record）")
    if not ctx.decided_by_head:
        missing.append("由行政机关负责人（角色 head）登记决定")
    if not missing:
        return None
    why = "；".join(
        r.message_zh for r in ctx.conditions.reasons if r.condition == COMPLEX_OR_SERIOUS
    )
    return Refusal(
        "apl-57-2",
        f"{_APL}第五十七条第二款",
        f"行政处罚法第五十七条第二款：情节复杂或者重大违法行为（{why}），"
        "行政机关负责人应当集体讨论决定。缺少：" + "；".join(missing),
        tuple(missing),
    )


def _art63(ctx: DecisionContext) -> Refusal | None:
    if not ctx.conditions.holds(HEARING_ELIGIBLE):
        return None
    missing = []
    if HEARING_RIGHTS_NOTICE not in ctx.record_types:
        missing.append("听证告知书（hearing-rights-notice）")
    if _hearing_requested(ctx) and HEARING_TRANSCRIPT not in ctx.record_types:
        missing.append("当事人已要求听证：听证笔录（hearing-transcript），须先举行听证")
    if not missing:
        return None
    why = "；".join(r.message_zh for r in ctx.conditions.reasons if r.condition == HEARING_ELIGIBLE)
    return Refusal(
        "apl-63-64",
        f"{_APL}第六十三条、第六十四条",
        f"行政处罚法第六十三条、第六十四条：拟作出的处罚属于听证范围（{why}），"
        "应当告知当事人有要求听证的权利；当事人要求听证的，应当组织听证后再作决定。缺少："
        + "；".join(missing),
        tuple(missing),
    )


def _art64_chair(ctx: DecisionContext) -> Refusal | None:
    if not (_hearing_requested(ctx) or HEARING_TRANSCRIPT in ctx.record_types):
        return None
    if ctx.hearing_chair is None:
        missing = "听证主持人（hearing_chair_user_id）"
        text = "未载明听证主持人"
    elif ctx.hearing_chair in ctx.investigators:
        missing = "非本案调查人员担任的听证主持人"
        text = "听证主持人是本案调查人员"
    else:
        return None
    return Refusal(
        "apl-64-4",
        f"{_APL}第六十四条第（四）项",
        f"行政处罚法第六十四条第（四）项：听证由行政机关指定的非本案调查人员主持；{text}。"
        f"缺少：{missing}",
        (missing,),
    )


def _hearing_requested(ctx: DecisionContext) -> bool:
    return ctx.facts.hearing_requested or HEARING_APPLICATION in ctx.record_types


def _art51(facts: DecisionFacts) -> Refusal | None:
    party = facts.party if facts.party is not PartyKind.ANY else PartyKind.ORGANISATION
    limit = SIMPLE_LIMIT_YUAN[party]
    who = "公民" if party is PartyKind.INDIVIDUAL else "法人或者其他组织"
    over = []
    if facts.fine_yuan > limit:
        over.append(f"对{who}罚款 {facts.fine_yuan} 元，超过 {limit} 元")
    if facts.property_value_yuan > 0:
        over.append(f"没收财物价值 {facts.property_value_yuan} 元")
    if facts.measures:
        over.append("、".join(MEASURES[m] for m in sorted(facts.measures)))
    if not over:
        return None
    return Refusal(
        "apl-51",
        f"{_APL}第五十一条",
        "行政处罚法第五十一条：简易程序（当场处罚）只适用于警告，或者对公民二百元以下、"
        "对法人或者其他组织三千元以下的罚款；本决定为" + "；".join(over) + "，须按普通程序办理。",
        ("按普通程序（penalty）立案办理",),
    )


def default_thresholds() -> ThresholdTable:
    """The shipped hearing thresholds (``core/standards/hearing-thresholds.toml``)."""
    text = resources.files("core.standards").joinpath("hearing-thresholds.toml").read_text("utf-8")
    return validate_thresholds_text(text, "hearing-thresholds.toml")


def validate_thresholds_text(text: str, source: str) -> ThresholdTable:
    """Parse and validate a thresholds file; ``StandardInvalid`` lists every problem."""
    r = TomlReader()
    doc = r.parse(text)
    entries: list[HearingThresholds] = []
    if doc is not None:
        r.keys(doc, "", ("schema", "id", "version", "name_zh", "bases", "thresholds"))
        if r.integer(doc, "schema", "") not in (None, 1):
            r.problem("schema", "不支持的格式版本 unsupported schema (expected 1)")
        bases = r.basis_table(doc)
        for i, t in enumerate(r.tables(doc, "thresholds", "")):
            entry = _thresholds(r, t, join("thresholds", i), bases)
            if entry is not None:
                entries.append(entry)
    if r.problems or doc is None:
        raise StandardInvalid(
            f"听证数额标准文件 {source} 有 {len(r.problems)} 处问题 "
            f"(hearing thresholds file has {len(r.problems)} problem(s))",
            r.problems,
        )
    return ThresholdTable(tuple(entries), source)


_AMOUNTS = (
    "individual_fine_yuan",
    "organisation_fine_yuan",
    "individual_confiscation_yuan",
    "organisation_confiscation_yuan",
)


def _thresholds(
    r: TomlReader, t: Table, path: str, bases: dict[str, LegalBasis]
) -> HearingThresholds | None:
    r.keys(t, path, ("id", "applies_to", "name_zh", *_AMOUNTS, "basis"))
    tid = r.string(t, "id", path, pattern=KEBAB, hint="ASCII kebab-case")
    name_zh = r.string(t, "name_zh", path)
    amounts = [r.integer(t, k, path, minimum=1) for k in _AMOUNTS]
    basis = r.bases(t, "basis", path, bases)
    applies = t.get("applies_to")
    if not isinstance(applies, list) or not applies or not all(isinstance(a, str) for a in applies):
        r.problem(
            join(path, "applies_to"), '应为机关代码列表或 ["*"] must list agency codes or "*"'
        )
        return None
    if tid is None or name_zh is None or any(a is None for a in amounts):
        return None
    fi, fo, ci, co = (int(a or 0) for a in amounts)
    return HearingThresholds(
        tid,
        frozenset(applies),
        name_zh,
        {PartyKind.INDIVIDUAL: fi, PartyKind.ORGANISATION: fo},
        {PartyKind.INDIVIDUAL: ci, PartyKind.ORGANISATION: co},
        basis,
    )


def present_record_types(record_types: Iterable[str | None]) -> frozenset[str]:
    """The record type ids among ``record_types`` (plain media without a type dropped)."""
    return frozenset(t for t in record_types if t)
