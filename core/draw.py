"""双随机 draws (随机抽取检查对象、随机选派执法检查人员), reproducible by anyone.

A :class:`DrawPlan` (items, the target pool, the inspector pool, how many targets, how
many inspectors per target, exclusions such as conflicts of interest) is committed
first: its canonical JSON (RFC 8785) is hashed and that hash goes into a custody event.
The randomness is the root hash of the first signed checkpoint of the custody log
after that event — unknown when the plan was fixed, and the same for everybody after.

:func:`run_draw` turns plan + seed into the result deterministically:

1. the stream: block ``i`` = HMAC-SHA256(key = seed, message = plan hash ‖ i as 8 bytes
   big-endian); integers below ``n`` by rejection sampling on 64-bit words (no modulo bias);
2. targets sorted by code, shuffled (Fisher–Yates, from the end), the first
   ``target_count`` drawn, in that order;
3. for each drawn target, inspectors one by one: among those not excluded for it and not
   yet on it, the ones with the fewest assignments so far (sorted by 执法证号), one
   picked at random — so work is spread evenly and every pair is drawn, not chosen.

:func:`verify_published_draw` checks a published draw with nothing but its JSON and the
log's verifier key: plan hash, commitment event, its inclusion in the checkpoint, the
checkpoint's signature, and the recomputed result. Every problem is reported.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.canonical import canonical_json, parse_json, sha256_digest
from core.checkpoint import NoteVerifier, open_checkpoint
from core.errors import CoreError
from core.merkle import inclusion_ok, leaf_hash

ALGORITHM = "casetrail-draw-v1"


class DrawInvalid(CoreError):
    """A plan that cannot be drawn (too few targets or inspectors); ``problems`` lists all."""


@dataclass(frozen=True)
class DrawTarget:
    """A 检查对象 in the pool: its code (统一社会信用代码 …) and public name."""

    code: str
    name: str


@dataclass(frozen=True)
class DrawInspector:
    """An inspector in the pool: 执法证号 and name."""

    cert_no: str
    name: str


@dataclass(frozen=True)
class Exclusion:
    """An inspector who must not inspect a target (回避: conflict of interest …)."""

    cert_no: str
    target_code: str
    reason: str


@dataclass(frozen=True)
class DrawPlan:
    """Everything a draw depends on besides the seed; pools are kept sorted."""

    agency: str
    title: str
    items: tuple[str, ...]
    targets: tuple[DrawTarget, ...]
    inspectors: tuple[DrawInspector, ...]
    target_count: int
    per_target: int = 2
    exclusions: tuple[Exclusion, ...] = ()

    @classmethod
    def build(
        cls,
        agency: str,
        title: str,
        items: Sequence[str],
        targets: Sequence[DrawTarget],
        inspectors: Sequence[DrawInspector],
        target_count: int,
        per_target: int = 2,
        exclusions: Sequence[Exclusion] = (),
    ) -> DrawPlan:
        """A plan with its pools in canonical order (by code / 执法证号)."""
        return cls(
            agency,
            title,
            tuple(items),
            tuple(sorted(targets, key=lambda t: t.code)),
            tuple(sorted(inspectors, key=lambda i: i.cert_no)),
            target_count,
            per_target,
            tuple(sorted(exclusions, key=lambda e: (e.target_code, e.cert_no))),
        )

    def to_json(self) -> dict[str, Any]:
        """The published (and hashed) form."""
        return {
            "algorithm": ALGORITHM,
            "agency": self.agency,
            "title": self.title,
            "items": list(self.items),
            "targets": [{"code": t.code, "name": t.name} for t in self.targets],
            "inspectors": [{"cert_no": i.cert_no, "name": i.name} for i in self.inspectors],
            "target_count": self.target_count,
            "per_target": self.per_target,
            "exclusions": [
                {"cert_no": e.cert_no, "target_code": e.target_code, "reason": e.reason}
                for e in self.exclusions
            ],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DrawPlan:
        """Back from :meth:`to_json` (order as given: the hash covers it)."""
        return cls(
            d["agency"],
            d["title"],
            tuple(d["items"]),
            tuple(DrawTarget(t["code"], t["name"]) for t in d["targets"]),
            tuple(DrawInspector(i["cert_no"], i["name"]) for i in d["inspectors"]),
            int(d["target_count"]),
            int(d["per_target"]),
            tuple(Exclusion(e["cert_no"], e["target_code"], e["reason"]) for e in d["exclusions"]),
        )

    def plan_hash(self) -> str:
        """``sha256:<hex>`` of the plan's canonical JSON: what the commitment event carries."""
        return sha256_digest(canonical_json(self.to_json()))

    def problems(self) -> list[str]:
        """Every reason the plan cannot be drawn (empty when it can)."""
        found = []
        if self.target_count < 1:
            found.append("抽取数量须 ≥ 1 / target_count must be at least 1")
        if self.per_target < 1:
            found.append("每户检查人员须 ≥ 1 / per_target must be at least 1")
        if self.target_count > len(self.targets):
            found.append(
                f"检查对象库只有 {len(self.targets)} 户，不足 {self.target_count} 户 "
                "/ fewer targets than target_count"
            )
        codes = [t.code for t in self.targets]
        if len(set(codes)) != len(codes):
            found.append("检查对象编码重复 / duplicate target codes")
        certs = [i.cert_no for i in self.inspectors]
        if len(set(certs)) != len(certs):
            found.append("执法证号重复 / duplicate inspector cert_no")
        for t in self.targets:
            allowed = [i for i in certs if (i, t.code) not in self._excluded()]
            if len(allowed) < self.per_target:
                found.append(
                    f"{t.name}（{t.code}）可派人员 {len(allowed)} 人，不足 {self.per_target} 人 "
                    "/ too few inspectors left after exclusions"
                )
        return found

    def _excluded(self) -> frozenset[tuple[str, str]]:
        return frozenset((e.cert_no, e.target_code) for e in self.exclusions)


