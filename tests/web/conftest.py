"""Workspace fixtures: the server package's database/app/world fixtures, plus signing in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.models import User
from server.services import accounts
from server.settings import Settings
from tests.server import conftest as server_fixtures
from tests.server.conftest import parts
from tests.support.calendars import calendar_2027

# The server package's fixtures, by name: an app on a migrated database and two agencies
# of people with tokens, on each database.
sqlite_template = server_fixtures.sqlite_template
pg_template = server_fixtures.pg_template
db_url = server_fixtures.db_url
# Deadlines opened today end next year: the agency calendar file covers 2027 (the
# bundled one stops where official schedules stop; the docs' example file is refused).
app = server_fixtures.app
engine = server_fixtures.engine
world = server_fixtures.world


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return server_fixtures.server_settings(tmp_path, db_url, calendar_file=calendar_2027(tmp_path))


PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def set_password(app: Flask, username: str, password: str = PASSWORD) -> None:
    """Give ``username`` a sign-in password."""
    from sqlalchemy import select

    with parts(app).unit_of_work() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        assert user is not None
        accounts.set_password(uow, user, password)
        uow.commit()


def csrf_of(html: str) -> str:
    """The first form token on a page."""
    found = CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> object:
    """Post the sign-in form the way a browser does; returns the response."""
    form = client.get("/ui/sign-in")
    return client.post(
        "/ui/sign-in",
        data={"username": username, "password": password, "csrf_token": csrf_of(form.text)},
    )


@pytest.fixture
def signed_in(app: Flask, world: object):  # type: ignore[no-untyped-def]
    """``signed_in("a_reviewer")`` → a test client with that person signed in."""

    def make(name: str) -> FlaskClient:
        person = world.people[name]  # type: ignore[attr-defined]
        set_password(app, person.username)
        client = app.test_client()
        response = sign_in(client, person.username)
        assert response.status_code == 302, response.text  # type: ignore[attr-defined]
        return client

    return make
