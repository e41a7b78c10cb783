"""Many threads AND several processes append to one case at once → one unbroken chain.

Runs on SQLite (``BEGIN IMMEDIATE``) and PostgreSQL (``log_head`` row lock). Afterwards
every event must verify as a case file (chain + inclusion proofs against the signed
checkpoint, checked by the stand-alone verifier), and the log between two checkpoints
must be consistent.
"""

from __future__ import annotations

import base64
import multiprocessing
import threading
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from core.custody import Actor
from core.merkle import verify_consistency
from core.verify import open_checkpoint, verify_case_file
from server.cli import main as cli
from server.db import make_engine, make_session_factory
from server.models import Case
from server.services.custody import record_custody
from server.services.unit_of_work import SqlUnitOfWork
from tests.server.conftest import World, parts
from tests.server.manifest_support import cli_env

THREADS = 6
PER_THREAD = 8
PROCESSES = 3
PER_PROCESS = 8


def append_events(db_url: str, case_id: str, worker: str, count: int) -> None:
    """Append ``count`` events to the case, one committed unit of work each."""
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    try:
        for n in range(count):
            with SqlUnitOfWork(factory) as uow:
                case = uow.session.get(Case, case_id)
                assert case is not None
                record_custody(uow, case, "viewed", Actor(f"worker:{worker}", "system"), {"n": n})
                uow.commit()
    finally:
        engine.dispose()


def all_events(api: Any, case_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = api.get(f"/cases/{case_id}/custody?limit=50&offset={len(items)}").get_json()
        items += page["items"]
        if len(items) >= page["total"]:
            return items


@pytest.mark.slow
def test_concurrent_appends_make_one_unbroken_verifiable_chain(world: World, db_url: str) -> None:
    admin = world.as_("a_admin")
    case = admin.post(
        "/cases", {"category": "penalty", "case_no": "并发-1", "title": "并发写入"}
    ).get_json()
    case_id = case["id"]
    first = admin.get("/log/checkpoint").get_json()

    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=append_events, args=(db_url, case_id, f"p{i}", PER_PROCESS))
        for i in range(PROCESSES)
    ]
    errors: list[BaseException] = []

    def thread_body(i: int) -> None:
        try:
            append_events(db_url, case_id, f"t{i}", PER_THREAD)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=thread_body, args=(i,)) for i in range(THREADS)]
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for p in procs:
        p.join(timeout=120)
    assert not errors, errors
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    items = all_events(admin, case_id)
    expected = 1 + THREADS * PER_THREAD + PROCESSES * PER_PROCESS  # + case_opened
    assert [i["event"]["case_seq"] for i in items] == list(range(1, expected + 1))
    assert len({i["log_index"] for i in items}) == expected
    workers = {i["event"]["actor"]["id"] for i in items[1:]}
    assert len(workers) == THREADS + PROCESSES

    key = admin.get("/log/public-key").get_json()["verifier_key"]
    cp = admin.get("/log/checkpoint").get_json()
    assert cp["size"] == first["size"] + expected - 1
    proofs = {}
    for item in items:
        proof = admin.get(f"/log/events/{item['event']['event_id']}/proof").get_json()
        assert proof["tree_size"] == cp["size"]
        proofs[item["event"]["event_id"]] = proof
    problems = verify_case_file(
        events=[i["event"] for i in items],
        proofs=proofs,
        checkpoint=cp["note"],
        log_key=key,
        case_id=case_id,
    )
    assert problems == []

    old = open_checkpoint(first["note"], key)
    new = open_checkpoint(cp["note"], key)
    proof = admin.get(f"/log/consistency?old={old.size}&new={new.size}").get_json()
    verify_consistency(
        old.size,
        new.size,
        old.root_hash,
        new.root_hash,
        [base64.b64decode(h) for h in proof["hashes"]],
    )

    engine = parts(world.app).engine
    engine.dispose()
    result = CliRunner().invoke(cli, ["custody", "verify"], env=cli_env(world))
    assert result.exit_code == 0, result.output
    assert "监管链完好" in result.output


def test_appends_after_the_heads_peaks_were_lost_or_garbled_still_verify(
    world: World, db_url: str
) -> None:
    """``log_head.peaks`` is derived data: missing (a head from before it existed) or
    wrong, the next append reads the nodes instead and the log stays verifiable."""
    admin = world.as_("a_admin")
    case_id = admin.post(
        "/cases", {"category": "penalty", "case_no": "峰值-1", "title": "日志右缘"}
    ).get_json()["id"]
    append_events(db_url, case_id, "before", 3)
    engine = make_engine(db_url)
    try:
        for kept in (None, b"\x00" * 32 * 8, b"\x01" * 7):
            with engine.begin() as connection:
                size = connection.execute(text("SELECT size FROM log_head")).scalar_one()
                stored = kept if kept is None or len(kept) % 32 else kept[: 32 * size.bit_count()]
                connection.execute(text("UPDATE log_head SET peaks = :p"), {"p": stored})
            append_events(db_url, case_id, "after", 2)
        with engine.begin() as connection:
            size, peaks = connection.execute(text("SELECT size, peaks FROM log_head")).one()
        assert len(peaks) == 32 * size.bit_count()  # written again by the appends
    finally:
        engine.dispose()
    parts(world.app).engine.dispose()
    result = CliRunner().invoke(cli, ["custody", "verify"], env=cli_env(world))
    assert result.exit_code == 0, result.output
    assert "监管链完好" in result.output
    items = all_events(admin, case_id)
    assert [i["event"]["case_seq"] for i in items] == list(range(1, 1 + 1 + 3 + 3 * 2))
