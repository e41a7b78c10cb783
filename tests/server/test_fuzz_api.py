"""Schemathesis against our own OpenAPI 3.1 document, on the real app (WSGI), every role.

Every operation gets generated requests in all of Schemathesis's phases (examples,
coverage, fuzzing; ``max_examples`` bounds the fuzzing) with a real token of each role,
plus an anonymous caller, then the stateful phase chains operations through their links
(a created case is read, changed, assigned …) once per role. Every built-in check runs
(:data:`CHECKS`, taken from Schemathesis's registry, so a new one joins by itself): no
5xx, every response as documented (status, content type, headers, body), invalid data
refused, valid data accepted, required headers and authentication enforced, ``Allow``
as documented, created resources readable and deleted ones gone. Runs on SQLite.

Where a schema-valid request meets a rule a JSON schema cannot express (a reference to
a user that must exist, a state the case must be in), :data:`DOMAIN_RULES` allows that
refusal for that one operation and check, naming the rule.

The run's own tokens stay valid: a request that would revoke one (revoking it, or
deactivating or re-roling its user) is sent with an unknown id instead
(:func:`spare_own_tokens`); every other token, user and device is fair game.

Quick by default (the CI profile). ``CASETRAIL_FUZZ=long`` runs the long profile:
``CASETRAIL_FUZZ_EXAMPLES`` (default 300) examples per operation and role and
``CASETRAIL_FUZZ_STATEFUL`` (default 200) stateful scenarios per role, over 10,000
requests per role. The requests of each role are counted and printed. Inputs are the
same on every run; ``CASETRAIL_FUZZ_RANDOM=1`` draws new ones (a failure then prints the
seed that reproduces it).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky

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
LONG = os.environ.get("CASETRAIL_FUZZ") == "long"
EXAMPLES = int(os.environ.get("CASETRAIL_FUZZ_EXAMPLES", "300" if LONG else "8"))
SCENARIOS = int(os.environ.get("CASETRAIL_FUZZ_STATEFUL", "200" if LONG else "6"))
FIXED = os.environ.get("CASETRAIL_FUZZ_RANDOM") != "1"  # "1": new inputs on every run

# tus chunks are raw bytes, sent as they are
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
schemathesis.checks.load_all_checks()
CHECKS = list(schemathesis.checks.CHECKS.get_all())
"""Every registered check. All built-ins check one response; a class-based check (one that
judges a whole run) would need its own call, so it stops the module instead of being
skipped silently."""
assert not [c for c in CHECKS if isinstance(c, type)], "a class-based check: run it too"

_DEFAULTS = schemathesis.Config().projects.default.checks


EVERYWHERE: dict[str, list[str]] = {
    # Every JSON body is capped at Settings.max_json_body (64 KiB here) and refused 413
    # before it is parsed: a schema bounds items and lengths, not bytes.
    "negative_data_rejection": ["413"],
    "positive_data_acceptance": ["413"],
}


def _statuses(check: str, *extra: str) -> list[str]:
    return [*getattr(_DEFAULTS, check).expected_statuses, *EVERYWHERE.get(check, []), *extra]


_VALID = "positive_data_acceptance"
_TUS = [
    ("POST", ""),
    ("HEAD", "/{upload_id}"),
    ("PATCH", "/{upload_id}"),
    ("DELETE", "/{upload_id}"),
]
DOMAIN_RULES: list[tuple[str, str, list[str], str]] = [
    # (operation, check, statuses also expected, the rule a JSON schema cannot express)
    ("GET /api/v1/cases/{case_id}/export", _VALID, ["405"],
     "GET creates nothing: 405 saying to POST (kept for old clients, deprecated)"),
    *[
        (f"{method} /api/v1/uploads{path}", check, ["412"],
         "tus 1.0.0: a missing or other Tus-Resumable is answered 412 (with Tus-Version)")
        for method, path in _TUS
        for check in ("negative_data_rejection", "missing_required_header")
    ],
    ("POST /api/v1/uploads", _VALID, ["422", "460"],
     "Upload-Metadata names an announced evidence file whose size is Upload-Length; "
     "Upload-Checksum matches the first chunk"),
    ("PATCH /api/v1/uploads/{upload_id}", _VALID, ["422", "460"],
     "Upload-Checksum matches the chunk; 422: Schemathesis 4.32's coverage phase sends "
     "'0' as a 'valid' Upload-Checksum when it cannot build a value for its pattern"),
    ("GET /api/v1/log/consistency", _VALID, ["422"],
     "old <= new <= the size of the custody log now"),
    ("POST /api/v1/agencies", _VALID, ["422"],
     "code: 2–64 letters, digits, '.', '_' or '-', starting with a letter or digit"),
    ("POST /api/v1/users", _VALID, ["422"],
     "username: 2–64 lowercase letters, digits, '.', '_', '-'; an inspector needs a "
     "执法证号, a 执法证号 is 4–64 letters, digits or '-'"),
    ("PATCH /api/v1/users/{user_id}", _VALID, ["422"],
     "an inspector keeps a 执法证号; a 执法证号 is 4–64 letters, digits or '-'"),
    ("POST /api/v1/devices", _VALID, ["422"],
     "owner_user_id names an active user of your agency"),
    ("POST /api/v1/devices/enrol", _VALID, ["422"],
     "public_key is a key of alg (Ed25519: 32 raw bytes; ES256: SPKI DER), in base64"),
    ("POST /api/v1/cases", _VALID, ["422"],
     "category is a shipped recording standard, standard_version one of its versions, "
     "officer_ids users of your agency"),
    ("POST /api/v1/manifests", _VALID, ["422"],
     "a capture manifest in core/manifest.py's format, signed by an enrolled device"),
    ("POST /api/v1/draws", _VALID, ["422"],
     "item_codes are active items; the target pool and the inspectors suffice for the plan"),
    ("POST /api/v1/registries/targets", _VALID, ["422"],
     "an organisation's 18-character code carries a valid 统一社会信用代码 check character"),
]  # fmt: skip


def config() -> dict[str, Any]:
    """The Schemathesis configuration: defaults, plus :data:`DOMAIN_RULES` per operation."""
    by_operation: dict[str, dict[str, Any]] = {}
    for operation, check, extra, _rule in DOMAIN_RULES:
        checks = by_operation.setdefault(operation, {})
        statuses = checks.get(check, {}).get("expected-statuses", _statuses(check))
        checks[check] = {"expected-statuses": [*statuses, *extra]}
    return {
        "checks": {check: {"expected-statuses": _statuses(check)} for check in EVERYWHERE},
        "operations": [
            {"include-name": name, "checks": checks} for name, checks in by_operation.items()
        ],
    }


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


# made at import (Schemathesis reads the app while collecting), removed when pytest exits
_DATA_DIR = tempfile.mkdtemp(prefix="casetrail-fuzz-")
atexit.register(shutil.rmtree, _DATA_DIR, True)
_APP, _TOKENS = _app(_DATA_DIR)
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", _APP, config=schemathesis.Config.from_dict(config())
)


def _own_ids() -> tuple[frozenset[str], frozenset[str]]:
    """The ids of the run's users and of their tokens (``GET /me`` with each token)."""
    client = _APP.test_client()
    mes = [
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
        for token in _TOKENS.values()
    ]
    return frozenset(me["user"]["id"] for me in mes), frozenset(me["token_id"] for me in mes)


