"""The device's home: where the key, token, settings, queue and vault live.

The home is chosen in this order: an explicit path (``--home``), the
``CASETRAIL_FIELD_HOME`` environment variable, then the per-user data directory
(``$XDG_DATA_HOME/casetrail-field`` or ``~/.local/share/casetrail-field`` on Linux,
``~/Library/Application Support/casetrail-field`` on macOS, ``%LOCALAPPDATA%\\casetrail-field``
on Windows). Layout::

    <home>/device-key.pem     Ed25519 private key, mode 0600
    <home>/device-token       device bearer token, mode 0600
    <home>/device.json        server URL, device id, pinned log key, retention
    <home>/queue.db           the durable queue (SQLite, WAL)
    <home>/vault/<manifest>/  copies of captured files (originals are never touched)
    <home>/receipts/          verified receipts, one JSON file per evidence
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from field_client.errors import HomeError, NotEnrolled

__all__ = [
    "APP_NAME",
    "DEFAULT_RETENTION_DAYS",
    "DeviceConfig",
    "FieldHome",
    "default_home",
    "resolve_home",
    "write_private",
]

APP_NAME = "casetrail-field"
ENV_HOME = "CASETRAIL_FIELD_HOME"
DEFAULT_RETENTION_DAYS = 30
"""How long originals stay in the vault after their receipt was verified."""


def default_home(env: dict[str, str] | None = None) -> Path:
    """The per-user data directory for the field client on this platform."""
    env = dict(os.environ) if env is None else env
    if env.get(ENV_HOME):
        return Path(env[ENV_HOME]).expanduser()
    if sys.platform == "win32":  # pragma: no cover - not exercised on the CI platform
        base = env.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / APP_NAME
    if sys.platform == "darwin":  # pragma: no cover
        return Path.home() / "Library" / "Application Support" / APP_NAME
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP_NAME


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if hasattr(os, "fchmod"):  # absent on Windows before Python 3.13 (ACLs apply there)
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or create inside ``path`` durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class DeviceConfig:
    """What enrolment established: the server, this device, and the pinned log key.

    ``log_key`` is the server's checkpoint verifier key string
    (``<name>+<hex>+<base64>``), pinned at enrolment: every receipt's checkpoint must
    be signed by it. ``retention_days`` is how long originals stay in the vault after
    their receipt is verified.
    """

    server_url: str
    device_id: str
    device_name: str
    alg: str
    key_id: str
    log_key: str
    log_origin: str | None
    enrolled_at: str
    retention_days: int = DEFAULT_RETENTION_DAYS

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in ``device.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DeviceConfig:
        """Parse ``device.json``; raises :class:`HomeError` naming the bad file."""
        try:
            return cls(**d)
        except TypeError as e:
            raise HomeError(
                f"设备配置文件不完整 / device.json is incomplete ({e}); "
                "re-enrol with `casetrail-field enroll`"
            ) from None


@dataclass(frozen=True)
class FieldHome:
    """Paths inside one device home (see the module docstring)."""

    root: Path

    @property
    def key_file(self) -> Path:
        """The device's private key (PEM, 0600)."""
        return self.root / "device-key.pem"

    @property
    def token_file(self) -> Path:
        """The device token (0600)."""
        return self.root / "device-token"

    @property
    def config_file(self) -> Path:
        """``device.json``."""
        return self.root / "device.json"

    @property
    def queue_db(self) -> Path:
        """The SQLite queue."""
        return self.root / "queue.db"

    @property
    def vault_dir(self) -> Path:
        """Copies of captured files."""
        return self.root / "vault"

    @property
    def receipts_dir(self) -> Path:
        """Verified receipts."""
        return self.root / "receipts"

    @property
    def lock_file(self) -> Path:
        """Serialises captures (device chain) across processes."""
        return self.root / "capture.lock"

    def ensure(self) -> FieldHome:
        """Create the home (mode 0700) and its sub-directories; return self."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.vault_dir.mkdir(exist_ok=True, mode=0o700)
            self.receipts_dir.mkdir(exist_ok=True, mode=0o700)
        except OSError as e:
            raise HomeError(
                f"无法创建数据目录 {self.root} / cannot create the data directory: {e.strerror}; "
                "choose another with --home or CASETRAIL_FIELD_HOME"
            ) from None
        return self

    def is_enrolled(self) -> bool:
        """True when key, token and settings are all present."""
        return all(p.exists() for p in (self.key_file, self.token_file, self.config_file))

    def load_config(self) -> DeviceConfig:
        """``device.json``; raises :class:`NotEnrolled` when the device is not enrolled."""
        if not self.is_enrolled():
            raise NotEnrolled(
                f"本设备尚未注册 (目录 {self.root}) / this device is not enrolled (home {self.root}); "
                "run `casetrail-field enroll --server URL --code CODE` first"
            )
        try:
            data = json.loads(self.config_file.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise HomeError(
                f"无法读取 {self.config_file} / cannot read device settings: {e}; "
                "re-enrol with `casetrail-field enroll`"
            ) from None
        return DeviceConfig.from_json(data)

    def save_config(self, config: DeviceConfig) -> None:
        """Write ``device.json`` atomically."""
        text = json.dumps(config.to_json(), ensure_ascii=False, indent=2) + "\n"
        write_private(self.config_file, text.encode("utf-8"))

    def load_token(self) -> str:
        """The device token; raises :class:`NotEnrolled` when missing."""
        try:
            return self.token_file.read_text("ascii").strip()
        except OSError:
            raise NotEnrolled(
                "找不到设备令牌 / no device token; run `casetrail-field enroll` first"
            ) from None


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> FieldHome:
    """The home to use: ``explicit`` if given, else :func:`default_home`."""
    root = Path(explicit).expanduser() if explicit else default_home()
    return FieldHome(root.absolute())
