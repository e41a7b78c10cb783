"""CASETRAIL_S3_RETENTION_DAYS reaches the S3 store: originals are locked in SeaweedFS."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from server.settings import Settings
from storage import open_store
from storage.s3 import make_s3_client
from tests.support.seaweedfs import SeaweedFS

pytestmark = pytest.mark.seaweedfs

ORIGINAL = "originals/sha256/ab/cd/" + "ab" * 32


def test_retention_days_setting_locks_every_stored_original(seaweedfs: SeaweedFS, tmp_path) -> None:
    raw = make_s3_client(
        seaweedfs.endpoint_url, seaweedfs.access_key, seaweedfs.secret_key, seaweedfs.region
    )
    bucket = "locked-" + uuid.uuid4().hex[:8]
    raw.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    settings = Settings.from_env(
        {
            "CASETRAIL_DATA_DIR": str(tmp_path),
            "CASETRAIL_STORAGE_URL": f"s3://{bucket}/ct",
            "CASETRAIL_S3_ENDPOINT_URL": seaweedfs.endpoint_url,
            "CASETRAIL_S3_ACCESS_KEY": seaweedfs.access_key,
            "CASETRAIL_S3_SECRET_KEY": seaweedfs.secret_key,
            "CASETRAIL_S3_RETENTION_DAYS": "30",
        }
    )
    store = open_store(settings.storage_options())
    assert store.capabilities.object_lock

    store.write(ORIGINAL, [b"locked evidence"])
    retention = raw.get_object_retention(Bucket=bucket, Key=f"ct/{ORIGINAL}")["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    until = retention["RetainUntilDate"]
    assert timedelta(days=29) < until - datetime.now(UTC) <= timedelta(days=30)

    # Before the date, the store itself refuses to remove the locked version...
    version = raw.head_object(Bucket=bucket, Key=f"ct/{ORIGINAL}")["VersionId"]
    with pytest.raises(ClientError) as refused:
        raw.delete_object(Bucket=bucket, Key=f"ct/{ORIGINAL}", VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # ...and the original's bytes are still there to read.
    body = raw.get_object(Bucket=bucket, Key=f"ct/{ORIGINAL}", VersionId=version)["Body"].read()
    assert body == b"locked evidence"