OWN_USERS, OWN_TOKENS = _own_ids()

# Operations that end a token, or change who its user is, keyed by the parameter naming it.
_REVOKING = {
    ("POST", "/users/{user_id}/tokens/{token_id}/revoke"): ("token_id", OWN_TOKENS),
    ("POST", "/users/{user_id}/deactivate"): ("user_id", OWN_USERS),
    ("PATCH", "/users/{user_id}"): ("user_id", OWN_USERS),
}


def spare_own_tokens(case: schemathesis.Case) -> None:
    """Point a request that would revoke one of the run's tokens at an unknown id."""
    found = _REVOKING.get((case.method.upper(), case.operation.path.removeprefix("/api/v1")))
    if found and case.path_parameters:
        name, own = found
        if case.path_parameters.get(name) in own:
            case.path_parameters[name] = str(uuid.uuid4())


REQUESTS: Counter[str] = Counter()
STATUSES: Counter[tuple[str, str]] = Counter()


def _record(role: str | None, response: Any) -> None:
    who = role or "anonymous"
    REQUESTS[who] += 1
    STATUSES[(who, f"{response.status_code // 100}xx")] += 1


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print("\nrequests per role (phases + stateful):")
    for role in (r or "anonymous" for r in ROLES):
        classes = ", ".join(
            f"{c} {STATUSES[(role, c)]}"
            for c in ("2xx", "3xx", "4xx", "5xx")
            if STATUSES[(role, c)]
        )
        print(f"  {role:10} {REQUESTS[role]:6}  ({classes})")


