"""Parts in flight on S3 (``put_part_after``): a part is never complete in the store before
the one before it is recorded, so a writer that stops at any moment leaves at most its
last stored part unrecorded — and the order rule still holds."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from storage import Unavailable
from storage.errors import InvalidParts
from storage.port import PartsInFlight
from storage.s3 import S3BlobStore, make_s3_client
from tests.storage.contract import payload, read_all
from tests.support.seaweedfs import SeaweedFS

pytestmark = pytest.mark.seaweedfs

PART = 5 << 20


@pytest.fixture
def store(seaweedfs: SeaweedFS) -> S3BlobStore:
    client = make_s3_client(
        seaweedfs.endpoint_url, seaweedfs.access_key, seaweedfs.secret_key, seaweedfs.region
    )
    bucket = "inflight-" + uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=bucket)
    return S3BlobStore(client, bucket, part_size=PART)


def test_a_part_is_not_stored_before_the_one_before_it_is_recorded(store: S3BlobStore) -> None:
    assert isinstance(store, PartsInFlight)
    uid = store.start_upload("originals/x")
    first = store.put_part("originals/x", uid, 1, [payload(PART, 1)])
    recorded = threading.Event()
    second: list[object] = []
    sender = threading.Thread(
        target=lambda: second.append(
            store.put_part_after("originals/x", uid, 2, [payload(PART, 2)], recorded.wait)
        )
    )
    sender.start()
    time.sleep(0.5)  # all but the held end has long been sent
    assert [p.number for p in store.list_parts("originals/x", uid)] == [1]
    recorded.set()
    sender.join(30)
    assert [p.number for p in store.list_parts("originals/x", uid)] == [1, 2]
    store.complete_upload("originals/x", uid, [first, second[0]])  # type: ignore[list-item]
    assert read_all(store, "originals/x") == payload(PART, 1) + payload(PART, 2)


def test_when_the_part_before_fails_nothing_of_this_one_is_kept(store: S3BlobStore) -> None:
    uid = store.start_upload("originals/y")
    first = store.put_part("originals/y", uid, 1, [payload(PART, 1)])

    def part_before_failed() -> None:
        raise Unavailable("the part before was not stored")

    with pytest.raises(Unavailable, match="the part before was not stored"):
        store.put_part_after("originals/y", uid, 2, [payload(PART, 2)], part_before_failed)
    assert store.list_parts("originals/y", uid) == [first]
    # the writer resumes from what it recorded: part 2 again, then the rest
    second = store.put_part("originals/y", uid, 2, [payload(PART, 3)])
    third = store.put_part_after("originals/y", uid, 3, [b"tail"], lambda: None)
    store.complete_upload("originals/y", uid, [first, second, third])
    assert read_all(store, "originals/y") == payload(PART, 1) + payload(PART, 3) + b"tail"


def test_a_part_out_of_order_is_refused_after_the_one_before(store: S3BlobStore) -> None:
    uid = store.start_upload("originals/z")
    first = store.put_part("originals/z", uid, 1, [payload(PART, 1)])
    with pytest.raises(InvalidParts):  # part 3 after part 1: a gap, whatever came before
        store.put_part_after("originals/z", uid, 3, [payload(PART, 3)], lambda: None)
    assert store.list_parts("originals/z", uid) == [first]
