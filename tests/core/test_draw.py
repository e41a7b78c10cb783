"""双随机 draws: deterministic from plan + seed, exclusions honoured, work spread evenly."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.draw import DrawInspector, DrawInvalid, DrawPlan, DrawTarget, Exclusion, run_draw

TARGETS = [DrawTarget(f"9152010000000{n:04d}X", f"商户{n}") for n in range(30)]
INSPECTORS = [DrawInspector(f"E{n:05d}", f"检查员{n}") for n in range(6)]


def plan(**kw: object) -> DrawPlan:
    args: dict[str, object] = {
        "agency": "云岩区市场监督管理局",
        "title": "2026年第四季度食品经营抽查",
        "items": ["SJ-001 食品经营许可事项检查"],
        "targets": TARGETS,
        "inspectors": INSPECTORS,
        "target_count": 6,
    }
    args.update(kw)
    return DrawPlan.build(**args)  # type: ignore[arg-type]


def test_same_plan_and_seed_give_the_same_result_whatever_the_input_order() -> None:
    seed = bytes(range(32))
    a = run_draw(plan(), seed)
    b = run_draw(plan(targets=list(reversed(TARGETS)), inspectors=INSPECTORS[::-1]), seed)
    assert a == b
    assert len(a) == 6 and len({x.target.code for x in a}) == 6
    assert all(len(set(x.inspectors)) == 2 for x in a)


def test_another_seed_or_a_changed_pool_gives_another_result() -> None:
    seed = bytes(32)
    base = run_draw(plan(), seed)
    assert run_draw(plan(), bytes([1]) + bytes(31)) != base
    changed = [DrawTarget(TARGETS[0].code, "改名商户"), *TARGETS[1:]]
    assert plan(targets=changed).plan_hash() != plan().plan_hash()


def test_work_is_spread_evenly() -> None:
    result = run_draw(plan(target_count=30), bytes(32))
    loads = Counter(i.cert_no for a in result for i in a.inspectors)
    assert set(loads.values()) == {10}  # 60 places over 6 inspectors


@settings(deadline=None)  # shared CI machines: no per-example time limit
@given(st.binary(min_size=32, max_size=32), st.integers(0, 29), st.integers(0, 5))
def test_an_excluded_inspector_never_gets_that_target(seed: bytes, t: int, i: int) -> None:
    excluded = Exclusion(INSPECTORS[i].cert_no, TARGETS[t].code, "近亲属经营")
    result = run_draw(plan(target_count=30, exclusions=[excluded]), seed)
    for a in result:
        if a.target.code == TARGETS[t].code:
            assert INSPECTORS[i] not in a.inspectors


def test_impossible_plans_list_every_problem() -> None:
    lonely = plan(
        inspectors=INSPECTORS[:2],
        target_count=31,
        exclusions=[Exclusion(INSPECTORS[0].cert_no, TARGETS[0].code, "回避")],
    )
    with pytest.raises(DrawInvalid) as caught:
        run_draw(lonely, bytes(32))
    assert len(caught.value.problems) == 2
    assert "不足 31 户" in caught.value.problems[0]
