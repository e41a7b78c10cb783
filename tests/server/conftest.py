"""Server fixtures: a migrated database on SQLite and PostgreSQL, an app, people and tokens.

``db_url`` is parametrised over both databases, so every test using it (directly or
through ``app``/``world``) runs twice. Each test gets its own database copied from a
template migrated once per session (a file copy on SQLite, ``CREATE DATABASE …
TEMPLATE`` on PostgreSQL), which keeps a clean schema per test cheap.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from server.app import create_app
from server.components import Components
from server.db import make_engine, upgrade
from server.models import Role
from server.services import users
from server.services.unit_of_work import SqlUnitOfWork
from server.settings import Settings
from server.signing_key import create_signing_key
from tests.support.postgres import PostgresCluster

PG_TEMPLATE = "casetrail_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "casetrail.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresCluster) -> PostgresCluster:
    """The migrated template database (made once a session, whichever package asks first:
    tests/web uses these fixtures by name, and each package's copy is its own fixture)."""
    with contextlib.suppress(psycopg.errors.DuplicateDatabase):
        postgres.create_database(PG_TEMPLATE)
    engine = make_engine(postgres.url(PG_TEMPLATE))
    upgrade(engine)
    engine.dispose()
    return postgres


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "db" / "casetrail.db"
        target.parent.mkdir()
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_template")
    name = cluster.create_database(template=PG_TEMPLATE)
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return server_settings(tmp_path, db_url)


def server_settings(tmp_path: Path, db_url: str, **extra: Any) -> Settings:
    """Settings of a test server on ``db_url`` under ``tmp_path`` (a 64 KiB JSON cap, a
    fresh log-signing key), with ``extra`` settings (e.g. a calendar file)."""
    settings = Settings.for_data_dir(
        tmp_path / "var", database_url=db_url, max_json_body=64 * 1024, **extra
    )
    create_signing_key(settings.signing_key_file)
    return settings


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    yield app
    parts(app).engine.dispose()


def parts(app: Flask) -> Components:
    found: Components = app.extensions["casetrail"]
    return found


@pytest.fixture
def engine(app: Flask) -> Engine:
    return parts(app).engine


@dataclass
class Person:
    """A user of the test world and a token of theirs."""

    id: str
    token: str
    agency_id: str
    username: str


class Api:
    """The test client with a bearer token; every call returns the response."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get("/api/v1" + path, headers=self.headers, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post("/api/v1" + path, json=json, headers=self.headers, **kw)


@dataclass
class World:
    """Two agencies with an admin, two inspectors, a reviewer and an archivist each."""

    app: Flask
    people: dict[str, Person]

    def as_(self, name: str | None) -> Api:
        return Api(self.app.test_client(), self.people[name].token if name else None)

    def token_api(self, token: str) -> Api:
        return Api(self.app.test_client(), token)


def add_person(
    app: Flask, agency_id: str, username: str, role: Role, cert_no: str | None = None
) -> Person:
    with parts(app).unit_of_work() as uow:
        user = users.add_user(
            uow, agency_id, users.NewUser(username, username.title(), role, cert_no)
        )
        issued = users.issue_user_token(uow, user, "test")
        uow.commit()
    return Person(user.id, issued.token, agency_id, username)


@pytest.fixture
def world(app: Flask) -> World:
    people: dict[str, Person] = {}
    for prefix, code in (("a", "A-AGENCY"), ("b", "B-AGENCY")):
        with SqlUnitOfWork(parts(app).session_factory) as uow:
            agency = users.create_agency(uow, code, f"{code} 市场监督管理局")
            uow.commit()
        people[f"{prefix}_admin"] = add_person(app, agency.id, f"{prefix}-admin", Role.ADMIN)
        for n in (1, 2, 3):
            people[f"{prefix}_insp{n}"] = add_person(
                app, agency.id, f"{prefix}-insp{n}", Role.INSPECTOR, f"{prefix.upper()}0000{n}"
            )
        people[f"{prefix}_reviewer"] = add_person(
            app, agency.id, f"{prefix}-reviewer", Role.REVIEWER
        )
        people[f"{prefix}_archivist"] = add_person(
            app, agency.id, f"{prefix}-archivist", Role.ARCHIVIST
        )
    return World(app, people)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to assert that a refused request changed nothing."""
    from sqlalchemy import select

    from server.models import Base

    with engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(select(table))), key=repr)
            for name, table in Base.metadata.tables.items()
        }
