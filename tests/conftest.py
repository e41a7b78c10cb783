"""Fixtures shared by every test package: real parts started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresCluster, PostgresUnavailable

REQUIRE_ALL = os.environ.get("CASETRAIL_TEST_REQUIRE_ALL") == "1"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (skipped loudly if none is installed)."""
    try:
        cluster = PostgresCluster().start()
    except PostgresUnavailable as exc:
        if REQUIRE_ALL:
            pytest.fail(f"CASETRAIL_TEST_REQUIRE_ALL=1 but PostgreSQL is missing: {exc}")
        pytest.skip(f"!!! POSTGRESQL TESTS SKIPPED !!! {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