def _headers(role: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {_TOKENS[role]}"} if role else {}


def _requires_token(operation: Any) -> bool:
    security = operation.definition.raw.get("security", schema.raw_schema.get("security", []))
    return bool(security) and {} not in security


def credentials(role: str | None, case: schemathesis.Case) -> dict[str, str]:
    """The role's token, unless the case left out the token its operation requires.

    A negative case that drops ``Authorization`` must reach the server without one
    (401 expected); adding the role's token back would turn it into a valid request
    that the checks still count as invalid.
    """
    sent = {name.lower() for name in case.headers or {}}
    if "authorization" not in sent and _requires_token(case.operation):
        return {}
    return _headers(role)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=FIXED,
    database=None,
)
def test_every_check_passes_for_every_role(case: schemathesis.Case) -> None:
    spare_own_tokens(case)
    for role in ROLES:
        _record(role, case.call_and_validate(headers=credentials(role, case), checks=CHECKS))


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_stateful_sequences_of_linked_operations(role: str | None) -> None:
    found: list[BaseException] = []
    scenarios = [0]

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            return {"headers": credentials(role, case)}

        def call(self, case: schemathesis.Case, **kwargs: Any) -> Any:
            spare_own_tokens(case)
            response = super().call(case, **kwargs)
            _record(role, response)
            return response

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            try:
                case.validate_response(
                    response,
                    checks=CHECKS,
                    headers=kwargs.get("headers"),
                    transport_kwargs=kwargs or None,
                    recorder=self.recorder,
                )
            except (Exception, BaseExceptionGroup) as failure:  # FailureGroup is the latter
                found.append(failure)
                raise

        def teardown(self) -> None:
            scenarios[0] += 1
            super().teardown()

    # The server keeps what every scenario made, so Hypothesis, replaying a choice it
    # made before, may meet other answers and call its generation "flaky". As
    # Schemathesis's own runner does, that ends an attempt, not the run: a check that
    # failed is reported, else the remaining scenarios run from a fresh seed.
    for attempt in range(10):
        try:
            Workflow.run(
                settings=settings(
                    max_examples=SCENARIOS - scenarios[0],
                    stateful_step_count=6,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    derandomize=FIXED and attempt == 0,
                    database=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no replays to shrink
                )
            )
            break
        except (Flaky, AssertionError) as exc:
            if found:
                raise found[0] from exc
            if not isinstance(exc, Flaky) and not _inconsistent_replay(exc):
                raise
            if scenarios[0] >= SCENARIOS:
                break
    else:
        pytest.fail(f"{scenarios[0]} of {SCENARIOS} scenarios: every attempt was called flaky")
    assert not found
    print(f"\n{role or 'anonymous'}: {scenarios[0]} stateful scenarios in {attempt + 1} attempt(s)")


def _inconsistent_replay(exc: AssertionError) -> bool:
    """Hypothesis asserts (rather than raising Flaky) when a replay draws past a value."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals["__name__"].startswith("hypothesis.")


def test_the_run_spares_its_own_tokens_only() -> None:
    """The exclusion covers the run's own tokens and users, nothing else."""
    revoke = schema["/api/v1/users/{user_id}/tokens/{token_id}/revoke"]["POST"]
    own, other = next(iter(OWN_TOKENS)), str(uuid.uuid4())
    for token_id, spared in ((own, True), (other, False)):
        case = revoke.Case(path_parameters={"user_id": "u", "token_id": token_id})
        spare_own_tokens(case)
        assert (case.path_parameters["token_id"] != token_id) is spared
    assert len(OWN_TOKENS) == len(OWN_USERS) == len(ROLES) - 1


def test_tus_without_credentials_is_401_before_the_version_is_looked_at() -> None:
    client = _APP.test_client()
    for method, path in (("POST", ""), ("HEAD", "/x"), ("PATCH", "/x"), ("DELETE", "/x")):
        refused = client.open(f"/api/v1/uploads{path}", method=method)
        assert refused.status_code == 401, (method, refused.status_code)
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.headers["Tus-Resumable"] == "1.0.0"
    old = client.head("/api/v1/uploads/x", headers=_headers("inspector"))
    assert old.status_code == 412 and old.headers["Tus-Version"] == "1.0.0"
    assert client.options("/api/v1/uploads").status_code == 204  # discovery needs no token


def test_undocumented_query_parameters_are_refused_in_the_one_shape() -> None:
    client = _APP.test_client()
    misspelt = client.get("/api/v1/cases?stauts=open", headers=_headers("admin"))
    body = misspelt.get_json()
    assert misspelt.status_code == 422 and body["code"] == 422
    assert "stauts" in body["message"] and body["errors"] == {
        "query": {"stauts": ["未知参数 (unknown parameter)"]}
    }
    assert client.get("/api/v1/cases?status=open", headers=_headers("admin")).status_code == 200
    assert client.get("/api/v1/me?x=1", headers=_headers("admin")).status_code == 422
    assert client.head("/api/v1/me?x=1", headers=_headers("admin")).status_code == 422


def test_automatic_options_allows_the_methods_of_the_route_asked_about() -> None:
    client = _APP.test_client()
    assert set(client.options("/api/v1/devices/enrol").allow) == {"POST", "OPTIONS"}
    assert set(client.options("/api/v1/devices/x").allow) == {"GET", "HEAD", "OPTIONS"}
