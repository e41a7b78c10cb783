"""SQLite writers pass the writer gate: the next one goes in when the last one ends (no
busy-sleep), in this process and across processes; readers never wait; a writer that dies
or whose connection closes lets the next one in."""

from __future__ import annotations

import multiprocessing
import shutil
import threading
from pathlib import Path

from sqlalchemy import select, update

from server.db import make_engine, make_session_factory
from server.models import LogHead
from server.services.unit_of_work import SqlUnitOfWork


def _database(sqlite_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "casetrail.db"
    shutil.copyfile(sqlite_template, path)
    return path


def _bump(factory: object, order: list[str], name: str) -> None:
    with SqlUnitOfWork(factory) as uow:  # type: ignore[arg-type]
        uow.session.execute(update(LogHead).values(size=LogHead.size + 1))  # BEGIN IMMEDIATE
        order.append(f"{name} in")
        uow.commit()


def test_a_second_writer_goes_in_when_the_first_commits_and_readers_never_wait(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = _database(sqlite_template, tmp_path)
    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    order: list[str] = []
    try:
        with SqlUnitOfWork(factory) as first:
            first.session.execute(update(LogHead).values(size=LogHead.size + 1))
            second = threading.Thread(target=_bump, args=(factory, order, "second"))
            second.start()
            second.join(0.5)
            assert second.is_alive() and order == []  # waiting at the gate
            with SqlUnitOfWork(factory).reading() as reader:  # a reader passes meanwhile
                assert reader.session.scalar(select(LogHead.size)) is not None
            order.append("first commits")
            first.commit()
        second.join(10)
        assert order == ["first commits", "second in"]
        with SqlUnitOfWork(factory).reading() as reader:
            assert reader.session.scalar(select(LogHead.size)) == 2
    finally:
        engine.dispose()


def test_a_rolled_back_or_closed_writer_lets_the_next_in(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = _database(sqlite_template, tmp_path)
    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    try:
        with SqlUnitOfWork(factory) as failed:  # leaves without commit: rolled back
            failed.session.execute(update(LogHead).values(size=99))
        order: list[str] = []
        _bump(factory, order, "after rollback")
        connection = engine.raw_connection()  # a writer whose connection is closed
        connection.driver_connection.enter_gate()  # type: ignore[union-attr]
        connection.invalidate()
        _bump(factory, order, "after close")
        assert order == ["after rollback in", "after close in"]
    finally:
        engine.dispose()


def _hold_the_gate(path: str, holding: object, release: object) -> None:
    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    with SqlUnitOfWork(factory) as uow:
        uow.session.execute(update(LogHead).values(size=LogHead.size + 10))
        holding.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]
        uow.commit()
    engine.dispose()


def test_a_writer_in_another_process_holds_the_gate_until_it_commits(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = _database(sqlite_template, tmp_path)
    context = multiprocessing.get_context("spawn")
    holding, release = context.Event(), context.Event()
    other = context.Process(target=_hold_the_gate, args=(str(path), holding, release))
    other.start()
    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    order: list[str] = []
    try:
        assert holding.wait(60)
        ours = threading.Thread(target=_bump, args=(factory, order, "ours"))
        ours.start()
        ours.join(0.5)
        assert ours.is_alive() and order == []  # the other process is inside
        order.append("other commits")
        release.set()
        ours.join(30)
        other.join(30)
        assert order == ["other commits", "ours in"]
        with SqlUnitOfWork(factory).reading() as reader:
            assert reader.session.scalar(select(LogHead.size)) == 11
    finally:
        release.set()
        other.join(30)
        engine.dispose()
