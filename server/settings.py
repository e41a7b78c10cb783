"""Server settings, read once from ``CASETRAIL_*`` environment variables and a config file.

Every command (``casetrail serve``, ``casetrail cases list``, the worker …) finds its
settings the same way, later sources winning:

1. the config file: ``CASETRAIL_CONFIG`` if set (it must exist), else the first of
   ``~/.config/casetrail/config.toml`` and ``/etc/casetrail/config.toml`` that exists.
   Its keys are the names below without the prefix, in lower case
   (``data_dir = "/srv/casetrail"``; ``cors_origins = ["https://a.example"]``);
   relative paths in it are relative to the file, not to the current directory;
2. ``CASETRAIL_*`` environment variables.

The data directory is made absolute as soon as it is read. Zero configuration gives the
embedded default: everything under ``./var`` of the current directory — a SQLite
database (WAL mode), a local blob store and the log-signing key. Setting URLs scales
out without code changes:

============================== ==========================================================
variable                       meaning (default)
============================== ==========================================================
CASETRAIL_DATA_DIR             data directory (``./var``)
CASETRAIL_DATABASE_URL         SQLAlchemy URL (``sqlite:///<DATA_DIR>/casetrail.db``);
                               ``postgresql://…`` uses psycopg 3
CASETRAIL_STORAGE_URL          ``file:///abs/path`` (``file://<DATA_DIR>/blobs``) or
                               ``s3://bucket/prefix``
CASETRAIL_S3_ENDPOINT_URL      S3 endpoint (SeaweedFS, MinIO); unset means AWS
CASETRAIL_S3_ACCESS_KEY        S3 access key
CASETRAIL_S3_SECRET_KEY        S3 secret key
CASETRAIL_S3_REGION            S3 region (``us-east-1``)
CASETRAIL_S3_RETENTION_DAYS    lock every stored original for this many days (S3 Object
                               Lock, COMPLIANCE mode) where the bucket was created with
                               Object Lock; unset: no retention
CASETRAIL_LOG_FORMAT           ``json`` (one JSON object a line, with the request id;
                               default) or ``text`` — logs of ``casetrail serve``
CASETRAIL_LOG_LEVEL            ``DEBUG``, ``INFO`` (default), ``WARNING`` or ``ERROR``
CASETRAIL_CORS_ORIGINS         browser origins allowed to call the API from other sites,
                               comma-separated (``https://app.example.gov.cn``); none by
                               default
CASETRAIL_MAX_JSON_BODY        largest accepted request body outside uploads, bytes (1 MiB)
CASETRAIL_SIGNING_KEY_FILE     Ed25519 log-signing key, PEM
                               (``<DATA_DIR>/keys/log-signing.pem``)
CASETRAIL_LOG_ORIGIN           origin line of signed checkpoints (``casetrail.local/log``)
CASETRAIL_CALENDAR_FILE        agency working-day calendar file (none)
CASETRAIL_PUBLIC_URL           URL clients use to reach this server
                               (``http://127.0.0.1:8000``)
CASETRAIL_INSPECTION           where media inspection runs: ``thread`` (in each server
                               process, default), ``worker`` (only in ``casetrail
                               worker``) or ``sync`` (before the upload's response)
CASETRAIL_MAX_UPLOAD_SIZE      largest evidence file accepted, bytes (64 GiB;
                               announced as ``Tus-Max-Size``)
CASETRAIL_CHECKSUM_CHUNK_MAX   largest PATCH body sent with ``Upload-Checksum``, bytes
                               (64 MiB; it is spooled and verified before any byte is
                               stored; announced as ``CaseTrail-Checksum-Chunk-Max``)
CASETRAIL_UPLOAD_LEASE_SECONDS how long a PATCH holds its upload without sending bytes
                               before another request may take it over (60)
CASETRAIL_UPLOAD_EXPIRY_HOURS  an unfinished upload expires this long after its last
                               byte (168 = 7 days; ``Upload-Expires``)
CASETRAIL_CHECKPOINT_SECONDS   a server process signs a log checkpoint this often when
                               the log grew (60)
CASETRAIL_JOBS_POLL_SECONDS    ``thread`` mode: how often each server process looks for
                               inspection work left over by a crash (60)
============================== ==========================================================
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PREFIX = "CASETRAIL_"
DEFAULT_MAX_JSON_BODY = 1024 * 1024
INSPECTION_MODES = ("thread", "worker", "sync")
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
INTEGERS = (  # (variable, smallest, largest) of the whole-number settings
    ("MAX_UPLOAD_SIZE", 1, 1 << 50),
    ("CHECKSUM_CHUNK_MAX", 1 << 20, 4 << 30),
    ("UPLOAD_LEASE_SECONDS", 5, 3600),
    ("UPLOAD_EXPIRY_HOURS", 1, 24 * 365),
    ("CHECKPOINT_SECONDS", 1, 24 * 3600),
    ("JOBS_POLL_SECONDS", 1, 24 * 3600),
    ("S3_RETENTION_DAYS", 1, 36_500),
)
CONFIG_LOCATIONS = ("~/.config/casetrail/config.toml", "/etc/casetrail/config.toml")
PATH_SETTINGS = ("DATA_DIR", "SIGNING_KEY_FILE", "CALENDAR_FILE")


class SettingsInvalid(Exception):
    """One or more ``CASETRAIL_*`` variables are malformed; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "配置有误，请修正以下环境变量后重试 (invalid settings, fix these variables):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to start; built by :meth:`from_env` or directly in tests."""

    data_dir: Path
    database_url: str
    storage_url: str
    signing_key_file: Path
    s3_endpoint_url: str | None = None
    s3_access_key: str | None = field(default=None, repr=False)
    s3_secret_key: str | None = field(default=None, repr=False)
    s3_region: str = "us-east-1"
    max_json_body: int = DEFAULT_MAX_JSON_BODY
    log_origin: str = "casetrail.local/log"
    calendar_file: Path | None = None
    public_url: str = "http://127.0.0.1:8000"
    inspection: str = "thread"
    max_upload_size: int = 64 << 30
    checksum_chunk_max: int = 64 << 20
    upload_lease_seconds: int = 60
    upload_expiry_hours: int = 7 * 24
    checkpoint_seconds: int = 60
    jobs_poll_seconds: int = 60
    s3_retention_days: int | None = None
    cors_origins: tuple[str, ...] = ()
    log_format: str = "json"
    log_level: str = "INFO"
    config_file: Path | None = None

    @classmethod
    def for_data_dir(cls, data_dir: Path | str, **overrides: object) -> Settings:
        """The embedded default rooted at ``data_dir``, with optional field overrides."""
        data_dir = Path(data_dir).resolve()
        values: dict[str, object] = {
            "data_dir": data_dir,
            "database_url": f"sqlite:///{data_dir / 'casetrail.db'}",
            "storage_url": (data_dir / "blobs").as_uri(),
            "signing_key_file": data_dir / "keys" / "log-signing.pem",
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the config file and ``CASETRAIL_*`` variables (see the module docstring).

        Raises :class:`SettingsInvalid` listing every fault. With an explicit ``environ``
        (tests) only ``CASETRAIL_CONFIG`` names a file; the default locations are
        searched for the process environment only.
        """
        problems: list[str] = []
        env = dict(os.environ if environ is None else environ)
        config = find_config_file(env, search_defaults=environ is None, problems=problems)
        if config is not None:
            env = {**read_config_file(config, problems), **env}

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name, "").strip()
            return value or None

        overrides: dict[str, object] = {"config_file": config}
        if url := get("DATABASE_URL"):
            scheme = urlsplit(url).scheme.split("+")[0]
            if scheme not in ("sqlite", "postgresql", "postgres"):
                problems.append(
                    f"{PREFIX}DATABASE_URL: 仅支持 sqlite 或 postgresql (only sqlite:// or "
                    f"postgresql:// URLs are supported), got {scheme or url!r}"
                )
            overrides["database_url"] = url
        if url := get("STORAGE_URL"):
            parts = urlsplit(url)
            if parts.scheme == "file" and (
                parts.netloc not in ("", "localhost") or not parts.path.startswith("/")
            ):
                problems.append(
                    f"{PREFIX}STORAGE_URL: file URL 需要绝对路径 (needs an absolute path), "
                    f"e.g. file:///srv/casetrail/blobs; got {url!r}"
                )
            elif parts.scheme == "s3" and not parts.netloc:
                problems.append(
                    f"{PREFIX}STORAGE_URL: s3 URL 需要桶名 (needs a bucket), "
                    f"e.g. s3://evidence/casetrail; got {url!r}"
                )
            elif parts.scheme not in ("file", "s3"):
                problems.append(
                    f"{PREFIX}STORAGE_URL: 仅支持 file:// 或 s3:// (only file:// and s3:// "
                    f"are supported), got {url!r}"
                )
            overrides["storage_url"] = url
        if raw := get("MAX_JSON_BODY"):
            try:
                size = int(raw)
                if size < 1024:
                    raise ValueError
                overrides["max_json_body"] = size
            except ValueError:
                problems.append(
                    f"{PREFIX}MAX_JSON_BODY: 需要不小于 1024 的整数字节数 "
                    f"(an integer number of bytes ≥ 1024), got {raw!r}"
                )
        for name, low, high in INTEGERS:
            if (raw := get(name)) is None:
                continue
            try:
                number = int(raw)
                if not low <= number <= high:
                    raise ValueError
                overrides[name.lower()] = number
            except ValueError:
                problems.append(
                    f"{PREFIX}{name}: 需要 {low} 到 {high} 之间的整数 "
                    f"(an integer from {low} to {high}), got {raw!r}"
                )
        if value := get("INSPECTION"):
            if value not in INSPECTION_MODES:
                problems.append(
                    f"{PREFIX}INSPECTION: 须为 thread、worker 或 sync (must be thread, worker "
                    f"or sync), got {value!r}"
                )
            overrides["inspection"] = value
        for name in ("SIGNING_KEY_FILE", "CALENDAR_FILE"):
            if value := get(name):
                overrides[name.lower()] = Path(value).expanduser().resolve()
        for name in ("S3_ENDPOINT_URL", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_REGION"):
            if value := get(name):
                overrides[name.lower()] = value
        if value := get("LOG_ORIGIN"):
            if any(ch.isspace() for ch in value):
                problems.append(
                    f"{PREFIX}LOG_ORIGIN: 不能包含空白字符 (must not contain whitespace), "
                    f"got {value!r}"
                )
            overrides["log_origin"] = value
        if value := get("PUBLIC_URL"):
            if urlsplit(value).scheme not in ("http", "https"):
                problems.append(
                    f"{PREFIX}PUBLIC_URL: 需要 http(s) URL (must be an http(s) URL), got {value!r}"
                )
            overrides["public_url"] = value.rstrip("/")
        if value := get("LOG_FORMAT"):
            if value not in LOG_FORMATS:
                problems.append(
                    f"{PREFIX}LOG_FORMAT: 须为 json 或 text (must be json or text), got {value!r}"
                )
            overrides["log_format"] = value
        if value := get("LOG_LEVEL"):
            if value.upper() not in LOG_LEVELS:
                problems.append(
                    f"{PREFIX}LOG_LEVEL: 须为 {'、'.join(LOG_LEVELS)} 之一 "
                    f"(must be one of {', '.join(LOG_LEVELS)}), got {value!r}"
                )
            overrides["log_level"] = value.upper()
        if value := get("CORS_ORIGINS"):
            origins = tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
            for origin in origins:
                parts = urlsplit(origin)
                if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                    problems.append(
                        f"{PREFIX}CORS_ORIGINS: 每项须为 http(s)://主机[:端口]，不带路径 "
                        f"(each origin is scheme://host[:port], no path), got {origin!r}"
                    )
            overrides["cors_origins"] = origins
        if problems:
            raise SettingsInvalid(problems)
        return cls.for_data_dir(get("DATA_DIR") or "./var", **overrides)

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.database_url.startswith("sqlite")

    def storage_options(self) -> dict[str, str | None]:
        """The mapping ``storage.open_store`` reads: URL plus S3 connection details."""
        return {
            "storage_url": self.storage_url,
            "s3_endpoint_url": self.s3_endpoint_url,
            "s3_access_key": self.s3_access_key,
            "s3_secret_key": self.s3_secret_key,
            "s3_region": self.s3_region,
            "s3_retention_days": (
                None if self.s3_retention_days is None else str(self.s3_retention_days)
            ),
        }


def find_config_file(
    env: Mapping[str, str], *, search_defaults: bool, problems: list[str]
) -> Path | None:
    """``CASETRAIL_CONFIG`` (must exist), else the first default location that exists."""
    if explicit := env.get(PREFIX + "CONFIG", "").strip():
        path = Path(explicit).expanduser().resolve()
        if not path.is_file():
            problems.append(f"{PREFIX}CONFIG: 找不到配置文件 (no such file): {path}")
            return None
        return path
    if search_defaults:
        for candidate in CONFIG_LOCATIONS:
            path = Path(candidate).expanduser()
            if path.is_file():
                return path.resolve()
    return None


def read_config_file(path: Path, problems: list[str]) -> dict[str, str]:
    """The file's settings as ``CASETRAIL_*`` variables; paths made absolute against it."""
    try:
        with path.open("rb") as f:
            table = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{PREFIX}CONFIG: 配置文件无法读取 (unreadable) {path}: {exc}")
        return {}
    known = {name for name, *_ in INTEGERS} | set(_FILE_KEYS)
    values: dict[str, str] = {}
    for key, value in table.items():
        name = key.upper()
        if name not in known:
            problems.append(f"{PREFIX}CONFIG: 未知设置 (unknown setting) {key!r} in {path}")
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        text = str(value)
        if name in PATH_SETTINGS and text:
            text = str((path.parent / Path(text).expanduser()).resolve())
        values[PREFIX + name] = text
    return values


_FILE_KEYS = (
    "DATA_DIR",
    "DATABASE_URL",
    "STORAGE_URL",
    "S3_ENDPOINT_URL",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_REGION",
    "MAX_JSON_BODY",
    "SIGNING_KEY_FILE",
    "LOG_ORIGIN",
    "CALENDAR_FILE",
    "PUBLIC_URL",
    "INSPECTION",
    "CORS_ORIGINS",
    "LOG_FORMAT",
    "LOG_LEVEL",
)
