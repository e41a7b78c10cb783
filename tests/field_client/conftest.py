"""Field-client fixtures: an enrolled-looking home with no server (for logic tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from core.checkpoint import NoteSigner
from field_client.capture import Capturer, CaptureRequest
from field_client.config import DeviceConfig, FieldHome, write_private
from field_client.keys import DeviceKey, create_device_key
from field_client.queue import Queue

LOG_ORIGIN = "casetrail.test/log"


@pytest.fixture
def log_signer() -> NoteSigner:
    """The server's log key, as a test double of the server."""
    return NoteSigner(LOG_ORIGIN, ed25519.Ed25519PrivateKey.generate())


@pytest.fixture
def home(tmp_path: Path) -> FieldHome:
    return FieldHome(tmp_path / "home").ensure()


@pytest.fixture
def device_key(home: FieldHome) -> DeviceKey:
    return create_device_key(home)


@pytest.fixture
def config(home: FieldHome, device_key: DeviceKey, log_signer: NoteSigner) -> DeviceConfig:
    cfg = DeviceConfig(
        server_url="http://127.0.0.1:9",
        device_id="dev-test",
        device_name="执法记录仪 07",
        alg=device_key.alg,
        key_id=device_key.key_id,
        log_key=log_signer.verifier().key_string(),
        log_origin=LOG_ORIGIN,
        enrolled_at="2025-03-01T09:00:00+08:00",
    )
    home.save_config(cfg)
    write_private(home.token_file, b"ct_test")
    return cfg


@pytest.fixture
def queue(home: FieldHome) -> Iterator[Queue]:
    with Queue(home.queue_db) as q:
        yield q


@pytest.fixture
def capturer(
    home: FieldHome, config: DeviceConfig, device_key: DeviceKey, queue: Queue
) -> Capturer:
    return Capturer(home, config, device_key, queue, clock=lambda: "2025-03-01T09:30:00+08:00")


@pytest.fixture
def request_facts() -> CaptureRequest:
    return CaptureRequest(
        case_ref="黔市监罚〔2025〕12号",
        category="inspection",
        stage="implementation",
        record_type="现场检查笔录",
        officers=("52010012345", "52010012346"),
    )


def make_file(path: Path, size: int, seed: int = 0) -> Path:
    """A file of ``size`` pseudo-random bytes (deterministic per seed)."""
    import random

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n
    return path
