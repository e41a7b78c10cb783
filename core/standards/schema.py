"""Reading TOML data files while collecting EVERY problem, each with where it is.

``TomlReader`` is shared by the recording standards, the legal-review catalogue and the
agency calendar files: each getter records a problem (``path: what is wrong``) and
returns None instead of raising, so one run reports all faults. Paths use TOML key names
and 0-based array positions, e.g. ``stages[3].records[1].requirement``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar

from core.standards.model import LegalBasis

E = TypeVar("E", bound=Enum)

KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
VERSION = re.compile(r"^\d{4}\.\d+$")

Table = dict[str, Any]


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of a ``YYYY.N`` version (``2026.10`` sorts after ``2026.9``)."""
    return tuple(int(part) for part in version.split("."))


def join(path: str, key: str | int) -> str:
    """``stages`` + 3 → ``stages[3]``; ``stages[3]`` + ``id`` → ``stages[3].id``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class TomlReader:
    """Collects problems while reading a parsed TOML document."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        """Record one problem at ``path``."""
        self.problems.append(f"{path}: {message}" if path else message)

    def parse(self, text: str) -> Table | None:
        """Parse TOML text; a syntax error becomes a problem carrying line and column."""
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            where = str(exc)
            if "at end of document" in where:  # tomllib gives no line here: name the last one
                where += f" (line {text.count(chr(10)) + 1}, 文件末尾 end of file)"
            self.problem("", f"TOML 语法错误 syntax error: {where}")
            return None

    def keys(
        self, table: Table, path: str, required: Iterable[str], optional: Iterable[str] = ()
    ) -> None:
        """Report every missing required key and every unknown key of ``table``."""
        required = tuple(required)
        allowed = set(required) | set(optional)
        for key in required:
            if key not in table:
                self.problem(join(path, key), "缺少必填项 missing required key")
        for key in table:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                self.problem(join(path, key), f"未知的键 unknown key (allowed: {known})")

    def table(self, value: object, path: str) -> Table | None:
        """``value`` if it is a table, else a problem and None."""
        if isinstance(value, dict):
            return value
        self.problem(path, f"应为表 must be a table, got {_kind(value)}")
        return None

    def tables(self, table: Table, key: str, path: str, *, non_empty: bool = True) -> list[Table]:
        """An array of tables (``[[key]]``); bad items are reported and skipped."""
        where = join(path, key)
        value = table.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(where, f"应为表数组 must be an array of tables, got {_kind(value)}")
            return []
        if non_empty and not value:
            self.problem(where, "不能为空 must not be empty")
        out: list[Table] = []
        for i, item in enumerate(value):
            t = self.table(item, join(where, i))
            out.append(t if t is not None else {})
        return out

    def string(
        self,
        table: Table,
        key: str,
        path: str,
        *,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
        required: bool = True,
    ) -> str | None:
        """A non-empty string (optionally matching ``pattern``)."""
        where = join(path, key)
        if key not in table:
            return None  # missing required keys are reported by keys()
        value = table[key]
        if not isinstance(value, str):
            self.problem(where, f"应为字符串 must be a string, got {_kind(value)}")
            return None
        if required and not value.strip():
            self.problem(where, "不能为空 must not be empty")
            return None
        if pattern is not None and not pattern.match(value):
            self.problem(where, f"{value!r} 格式不对 is not {hint or pattern.pattern}")
            return None
        return value

    def integer(self, table: Table, key: str, path: str, *, minimum: int = 0) -> int | None:
        """An integer ≥ ``minimum``."""
        where = join(path, key)
        if key not in table:
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(where, f"应为整数 must be an integer, got {_kind(value)}")
            return None
        if value < minimum:
            self.problem(where, f"{value} 小于 {minimum} must be at least {minimum}")
            return None
        return value

    def boolean(self, table: Table, key: str, path: str) -> bool | None:
        """``true`` or ``false``."""
        where = join(path, key)
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, bool):
            self.problem(where, f"应为 true 或 false must be a boolean, got {_kind(value)}")
            return None
        return value

    def choice(self, table: Table, key: str, path: str, enum: type[E]) -> E | None:
        """One value of ``enum`` given by its string value."""
        where = join(path, key)
        if key not in table:
            return None
        value = table[key]
        members: list[E] = list(enum)
        allowed = ", ".join(str(m.value) for m in members)
        for member in members:
            if member.value == value:
                return member
        self.problem(where, f"{_show(value)} is not one of {allowed} (取值不在允许范围)")
        return None

    def bases(
        self, table: Table, key: str, path: str, known: Mapping[str, LegalBasis]
    ) -> tuple[LegalBasis, ...]:
        """A non-empty list of ids from the document's ``[bases]`` table."""
        where = join(path, key)
        value = table.get(key)
        if value is None:
            self.problem(where, "缺少法律依据 missing legal basis")
            return ()
        if not isinstance(value, list) or not value:
            self.problem(where, "法律依据应为非空的 id 列表 must be a non-empty list of basis ids")
            return ()
        out: list[LegalBasis] = []
        for i, ref in enumerate(value):
            if not isinstance(ref, str):
                self.problem(join(where, i), f"应为字符串 must be a string, got {_kind(ref)}")
            elif ref not in known:
                self.problem(
                    join(where, i), f"未定义的依据 unknown basis {ref!r} (define it in [bases])"
                )
            else:
                out.append(known[ref])
        return tuple(out)

    def basis_table(self, doc: Table) -> dict[str, LegalBasis]:
        """The ``[bases]`` table: ``id = { law = "…", provision = "…", note = "…", verified = true }``."""
        out: dict[str, LegalBasis] = {}
        raw = doc.get("bases")
        if raw is None:
            return out
        bases = self.table(raw, "bases")
        if bases is None:
            return out
        for bid, value in bases.items():
            where = join("bases", bid)
            if not KEBAB.match(bid):
                self.problem(where, "依据 id 应为 ASCII kebab-case basis id must be kebab-case")
            entry = self.table(value, where)
            if entry is None:
                continue
            self.keys(entry, where, ("law",), ("provision", "note", "verified"))
            law = self.string(entry, "law", where)
            provision = self.string(entry, "provision", where, required=False) or ""
            note = self.string(entry, "note", where, required=False) or ""
            verified = self.boolean(entry, "verified", where)
            if law is not None:
                out[bid] = LegalBasis(
                    bid, law, provision, note, True if verified is None else verified
                )
        return out

    def unique(self, ids: Iterable[str | None], path: str, what: str) -> None:
        """Report every id used more than once in a list."""
        seen: set[str] = set()
        for i, ident in enumerate(ids):
            if ident is None:
                continue
            if ident in seen:
                self.problem(join(join(path, i), "id"), f"重复的{what} duplicate id {ident!r}")
            seen.add(ident)


def _kind(value: object) -> str:
    return {
        dict: "a table",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a float",
    }.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)