@dataclass(frozen=True)
class Assignment:
    """One drawn target and the inspectors drawn for it."""

    target: DrawTarget
    inspectors: tuple[DrawInspector, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"target": {...}, "inspectors": [...]}``."""
        return {
            "target": {"code": self.target.code, "name": self.target.name},
            "inspectors": [{"cert_no": i.cert_no, "name": i.name} for i in self.inspectors],
        }


class _Stream:
    def __init__(self, seed: bytes, plan_hash: str) -> None:
        self._key = seed
        self._prefix = plan_hash.encode("ascii")
        self._counter = 0
        self._buffer = b""

    def _word(self) -> int:
        if len(self._buffer) < 8:
            block = self._prefix + self._counter.to_bytes(8, "big")
            self._buffer += hmac.new(self._key, block, hashlib.sha256).digest()
            self._counter += 1
        word, self._buffer = self._buffer[:8], self._buffer[8:]
        return int.from_bytes(word, "big")

    def below(self, n: int) -> int:
        limit = (1 << 64) - (1 << 64) % n
        while True:
            w = self._word()
            if w < limit:
                return w % n


def run_draw(plan: DrawPlan, seed: bytes) -> tuple[Assignment, ...]:
    """The draw's result for ``seed`` (the checkpoint root); :class:`DrawInvalid` if impossible."""
    problems = plan.problems()
    if problems:
        raise DrawInvalid("抽取计划无法执行 / the plan cannot be drawn", problems)
    stream = _Stream(seed, plan.plan_hash())
    pool = list(plan.targets)
    for i in range(len(pool) - 1, 0, -1):
        j = stream.below(i + 1)
        pool[i], pool[j] = pool[j], pool[i]
    excluded = plan._excluded()
    load = {i.cert_no: 0 for i in plan.inspectors}
    result = []
    for target in pool[: plan.target_count]:
        chosen: list[DrawInspector] = []
        for _ in range(plan.per_target):
            free = [
                i
                for i in plan.inspectors
                if (i.cert_no, target.code) not in excluded and i not in chosen
            ]
            least = min(load[i.cert_no] for i in free)
            candidates = [i for i in free if load[i.cert_no] == least]
            pick = candidates[stream.below(len(candidates))]
            chosen.append(pick)
            load[pick.cert_no] += 1
        result.append(Assignment(target, tuple(chosen)))
    return tuple(result)


def result_json(assignments: Sequence[Assignment]) -> list[dict[str, Any]]:
    """The published form of a result."""
    return [a.to_json() for a in assignments]


def verify_published_draw(
    published: Mapping[str, Any], verifier_key: str | None = None
) -> list[str]:
    """Every problem found re-checking a published draw (empty list: it holds).

    ``published`` is the draw's public JSON (``/public/draws/<id>.json``): ``plan``,
    ``plan_hash``, ``commitment`` (the custody event's canonical JSON, its log index and
    inclusion proof), ``checkpoint`` (the signed note) and ``result``. ``verifier_key``
    pins the log's key; without it the key in the file is used (and that is said).
    """
    problems: list[str] = []
    try:
        plan = DrawPlan.from_json(published["plan"])
        commitment = published["commitment"]
        key = verifier_key or published["log_verifier_key"]
        note = published["checkpoint"]
        claimed = published["result"]
    except (KeyError, TypeError, ValueError) as exc:
        return [f"发布数据不完整 / published draw incomplete: {exc!r}"]
    plan_hash = plan.plan_hash()
    if plan_hash != published.get("plan_hash"):
        problems.append(
            f"计划哈希不符：重算 {plan_hash}，发布 {published.get('plan_hash')} "
            "/ the plan was changed after it was committed"
        )
    event_bytes = str(commitment.get("event", "")).encode("utf-8")
    try:
        event = parse_json(event_bytes)
        if canonical_json(event) != event_bytes:
            problems.append("承诺事件不是规范 JSON / commitment event is not canonical JSON")
        if event.get("details", {}).get("plan_hash") != plan_hash:
            problems.append(
                "承诺事件中的计划哈希与计划不符 / the committed plan hash is not this plan's"
            )
    except CoreError as exc:
        problems.append(f"承诺事件无法解析 / commitment event unreadable: {exc}")
    try:
        cp = open_checkpoint(note, NoteVerifier.from_key_string(key))
    except CoreError as exc:
        problems.append(f"检查点签名无效 / checkpoint does not verify: {exc}")
        return problems
    index = int(commitment.get("log_index", -1))
    if not 0 <= index < cp.size:
        problems.append(
            f"检查点（大小 {cp.size}）不包含承诺事件（序号 {index}） "
            "/ the checkpoint does not cover the commitment"
        )
    else:
        proof = [base64.b64decode(h) for h in commitment.get("inclusion_proof", [])]
        if not inclusion_ok(leaf_hash(event_bytes), index, cp.size, proof, cp.root_hash):
            problems.append("承诺事件不在该检查点中 / inclusion proof of the commitment fails")
    try:
        again = result_json(run_draw(plan, cp.root_hash))
    except DrawInvalid as exc:
        problems.append(f"{exc.message}: {'; '.join(exc.problems)}")
        return problems
    if again != claimed:
        problems.append(
            "重算结果与发布结果不一致 / the recomputed result differs from the published one"
        )
    return problems
