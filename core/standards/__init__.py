"""Recording standards (全过程记录标准) as data: one TOML file per enforcement category.

Shipped files live beside this module:

- ``<id>.toml`` — the newest version of a category (``licensing``, ``inspection``,
  ``penalty``, ``penalty-simple``, ``confirmation``, ``coercion``);
- ``<id>@<version>.toml`` — an older version, kept byte-for-byte as released.

Cases pin a version. ``load_standard(id, version)`` returns exactly that version or
raises ``UnknownStandard``; it never falls forward to a newer one, so shipping
``penalty`` 2027.1 leaves a case pinned to 2026.1 assessed as before. To release a new
version: copy ``<id>.toml`` unchanged to ``<id>@<old version>.toml``, then edit
``<id>.toml`` and raise its ``version``.

An agency tailors a standard by editing a copy and loading it with
``load_standard_file(path)`` (or a directory of them: ``directory=``); every fault of a
file is reported at once in ``StandardInvalid.problems``. The file format is the one
of the shipped files (see ``penalty.toml``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from core.errors import StandardInvalid, UnknownStandard
from core.standards.model import (
    AVLevel,
    CommonRule,
    Condition,
    LegalBasis,
    RecordingStandard,
    RecordType,
    Requirement,
    Retention,
    RuleCheck,
    Stage,
    StandardSummary,
)
from core.standards.schema import KEBAB, SNAKE, VERSION, Table, TomlReader, join, version_key

__all__ = [
    "AVLevel",
    "CommonRule",
    "Condition",
    "LegalBasis",
    "RecordType",
    "RecordingStandard",
    "Requirement",
    "Retention",
    "RuleCheck",
    "Stage",
    "StandardSummary",
    "list_standards",
    "load_standard",
    "load_standard_file",
    "validate_standard_text",
]

SCHEMA = 1
NOT_STANDARDS = frozenset({"review-catalogue.toml", "hearing-thresholds.toml"})


def validate_standard_text(text: str, source: str) -> RecordingStandard:
    """Parse and validate a standard; raise ``StandardInvalid`` listing every problem."""
    r = TomlReader()
    doc = r.parse(text)
    if doc is None:
        raise _invalid(source, r.problems)
    standard = _build(r, doc, source)
    if r.problems or standard is None:
        raise _invalid(source, r.problems)
    return standard


def load_standard_file(path: str | Path) -> RecordingStandard:
    """Load and validate a standard from a file (an agency's tailored standard)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StandardInvalid(
            f"找不到标准文件 standard file not found: {path}", [f"{path}: 文件不存在 no such file"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StandardInvalid(
            f"无法读取标准文件 cannot read standard file: {path}",
            [f"{path}: {exc} (文件须为 UTF-8 文本 must be UTF-8 text)"],
        ) from None
    return validate_standard_text(text, str(path))


def list_standards(directory: str | Path | None = None) -> list[StandardSummary]:
    """Every standard (shipped, or in ``directory``) with its newest version, sorted by id."""
    out = []
    for versions in _by_id(directory).values():
        newest = versions[-1]
        out.append(
            StandardSummary(
                newest.id,
                newest.version,
                newest.name_zh,
                newest.name_en,
                tuple(s.version for s in versions),
            )
        )
    return out


def load_standard(
    standard_id: str, version: str | None = None, *, directory: str | Path | None = None
) -> RecordingStandard:
    """The standard ``standard_id`` at ``version`` (newest when None).

    A pinned version is returned exactly or ``UnknownStandard`` is raised; a file whose
    name is not ``<id>.toml`` / ``<id>@<version>.toml`` for its content, or two files of
    one id and version, are ``StandardInvalid``.
    """
    standards = _by_id(directory)
    found = standards.get(standard_id)
    if not found:
        known = ", ".join(standards) or "（无 none）"
        raise UnknownStandard(
            f"没有 id 为 {standard_id!r} 的记录标准 no recording standard {standard_id!r}; "
            f"已有 known: {known}"
        )
    if version is None:
        return found[-1]
    for std in found:
        if std.version == version:
            return std
    have = ", ".join(s.version for s in found)
    raise UnknownStandard(
        f"记录标准 {standard_id!r} 没有版本 {version!r} (standard has no such version); "
        f"已有版本 available: {have}"
    )


def _by_id(directory: str | Path | None) -> dict[str, list[RecordingStandard]]:
    """Every standard file, checked against its name, grouped by id, oldest version first."""
    by_id: dict[str, list[RecordingStandard]] = {}
    seen: dict[tuple[str, str], str] = {}
    for name, text in _files(directory):
        std = _cached(text, name)
        stem = name.removesuffix(".toml")
        if stem not in (std.id, f"{std.id}@{std.version}"):
            raise _invalid(
                name,
                [
                    f"文件名应为 {std.id}.toml 或 {std.id}@{std.version}.toml "
                    f"(file name does not match id {std.id!r} and version {std.version!r})"
                ],
            )
        key = (std.id, std.version)
        if key in seen:
            raise _invalid(
                name,
                [
                    f"与 {seen[key]} 是同一标准同一版本 same id and version as {seen[key]}: "
                    "raise the version of the edited file"
                ],
            )
        seen[key] = name
        by_id.setdefault(std.id, []).append(std)
    return {sid: sorted(by_id[sid], key=lambda s: version_key(s.version)) for sid in sorted(by_id)}


def _files(directory: str | Path | None) -> Iterator[tuple[str, str]]:
    if directory is None:
        root = resources.files(__name__)
        for entry in sorted(root.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml") and entry.name not in NOT_STANDARDS:
                yield entry.name, entry.read_text(encoding="utf-8")
        return
    for path in sorted(Path(directory).glob("*.toml")):
        if path.name not in NOT_STANDARDS:
            yield path.name, path.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=64)
def _cached(text: str, source: str) -> RecordingStandard:
    return validate_standard_text(text, source)


def _invalid(source: str, problems: list[str]) -> StandardInvalid:
    return StandardInvalid(
        f"记录标准文件 {source} 有 {len(problems)} 处问题 "
        f"(standard file has {len(problems)} problem(s); positions count from 0)",
        problems,
    )


_TOP_REQUIRED = (
    "schema",
    "id",
    "version",
    "name_zh",
    "name_en",
    "bases",
    "retention",
    "common_rules",
    "stages",
)


def _build(r: TomlReader, doc: Table, source: str) -> RecordingStandard | None:
    r.keys(doc, "", _TOP_REQUIRED, ("conditions",))
    schema = r.integer(doc, "schema", "")
    if schema is not None and schema != SCHEMA:
        r.problem("schema", f"不支持的格式版本 unsupported schema {schema} (expected {SCHEMA})")
    sid = r.string(doc, "id", "", pattern=KEBAB, hint="ASCII kebab-case (e.g. penalty-simple)")
    version = r.string(doc, "version", "", pattern=VERSION, hint="YYYY.N (e.g. 2026.1)")
    name_zh = r.string(doc, "name_zh", "")
    name_en = r.string(doc, "name_en", "")
    bases = r.basis_table(doc)
    conditions = _conditions(r, doc)
    retention = _retention(r, doc, bases)
    rule_tables = r.tables(doc, "common_rules", "")
    r.unique((t.get("id") for t in rule_tables), "common_rules", "规则")
    rules = tuple(
        rule
        for i, t in enumerate(rule_tables)
        if (rule := _common_rule(r, t, join("common_rules", i), bases)) is not None
    )
    stage_tables = r.tables(doc, "stages", "")
    r.unique((t.get("id") for t in stage_tables), "stages", "环节")
    stages = tuple(
        stage
        for i, t in enumerate(stage_tables)
        if (stage := _stage(r, t, join("stages", i), bases, conditions)) is not None
    )
    known = {st.id for st in stages}
    for i, rule in enumerate(rules):
        for stage_id in rule.stages:
            if stage_id not in known:
                r.problem(
                    join(join("common_rules", i), "stages"),
                    f"{stage_id!r} 不是本标准的环节 is not a stage of this standard",
                )
    if (
        r.problems
        or sid is None
        or version is None
        or name_zh is None
        or name_en is None
        or retention is None
    ):
        return None
    return RecordingStandard(
        sid,
        version,
        name_zh,
        name_en,
        stages,
        rules,
        retention,
        tuple(conditions.values()),
        tuple(bases.values()),
        source,
    )


def _conditions(r: TomlReader, doc: Table) -> dict[str, Condition]:
    out: dict[str, Condition] = {}
    raw = doc.get("conditions")
    if raw is None:
        return out
    table = r.table(raw, "conditions")
    for cid, value in (table or {}).items():
        where = join("conditions", cid)
        if not SNAKE.match(cid):
            r.problem(
                where,
                "条件 id 应为 snake_case condition id must be snake_case (e.g. hearing_requested)",
            )
        entry = r.table(value, where)
        if entry is None:
            continue
        r.keys(entry, where, ("zh",), ("en",))
        zh = r.string(entry, "zh", where)
        en = r.string(entry, "en", where, required=False) or ""
        if zh is not None:
            out[cid] = Condition(cid, zh, en)
    return out


def _requirement_and_condition(
    r: TomlReader, t: Table, path: str, conditions: dict[str, Condition]
) -> tuple[Requirement | None, Condition | None]:
    requirement = r.choice(t, "requirement", path, Requirement)
    condition: Condition | None = None
    cid = t.get("condition")
    if requirement is Requirement.CONDITIONAL:
        if cid is None:
            r.problem(
                join(path, "condition"), "视情形 (conditional) 必须写明条件 needs a condition id"
            )
        elif not isinstance(cid, str) or cid not in conditions:
            r.problem(
                join(path, "condition"),
                f"未定义的条件 unknown condition {cid!r} (define it in [conditions])",
            )
        else:
            condition = conditions[cid]
    elif cid is not None and requirement is not None:
        r.problem(
            join(path, "condition"),
            f'只有 conditional 才有条件 a condition only goes with requirement = "conditional" (here {requirement.value!r})',
        )
    return requirement, condition


def _stage(
    r: TomlReader,
    t: Table,
    path: str,
    bases: dict[str, LegalBasis],
    conditions: dict[str, Condition],
) -> Stage | None:
    r.keys(
        t,
        path,
        ("id", "name_zh", "name_en", "requirement", "av", "on_site", "records"),
        ("condition", "av_basis", "basis"),  # basis: reported by r.bases() when missing
    )
    sid = r.string(t, "id", path, pattern=KEBAB, hint="ASCII kebab-case (e.g. on-site-inspection)")
    name_zh = r.string(t, "name_zh", path)
    name_en = r.string(t, "name_en", path)
    requirement, condition = _requirement_and_condition(r, t, path, conditions)
    av = r.choice(t, "av", path, AVLevel)
    av_basis: tuple[LegalBasis, ...] = ()
    if (av is not None and av is not AVLevel.NONE) or "av_basis" in t:
        av_basis = r.bases(t, "av_basis", path, bases)
    on_site = r.boolean(t, "on_site", path)
    basis = r.bases(t, "basis", path, bases)
    record_tables = r.tables(t, "records", path)
    r.unique((rt.get("id") for rt in record_tables), join(path, "records"), "记录类型")
    records = tuple(
        rec
        for i, rt in enumerate(record_tables)
        if (rec := _record(r, rt, join(join(path, "records"), i), bases, conditions)) is not None
    )
    if (
        sid is None
        or name_zh is None
        or name_en is None
        or requirement is None
        or av is None
        or on_site is None
    ):
        return None
    return Stage(
        sid, name_zh, name_en, requirement, av, av_basis, on_site, records, basis, condition
    )


def _record(
    r: TomlReader,
    t: Table,
    path: str,
    bases: dict[str, LegalBasis],
    conditions: dict[str, Condition],
) -> RecordType | None:
    r.keys(t, path, ("id", "name_zh", "name_en", "requirement"), ("condition", "basis"))
    rid = r.string(t, "id", path, pattern=KEBAB, hint="ASCII kebab-case (e.g. hearing-notice)")
    name_zh = r.string(t, "name_zh", path)
    name_en = r.string(t, "name_en", path)
    requirement, condition = _requirement_and_condition(r, t, path, conditions)
    basis = r.bases(t, "basis", path, bases)
    if rid is None or name_zh is None or name_en is None or requirement is None:
        return None
    return RecordType(rid, name_zh, name_en, requirement, basis, condition)


def _common_rule(
    r: TomlReader, t: Table, path: str, bases: dict[str, LegalBasis]
) -> CommonRule | None:
    r.keys(t, path, ("id", "name_zh", "name_en", "check"), ("min_officers", "basis", "stages"))
    rid = r.string(t, "id", path, pattern=KEBAB, hint="ASCII kebab-case")
    name_zh = r.string(t, "name_zh", path)
    name_en = r.string(t, "name_en", path)
    check = r.choice(t, "check", path, RuleCheck)
    basis = r.bases(t, "basis", path, bases)
    minimum = 0
    if check is RuleCheck.MIN_OFFICERS:
        if "min_officers" not in t:
            r.problem(
                join(path, "min_officers"), 'check = "min_officers" 需要人数 needs min_officers'
            )
        minimum = r.integer(t, "min_officers", path, minimum=2) or 0
    elif "min_officers" in t:
        r.problem(join(path, "min_officers"), '只用于 only used with check = "min_officers"')
    stages: tuple[str, ...] = ()
    if check is RuleCheck.DAYTIME_WORKING_DAYS or (
        check is RuleCheck.CREDENTIALS_SHOWN and "stages" in t
    ):
        raw = t.get("stages")
        if (
            not isinstance(raw, list)
            or not raw
            or not all(isinstance(s, str) and KEBAB.match(s) for s in raw)
        ):
            r.problem(
                join(path, "stages"),
                f'check = "{check.value}" 需要环节 id 列表 needs a list of stage ids',
            )
        else:
            stages = tuple(raw)
    elif "stages" in t:
        r.problem(
            join(path, "stages"),
            '只用于 only used with check = "daytime_working_days" or "credentials_shown"',
        )
    if rid is None or name_zh is None or name_en is None or check is None:
        return None
    return CommonRule(rid, name_zh, name_en, check, basis, minimum, stages)


def _retention(r: TomlReader, doc: Table, bases: dict[str, LegalBasis]) -> Retention | None:
    if "retention" not in doc:
        return None
    t = r.table(doc["retention"], "retention")
    if t is None:
        return None
    path = "retention"
    r.keys(t, path, ("case_file", "av_non_evidence_months"), ("note", "basis"))
    years: int | None = None
    ok = True
    raw = t.get("case_file")
    if raw == "permanent":
        years = None
    elif isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        years = raw
    elif raw is not None:
        r.problem(
            join(path, "case_file"),
            f'{raw!r} 应为年数或 "permanent" must be a number of years ≥ 1 or "permanent"',
        )
        ok = False
    months = r.integer(t, "av_non_evidence_months", path, minimum=1)
    basis = r.bases(t, "basis", path, bases)
    note = r.string(t, "note", path, required=False) or ""
    if not ok or months is None or "case_file" not in t:
        return None
    return Retention(years, months, basis, note)
