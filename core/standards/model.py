"""The values a recording standard (全过程记录标准) is made of.

A ``RecordingStandard`` is one enforcement category's rules at one version: its ordered
stages (环节), the record types (文书/记录) each stage needs, the audio-video level
(音像记录要求) of each stage, the common rules every on-site action follows, retention,
and the legal basis (法律依据) of every rule. All values are frozen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any


class Requirement(Enum):
    """Whether a stage or record type must be present (必须 / 视情形 / 可选)."""

    REQUIRED = "required"
    CONDITIONAL = "conditional"
    OPTIONAL = "optional"

    @property
    def zh(self) -> str:
        """Chinese label."""
        return {"required": "必须", "conditional": "视情形", "optional": "可选"}[self.value]


class AVLevel(Enum):
    """Audio-video recording level of a stage (音像记录要求)."""

    FULL = "full"
    DISPUTED = "disputed"
    RECOMMENDED = "recommended"
    NONE = "none"

    @property
    def zh(self) -> str:
        """Chinese label."""
        return {
            "full": "全程音像记录",
            "disputed": "根据实际情况音像记录（未录须说明理由）",
            "recommended": "建议音像记录",
            "none": "文字记录即可",
        }[self.value]


class RuleCheck(Enum):
    """What the completeness assessment checks for a common rule (通用规则)."""

    MIN_OFFICERS = "min_officers"
    CREDENTIALS_SHOWN = "credentials_shown"
    INTERRUPTIONS_EXPLAINED = "interruptions_explained"
    DAYTIME_WORKING_DAYS = "daytime_working_days"
    """行政强制法 Art. 43: no execution at night (22:00–6:00) or on statutory holidays."""
    NONE = "none"
    """Documented only; no case fact to check it against (e.g. clock checked, stored together)."""


@dataclass(frozen=True)
class LegalBasis:
    """One citation (法律依据): the law or document and the provision.

    ``verified`` is False where the citation was not checked against the official text
    (shown as 待核 to users).
    """

    id: str
    law: str
    provision: str = ""
    note: str = ""
    verified: bool = True

    def short(self) -> str:
        """Citation without the note, e.g. ``中华人民共和国行政处罚法 第四十二条``."""
        text = f"{self.law} {self.provision}".strip()
        return text if self.verified else text + "〔待核〕"

    def cite(self) -> str:
        """Human-readable citation, e.g. ``行政处罚法 第四十二条``."""
        text = f"{self.law} {self.provision}".strip()
        if self.note:
            text += f"（{self.note}）"
        if not self.verified:
            text += "〔待核 verify〕"
        return text


@dataclass(frozen=True)
class Condition:
    """A fact about a case that makes a conditional stage or record due (e.g. ``hearing_requested``)."""

    id: str
    description_zh: str
    description_en: str = ""


@dataclass(frozen=True)
class RecordType:
    """A kind of record a stage needs (e.g. 现场检查笔录)."""

    id: str
    name_zh: str
    name_en: str
    requirement: Requirement
    basis: tuple[LegalBasis, ...]
    condition: Condition | None = None


@dataclass(frozen=True)
class Stage:
    """One stage (环节) of an enforcement procedure."""

    id: str
    name_zh: str
    name_en: str
    requirement: Requirement
    """Whether the procedure must pass through this stage (``optional``: only when it happens)."""
    av: AVLevel
    av_basis: tuple[LegalBasis, ...]
    on_site: bool
    """On-site stage (现场执法): ≥2 officers and 亮证 apply to its records."""
    records: tuple[RecordType, ...]
    basis: tuple[LegalBasis, ...]
    condition: Condition | None = None

    def record(self, record_type_id: str) -> RecordType | None:
        """The record type with that id, or None."""
        return next((r for r in self.records if r.id == record_type_id), None)


@dataclass(frozen=True)
class CommonRule:
    """A rule for every case of the category (≥2 officers, 亮证, continuous recording…)."""

    id: str
    name_zh: str
    name_en: str
    check: RuleCheck
    basis: tuple[LegalBasis, ...]
    min_officers: int = 0
    stages: tuple[str, ...] = ()
    """The stages a ``daytime_working_days`` rule applies to; for ``credentials_shown``,
    stages besides the on-site ones where 亮证 is expected (送达: advice only)."""


@dataclass(frozen=True)
class Retention:
    """How long records are kept (保管期限). ``case_file_years`` None means permanent (永久)."""

    case_file_years: int | None
    av_non_evidence_months: int
    """Audio-video that did not become case evidence; evidence follows the case file."""
    basis: tuple[LegalBasis, ...]
    note: str = ""

    def case_file_zh(self) -> str:
        """Chinese label of the case-file retention."""
        return "永久" if self.case_file_years is None else f"{self.case_file_years} 年"


@dataclass(frozen=True)
class RecordingStandard:
    """One enforcement category's recording standard at one version."""

    id: str
    version: str
    name_zh: str
    name_en: str
    stages: tuple[Stage, ...]
    common_rules: tuple[CommonRule, ...]
    retention: Retention
    conditions: tuple[Condition, ...]
    bases: tuple[LegalBasis, ...]
    source: str = ""

    def stage(self, stage_id: str) -> Stage | None:
        """The stage with that id, or None."""
        return next((s for s in self.stages if s.id == stage_id), None)

    def stage_index(self, stage_id: str) -> int:
        """Position of a stage in the procedure; -1 when unknown."""
        return next((i for i, s in enumerate(self.stages) if s.id == stage_id), -1)

    def rule(self, check: RuleCheck) -> CommonRule | None:
        """The common rule carrying that check, or None when the standard has none."""
        return next((r for r in self.common_rules if r.check is check), None)

    def to_json(self) -> dict[str, Any]:
        """The standard as plain JSON data (enums as their string values)."""
        return asdict(self, dict_factory=_plain)


def _plain(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {k: v.value if isinstance(v, Enum) else v for k, v in items}


@dataclass(frozen=True)
class StandardSummary:
    """One line of ``list_standards()``: id, newest version, names, every shipped version."""

    id: str
    version: str
    name_zh: str
    name_en: str
    versions: tuple[str, ...]
