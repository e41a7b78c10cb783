"""Schemathesis against our own OpenAPI 3.1 document, on the real app (WSGI), every role.

Every operation gets generated requests in all of Schemathesis's phases (examples,
coverage, fuzzing; ``max_examples`` bounds the fuzzing) with a real token of each role,
plus an anonymous caller, and every built-in check runs: no response may be a 5xx, and
every response must match its documented schema (status codes, headers, body). The
stateful phase chains operations through their links (a created case is read, changed,
assigned …) once per role. Runs on SQLite.

Quick by default (the CI profile). ``CASETRAIL_FUZZ=long`` runs the long profile:
``CASETRAIL_FUZZ_EXAMPLES`` (default 300) examples per operation and role and
``CASETRAIL_FUZZ_STATEFUL`` (default 200) stateful scenarios per role, which is over
10,000 requests per role.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from server.app import create_app
from server.db import make_engine, upgrade
from server.models import Role
from server.services import users
from server.services.unit_of_work import SqlUnitOfWork
from server.settings import Settings
from server.signing_key import create_signing_key
from tests.server.conftest import add_person
from tests.server.ingest_support import sync_runtime

ROLES = ("admin", "inspector", "reviewer", "archivist", None)
COUNTS = {"requests": 0, "stateful": 0}
LONG = os.environ.get("CASETRAIL_FUZZ") == "long"
EXAMPLES = int(os.environ.get("CASETRAIL_FUZZ_EXAMPLES", "300" if LONG else "8"))
# What the acceptance asks: no 5xx and no schema violation (status codes, headers, body,
# content type). Schemathesis's other checks report findings owned elsewhere, listed in
# docs/serving.md ("Fuzzing"): tus's unauthenticated OPTIONS and its 412 before 401,
# unknown query parameters ignored by design, domain rules (422) a schema cannot express.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
]
SCENARIOS = int(os.environ.get("CASETRAIL_FUZZ_STATEFUL", "200" if LONG else "6"))


def _app(tmp: str) -> tuple[Flask, dict[str | None, str]]:
    settings = Settings.for_data_dir(Path(tmp) / "var", max_json_body=64 * 1024)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    create_signing_key(settings.signing_key_file)
    app = create_app(settings)
    sync_runtime(app)
    with SqlUnitOfWork(app.extensions["casetrail"].session_factory) as uow:
        agency = users.create_agency(uow, "FUZZ", "模糊测试局")
        uow.commit()
    tokens: dict[str | None, str] = {}
    for role in ROLES[:-1]:
        cert = "F00001" if role == "inspector" else None
        tokens[role] = add_person(app, agency.id, f"fuzz-{role}", Role(role), cert).token
    return app, tokens


_APP, _TOKENS = _app(tempfile.mkdtemp(prefix="casetrail-fuzz-"))
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _APP)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print(f"\nfuzzed requests: {COUNTS['requests']}, stateful requests: {COUNTS['stateful']}")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_5xx_and_responses_match_the_schema(case: schemathesis.Case) -> None:
    for role in ROLES:
        headers = {"Authorization": f"Bearer {_TOKENS[role]}"} if role else {}
        COUNTS["requests"] += 1
        case.call_and_validate(headers=headers, checks=CHECKS)


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_stateful_sequences_of_linked_operations(role: str | None) -> None:
    token = _TOKENS[role] if role else None

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            COUNTS["stateful"] += 1
            return {"headers": {"Authorization": f"Bearer {token}"}} if token else {}

        def validate_response(self, response: object, case: schemathesis.Case, **_: object) -> None:
            case.validate_response(response, checks=CHECKS)

    Workflow.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
